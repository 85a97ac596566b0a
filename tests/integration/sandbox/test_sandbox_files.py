"""The sandbox's Zalo files: upload/file limits and types, file messages, expiry, viewer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from connectors.sandbox import SANDBOX_ZALO_ACCESS_TOKEN, SandboxState
from content.media import ZALO_DOCUMENT_MAX
from tests.documents import write_doc, write_docx, write_pdf

ZALO = {"access_token": SANDBOX_ZALO_ACCESS_TOKEN}
GROUP = "f414c8f76fa586fbdfb4"
NOON_VN = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def upload(client: httpx.AsyncClient, kind: str, name: str, data: bytes) -> dict[str, Any]:
    files = {"file": (name, data, "application/octet-stream")}
    response = await client.post(f"/v2.0/oa/upload/{kind}", files=files, headers=ZALO)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def file_message(token: str) -> dict[str, Any]:
    return {
        "recipient": {"group_id": GROUP},
        "message": {"attachment": {"type": "file", "payload": {"token": token}}},
    }


async def send_file(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.post("/v3.0/oa/group/message", json=file_message(token), headers=ZALO)
    body: dict[str, Any] = response.json()
    return body


async def test_each_document_type_gets_a_token_and_goes_to_the_group(
    client: httpx.AsyncClient, state: SandboxState, tmp_path: Path
) -> None:
    for path in (
        write_pdf(tmp_path / "Kế hoạch.pdf"),
        write_doc(tmp_path / "cong-van.doc"),
        write_docx(tmp_path / "bao-cao.docx"),
    ):
        answer = await upload(client, "file", path.name, path.read_bytes())
        assert answer["error"] == 0 and set(answer["data"]) == {"token"}
        sent = await send_file(client, answer["data"]["token"])
        assert sent["error"] == 0 and sent["data"]["group_id"] == GROUP
    group = state.zalo_groups[GROUP]
    assert [m.file_name for m in group.messages] == ["Kế hoạch.pdf", "cong-van.doc", "bao-cao.docx"]
    assert [m["file"] for m in state.messages()] == [m.file_name for m in group.messages]
    history = await client.get(
        "/v3.0/oa/group/conversation", params={"group_id": GROUP}, headers=ZALO
    )
    newest = history.json()["data"][0]
    assert (newest["type"], newest["name"]) == ("file", "bao-cao.docx")
    assert newest["size"] == (tmp_path / "bao-cao.docx").stat().st_size


async def test_wrong_types_and_sizes_are_refused(
    client: httpx.AsyncClient, state: SandboxState, tmp_path: Path
) -> None:
    not_docx = write_docx(tmp_path / "bang.docx", body=False).read_bytes()
    assert (await upload(client, "file", "bang.docx", not_docx))["error"] == -201
    assert (await upload(client, "file", "anh.pdf", PNG))["error"] == -201
    big = write_pdf(tmp_path / "lon.pdf", padding=ZALO_DOCUMENT_MAX)
    assert (await upload(client, "file", "lon.pdf", big.read_bytes()))["error"] == -210
    assert (await upload(client, "image", "a.png", PNG + bytes(1024 * 1024)))["error"] == -210
    assert state.zalo_uploads == {}


async def test_a_file_token_is_not_an_image_nor_the_other_way_round(
    client: httpx.AsyncClient, state: SandboxState, tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "a.pdf").read_bytes()
    token = (await upload(client, "file", "a.pdf", pdf))["data"]["token"]
    image = (await upload(client, "image", "a.png", PNG))["data"]["attachment_id"]
    assert (await send_file(client, image))["error"] == -201
    element = {"media_type": "image", "attachment_id": token}
    payload = {"template_type": "media", "elements": [element]}
    body = {
        "recipient": {"group_id": GROUP},
        "message": {"text": "x", "attachment": {"type": "template", "payload": payload}},
    }
    answer = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    assert answer.json()["error"] == -201
    assert state.messages() == []


async def test_a_token_expires_after_seven_days_on_the_sandbox_clock(
    client: httpx.AsyncClient, state: SandboxState, tmp_path: Path
) -> None:
    state.set_now(NOON_VN)
    pdf = write_pdf(tmp_path / "a.pdf").read_bytes()
    token = (await upload(client, "file", "a.pdf", pdf))["data"]["token"]
    state.set_now(NOON_VN + timedelta(days=7))
    assert (await send_file(client, token))["error"] == 0
    state.set_now(NOON_VN + timedelta(days=7, seconds=1))
    assert await send_file(client, token) == {"error": -100, "message": "attachment_id was expired"}
    snapshot = (await client.get("/_sandbox/state")).json()
    assert [u["name"] for u in snapshot["zalo_uploads"]] == ["a.pdf"]


async def test_the_viewer_shows_a_file_with_its_name_and_size(
    client: httpx.AsyncClient, state: SandboxState, tmp_path: Path
) -> None:
    pdf = write_pdf(tmp_path / "x.pdf", padding=3600).read_bytes()
    token = (await upload(client, "file", "<Kế hoạch>.pdf", pdf))["data"]["token"]
    await send_file(client, token)
    page = (await client.get("/")).text
    assert "📄 &lt;Kế hoạch&gt;.pdf · 4 KB" in page

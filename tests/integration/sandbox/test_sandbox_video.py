"""Page videos in the sandbox: upload, refusals, processing status and the video post."""

from __future__ import annotations

import hashlib
import hmac
import struct
from typing import Any

import httpx
import pytest

from connectors.sandbox import SANDBOX_PAGE_ID, SANDBOX_PAGE_TOKEN, Fault, SandboxState
from connectors.sandbox.facebook_videos import finish_processing, sniff_container
from tests.integration.sandbox.helpers import fb_error

VIDEOS = f"/v26.0/{SANDBOX_PAGE_ID}/videos"
LISTING = f"/v26.0/{SANDBOX_PAGE_ID}/published_posts"
AUTH = {"access_token": SANDBOX_PAGE_TOKEN}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def movie(major: bytes = b"isom", compatible: tuple[bytes, ...] = (b"isom", b"mp42")) -> bytes:
    """A file that starts like an mp4 (or a mov with major brand "qt  ")."""
    ftyp = box(b"ftyp", major + struct.pack(">I", 0x200) + b"".join(compatible))
    return ftyp + box(b"mdat", b"\x00" * 256)


async def upload(
    client: httpx.AsyncClient, data: bytes = b"", *, name: str = "clip.mp4", **params: str
) -> httpx.Response:
    fields = {"description": "Đại hội Công đoàn cơ sở", "title": "Đại hội", **AUTH, **params}
    if "file_url" in params:
        return await client.post(VIDEOS, data=fields)
    files = {"source": (name, data or movie(), "video/mp4")}
    return await client.post(VIDEOS, data=fields, files=files)


async def status(client: httpx.AsyncClient, video_id: str) -> dict[str, Any]:
    response = await client.get(f"/v26.0/{video_id}", params={"fields": "status", **AUTH})
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    assert body.keys() == {"status", "id"}
    assert body["id"] == video_id
    seen: dict[str, Any] = body["status"]
    return seen


async def test_upload_by_source(client: httpx.AsyncClient, state: SandboxState):
    response = await upload(client)
    assert response.status_code == 200
    assert response.json().keys() == {"id"}
    [video] = state.fb_videos.values()
    assert (video.id, video.container, video.size) == (response.json()["id"], "mp4", len(movie()))
    assert (video.description, video.title, video.published) == (
        "Đại hội Công đoàn cơ sở",
        "Đại hội",
        True,
    )
    assert video.status == "processing"
    assert state.fb_posts == []
    assert state.messages() == []


async def test_size_comes_from_the_whole_upload(client: httpx.AsyncClient, state: SandboxState):
    big = movie() + b"\x00" * (5 * 1024 * 1024)
    assert (await upload(client, big)).status_code == 200
    assert next(iter(state.fb_videos.values())).size == len(big)


async def test_upload_mov(client: httpx.AsyncClient, state: SandboxState):
    response = await upload(client, movie(b"qt  ", (b"qt  ",)), name="clip.mov")
    assert response.status_code == 200
    assert state.fb_videos[response.json()["id"]].container == "mov"


async def test_upload_by_file_url(client: httpx.AsyncClient, state: SandboxState):
    any_https = await upload(client, file_url="https://congdoan.vn/media/dai-hoi.mp4")
    assert any_https.status_code == 200
    assert state.fb_videos[any_https.json()["id"]].file_url == (
        "https://congdoan.vn/media/dai-hoi.mp4"
    )
    plain_http = fb_error(await upload(client, file_url="http://congdoan.vn/a.mp4"))
    assert plain_http["code"] == 100
    state.downloadable_urls = {"https://congdoan.vn/ok.mp4"}
    assert (await upload(client, file_url="https://congdoan.vn/ok.mp4")).status_code == 200
    refused = fb_error(await upload(client, file_url="https://congdoan.vn/private.mp4"))
    assert refused["code"] == 100
    assert "couldn't download the video" in refused["error_user_msg"]
    assert len(state.fb_videos) == 2


async def test_upload_needs_a_file(client: httpx.AsyncClient, state: SandboxState):
    response = await client.post(VIDEOS, data={"description": "x", **AUTH})
    assert fb_error(response)["code"] == 324
    assert state.fb_videos == {}


@pytest.mark.parametrize(
    "blob",
    [
        PNG,
        b"%PDF-1.4 not a video at all",
        movie(b"heic", (b"mif1", b"heic")),
        b"\x00\x00",
    ],
    ids=["png", "pdf", "heic", "tiny"],
)
async def test_not_a_video_is_refused(client: httpx.AsyncClient, state: SandboxState, blob: bytes):
    error = fb_error(await upload(client, blob))
    assert error["code"] == 100
    assert error["error_user_msg"] == (
        "The video file you selected is in a format that we don't support."
    )
    assert state.fb_videos == {}


async def test_too_large_is_refused(client: httpx.AsyncClient, state: SandboxState):
    state.video_max_bytes = len(movie())
    assert (await upload(client)).status_code == 200
    error = fb_error(await upload(client, movie() + b"\x00"))
    assert error["code"] == 100
    assert "too large" in error["error_user_msg"]
    assert len(state.fb_videos) == 1


async def test_token_and_appsecret_proof_are_checked(
    client: httpx.AsyncClient, state: SandboxState
):
    files = {"source": ("a.mp4", movie(), "video/mp4")}
    missing = fb_error(await client.post(VIDEOS, data={"description": "x"}, files=files))
    assert (missing["code"], missing["error_subcode"]) == (190, 467)
    state.fb_app_secret = "app-secret"
    no_proof = fb_error(await upload(client))
    assert (no_proof["code"], no_proof["type"]) == (100, "GraphMethodException")
    proof = hmac.new(b"app-secret", SANDBOX_PAGE_TOKEN.encode(), hashlib.sha256).hexdigest()
    assert (await upload(client, appsecret_proof=proof)).status_code == 200
    assert len(state.fb_videos) == 1


@pytest.mark.parametrize("polls", [0, 1, 2, 4])
async def test_processing_then_ready_after_n_polls(
    client: httpx.AsyncClient, state: SandboxState, polls: int
):
    state.video_processing_polls = polls
    video_id = (await upload(client)).json()["id"]
    progress = []
    for _ in range(polls):
        seen = await status(client, video_id)
        assert seen["video_status"] == "processing"
        progress.append(seen["processing_progress"])
        assert state.messages() == []
    assert progress == sorted(progress)
    assert all(0 <= p < 100 for p in progress)
    assert await status(client, video_id) == {"video_status": "ready", "processing_progress": 100}


async def test_video_fails_ends_in_error(client: httpx.AsyncClient, state: SandboxState):
    state.video_fails = True
    video_id = (await upload(client)).json()["id"]
    seen = [(await status(client, video_id))["video_status"] for _ in range(4)]
    assert seen == ["processing", "processing", "error", "error"]
    assert state.fb_posts == []
    assert state.messages() == []
    listing = (await client.get(LISTING, params=AUTH)).json()
    assert listing["data"] == []


async def test_video_becomes_one_post_only_when_ready(
    client: httpx.AsyncClient, state: SandboxState
):
    video_id = (await upload(client)).json()["id"]
    for _ in range(2):
        await status(client, video_id)
        assert state.messages() == []
        assert (await client.get(LISTING, params=AUTH)).json()["data"] == []
    for _ in range(3):
        assert (await status(client, video_id))["video_status"] == "ready"
    [message] = state.messages()
    assert (message["channel"], message["text"], message["video_id"]) == (
        "facebook_page",
        "Đại hội Công đoàn cơ sở",
        video_id,
    )
    assert message["remote_id"].startswith(f"{SANDBOX_PAGE_ID}_")
    listing = (await client.get(LISTING, params={"fields": "id,message", **AUTH})).json()
    assert listing["data"] == [{"id": message["remote_id"], "message": "Đại hội Công đoàn cơ sở"}]
    fields = {"fields": "status_type,attachments", **AUTH}
    post = (await client.get(f"/v26.0/{message['remote_id']}", params=fields)).json()
    assert post["status_type"] == "added_video"
    assert post["attachments"]["data"][0]["target"] == {"id": video_id}
    read = await client.get(f"/v26.0/{video_id}", params={"fields": "post_id", **AUTH})
    assert read.json() == {"post_id": message["remote_id"], "id": video_id}


async def test_unpublished_video_never_becomes_a_post(
    client: httpx.AsyncClient, state: SandboxState
):
    video_id = (await upload(client, published="false")).json()["id"]
    for _ in range(4):
        await status(client, video_id)
    assert state.fb_videos[video_id].status == "ready"
    assert state.fb_posts == []
    assert state.messages() == []


async def test_other_video_fields(client: httpx.AsyncClient, state: SandboxState):
    video_id = (await upload(client)).json()["id"]
    params = {"fields": "id,permalink_url", **AUTH}
    read = (await client.get(f"/v26.0/{video_id}", params=params)).json()
    assert read == {
        "id": video_id,
        "permalink_url": f"https://www.facebook.com/{SANDBOX_PAGE_ID}/videos/{video_id}/",
    }
    assert state.fb_videos[video_id].status_reads == 0
    bad = fb_error(await client.get(f"/v26.0/{video_id}", params={"fields": "x", **AUTH}))
    assert bad["message"] == "(#100) Tried accessing nonexisting field (x) on node type (Video)"


async def test_commit_then_error_records_one_video(client: httpx.AsyncClient, state: SandboxState):
    state.push_fault("fb.videos", Fault("commit_then_error"))
    lost = await upload(client)
    assert lost.status_code == 500
    error = fb_error(lost)
    assert (error["code"], error["is_transient"]) == (2, True)
    [video] = state.fb_videos.values()
    assert state.messages() == []
    assert finish_processing(state) == [video.id]
    assert finish_processing(state) == []
    assert [m["video_id"] for m in state.messages()] == [video.id]
    assert state.requests[0]["route"] == "fb.videos"


async def test_error_fault_records_nothing(client: httpx.AsyncClient, state: SandboxState):
    state.push_fault("fb.videos", Fault("error", code=6000, message="(#6000) Upload failed"))
    assert fb_error(await upload(client))["code"] == 6000
    assert (await upload(client)).status_code == 200
    assert len(state.fb_videos) == 1


async def test_delete_video_removes_its_post(client: httpx.AsyncClient, state: SandboxState):
    state.video_processing_polls = 0
    video_id = (await upload(client)).json()["id"]
    await status(client, video_id)
    assert len(state.messages()) == 1
    deleted = await client.delete(f"/v26.0/{video_id}", params=AUTH)
    assert deleted.json() == {"success": True}
    assert (state.fb_videos, state.fb_posts, state.messages()) == ({}, [], [])


async def test_control_api_for_videos(client: httpx.AsyncClient, state: SandboxState):
    config = {
        "video_processing_polls": 5,
        "video_fails": False,
        "video_max_bytes": 10_000,
        "downloadable_urls": ["https://congdoan.vn/a.mp4"],
    }
    assert (await client.post("/_sandbox/config", json=config)).json() == {"ok": True}
    assert state.downloadable_urls == {"https://congdoan.vn/a.mp4"}
    video_id = (await upload(client)).json()["id"]
    assert (await client.post("/_sandbox/finish_videos")).json() == {"ok": True}
    snapshot = (await client.get("/_sandbox/state")).json()
    assert snapshot["fb_videos"][0]["status"] == "ready"
    assert snapshot["fb_posts"][0]["video_id"] == video_id
    fault = {"route": "fb.videos", "fault": {"kind": "error", "code": 100}}
    assert (await client.post("/_sandbox/faults", json=fault)).json() == {"ok": True}


async def test_viewer_shows_videos(client: httpx.AsyncClient, state: SandboxState):
    state.video_processing_polls = 0
    ready_id = (await upload(client, description="Video <b>sẵn sàng</b>")).json()["id"]
    await status(client, ready_id)
    await upload(client, description="Video đang chờ")
    page = (await client.get("/")).text
    assert page.count("▶ Video") == 2
    assert "Video &lt;b&gt;sẵn sàng&lt;/b&gt;" in page
    assert "▶ Video · sẵn sàng" in page
    assert "Video đang chờ" in page
    assert "▶ Video · đang xử lý" in page


def test_sniff_container() -> None:
    assert sniff_container(movie()) == "mp4"
    assert sniff_container(movie(b"mp42", (b"mp41",))) == "mp4"
    assert sniff_container(movie(b"qt  ", ())) == "mov"
    assert sniff_container(movie(b"M4A ", (b"M4A ",))) is None
    assert sniff_container(PNG) is None

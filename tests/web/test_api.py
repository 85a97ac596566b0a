"""The JSON API: tokens, roles, the CLI's rules, body limits, and a document that matches."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text, update
from starlette.applications import Starlette
from starlette.routing import Route

from bot.app import App
from bot.db.models import ApiToken, AuditEntry, Post, Role
from bot.db.types import db_now
from bot.web.auth import PERMISSIONS, Users
from bot.web.pages_api import (
    ENDPOINTS,
    MAX_BODY,
    OPENAPI_PATH,
    Approved,
    Cancelled,
    DeliveryRow,
    PostCreate,
    PostDetail,
    PostSummary,
    openapi_path,
)
from content.kinds import PostDraft
from tests.web.conftest import ROLES, Client, csrf_of

POSTS = "/api/v1/posts"


def soon(days: float = 2) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


def story(**changes: Any) -> dict[str, Any]:
    """A valid request body for a story, with `changes` applied."""
    body: dict[str, Any] = {
        "kind": "story",
        "title": "Gương sáng tháng Năm",
        "body": "Chị Hoa vận động 40 đoàn viên hiến máu.",
        "scheduled_at": soon(),
        "channels": ["facebook_page", "zalo_group"],
        "hashtags": ["NguoiTotViecTot"],
    }
    return body | changes


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
async def tokens(bot: App) -> dict[str, str]:
    """An API token per role."""
    users = Users(bot.sessions)
    return {role: await users.new_token(role, "kịch bản", actor="test") for role in ROLES}


@pytest.fixture
async def http(client: Client) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no session: it speaks with tokens only."""
    yield await client("anonymous")


async def post_count(bot: App) -> int:
    async with bot.sessions() as session:
        return int(await session.scalar(select(func.count(Post.id))) or 0)


def assert_error(response: httpx.Response, status: int, fragment: str, field: Any = ...) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    data = response.json()
    assert fragment.casefold() in data["error"].casefold(), data
    if field is not ...:
        assert data["field"] == field, data


# ---- who may call -----------------------------------------------------------------------------


async def test_a_token_opens_the_api_and_a_bad_one_does_not(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    assert (await http.get(POSTS, headers=bearer(tokens["viewer"]))).status_code == 200
    for headers in ({}, bearer("cdb_khong-co-ma-nay"), {"authorization": "Basic dmlld2Vy"}):
        assert_error(await http.get(POSTS, headers=headers), 401, "mã API hợp lệ")

    async with bot.sessions.begin() as session:  # revoke the viewer's token
        await session.execute(update(ApiToken).values(revoked_at=db_now()))
    assert_error(await http.get(POSTS, headers=bearer(tokens["viewer"])), 401, "mã API")

    users = Users(bot.sessions)
    fresh = await users.new_token("editor", "mới", actor="test")
    assert (await http.get(POSTS, headers=bearer(fresh))).status_code == 200
    await users.update("editor", disabled=True, actor="test")
    assert_error(await http.get(POSTS, headers=bearer(fresh)), 401, "mã API")


@pytest.mark.parametrize("role", ROLES)
async def test_each_role_does_exactly_its_share(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str], draft_post: Post, role: str
) -> None:
    allowed = PERMISSIONS[Role(role)]
    headers = bearer(tokens[role])
    other = await bot.queue.add(PostDraft.model_validate(story()), actor="test")
    calls = [
        ("view", "GET", POSTS, None),
        ("view", "GET", f"{POSTS}/{draft_post.id}", None),
        ("view", "GET", "/api/v1/deliveries", None),
        ("write", "POST", POSTS, story()),
        ("approve", "POST", POSTS, story(approve=True)),
        ("approve", "POST", f"{POSTS}/{draft_post.id}/approve", None),
        ("approve", "POST", f"{POSTS}/{other.id}/cancel", None),
    ]
    for permission, method, url, body in calls:
        response = await http.request(method, url, json=body, headers=headers)
        if permission in allowed:
            assert response.status_code in (200, 201), (role, url, response.text)
        else:
            assert_error(response, 403, "không được")


async def test_the_console_session_needs_the_csrf_header_to_post(client: Client) -> None:
    http = await client("editor")
    assert (await http.get(POSTS)).status_code == 200  # reading needs no header
    assert_error(await http.post(POSTS, json=story()), 401, "đăng nhập")
    forged = {"x-csrf-token": "gia-mao"}
    assert_error(await http.post(POSTS, json=story(), headers=forged), 401, "đăng nhập")
    token = await csrf_of(http, "/")
    created = await http.post(POSTS, json=story(), headers={"x-csrf-token": token})
    assert created.status_code == 201, created.text


# ---- what it does -----------------------------------------------------------------------------


async def test_create_approve_and_follow_the_deliveries(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    created = await http.post(POSTS, json=story(), headers=bearer(tokens["editor"]))
    assert created.status_code == 201, created.text
    post = PostDetail.model_validate(created.json())
    assert created.headers["location"] == f"{POSTS}/{post.id}"
    assert (post.status, post.delivery_list, post.clusters) == ("draft", [], None)
    assert post.category == "good_deeds"
    assert post.scheduled_at.utcoffset() == timedelta(hours=7)  # the office's time

    approver = bearer(tokens["approver"])
    approved = await http.post(f"{POSTS}/{post.id}/approve", headers=approver)
    assert approved.status_code == 200, approved.text
    result = Approved.model_validate(approved.json())
    assert (result.created, result.post.status) == (2, "approved")
    again = Approved.model_validate(
        (await http.post(f"{POSTS}/{post.id}/approve", headers=approver)).json()
    )
    assert again.created == 0  # approving again adds nothing

    listed = await http.get("/api/v1/deliveries", params={"post_id": post.id}, headers=approver)
    rows = [DeliveryRow.model_validate(row) for row in listed.json()]
    assert sorted((r.channel, r.status, r.cluster) for r in rows) == [
        ("facebook_page", "pending", None),
        ("zalo_group", "pending", "HCSN"),
    ]
    assert {r.post_id for r in rows} == {post.id}
    pending = await http.get("/api/v1/deliveries", params={"status": "sent"}, headers=approver)
    assert pending.json() == []

    shown = PostDetail.model_validate(
        (await http.get(f"{POSTS}/{post.id}", headers=approver)).json()
    )
    assert len(shown.delivery_list) == 2
    assert shown.body == "Chị Hoa vận động 40 đoàn viên hiến máu."
    by_status = await http.get(POSTS, params={"status": "approved"}, headers=approver)
    assert [PostSummary.model_validate(p).id for p in by_status.json()] == [post.id]
    drafts = await http.get(POSTS, params={"status": "draft"}, headers=approver)
    assert drafts.json() == []

    async with bot.sessions() as session:
        audit = (
            await session.execute(
                select(AuditEntry.action, AuditEntry.actor).where(AuditEntry.post_id == post.id)
            )
        ).all()
    assert ("post.add", "web:editor") in audit
    assert ("post.approve", "web:approver") in audit


async def test_an_approver_may_create_an_approved_post_an_editor_may_not(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    body = story(approve=True, clusters=["hcsn"])
    refused = await http.post(POSTS, json=body, headers=bearer(tokens["editor"]))
    assert_error(refused, 403, "không được duyệt bài", "approve")
    assert await post_count(bot) == 0

    created = await http.post(POSTS, json=body, headers=bearer(tokens["approver"]))
    assert created.status_code == 201, created.text
    post = PostDetail.model_validate(created.json())
    assert (post.status, post.clusters, post.deliveries.total) == ("approved", ["HCSN"], 2)


async def test_lists_page_in_schedule_order(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    for day in (3, 1, 2):
        draft = PostDraft.model_validate(story(title=f"Ngày {day}", scheduled_at=soon(day)))
        await bot.queue.add(draft, actor="test")
    headers = bearer(tokens["viewer"])
    first = await http.get(POSTS, params={"limit": 2}, headers=headers)
    rest = await http.get(POSTS, params={"limit": 2, "offset": 2}, headers=headers)
    titles = [p["title"] for p in first.json() + rest.json()]
    assert titles == ["Ngày 1", "Ngày 2", "Ngày 3"]


async def test_cancel_stops_the_deliveries(http: httpx.AsyncClient, tokens: dict[str, str]) -> None:
    headers = bearer(tokens["approver"])
    created = await http.post(POSTS, json=story(approve=True), headers=headers)
    post_id = created.json()["id"]
    cancelled = await http.post(f"{POSTS}/{post_id}/cancel", json={}, headers=headers)
    assert cancelled.status_code == 200, cancelled.text
    result = Cancelled.model_validate(cancelled.json())
    assert (result.cancelled, result.in_flight, result.post.status) == (2, 0, "cancelled")
    assert {d.status for d in result.post.delivery_list} == {"cancelled"}
    again = await http.post(f"{POSTS}/{post_id}/approve", headers=headers)
    assert_error(again, 422, "đã bị huỷ")
    for method, url in (
        ("POST", "/999999/cancel"),
        ("POST", "/999999/approve"),
        ("GET", "/999999"),
    ):
        assert_error(await http.request(method, POSTS + url, headers=headers), 404, "Không có bài")


# ---- the CLI's rules, in Vietnamese ---------------------------------------------------------

INVALID = [
    (story(kind="blog"), "kind", "Loại bài «blog» không có"),
    ({k: v for k, v in story().items() if k != "title"}, "title", "Thiếu tiêu đề"),
    (story(title=5), "title", "Tiêu đề không hợp lệ"),
    (story(title="  "), "title", "Tiêu đề không được để trống"),
    (story(body="x" * 20_001), "body", "tối đa 20000"),
    (story(scheduled_at=soon(-1)), "scheduled_at", "đã qua"),
    (story(scheduled_at="2030-01-01T07:30:00"), "scheduled_at", "múi giờ"),
    (story(scheduled_at="sáng mai"), "scheduled_at", "ISO 8601"),
    (story(channels=["telegram"]), "channels", "Kênh «telegram» không có"),
    (story(channels=[]), "channels", "ít nhất một kênh"),
    (story(clusters=["XYZ"]), "clusters", "Không có cụm thi đua mã «XYZ»"),
    (story(clusters=[]), "clusters", "danh sách trống"),
    (story(clusters=[" "]), "clusters", "không được để trống"),
    (story(kind="law", link="https://vbpl.vn/1"), None, "cần căn cứ"),
    (story(kind="event"), None, "cần ngày diễn ra"),
    (story(event_date="31/12/2026"), "event_date", "YYYY-MM-DD"),
    (story(link="ftp://vbpl.vn/1"), "link", "http://"),
    (story(images=["anh.jpg"]), "images", "đã tải lên qua bảng điều khiển"),
    (story(images=["/etc/hostname"]), "images", "đã tải lên qua bảng điều khiển"),
    (story(hashtags=["an toàn"]), "hashtags", "viết liền"),
    (story(category="khac"), "category", "nhóm nội dung «khac» không có"),
    (story(video="/tmp/a.mp4"), "video", "không có trường"),
    (story(approve="có"), "approve", "«approve» không hợp lệ"),
]


async def test_invalid_drafts_are_refused_with_the_field_in_vietnamese(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    headers = bearer(tokens["approver"])
    for body, field, fragment in INVALID:
        response = await http.post(POSTS, json=body, headers=headers)
        assert response.status_code == 422, (body, response.text)
        data = response.json()
        assert fragment.casefold() in data["error"].casefold(), (body, data)
        assert data["field"] == field, (body, data)
    assert await post_count(bot) == 0


async def test_invalid_query_parameters_are_refused(
    http: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    headers = bearer(tokens["viewer"])
    cases = [
        (POSTS, {"status": "bogus"}, "status", "Trạng thái «bogus» không có"),
        (POSTS, {"limit": "0"}, "limit", "lớn hơn hoặc bằng 1"),
        (POSTS, {"limit": "501"}, "limit", "nhỏ hơn hoặc bằng 500"),
        (POSTS, {"offset": "nhiều"}, "offset", "số nguyên"),
        (POSTS, {"stauts": "draft"}, "stauts", "không có"),
        ("/api/v1/deliveries", {"post_id": "x"}, "post_id", "Số bài phải là số nguyên"),
        ("/api/v1/deliveries", {"status": "gone"}, "status", "không có"),
    ]
    for url, params, field, fragment in cases:
        assert_error(await http.get(url, params=params, headers=headers), 422, fragment, field)


async def test_bodies_must_be_small_well_formed_json_objects(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str], draft_post: Post
) -> None:
    headers = bearer(tokens["approver"])
    as_json = headers | {"content-type": "application/json"}

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 1024 + 2):
            yield b" " * 1024

    big = b'{"title": "' + b"x" * MAX_BODY + b'"}'
    cases: list[tuple[bytes | AsyncIterator[bytes], dict[str, str], int, str]] = [
        (b'{"kind": "story",', as_json, 400, "dòng 1"),
        (b"[1, 2]", as_json, 400, "đối tượng JSON"),
        (b'{"title": NaN}', as_json, 400, "không phải JSON"),
        (b'{"title": "\xff"}', as_json, 400, "không phải JSON"),
        (b"[" * 100_000, as_json, 400, "không phải JSON"),
        (
            b"kind=story",
            headers | {"content-type": "application/x-www-form-urlencoded"},
            415,
            "JSON",
        ),
        (b'{"kind": "story"}', headers | {"content-type": "text/plain"}, 415, "JSON"),
        (b'{"kind": "story"}', headers, 415, "JSON"),
        (big, as_json, 413, "256 KB"),
        (chunks(), as_json, 413, "256 KB"),  # no Content-Length: counted while read
    ]
    for content, sent_headers, status, fragment in cases:
        response = await http.post(POSTS, content=content, headers=sent_headers)
        assert_error(response, status, fragment, None)
    assert await post_count(bot) == 1  # only the fixture's

    approve = f"{POSTS}/{draft_post.id}/approve"
    assert_error(await http.post(approve, json={"now": True}, headers=headers), 422, "«now»", "now")
    assert_error(await http.post(approve, data={"a": "1"}, headers=headers), 415, "JSON")
    assert (await http.post(approve, headers=headers)).status_code == 200  # no body at all


async def test_a_server_fault_is_answered_in_json_without_a_traceback(
    bot: App, http: httpx.AsyncClient, tokens: dict[str, str]
) -> None:
    async with bot.sessions.begin() as session:
        await session.execute(text("DROP TABLE audit_log"))  # every write audits: now it fails
    response = await http.post(POSTS, json=story(), headers=bearer(tokens["editor"]))
    assert_error(response, 500, "Lỗi máy chủ", None)
    assert "Traceback" not in response.text
    assert await post_count(bot) == 0


# ---- the document -------------------------------------------------------------------------------


def api_routes(console: Starlette) -> dict[tuple[str, str], str]:
    """(OpenAPI path, method) → permission, for every /api/v1 route but the document."""
    found: dict[tuple[str, str], str] = {}
    for route in console.routes:
        if isinstance(route, Route) and route.path.startswith("/api/v1/"):
            if route.path == OPENAPI_PATH:
                continue
            for method in sorted((route.methods or set()) - {"HEAD"}):
                permission = getattr(route.endpoint, "permission", "")
                found[(openapi_path(route.path), method.lower())] = permission
    return found


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            ref for value in node.values() for ref in refs_in(value)
        ]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []


async def test_the_document_describes_exactly_the_routes(
    console: Starlette, http: httpx.AsyncClient
) -> None:
    response = await http.get(OPENAPI_PATH)  # public: no token
    assert response.status_code == 200
    spec = response.json()
    documented = {
        (path, method): operation["x-permission"]
        for path, item in spec["paths"].items()
        for method, operation in item.items()
    }
    assert documented == api_routes(console)
    assert len(ENDPOINTS) == len(documented)

    assert re.fullmatch(r"3\.1\.\d+", spec["openapi"])
    assert spec["info"]["title"] and spec["info"]["version"]
    assert "chưa nhận tải ảnh lên" in spec["info"]["description"]
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    operation_ids = []
    for path, item in spec["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            operation_ids.append(operation["operationId"])
            assert operation["summary"] and operation["responses"]
            assert all(re.fullmatch(r"[1-5]\d\d", code) for code in operation["responses"])
            assert {"401", "403"} <= set(operation["responses"])
            in_path = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            assert in_path == names, path
    assert len(set(operation_ids)) == len(operation_ids)
    for ref in refs_in(spec):
        node = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]  # a KeyError here is a reference to nothing
        assert node


def test_the_request_model_asks_only_for_what_a_draft_has() -> None:
    assert set(PostCreate.model_fields) - {"approve"} <= set(PostDraft.model_fields)

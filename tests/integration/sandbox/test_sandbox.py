"""The platform sandbox over real HTTP: shapes, errors, faults, control API and viewer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from connectors.sandbox import (
    SANDBOX_PAGE_ID,
    SANDBOX_PAGE_TOKEN,
    SANDBOX_ZALO_ACCESS_TOKEN,
    SANDBOX_ZALO_APP_ID,
    SANDBOX_ZALO_APP_SECRET,
    SANDBOX_ZALO_REFRESH_TOKEN,
    Fault,
    SandboxState,
    create_app,
)
from connectors.sandbox.server import SandboxServer
from tests.integration.sandbox.helpers import fb_error

FEED = f"/v26.0/{SANDBOX_PAGE_ID}/feed"
PHOTOS = f"/v26.0/{SANDBOX_PAGE_ID}/photos"
LISTING = f"/v26.0/{SANDBOX_PAGE_ID}/published_posts"
AUTH = {"access_token": SANDBOX_PAGE_TOKEN}
ZALO = {"access_token": SANDBOX_ZALO_ACCESS_TOKEN}
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
NOON_VN = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


async def post_text(client: httpx.AsyncClient, text: str, **extra: str) -> httpx.Response:
    return await client.post(FEED, data={"message": text, **AUTH, **extra})


def article_body(title: str = "Luật Công đoàn 2024") -> dict[str, Any]:
    return {
        "type": "normal",
        "title": title,
        "description": "Những điểm mới",
        "cover": {"cover_type": "photo", "photo_url": "https://x.vn/c.jpg", "status": "show"},
        "body": [{"type": "text", "content": "Đoạn một"}],
        "status": "show",
    }


async def verified_article(client: httpx.AsyncClient) -> str:
    token = (await client.post("/v2.0/article/create", json=article_body(), headers=ZALO)).json()
    verify = {"token": token["data"]["token"]}
    first = await client.post("/v2.0/article/verify", json=verify, headers=ZALO)
    assert first.json() == {"error": -214, "message": "Article is being processed"}
    second = (await client.post("/v2.0/article/verify", json=verify, headers=ZALO)).json()
    assert second["error"] == 0
    return str(second["data"]["id"])


def broadcast_body(article_id: str) -> dict[str, Any]:
    element = {"media_type": "article", "attachment_id": article_id}
    payload = {"template_type": "media", "elements": [element]}
    return {
        "recipient": {"target": {"gender": "0", "ages": [2, 3]}},
        "message": {"attachment": {"type": "template", "payload": payload}},
    }


async def test_feed_post_form_json_and_query(client: httpx.AsyncClient, state: SandboxState):
    response = await post_text(client, "Chào mừng ngày 28/7", fields="id,permalink_url")
    body = response.json()
    assert response.status_code == 200
    assert re.fullmatch(rf"{SANDBOX_PAGE_ID}_\d+", body["id"])
    assert body["post_supports_client_mutation_id"] is True
    number = body["id"].split("_")[1]
    assert body["permalink_url"] == f"https://www.facebook.com/{SANDBOX_PAGE_ID}/posts/{number}"
    as_json = await client.post(FEED, json={"message": "JSON", "link": "https://cd.vn/a", **AUTH})
    as_query = await client.post(FEED, params={"message": "query", **AUTH})
    assert as_json.status_code == as_query.status_code == 200
    assert [m["text"] for m in state.messages()] == ["Chào mừng ngày 28/7", "JSON", "query"]
    assert state.messages()[0]["channel"] == "facebook_page"
    assert state.fb_posts[1].link == "https://cd.vn/a"


async def test_feed_empty_post_is_197(client: httpx.AsyncClient):
    response = await client.post(FEED, data=AUTH)
    error = fb_error(response)
    assert (response.status_code, error["code"]) == (400, 197)
    assert error["message"] == "(#197) The post is empty. Please enter a message to share."


async def test_token_errors(client: httpx.AsyncClient, state: SandboxState):
    missing = fb_error(await client.post(FEED, data={"message": "x"}))
    assert (missing["code"], missing["error_subcode"], missing["type"]) == (
        190,
        467,
        "OAuthException",
    )
    bearer = {"Authorization": f"Bearer {SANDBOX_PAGE_TOKEN}"}
    assert (await client.post(FEED, data={"message": "x"}, headers=bearer)).status_code == 200
    state.fb_tokens[SANDBOX_PAGE_TOKEN] = "revoked"
    revoked = fb_error(await post_text(client, "y"))
    assert (revoked["code"], revoked["error_subcode"]) == (190, 460)
    assert "changed their password" in revoked["message"]
    state.fb_tokens[SANDBOX_PAGE_TOKEN] = "expired"
    assert fb_error(await post_text(client, "y"))["error_subcode"] == 463
    assert len(state.fb_posts) == 1


async def test_appsecret_proof_forms(client: httpx.AsyncClient, state: SandboxState):
    state.fb_app_secret = "app-secret"
    key, token = b"app-secret", SANDBOX_PAGE_TOKEN

    def timed(moment: int) -> dict[str, str]:
        proof = hmac.new(key, f"{token}|{moment}".encode(), hashlib.sha256).hexdigest()
        return {"appsecret_proof": proof, "appsecret_time": str(moment)}

    legacy = {"appsecret_proof": hmac.new(key, token.encode(), hashlib.sha256).hexdigest()}
    assert (await post_text(client, "a", **timed(int(time.time())))).status_code == 200
    assert (await post_text(client, "b", **legacy)).status_code == 200
    for bad in ({}, timed(int(time.time()) - 3600), {"appsecret_proof": "0" * 64}):
        error = fb_error(await post_text(client, "c", **bad))
        assert (error["code"], error["type"]) == (100, "GraphMethodException")
        assert error["message"] == "Invalid appsecret_proof provided in the API argument"
    assert len(state.fb_posts) == 2


async def test_photos_unpublished_and_attached_media(
    client: httpx.AsyncClient, state: SandboxState
):
    files = {"source": ("a.png", PNG, "image/png")}
    single = await client.post(PHOTOS, data={"caption": "Ảnh", **AUTH}, files=files)
    assert single.json().keys() == {"id", "post_id"}
    ids = []
    for _ in range(2):
        hidden = await client.post(PHOTOS, data={"published": "false", **AUTH}, files=files)
        assert hidden.json().keys() == {"id"}
        ids.append(hidden.json()["id"])
    form = {f"attached_media[{i}]": json.dumps({"media_fbid": m}) for i, m in enumerate(ids)}
    album = await client.post(FEED, data={"message": "Album", **form, **AUTH})
    assert album.status_code == 200
    assert state.fb_posts[-1].photo_ids == ids
    reused = await client.post(FEED, json={"attached_media": [{"media_fbid": ids[0]}], **AUTH})
    assert fb_error(reused)["code"] == 100
    for blob in (b"%PDF-1.4 not an image", PNG + b"\x00" * (4 * 1024 * 1024)):
        rejected = await client.post(PHOTOS, data=AUTH, files={"source": ("x", blob, "image/png")})
        error = fb_error(rejected)
        assert (error["code"], error["error_subcode"]) == (100, 1366046)
        assert error["error_user_msg"].startswith("Your photos couldn't be uploaded.")
    assert [m["text"] for m in state.messages()] == ["Ảnh", "Album"]


async def test_published_posts_since_limit_and_paging(
    client: httpx.AsyncClient, state: SandboxState
):
    start = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    for hour in range(3):
        state.set_now(start + timedelta(hours=hour))
        await post_text(client, f"bài {hour}")
    state.set_now(None)
    hidden = await client.post(FEED, data={"message": "nháp", "published": "false", **AUTH})
    params = {"fields": "id,message,created_time,permalink_url,is_published", "limit": "2"}
    page = (await client.get(LISTING, params={**params, **AUTH})).json()
    assert [p["message"] for p in page["data"]] == ["bài 2", "bài 1"]
    assert page["data"][0]["created_time"] == "2026-11-01T10:00:00+0000"
    assert page["data"][0]["is_published"] is True
    assert {"before", "after"} <= page["paging"]["cursors"].keys()
    rest = (await client.get(page["paging"]["next"])).json()
    assert [p["message"] for p in rest["data"]] == ["bài 0"]
    since = str(int((start + timedelta(minutes=30)).timestamp()))
    recent = (await client.get(LISTING, params={"since": since, **AUTH})).json()
    assert [p["message"] for p in recent["data"]] == ["bài 2", "bài 1"]
    assert hidden.json()["id"] not in {p["id"] for p in recent["data"]}


async def test_read_post_and_two_phase_publish(client: httpx.AsyncClient, state: SandboxState):
    draft = await client.post(FEED, data={"message": "nháp", "published": "false", **AUTH})
    post_id = draft.json()["id"]
    assert state.messages() == []
    for _ in range(2):
        done = await client.post(f"/v26.0/{post_id}", data={"is_published": "true", **AUTH})
        assert done.json() == {"success": True}
    read = await client.get(f"/v26.0/{post_id}", params={"fields": "id,is_published", **AUTH})
    assert read.json() == {"id": post_id, "is_published": True}
    assert len(state.messages()) == 1
    bad_field = fb_error(await client.get(f"/v26.0/{post_id}", params={"fields": "x", **AUTH}))
    assert bad_field["message"].startswith("(#100) Tried accessing nonexisting field (x)")
    missing = fb_error(await client.get(f"/v26.0/{SANDBOX_PAGE_ID}_9", params=AUTH))
    assert (missing["code"], missing["error_subcode"]) == (100, 33)


async def test_usage_headers_and_budget(client: httpx.AsyncClient, state: SandboxState):
    response = await post_text(client, "x")
    app_usage = json.loads(response.headers["x-app-usage"])
    assert app_usage.keys() == {"call_count", "total_time", "total_cputime"}
    usage = json.loads(response.headers["x-business-use-case-usage"])[SANDBOX_PAGE_ID][0]
    assert usage["type"] == "pages"
    assert usage["estimated_time_to_regain_access"] == 0
    state.fb_call_budget = 2
    await post_text(client, "y")
    throttled = await post_text(client, "z")
    assert fb_error(throttled)["code"] == 80001
    usage = json.loads(throttled.headers["x-business-use-case-usage"])[SANDBOX_PAGE_ID][0]
    assert usage["estimated_time_to_regain_access"] >= 1
    assert len(state.fb_posts) == 2


async def test_facebook_faults(client: httpx.AsyncClient, state: SandboxState):
    state.push_fault("fb.feed", Fault("commit_then_error"))
    lost = await post_text(client, "một")
    assert lost.status_code == 500
    assert fb_error(lost)["code"] == 2
    assert fb_error(lost)["message"] == (
        "An unexpected error has occurred. Please retry your request later."
    )
    assert len(state.fb_posts) == 1
    state.push_fault("fb.feed", Fault.duplicate())
    assert (await post_text(client, "hai")).status_code == 200
    assert fb_error(await post_text(client, "hai"))["code"] == 506
    state.push_fault("*", Fault("http_status", http_status=502, times=2))
    for _ in range(2):
        bare = await post_text(client, "ba")
        assert bare.status_code == 502
        assert "json" not in bare.headers["content-type"]
    state.push_fault("fb.feed", Fault.throttle(minutes=7))
    throttled = await post_text(client, "bốn")
    usage = json.loads(throttled.headers["x-business-use-case-usage"])[SANDBOX_PAGE_ID][0]
    assert (fb_error(throttled)["code"], usage["estimated_time_to_regain_access"]) == (80001, 7)
    state.push_fault("fb.feed", Fault.policy_block())
    assert fb_error(await post_text(client, "năm"))["error_subcode"] == 1390008
    state.push_fault("fb.feed", Fault("delay", seconds=0.01))
    assert (await post_text(client, "sáu")).status_code == 200
    state.push_fault("fb.feed", Fault("hang_no_commit", seconds=5))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(post_text(client, "bảy"), timeout=0.1)
    assert [p.message for p in state.fb_posts] == ["một", "hai", "sáu"]
    assert state.requests[-1]["outcome"] == "cancelled"
    logged = json.dumps(state.requests, default=str)
    assert SANDBOX_PAGE_TOKEN not in logged


@pytest.mark.parametrize(
    ("fault", "code", "subcode"),
    [
        (Fault.token_revoked(), 190, 460),
        (Fault.photo_rejected(), 100, 1366046),
        (Fault.link_scrape_failed(), 1609005, None),
        (Fault.policy_block(), 368, 1390008),
    ],
)
async def test_named_facebook_faults(
    client: httpx.AsyncClient, state: SandboxState, fault: Fault, code: int, subcode: int | None
):
    state.push_fault("fb.feed", fault)
    error = fb_error(await post_text(client, "x"))
    assert (error["code"], error.get("error_subcode")) == (code, subcode)
    assert state.fb_posts == []


async def test_random_faults_are_reproducible(client: httpx.AsyncClient, state: SandboxState):
    outcomes = []
    for _ in range(2):
        state.set_random_faults("fb.feed", {"error": 0.5}, seed=7)
        outcomes.append([(await post_text(client, "r")).status_code for _ in range(8)])
    assert outcomes[0] == outcomes[1]
    assert {200, 500} == set(outcomes[0])


async def test_zalo_group_message(client: httpx.AsyncClient, state: SandboxState):
    body = {"recipient": {"group_id": "g1"}, "message": {"text": "Họp cụm thi đua"}}
    response = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    data = response.json()
    assert (data["error"], data["message"]) == (0, "Success")
    assert re.fullmatch(r"[0-9a-f]{20}", data["data"]["message_id"])
    assert data["data"]["group_id"] == "g1"
    assert int(response.headers["X-RateLimit-Remain"]) < int(response.headers["X-RateLimit-Limit"])
    image = {
        "type": "template",
        "payload": {
            "template_type": "media",
            "elements": [{"media_type": "image", "url": "https://x.vn/a.png"}],
        },
    }
    with_image = {"recipient": {"group_id": "g1"}, "message": {"text": "Ảnh", "attachment": image}}
    sent = await client.post("/v3.0/oa/group/message", json=with_image, headers=ZALO)
    assert sent.json()["error"] == 0
    state.add_group("g2", "Cụm 2", enabled=False)
    body["recipient"] = {"group_id": "g2"}
    disabled = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    assert disabled.json() == {"error": -237, "message": "The group is disabled"}
    state.auto_register = False
    body["recipient"] = {"group_id": "g3"}
    unknown = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    assert unknown.json() == {"error": -403, "message": "OA is not in group"}
    too_long = {"recipient": {"group_id": "g1"}, "message": {"text": "x" * 2001}}
    long_reply = await client.post("/v3.0/oa/group/message", json=too_long, headers=ZALO)
    assert long_reply.json() == {"error": -201, "message": "text is invalid!"}
    assert [m["target"] for m in state.messages()] == ["g1", "g1"]
    assert state.zalo_groups["g1"].name == "g1"


async def test_zalo_tokens_and_rate_limit(client: httpx.AsyncClient, state: SandboxState):
    body = {"recipient": {"group_id": "g1"}, "message": {"text": "x"}}
    missing = await client.post("/v3.0/oa/group/message", json=body)
    assert (missing.status_code, missing.json()["error"]) == (200, -216)
    state.zalo_access_tokens[SANDBOX_ZALO_ACCESS_TOKEN] = state.now() - timedelta(seconds=1)
    expired = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    assert expired.json() == {"error": -220, "message": "access_token is expired or removed"}
    state.zalo_access_tokens[SANDBOX_ZALO_ACCESS_TOKEN] = None
    state.zalo_rate_per_minute = 3
    replies = [await client.post("/v3.0/oa/group/message", json=body, headers=ZALO) for _ in "ab"]
    assert [r.json()["error"] for r in replies] == [0, -32]
    assert replies[1].headers["X-RateLimit-Remain"] == "0"
    assert len(state.messages()) == 1


async def test_zalo_cs_window_with_injected_clock(client: httpx.AsyncClient, state: SandboxState):
    state.set_now(NOON_VN)
    state.add_user("u1", "Chị Lan", last_interaction=NOON_VN - timedelta(days=6))
    state.add_user("u2", "Anh Nam", last_interaction=NOON_VN - timedelta(days=8))
    body = {"recipient": {"user_id": "u1"}, "message": {"text": "Nhắc lịch họp"}}
    sent = (await client.post("/v3.0/oa/message/cs", json=body, headers=ZALO)).json()
    assert sent["data"]["quota"] == {"quota_type": "reply", "remain": "7", "total": "8"}
    assert sent["data"]["user_id"] == "u1"
    body["recipient"] = {"user_id": "u2"}
    closed = (await client.post("/v3.0/oa/message/cs", json=body, headers=ZALO)).json()
    assert closed == {
        "error": -230,
        "message": "User has not interacted with the OA in the past 7 days",
    }
    quota = await client.post("/v3.0/oa/quota/message", json={"user_id": "u2"}, headers=ZALO)
    assert quota.json()["data"]["cs_reply"] == {"remain": 0, "total": 8}
    state.auto_register = False
    body["recipient"] = {"user_id": "nobody"}
    unknown = (await client.post("/v3.0/oa/message/cs", json=body, headers=ZALO)).json()
    assert unknown["error"] == -230
    history = await client.get(
        "/v2.0/oa/conversation",
        params={"data": json.dumps({"user_id": "u1", "offset": 0, "count": 10})},
        headers=ZALO,
    )
    [item] = history.json()["data"]
    assert (item["src"], item["message"], item["time"]) == (
        0,
        "Nhắc lịch họp",
        int(NOON_VN.timestamp() * 1000),
    )
    too_many = json.dumps({"user_id": "u1", "offset": 0, "count": 11})
    over = await client.get("/v2.0/oa/conversation", params={"data": too_many}, headers=ZALO)
    assert over.json()["error"] == -210


async def test_zalo_articles_broadcast_and_night(client: httpx.AsyncClient, state: SandboxState):
    state.set_now(NOON_VN)
    article_id = await verified_article(client)
    sent = await client.post("/v2.0/oa/message", json=broadcast_body(article_id), headers=ZALO)
    assert sent.json()["error"] == 0
    assert re.fullmatch(r"[0-9a-f]{20}", sent.json()["data"]["message_id"])
    assert state.messages()[-1]["target"] == "followers"
    unknown = await client.post("/v2.0/oa/message", json=broadcast_body("nope"), headers=ZALO)
    assert unknown.json()["error"] == -201
    state.set_now(datetime(2026, 11, 30, 16, 30, tzinfo=UTC))
    night = await client.post("/v2.0/oa/message", json=broadcast_body(article_id), headers=ZALO)
    assert night.json() == {
        "error": -234,
        "message": "This message cannot be sent at night (10:00PM - 6:00AM)",
    }
    state.enforce_night_hours = False
    late = await client.post("/v2.0/oa/message", json=broadcast_body(article_id), headers=ZALO)
    assert late.json()["error"] == 0
    bad = article_body("x" * 151)
    too_long = await client.post("/v2.0/article/create", json=bad, headers=ZALO)
    assert too_long.json() == {"error": -201, "message": "title is invalid!"}
    assert len(state.zalo_broadcasts) == 2


async def test_zalo_group_read_back(client: httpx.AsyncClient, state: SandboxState):
    state.add_group("g1", "Cụm 1")
    for text in ("một", "hai"):
        body = {"recipient": {"group_id": "g1"}, "message": {"text": text}}
        await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    query = {"group_id": "g1", "offset": "0", "count": "10"}
    items = (await client.get("/v3.0/oa/group/conversation", params=query, headers=ZALO)).json()
    assert [(i["message"], i["src"], i["group_id"]) for i in items["data"]] == [
        ("hai", 0, "g1"),
        ("một", 0, "g1"),
    ]
    groups = await client.get("/v3.0/oa/group/getgroupsofoa", headers=ZALO)
    assert groups.json()["data"]["groups"][0]["status"] == "enabled"
    info = await client.get("/v3.0/oa/group/getgroup", params={"group_id": "g1"}, headers=ZALO)
    assert info.json()["data"]["group_info"]["name"] == "Cụm 1"


async def test_zalo_refresh_rotation_and_pkce(client: httpx.AsyncClient, state: SandboxState):
    headers = {"secret_key": SANDBOX_ZALO_APP_SECRET}
    form = {
        "refresh_token": SANDBOX_ZALO_REFRESH_TOKEN,
        "app_id": SANDBOX_ZALO_APP_ID,
        "grant_type": "refresh_token",
    }
    first = (await client.post("/v4/oa/access_token", data=form, headers=headers)).json()
    assert first.keys() == {"access_token", "refresh_token", "expires_in"}
    assert first["expires_in"] == "90000"
    reused = (await client.post("/v4/oa/access_token", data=form, headers=headers)).json()
    assert reused["error"] == -14014
    wrong_secret = await client.post("/v4/oa/access_token", data=form, headers={"secret_key": "x"})
    assert wrong_secret.json()["error"] == -14008
    body = {"recipient": {"group_id": "g1"}, "message": {"text": "x"}}
    new_token = {"access_token": first["access_token"]}
    sent = await client.post("/v3.0/oa/group/message", json=body, headers=new_token)
    assert sent.json()["error"] == 0
    state.register_auth_code("code-1", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
    exchange = {"code": "code-1", "app_id": SANDBOX_ZALO_APP_ID, "grant_type": "authorization_code"}
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    granted = await client.post(
        "/v4/oa/access_token", data={**exchange, "code_verifier": verifier}, headers=headers
    )
    assert "access_token" in granted.json()
    again = await client.post(
        "/v4/oa/access_token", data={**exchange, "code_verifier": verifier}, headers=headers
    )
    assert again.json()["error"] == -14015
    refreshes = [r for r in state.requests if r["route"] == "zalo.access_token"]
    assert len(refreshes) == 5
    assert SANDBOX_ZALO_REFRESH_TOKEN not in json.dumps(state.requests, default=str)


async def test_zalo_faults(client: httpx.AsyncClient, state: SandboxState):
    body = {"recipient": {"group_id": "g1"}, "message": {"text": "x"}}
    state.push_fault("zalo.group_message", Fault("commit_then_error"))
    lost = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    assert (lost.status_code, lost.text) == (500, "Internal Server Error")
    state.push_fault("zalo.group_message", Fault.throttle())
    throttled = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    assert throttled.json() == {"error": -32, "message": "Your application reached limit call api"}
    state.push_fault("zalo.group_message", Fault("error", code=-200))
    failed = await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    assert failed.json() == {"error": -200, "message": "Send message failed"}
    assert len(state.messages()) == 1


async def test_control_api(client: httpx.AsyncClient, state: SandboxState):
    fault = {"route": "fb.feed", "fault": {"kind": "error", "code": 368, "subcode": 1390008}}
    assert (await client.post("/_sandbox/faults", json=fault)).json() == {"ok": True}
    assert fb_error(await post_text(client, "x"))["code"] == 368
    preset = {"route": "fb.feed", "fault": {"preset": "token_revoked"}}
    assert (await client.post("/_sandbox/faults", json=preset)).status_code == 200
    assert fb_error(await post_text(client, "x"))["error_subcode"] == 460
    bad = await client.post("/_sandbox/faults", json={"route": "nope", "fault": {"kind": "x"}})
    assert bad.status_code == 400
    await client.post("/_sandbox/groups", json={"group_id": "g9", "name": "Cụm 9"})
    await client.post("/_sandbox/users", json={"user_id": "u9", "name": "Chị Hoa"})
    await client.post("/_sandbox/clock", json={"now": "2026-11-30T05:00:00+00:00"})
    await client.post("/_sandbox/config", json={"auto_register": False})
    await post_text(client, "đã đăng")
    snapshot = (await client.get("/_sandbox/state")).json()
    assert snapshot["now"] == "2026-11-30T05:00:00+00:00"
    assert snapshot["zalo_groups"][0]["name"] == "Cụm 9"
    assert snapshot["zalo_users"][0]["display_name"] == "Chị Hoa"
    assert [m["text"] for m in snapshot["messages"]] == ["đã đăng"]
    assert snapshot["request_count"] == 3
    assert state.auto_register is False
    await client.post("/_sandbox/clock", json={"now": None})
    assert (await client.post("/_sandbox/reset")).json() == {"ok": True}
    assert state.messages() == []
    assert state.requests == []


async def test_viewer_escapes_and_fits_a_phone(client: httpx.AsyncClient, state: SandboxState):
    await post_text(client, "<script>alert(1)</script> Đại hội")
    state.add_group("g1", "Cụm <b>1</b>")
    body = {"recipient": {"group_id": "g1"}, "message": {"text": "Chào <i>cả nhóm</i>"}}
    await client.post("/v3.0/oa/group/message", json=body, headers=ZALO)
    page = (await client.get("/")).text
    assert "<title>Hộp cát congdoan-bot</title>" in page
    assert 'name="viewport"' in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Đại hội" in page
    assert "<script>" not in page
    assert "Nhóm Zalo: Cụm &lt;b&gt;1&lt;/b&gt;" in page
    assert "Chào &lt;i&gt;cả nhóm&lt;/i&gt;" in page
    for heading in ("Trang Facebook", "Tin nhắn Zalo cá nhân", "Bài viết phát đến người quan tâm"):
        assert heading in page
    assert "http://" not in page.split("<body>")[0]


def test_real_server_commit_then_hang() -> None:
    state = SandboxState()
    state.push_fault("fb.feed", Fault("commit_then_hang", seconds=2))
    with SandboxServer(state) as server:
        assert server.url is not None
        with httpx.Client(base_url=server.url, timeout=0.3) as http:
            with pytest.raises(httpx.ReadTimeout):
                http.post(FEED, data={"message": "chấp nhận rồi mất", **AUTH})
            assert len(state.fb_posts) == 1
            listing = http.get(LISTING, params=AUTH).json()
            assert [p["message"] for p in listing["data"]] == ["chấp nhận rồi mất"]
    assert server.url is None


async def test_consent_page_redirects_with_a_code_the_token_endpoint_takes() -> None:
    """The sandbox's consent page lets `cdbot zalo connect` be rehearsed end to end."""
    from connectors.sandbox import SANDBOX_ZALO_APP_ID
    from connectors.tokens import ZaloOAuthClient, new_pkce

    state = SandboxState()
    transport = httpx.ASGITransport(app=create_app(state))
    verifier, challenge = new_pkce()
    async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as browser:
        answer = await browser.get(
            "/v4/oa/permission",
            params={
                "app_id": SANDBOX_ZALO_APP_ID,
                "redirect_uri": "https://office.example/zalo",
                "code_challenge": challenge,
                "state": "s1",
            },
        )
    assert answer.status_code == 302
    back = httpx.URL(answer.headers["location"])
    assert back.params["state"] == "s1"
    oauth = ZaloOAuthClient(
        oauth_url="http://sandbox",
        app_id=SANDBOX_ZALO_APP_ID,
        app_secret=SANDBOX_ZALO_APP_SECRET,
        transport=transport,
    )
    async with oauth:
        pair = await oauth.exchange_code(back.params["code"], verifier)
    assert pair.access_token and pair.refresh_token

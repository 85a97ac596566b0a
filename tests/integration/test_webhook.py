"""Webhooks: the reference's Zalo vector, forgeries, stale and repeated events, Facebook."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import make_sessionmaker
from bot.db.models import Cluster, ClusterAdmin, PlatformEvent
from bot.webhook import Refused, create_webhook_app, verify_zalo, zalo_signature

APP_ID = "1234567890123456789"
OA_SECRET = "OA_SECRET_TEST"
VECTOR_BODY = (
    b'{"app_id":"1234567890123456789","sender":{"id":"246845883529197922"},'
    b'"recipient":{"id":"388613280878808645"},"event_name":"user_send_text",'
    b'"message":{"text":"xin chao","msg_id":"96d3cdf3af150460909"},"timestamp":"1700000000000"}'
)
VECTOR_MAC = "22ed1f608adfbd2f322623e87773da2d3dc39b4e6628ba9edafbfbfa081fa58d"
VECTOR_TIME = datetime.fromtimestamp(1_700_000_000, UTC)
FB_SECRET = "fb-app-secret"


def test_the_reference_vector() -> None:
    assert zalo_signature(APP_ID, VECTOR_BODY, "1700000000000", OA_SECRET) == VECTOR_MAC
    for header in (f"mac={VECTOR_MAC}", VECTOR_MAC, f"mac={VECTOR_MAC.upper()}"):
        event = verify_zalo(
            VECTOR_BODY, header, app_id=APP_ID, oa_secret=OA_SECRET, now=VECTOR_TIME
        )
        assert (event.event_id, event.user_id) == ("96d3cdf3af150460909", "246845883529197922")


@pytest.mark.parametrize(
    ("body", "header", "secret", "now", "why"),
    [
        (
            VECTOR_BODY.replace(b"xin chao", b"xin chaO"),
            VECTOR_MAC,
            OA_SECRET,
            VECTOR_TIME,
            "tampered",
        ),
        (VECTOR_BODY, VECTOR_MAC, OA_SECRET, VECTOR_TIME + timedelta(hours=1), "stale"),
        (VECTOR_BODY, VECTOR_MAC, None, VECTOR_TIME, "no secret: fail closed"),
        (VECTOR_BODY, VECTOR_MAC, "APP_SECRET_INSTEAD", VECTOR_TIME, "wrong secret"),
        (VECTOR_BODY, None, OA_SECRET, VECTOR_TIME, "no signature"),
        (b"not json", VECTOR_MAC, OA_SECRET, VECTOR_TIME, "malformed"),
    ],
)
def test_forgeries_are_refused(
    body: bytes, header: str | None, secret: str | None, now: datetime, why: str
) -> None:
    with pytest.raises(Refused):
        verify_zalo(body, header, app_id=APP_ID, oa_secret=secret, now=now)


def signed_zalo(payload: Mapping[str, object], *, secret: str = OA_SECRET) -> tuple[bytes, str]:
    raw = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    return raw, "mac=" + zalo_signature(APP_ID, raw, str(payload["timestamp"]), secret)


def fb_signed(raw: bytes, secret: str = FB_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


@pytest.fixture
def client(engine: AsyncEngine) -> httpx.AsyncClient:
    app = create_webhook_app(
        make_sessionmaker(engine),
        zalo_app_id=APP_ID,
        zalo_oa_secret=OA_SECRET,
        facebook_app_secret=FB_SECRET,
        facebook_verify_token="verify-me",
    )
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bot")


async def count_events(engine: AsyncEngine) -> int:
    async with make_sessionmaker(engine)() as session:
        return int(await session.scalar(select(func.count()).select_from(PlatformEvent)) or 0)


async def test_an_admin_message_opens_the_window_once(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    async with make_sessionmaker(engine).begin() as session:
        cluster = Cluster(code="C1", name="Cụm 1")
        session.add(cluster)
        await session.flush()
        session.add(ClusterAdmin(cluster_id=cluster.id, name="An", zalo_user_id="777"))
    stamp = str(int(datetime.now(UTC).timestamp() * 1000))
    payload = {
        "app_id": APP_ID,
        "sender": {"id": "777"},
        "event_name": "user_send_text",
        "message": {"text": "đã nhận", "msg_id": "m-1"},
        "timestamp": stamp,
    }
    raw, mac = signed_zalo(payload)
    first = await client.post("/webhooks/zalo", content=raw, headers={"X-ZEvent-Signature": mac})
    again = await client.post("/webhooks/zalo", content=raw, headers={"X-ZEvent-Signature": mac})
    assert first.json() == {"ok": True, "duplicate": False}
    assert again.json() == {"ok": True, "duplicate": True}
    assert await count_events(engine) == 1
    async with make_sessionmaker(engine)() as session:
        seen = await session.scalar(select(ClusterAdmin.last_interaction_at))
    assert seen is not None and abs(seen - datetime.now(UTC)) < timedelta(minutes=1)


async def test_a_hundred_forged_and_a_hundred_genuine(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rng = random.Random(11)
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    genuine = forged = 0
    for n in range(200):
        payload = {
            "app_id": APP_ID,
            "event_name": "follow",
            "follower": {"id": str(10_000 + n)},
            "timestamp": str(now_ms - n),
        }
        raw, mac = signed_zalo(payload)
        if n % 2:
            trick = rng.choice(["tamper", "secret", "stale", "strip", "garbage"])
            if trick == "tamper":
                raw = raw.replace(b"follow", b"unfollow")
            elif trick == "secret":
                raw, mac = signed_zalo(payload, secret="guess")
            elif trick == "stale":
                payload["timestamp"] = str(now_ms - 3_600_000)
                raw, mac = signed_zalo(payload)
            elif trick == "strip":
                mac = ""
            else:
                mac = "mac=" + "0" * 64
            response = await client.post(
                "/webhooks/zalo", content=raw, headers={"X-ZEvent-Signature": mac}
            )
            forged += response.status_code == 403
        else:
            response = await client.post(
                "/webhooks/zalo", content=raw, headers={"X-ZEvent-Signature": mac}
            )
            genuine += response.status_code == 200
    assert (genuine, forged) == (100, 100)
    assert await count_events(engine) == 100


async def test_facebook_handshake_and_signature(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    ok = await client.get(
        "/webhooks/facebook",
        params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "42"},
    )
    assert (ok.status_code, ok.text) == (200, "42")
    bad = await client.get(
        "/webhooks/facebook",
        params={"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "42"},
    )
    assert bad.status_code == 403
    raw = b'{"object":"page","entry":[]}'
    accepted = await client.post(
        "/webhooks/facebook", content=raw, headers={"X-Hub-Signature-256": fb_signed(raw)}
    )
    forged = await client.post(
        "/webhooks/facebook", content=raw, headers={"X-Hub-Signature-256": fb_signed(raw, "x")}
    )
    assert (accepted.status_code, forged.status_code) == (200, 403)
    assert await count_events(engine) == 1


async def test_without_secrets_everything_is_refused(engine: AsyncEngine) -> None:
    app = create_webhook_app(
        make_sessionmaker(engine),
        zalo_app_id=None,
        zalo_oa_secret=None,
        facebook_app_secret=None,
        facebook_verify_token=None,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://bot"
    ) as bare:
        zalo = await bare.post(
            "/webhooks/zalo", content=VECTOR_BODY, headers={"X-ZEvent-Signature": VECTOR_MAC}
        )
        raw = b"{}"
        facebook = await bare.post(
            "/webhooks/facebook", content=raw, headers={"X-Hub-Signature-256": fb_signed(raw)}
        )
    assert (zalo.status_code, facebook.status_code) == (403, 403)
    assert await count_events(engine) == 0


async def test_the_sandbox_signs_events_the_bot_accepts(engine: AsyncEngine) -> None:
    """A signed event from the sandbox, over real HTTP, opens an admin's 7-day window."""
    import uvicorn

    from connectors.sandbox import SANDBOX_ZALO_APP_ID, SandboxState
    from connectors.sandbox.server import SandboxServer

    sessions = make_sessionmaker(engine)
    async with sessions.begin() as session:
        cluster = Cluster(code="C9", name="Cụm 9")
        session.add(cluster)
        await session.flush()
        session.add(ClusterAdmin(cluster_id=cluster.id, name="Bình", zalo_user_id="888"))
    bot_app = create_webhook_app(
        sessions,
        zalo_app_id=SANDBOX_ZALO_APP_ID,
        zalo_oa_secret="oa-secret-key",
        facebook_app_secret=None,
        facebook_verify_token=None,
    )
    server = uvicorn.Server(uvicorn.Config(bot_app, host="127.0.0.1", port=0, lifespan="off"))
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers only this flag
            await asyncio.sleep(0.05)
        port = server.servers[0].sockets[0].getsockname()[1]
        with SandboxServer(SandboxState()) as sandbox:
            async with httpx.AsyncClient(base_url=str(sandbox.url)) as control:
                for secret, expected in (("oa-secret-key", True), ("wrong-key", False)):
                    answer = await control.post(
                        "/_sandbox/webhook",
                        json={
                            "url": f"http://127.0.0.1:{port}/webhooks/zalo",
                            "event_name": "user_send_text",
                            "user_id": "888",
                            "text": "Đã đọc thông báo",
                            "oa_secret": secret,
                        },
                    )
                    assert answer.json()["ok"] is expected
    finally:
        server.should_exit = True
        await serving
    async with sessions() as session:
        assert await session.scalar(select(ClusterAdmin.last_interaction_at)) is not None
    assert await count_events(engine) == 1


async def test_a_hundred_forged_and_a_hundred_genuine_facebook_events(
    client: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    rng = random.Random(12)
    now_s = int(datetime.now(UTC).timestamp())
    genuine = forged = 0
    for n in range(200):
        payload = {"object": "page", "entry": [{"id": "1", "time": now_s - n, "changes": [n]}]}
        raw = json.dumps(payload).encode()
        signature = fb_signed(raw)
        if n % 2:
            trick = rng.choice(["tamper", "secret", "stale", "strip", "garbage"])
            if trick == "tamper":
                raw = raw.replace(b'"page"', b'"user"')
            elif trick == "secret":
                signature = fb_signed(raw, "guess")
            elif trick == "stale":  # validly signed, but two days old: a replay
                payload["entry"][0]["time"] = now_s - 2 * 86_400  # type: ignore[index]
                raw = json.dumps(payload).encode()
                signature = fb_signed(raw)
            elif trick == "strip":
                signature = ""
            else:
                signature = "sha256=" + "0" * 64
            response = await client.post(
                "/webhooks/facebook", content=raw, headers={"X-Hub-Signature-256": signature}
            )
            forged += response.status_code == 403
        else:
            response = await client.post(
                "/webhooks/facebook", content=raw, headers={"X-Hub-Signature-256": signature}
            )
            genuine += response.status_code == 200
    assert (genuine, forged) == (100, 100)
    assert await count_events(engine) == 100

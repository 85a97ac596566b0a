"""Webhooks from Zalo and Facebook: verified, deduplicated, recorded.

Both fail closed: without the secret that signs them, every event is refused. A Zalo
event from a cluster admin (a message, a follow) opens the 7-day window in which the
OA may write to that person, so it updates `cluster_admins.last_interaction_at`.

Zalo: ``X-ZEvent-Signature: mac=<hex>``, hex = SHA-256(app_id + raw body + timestamp +
OA secret key); plain SHA-256, not HMAC; the timestamp (epoch ms) is read from the body.
Facebook: ``X-Hub-Signature-256: sha256=<hex>``, HMAC-SHA256 of the raw body keyed by the
app secret, and a GET handshake echoing ``hub.challenge`` when ``hub.verify_token`` matches.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.db.models import ClusterAdmin, PlatformEvent

log = logging.getLogger(__name__)

MAX_AGE = timedelta(minutes=10)
# Meta retries a webhook it could not deliver for up to 36 hours; older is a replay.
FACEBOOK_MAX_AGE = timedelta(hours=36)
MAX_BODY = 256 * 1024
# Events in which a user reaches out to the OA (the 7-day window opens).
INTERACTIONS = ("user_send_", "follow", "user_submit_info", "user_click_chatnow")


class Refused(Exception):
    """The request is not a genuine, fresh event."""


@dataclass(frozen=True)
class ZaloEvent:
    """A verified platform event (the Facebook ones reuse this shape)."""

    event_id: str
    name: str
    user_id: str | None
    occurred_at: datetime
    payload: dict[str, Any]


def zalo_signature(app_id: str, raw_body: bytes, timestamp: str, oa_secret: str) -> str:
    """The hex digest Zalo sends in X-ZEvent-Signature (after the optional 'mac=')."""
    data = app_id.encode() + raw_body + timestamp.encode() + oa_secret.encode()
    return hashlib.sha256(data).hexdigest()


def verify_zalo(
    raw_body: bytes,
    signature: str | None,
    *,
    app_id: str | None,
    oa_secret: str | None,
    now: datetime,
    max_age: timedelta = MAX_AGE,
) -> ZaloEvent:
    """The event if the signature, the app and the timestamp check out; Refused otherwise."""
    if not app_id or not oa_secret:
        raise Refused("webhook secret not configured")
    if not signature:
        raise Refused("no signature")
    if len(raw_body) > MAX_BODY:
        raise Refused("body too large")
    try:
        body = json.loads(raw_body)
        timestamp = str(body["timestamp"])
        moment = datetime.fromtimestamp(int(timestamp) / 1000, UTC)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise Refused("malformed body") from exc
    given = signature.strip().removeprefix("mac=").lower()
    expected = zalo_signature(app_id, raw_body, timestamp, oa_secret)
    if not hmac.compare_digest(given, expected):
        raise Refused("bad signature")
    if str(body.get("app_id", app_id)) != app_id:
        raise Refused("another app")
    if abs(now - moment) > max_age:
        raise Refused("stale")
    name = str(body.get("event_name", ""))
    user = (body.get("sender") or body.get("follower") or {}).get("id")
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    event_id = str(message.get("msg_id") or hashlib.sha256(raw_body).hexdigest())
    return ZaloEvent(event_id, name, str(user) if user else None, moment, body)


def verify_facebook(
    raw_body: bytes, signature: str | None, *, app_secret: str | None, now: datetime | None = None
) -> None:
    """Refused unless X-Hub-Signature-256 is the HMAC of the body with the app secret,
    and the entries are not all older than Meta's retry period (a replay)."""
    if not app_secret:
        raise Refused("webhook secret not configured")
    if not signature or not signature.startswith("sha256="):
        raise Refused("no signature")
    expected = hmac.new(app_secret.encode(), raw_body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(signature.removeprefix("sha256=").lower(), expected):
        raise Refused("bad signature")
    try:
        entries = json.loads(raw_body).get("entry") or []
        times = [int(e["time"]) for e in entries if isinstance(e, dict) and "time" in e]
    except (ValueError, AttributeError, TypeError):
        return  # the body's shape is checked by the route
    moment = now or datetime.now(UTC)
    # Meta sends "time" in seconds (some products in milliseconds).
    oldest_allowed = (moment - FACEBOOK_MAX_AGE).timestamp()
    seconds = [t / 1000 if t > 10**11 else t for t in times]
    if seconds and max(seconds) < oldest_allowed:
        raise Refused("stale")


async def _store(session: AsyncSession, platform: str, event: ZaloEvent) -> bool:
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    inserted = await session.scalar(
        dialect.insert(PlatformEvent)
        .values(
            platform=platform,
            event_id=event.event_id,
            event_name=event.name[:64],
            user_id=event.user_id,
            occurred_at=event.occurred_at,
            payload=event.payload,
        )
        .on_conflict_do_nothing()
        .returning(PlatformEvent.id)
    )
    return inserted is not None


async def record_zalo(sessions: async_sessionmaker[AsyncSession], event: ZaloEvent) -> bool:
    """Store the event once; note a cluster admin's interaction. False for a redelivery."""
    async with sessions.begin() as session:
        if not await _store(session, "zalo", event):
            return False
        if event.user_id and event.name.startswith(INTERACTIONS):
            await session.execute(
                update(ClusterAdmin)
                .where(ClusterAdmin.zalo_user_id == event.user_id)
                .values(last_interaction_at=event.occurred_at)
            )
        return True


Clock = Callable[[], datetime]


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves SIGINT and SIGTERM to the bot's own handlers."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve(app: Starlette, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve `app` in the running loop until `stop` is set."""
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = _EmbeddedServer(config)
    serving = asyncio.ensure_future(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving


def create_webhook_app(
    sessions: async_sessionmaker[AsyncSession],
    *,
    zalo_app_id: str | None,
    zalo_oa_secret: str | None,
    facebook_app_secret: str | None,
    facebook_verify_token: str | None,
    clock: Clock = lambda: datetime.now(UTC),
) -> Starlette:
    """The ASGI app `cdbot run` serves for webhooks."""

    async def zalo(request: Request) -> Response:
        raw = await request.body()
        try:
            event = verify_zalo(
                raw,
                request.headers.get("x-zevent-signature"),
                app_id=zalo_app_id,
                oa_secret=zalo_oa_secret,
                now=clock(),
            )
        except Refused as exc:
            log.warning("từ chối sự kiện Zalo: %s", exc)
            return JSONResponse({"error": "forbidden"}, status_code=403)
        fresh = await record_zalo(sessions, event)
        return JSONResponse({"ok": True, "duplicate": not fresh})

    async def facebook(request: Request) -> Response:
        if request.method == "GET":
            params = request.query_params
            token = params.get("hub.verify_token")
            if (
                params.get("hub.mode") == "subscribe"
                and facebook_verify_token
                and token is not None
                and hmac.compare_digest(token, facebook_verify_token)
            ):
                return PlainTextResponse(params.get("hub.challenge", ""))
            return PlainTextResponse("forbidden", status_code=403)
        raw = await request.body()
        try:
            verify_facebook(
                raw,
                request.headers.get("x-hub-signature-256"),
                app_secret=facebook_app_secret,
                now=clock(),
            )
            payload = json.loads(raw)
        except (Refused, ValueError) as exc:
            log.warning("từ chối sự kiện Facebook: %s", exc)
            return PlainTextResponse("forbidden", status_code=403)
        event = ZaloEvent(
            event_id=hashlib.sha256(raw).hexdigest(),
            name=str(payload.get("object", "page")) if isinstance(payload, dict) else "page",
            user_id=None,
            occurred_at=clock(),
            payload=payload if isinstance(payload, dict) else {"data": payload},
        )
        async with sessions.begin() as session:
            await _store(session, "facebook", event)
        return PlainTextResponse("EVENT_RECEIVED")

    return Starlette(
        routes=[
            Route("/webhooks/zalo", zalo, methods=["POST"]),
            Route("/webhooks/facebook", facebook, methods=["GET", "POST"]),
        ]
    )

"""Signed Zalo webhook events, as the platform would send them to the bot.

`zalo_event` builds the exact bytes and the ``X-ZEvent-Signature`` header
(SHA-256 of app_id + raw body + timestamp + OA secret key, with the ``mac=`` prefix);
`POST /_sandbox/webhook` sends one to a URL, so a rehearsal can show an admin
opening Zalo's 7-day window.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import datetime
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from connectors.sandbox.state import SANDBOX_ZALO_APP_ID, SANDBOX_ZALO_OA_ID, SandboxState


def zalo_event(
    event_name: str,
    user_id: str,
    *,
    oa_secret: str,
    now: datetime,
    text: str = "",
    app_id: str = SANDBOX_ZALO_APP_ID,
) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers of one signed event from `user_id`."""
    timestamp = str(int(now.timestamp() * 1000))
    payload: dict[str, Any] = {"app_id": app_id, "event_name": event_name, "timestamp": timestamp}
    if event_name in ("follow", "unfollow"):
        payload |= {
            "oa_id": SANDBOX_ZALO_OA_ID,
            "follower": {"id": user_id},
            "source": "oa_profile",
        }
    else:
        message = {"text": text, "msg_id": secrets.token_hex(10)}
        payload |= {
            "sender": {"id": user_id},
            "recipient": {"id": SANDBOX_ZALO_OA_ID},
            "message": message,
        }
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    mac = hashlib.sha256(app_id.encode() + raw + timestamp.encode() + oa_secret.encode())
    return raw, {"X-ZEvent-Signature": f"mac={mac.hexdigest()}", "Content-Type": "application/json"}


def webhook_route(state: SandboxState) -> Any:
    """`POST /_sandbox/webhook` {url, event_name, user_id, text?, oa_secret}: send one event."""

    async def endpoint(request: Request) -> Response:
        try:
            body = await request.json()
            raw, headers = zalo_event(
                str(body["event_name"]),
                str(body["user_id"]),
                oa_secret=str(body["oa_secret"]),
                now=state.now(),
                text=str(body.get("text", "")),
            )
            async with httpx.AsyncClient(timeout=5) as client:
                answer = await client.post(str(body["url"]), content=raw, headers=headers)
        except (ValueError, KeyError, TypeError, httpx.HTTPError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": answer.status_code == 200, "status": answer.status_code})

    return endpoint

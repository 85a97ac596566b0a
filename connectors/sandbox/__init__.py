"""A local stand-in for the Facebook Graph API and the Zalo OA API, with a viewer page.

The real connectors talk to it unchanged; only their base URLs point here. Tests in the
same process inspect `SandboxState` directly; a sandbox in another process is driven
through the control API under `/_sandbox/`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from connectors.sandbox import viewer
from connectors.sandbox.facebook import GraphApi
from connectors.sandbox.facebook_videos import finish_processing
from connectors.sandbox.records import parse_moment
from connectors.sandbox.state import (
    SANDBOX_PAGE_ID,
    SANDBOX_PAGE_TOKEN,
    SANDBOX_ZALO_ACCESS_TOKEN,
    SANDBOX_ZALO_APP_ID,
    SANDBOX_ZALO_APP_SECRET,
    SANDBOX_ZALO_REFRESH_TOKEN,
    Fault,
    SandboxState,
)
from connectors.sandbox.webhooks import webhook_route
from connectors.sandbox.zalo import ZaloApi

__all__ = [
    "SANDBOX_PAGE_ID",
    "SANDBOX_PAGE_TOKEN",
    "SANDBOX_ZALO_ACCESS_TOKEN",
    "SANDBOX_ZALO_APP_ID",
    "SANDBOX_ZALO_APP_SECRET",
    "SANDBOX_ZALO_REFRESH_TOKEN",
    "Fault",
    "SandboxState",
    "create_app",
]

CONFIG_KEYS: dict[str, type | tuple[type, ...]] = {
    "auto_register": bool,
    "enforce_night_hours": bool,
    "fb_app_secret": (str, type(None)),
    "fb_call_budget": int,
    "zalo_rate_per_minute": int,
    "article_verify_polls": int,
    "fb_tokens": dict,
    "video_processing_polls": int,
    "video_fails": bool,
    "video_max_bytes": int,
    "downloadable_urls": list,
    "latency_seconds": (int, float),
}
ControlAction = Callable[[dict[str, Any]], None]


def create_app(state: SandboxState | None = None) -> Starlette:
    """The sandbox ASGI app; a fresh `SandboxState` when none is given."""
    state = state or SandboxState()
    routes: list[BaseRoute] = [*_control_routes(state), *viewer.routes(state)]
    routes += ZaloApi(state).routes()
    routes += GraphApi(state).routes()
    app = Starlette(routes=routes)
    app.state.sandbox = state
    app.add_middleware(_Latency, state=state)
    return app


class _Latency:
    """Every platform call waits `state.latency_seconds` first (network and server time)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and self.state.latency_seconds and path.startswith("/v"):
            await asyncio.sleep(self.state.latency_seconds)
        await self.app(scope, receive, send)


def _control_routes(state: SandboxState) -> list[BaseRoute]:
    def faults(body: dict[str, Any]) -> None:
        state.push_fault(str(body["route"]), Fault.from_dict(body["fault"]))

    def random_faults(body: dict[str, Any]) -> None:
        state.set_random_faults(
            str(body["route"]), body.get("rates") or {}, body.get("seed"), body.get("fields")
        )

    def groups(body: dict[str, Any]) -> None:
        state.add_group(str(body["group_id"]), str(body["name"]), bool(body.get("enabled", True)))

    def users(body: dict[str, Any]) -> None:
        moment = body.get("last_interaction")
        last = parse_moment(moment) if moment else None
        state.add_user(str(body["user_id"]), str(body["name"]), last)

    def clock(body: dict[str, Any]) -> None:
        state.set_now(parse_moment(body["now"]) if body.get("now") else None)

    def auth_codes(body: dict[str, Any]) -> None:
        state.register_auth_code(str(body["code"]), str(body["challenge"]))

    def config(body: dict[str, Any]) -> None:
        for key, value in body.items():
            if key not in CONFIG_KEYS or not isinstance(value, CONFIG_KEYS[key]):
                raise ValueError(f"bad config key {key!r}")
        with state.lock:
            for key, value in body.items():
                setattr(state, key, _copy(value))

    def finish_videos(body: dict[str, Any]) -> None:
        finish_processing(state)

    actions: dict[str, ControlAction] = {
        "faults": faults,
        "random_faults": random_faults,
        "reset": lambda _: state.reset(),
        "groups": groups,
        "users": users,
        "clock": clock,
        "auth_codes": auth_codes,
        "config": config,
        "finish_videos": finish_videos,
    }

    async def snapshot(request: Request) -> Response:
        return JSONResponse(state.snapshot())

    async def messages(request: Request) -> Response:
        return JSONResponse(state.messages())

    routes: list[BaseRoute] = [
        Route("/_sandbox/state", snapshot, methods=["GET"]),
        Route("/_sandbox/messages", messages, methods=["GET"]),
        Route("/_sandbox/webhook", webhook_route(state), methods=["POST"]),
    ]
    routes += [
        Route(f"/_sandbox/{name}", _control(action), methods=["POST"])
        for name, action in actions.items()
    ]
    return routes


def _copy(value: Any) -> Any:
    """A config value as the state keeps it: lists (of URLs) become sets."""
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list):
        return {str(item) for item in value}
    return value


def _control(action: ControlAction) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw.strip() else {}
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            action(body)
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True})

    return endpoint

"""Scripted outcomes for sandbox requests and how they play out.

Connection faults ("drop", "commit_then_reset") close the TCP connection without an
answer. A server cannot refuse one request's connection, so "drop" is the nearest it
gets to a connect error: nothing is done, and the client sees the connection closed
before any answer (httpx: `RemoteProtocolError`), which it cannot tell from a reset after
the request was acted on. A true refused connection (`httpx.ConnectError`) has to be
injected in the client's transport.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar, cast, get_args

import httpx
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

FaultKind = Literal[
    "error",
    "http_status",
    "delay",
    "commit_then_error",
    "commit_then_hang",
    "commit_then_reset",
    "drop",
    "hang_no_commit",
    "throttle",
]
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))
ROUTES: frozenset[str] = frozenset(
    {
        "*",
        "fb.feed",
        "fb.photos",
        "fb.videos",
        "fb.published_posts",
        "fb.post_read",
        "fb.post_update",
        "fb.post_delete",
        "zalo.group_message",
        "zalo.cs_message",
        "zalo.broadcast",
        "zalo.article_create",
        "zalo.article_verify",
        "zalo.access_token",
        "zalo.quota",
        "zalo.group_read",
        "zalo.user_conversation",
        "zalo.oa_info",
        "zalo.upload",
    }
)

FB_RETRY_LATER = "An unexpected error has occurred. Please retry your request later."
FB_PHOTO_USER_MSG = (
    "Your photos couldn't be uploaded. Photos should be less than 4 MB and saved as JPG, PNG,"
    " GIF, TIFF, HEIF or WebP files."
)
FB_REVOKED = (
    "Error validating access token: The session has been invalidated because the user changed"
    " their password or Facebook has changed the session for security reasons."
)
FB_THROTTLED = (
    "(#80001) There have been too many calls to this Page account. Wait a bit and try again."
)

T = TypeVar("T")


@dataclass(frozen=True)
class Fault:
    """A scripted outcome for the next request on a route.

    Facebook reads `code`, `subcode`, `http_status`, `message`, `error_type`, the
    `error_user_*` texts and `is_transient`; Zalo reads `code` (a positive code on a Zalo
    route becomes -200 "Send message failed") and `message`, always with HTTP 200.
    `seconds` is the sleep of "delay" (default 1) and of the hang kinds (default 3600);
    `minutes` is Facebook's `estimated_time_to_regain_access` for "throttle" (Facebook
    gives whole minutes; a fraction lets a test wait seconds). "drop" closes the
    connection without acting or answering; "commit_then_reset" acts, then closes it.
    `when_duplicate` faults only fire on a post whose message equals the last post's.
    """

    kind: FaultKind
    code: int | None = None
    subcode: int | None = None
    http_status: int = 400
    message: str | None = None
    error_type: str = "OAuthException"
    error_user_title: str | None = None
    error_user_msg: str | None = None
    is_transient: bool = False
    seconds: float | None = None
    minutes: float = 5
    times: int = 1
    when_duplicate: bool = False

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.times < 1:
            raise ValueError("times must be at least 1")

    @property
    def wait_seconds(self) -> float:
        """How long a delay or hang fault sleeps."""
        if self.seconds is not None:
            return self.seconds
        return 1.0 if self.kind == "delay" else 3600.0

    @classmethod
    def token_revoked(cls, times: int = 1) -> Fault:
        """Facebook 190/460: the Page token was invalidated (password change)."""
        return cls("error", code=190, subcode=460, message=FB_REVOKED, times=times)

    @classmethod
    def photo_rejected(cls, times: int = 1) -> Fault:
        """Facebook 100/1366046: the photo is unreadable, too large or of the wrong type."""
        return cls(
            "error",
            code=100,
            subcode=1366046,
            message="(#100) Invalid parameter",
            error_user_title="Can't upload photos",
            error_user_msg=FB_PHOTO_USER_MSG,
            times=times,
        )

    @classmethod
    def link_scrape_failed(cls, times: int = 1) -> Fault:
        """Facebook 1609005: the shared link could not be scraped."""
        return cls(
            "error",
            code=1609005,
            message="(#1609005) Error Posting Link",
            error_user_msg="There was a problem scraping data from the provided link.",
            times=times,
        )

    @classmethod
    def policy_block(cls, times: int = 1) -> Fault:
        """Facebook 368/1390008: posting too often, blocked for a while."""
        return cls(
            "error",
            code=368,
            subcode=1390008,
            message="(#368) The action attempted has been deemed abusive or is otherwise"
            " disallowed",
            error_user_title="You Can't Use This Feature Right Now",
            error_user_msg="We limit how often you can post, comment or do other things in a"
            " given amount of time in order to help protect the community from spam."
            " You can try again later.",
            times=times,
        )

    @classmethod
    def duplicate(cls, times: int = 1) -> Fault:
        """Facebook 506, only for a post whose message equals the last post's."""
        return cls(
            "error",
            code=506,
            message="(#506) Duplicate status message",
            error_user_msg="Duplicate Post: Posts cannot be published consecutively."
            " Change the content.",
            when_duplicate=True,
            times=times,
        )

    @classmethod
    def throttle(cls, minutes: float = 5, times: int = 1) -> Fault:
        """Facebook 80001 with a regain time, or Zalo -32."""
        return cls("throttle", minutes=minutes, times=times)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Fault:
        """Build a fault from JSON: the dataclass fields, or {"preset": name, "times": n}."""
        values = dict(data)
        preset = values.pop("preset", None)
        if preset is not None:
            if preset not in PRESETS:
                raise ValueError(f"unknown preset {preset!r}")
            builder = cast(Callable[..., Fault], getattr(cls, preset))
            return builder(**values)
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown fault fields: {sorted(unknown)}")
        return cls(**values)


PRESETS = frozenset(
    {"token_revoked", "photo_rejected", "link_scrape_failed", "policy_block", "duplicate"}
    | {"throttle"}
)


async def apply_fault(
    fault: Fault | None,
    action: Callable[[], Awaitable[tuple[T, bool]]],
    render: Callable[[Fault], T],
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> T:
    """Run `action` (which returns a reply and whether it committed) under `fault`.

    `render` builds the reply for faults that answer instead of the action: "error",
    "http_status", "throttle", "drop", "hang_no_commit" after its sleep, and
    "commit_then_error" and "commit_then_reset" after the commit. An action that did not
    commit answers normally.
    """
    if fault is None:
        return (await action())[0]
    if fault.kind == "hang_no_commit":
        await sleep(fault.wait_seconds)
        return render(fault)
    if fault.kind in ("error", "http_status", "throttle", "drop"):
        return render(fault)
    if fault.kind == "delay":
        await sleep(fault.wait_seconds)
        return (await action())[0]
    reply, committed = await action()
    if not committed:
        return reply
    if fault.kind in ("commit_then_error", "commit_then_reset"):
        return render(fault)
    await sleep(fault.wait_seconds)
    return reply


_RANDOM_DEFAULTS: dict[str, dict[str, Any]] = {
    "error": {"code": 2, "http_status": 500, "message": FB_RETRY_LATER, "is_transient": True},
    "http_status": {"http_status": 503},
    "delay": {"seconds": 0.2},
}


def random_fault(kind: str, overrides: Mapping[str, Any] | None = None) -> Fault:
    """The fault a random draw of `kind` stands for; `overrides` sets its fields."""
    values = {**_RANDOM_DEFAULTS.get(kind, {}), **(overrides or {}), "kind": kind}
    return Fault.from_dict(values)


CUT_EXTENSION = "sandbox.cut"
"""The ASGI scope extension (set by the server) that closes the request's connection."""


class CutConnection(Response):
    """No answer at all: the connection is closed instead (faults "drop", "commit_then_reset").

    Served by uvicorn (see `server.with_cut`), the socket is closed. In process, without a
    socket, it raises the error httpx raises for a real server that does this.
    """

    def __init__(self) -> None:
        super().__init__(status_code=0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cut = scope.get("extensions", {}).get(CUT_EXTENSION)
        if cut is None:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        await cut()

"""The one place that turns httpx's exceptions into the connectors' error classes."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from connectors.base import OutcomeUnknown, Unavailable

# The request surely never reached the platform whole (a body cut short cannot be acted on).
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
    httpx.WriteTimeout,
    httpx.WriteError,
)


@asynccontextmanager
async def mapped_errors(method: str) -> AsyncIterator[None]:
    """Raise `Unavailable` when nothing was sent, `OutcomeUnknown` when a write may have landed."""
    try:
        yield
    except _NOT_SENT as exc:
        raise Unavailable(f"không kết nối được: {type(exc).__name__}") from exc
    except httpx.TransportError as exc:
        if method.upper() == "GET":
            raise Unavailable(f"lỗi mạng khi đọc: {type(exc).__name__}") from exc
        raise OutcomeUnknown(f"mất phản hồi sau khi gửi: {type(exc).__name__}") from exc


WINDOW = 60.0


class MinuteLimiter:
    """At most `per_minute` requests in any 60 s, and a pause when the platform says few remain.

    Used as httpx event hooks, so every request of a client passes through it.
    """

    def __init__(self, per_minute: int, *, remain_header: str, reserve: int = 50) -> None:
        self.per_minute = per_minute
        self._remain_header = remain_header.lower()
        self._reserve = reserve
        self._sent: deque[float] = deque()
        self._blocked_until = 0.0
        self._lock = asyncio.Lock()

    async def before(self, request: httpx.Request) -> None:
        """Wait for room in the window (request hook)."""
        async with self._lock:
            while True:
                now = time.monotonic()
                while self._sent and now - self._sent[0] >= WINDOW:
                    self._sent.popleft()
                wait = max(self._blocked_until - now, 0.0)
                if len(self._sent) >= self.per_minute:
                    wait = max(wait, WINDOW - (now - self._sent[0]))
                if wait <= 0:
                    self._sent.append(now)
                    return
                await asyncio.sleep(wait)

    async def after(self, response: httpx.Response) -> None:
        """Read what the platform says is left (response hook)."""
        remain = response.headers.get(self._remain_header)
        if remain is not None and remain.strip().isdigit() and int(remain) <= self._reserve:
            self._blocked_until = time.monotonic() + WINDOW

    def hooks(self) -> dict[str, list[Any]]:
        """The event hooks to give an httpx client."""
        return {"request": [self.before], "response": [self.after]}


def new_client(
    base_url: str,
    timeout: float,
    transport: httpx.AsyncBaseTransport | None = None,
    limiter: MinuteLimiter | None = None,
) -> httpx.AsyncClient:
    """An httpx client with the project's timeouts and no redirects."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        event_hooks=limiter.hooks() if limiter else None,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
        headers={"User-Agent": "congdoan-bot/0.1"},
    )

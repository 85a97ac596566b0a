"""The one place that turns httpx's exceptions into the connectors' error classes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from connectors.base import OutcomeUnknown, Unavailable

# The request surely never reached the platform.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


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


def new_client(
    base_url: str, timeout: float, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An httpx client with the project's timeouts and no redirects."""
    return httpx.AsyncClient(
        base_url=base_url,
        transport=transport,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        follow_redirects=False,
        headers={"User-Agent": "congdoan-bot/0.1"},
    )

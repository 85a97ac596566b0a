"""The per-minute limiter: never more than N requests in 60 s; a low 'remain' stops us."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from connectors._http import MinuteLimiter


def request() -> httpx.Request:
    return httpx.Request("POST", "http://zalo/v3.0/oa/group/message")


async def test_requests_beyond_the_budget_wait() -> None:
    limiter = MinuteLimiter(3, remain_header="X-RateLimit-Remain")
    for _ in range(3):
        await limiter.before(request())
    with pytest.raises(TimeoutError):  # the fourth would have to wait about a minute
        async with asyncio.timeout(0.2):
            await limiter.before(request())


async def test_a_low_remain_header_stops_further_requests() -> None:
    limiter = MinuteLimiter(1000, remain_header="X-RateLimit-Remain", reserve=10)
    await limiter.after(httpx.Response(200, headers={"X-RateLimit-Remain": "500"}))
    await limiter.before(request())  # plenty left: goes at once
    await limiter.after(httpx.Response(200, headers={"X-RateLimit-Remain": "3"}))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.2):
            await limiter.before(request())

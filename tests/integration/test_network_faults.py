"""Network faults at the rates of issue 7, through a real dispatcher: nothing lost or doubled.

A few hundred deliveries (the Page, a cluster's group, its admins) go through the real
connectors to an in-process sandbox on loopback, with, on every call:

- 10 % connect errors: the client's transport raises `httpx.ConnectError` before a byte
  leaves, as for a refused or unreachable host (a server cannot refuse one request);
- 10 % accepted, then the answer comes too late (the client's read timeout);
- 5 % accepted, then a 5xx;
- 5 % accepted, then the connection is cut without an answer;
- 5 % throttled, with a regain time (Facebook only: Zalo's throttle answer carries no
  regain time and the bot waits its own minute, too long for CI).

Every delivery must end final, the sandbox must hold no message twice, `sent` must mean
landed, and no Facebook request may arrive between a throttle answer and its regain time.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bot.app import App
from bot.db.models import Attempt, Cluster, ClusterAdmin, Delivery, Post
from bot.settings import Settings
from connectors.base import Connector
from connectors.facebook import FacebookPageConnector
from connectors.sandbox import (
    SANDBOX_PAGE_ID,
    SANDBOX_PAGE_TOKEN,
    SANDBOX_ZALO_ACCESS_TOKEN,
    Fault,
    SandboxState,
)
from connectors.sandbox.server import SandboxServer
from connectors.zalo import ZaloOAConnector
from content.kinds import PostDraft
from tests.integration.promise import (
    SANDBOX_SECRETS,
    error_texts,
    find_secrets,
    landing_problems,
    sqlite_files,
    too_open,
    unfinished,
)

POSTS = 60
CLUSTERS = 6
ADMINS = 3  # a post: the Page, one cluster's group and its three admins = 5 deliveries
CONNECT_ERRORS = 0.10
SERVER_FAULTS = {"commit_then_hang": 0.10, "commit_then_error": 0.05, "commit_then_reset": 0.05}
THROTTLES = 0.05
REGAIN_MINUTES = 1 / 30  # 2 s (Facebook says whole minutes; a test cannot wait them)
FB_ROUTES = ("fb.feed", "fb.published_posts")
ZALO_ROUTES = (
    "zalo.group_message",
    "zalo.cs_message",
    "zalo.quota",
    "zalo.group_read",
    "zalo.user_conversation",
)
HTTP_TIMEOUT = 1.0
# The bot starts a pause when it has read the answer, on the database's clock; the sandbox
# times arrivals on its monotonic clock. Both run at the same rate; this absorbs rounding.
CLOCK_SLACK = 0.01


class RefusingTransport(httpx.AsyncBaseTransport):
    """Fails a share of requests with `httpx.ConnectError`, before anything is sent."""

    def __init__(self, rate: float, seed: int) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._rng = random.Random(seed)
        self._rate = rate
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._rng.random() < self._rate:
            self.refused += 1
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    state = SandboxState(enforce_night_hours=False)
    hang: dict[str, dict[str, Any]] = {"commit_then_hang": {"seconds": 3}}  # past the timeout
    for n, route in enumerate(FB_ROUTES):
        rates = SERVER_FAULTS | {"throttle": THROTTLES}
        fields = hang | {"throttle": {"minutes": REGAIN_MINUTES}}
        state.set_random_faults(route, rates, seed=10 + n, fields=fields)
    # A read-back throttled too: the pause holds for every Facebook call, not only sends.
    state.push_fault("fb.published_posts", Fault.throttle(minutes=REGAIN_MINUTES))
    for n, route in enumerate(ZALO_ROUTES):
        state.set_random_faults(route, SERVER_FAULTS, seed=20 + n, fields=hang)
    with SandboxServer(state) as running:
        yield running


@pytest.fixture
async def bot(sqlite_url: str, server: SandboxServer) -> AsyncIterator[App]:
    settings = Settings(
        _env_file=None,
        database_url=sqlite_url,
        sandbox_url=server.url,
        poll_seconds=0.2,
        settle_seconds=0.2,
        backoff_base_seconds=0.05,
        http_timeout_seconds=HTTP_TIMEOUT,
        lease_seconds=10,
        facebook_min_gap_seconds=0,
    )
    app = App(settings)
    async with app.sessions.begin() as session:
        for n in range(CLUSTERS):
            cluster = Cluster(code=f"N{n}", name=f"Cụm {n}", zalo_group_id=f"{n + 1:020x}")
            session.add(cluster)
            await session.flush()
            for a in range(ADMINS):
                session.add(
                    ClusterAdmin(
                        cluster_id=cluster.id, name=f"QTV {n}.{a}", zalo_user_id=f"7{n}{a}"
                    )
                )
    yield app
    await app.aclose()


def connectors(app: App, url: str) -> tuple[dict[str, Connector], list[RefusingTransport]]:
    """The real connectors, as `App.connectors` builds them for the sandbox, on a flaky network."""
    transports = [RefusingTransport(CONNECT_ERRORS, seed) for seed in (1, 2)]

    async def token() -> str:
        return SANDBOX_ZALO_ACCESS_TOKEN

    facebook = FacebookPageConnector(
        graph_url=url,
        api_version=app.settings.facebook_api_version,
        page_id=SANDBOX_PAGE_ID,
        page_token=SANDBOX_PAGE_TOKEN,
        timeout=HTTP_TIMEOUT,
        sandbox=True,
        transport=transports[0],
    )
    zalo = ZaloOAConnector(
        openapi_url=url,
        access_token=token,
        article_cover_url=app.org.article_cover_url,
        timeout=HTTP_TIMEOUT,
        sandbox=True,
        transport=transports[1],
    )
    return {"facebook": facebook, "zalo": zalo}, transports


async def queue_posts(app: App) -> int:
    channels = ("facebook_page", "zalo_group", "zalo_user")
    total = 0
    for n in range(POSTS):
        draft = PostDraft(
            kind="story",
            title=f"Tin qua mạng chập chờn {n}",
            body=f"Nội dung số {n}.",
            scheduled_at=datetime.now(UTC),
            channels=channels,
            clusters=(f"N{n % CLUSTERS}",),
        )
        targets = await app.targets(channels, draft.clusters)
        total += len(targets)
        await app.queue.add(draft, actor="test", approve_for=targets)
    return total


def requests_while_paused(requests: list[dict[str, Any]]) -> list[str]:
    """Facebook requests that arrived between a throttle answer and its regain time."""
    calls = [r for r in requests if r["platform"] == "facebook"]
    early: list[str] = []
    for throttle in (r for r in calls if r.get("regain_seconds")):
        start = throttle["answered"]
        end = start + throttle["regain_seconds"] - CLOCK_SLACK
        early += [
            f"{r['route']} {r['monotonic'] - start:.3f} s after a throttle"
            for r in calls
            if start < r["monotonic"] < end
        ]
    return early


@pytest.mark.slow
async def test_network_faults_lose_nothing_and_send_nothing_twice(
    bot: App, server: SandboxServer, sqlite_url: str
) -> None:
    total = await queue_posts(bot)
    assert server.url is not None
    links, transports = connectors(bot, server.url)
    try:
        dispatcher = bot.dispatcher(links)
        await asyncio.wait_for(dispatcher.serve(asyncio.Event(), until_idle=True), timeout=150)
    finally:
        for connector in links.values():
            await connector.aclose()

    async with bot.sessions() as session:
        rows = list(await session.scalars(select(Delivery).join(Post)))
        outcomes = Counter(await session.scalars(select(Attempt.outcome)))
    state = server.state
    assert len(rows) == total == POSTS * (2 + ADMINS)
    assert unfinished(rows) + landing_problems(rows, state.messages()) == []
    statuses = Counter(d.status for d in rows)
    assert statuses["sent"] >= 0.9 * total, statuses  # nearly all got through

    assert requests_while_paused(state.requests) == []
    faults = Counter(r["outcome"] for r in state.requests if r["outcome"].startswith("fault:"))
    assert set(faults) == {f"fault:{kind}" for kind in [*SERVER_FAULTS, "throttle"]}, faults
    assert all(t.refused > 0 for t in transports)
    assert outcomes["reconciled"] > 0  # accepted-then-lost sends were found, not sent again

    assert find_secrets(await error_texts(bot), SANDBOX_SECRETS) == []
    assert too_open(sqlite_files(Path(str(make_url(sqlite_url).database)))) == []
    print(
        f"{total} deliveries: {dict(statuses)}; faults {dict(faults)};"
        f" refused connections {sum(t.refused for t in transports)};"
        f" attempts {dict(outcomes)}"
    )

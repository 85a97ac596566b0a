"""Four schedulers with skewed clocks run each daily job once per fire time.

Each scheduler is its own `App` (its own engine and connections) on one database, and
its clock is off by up to two minutes. It runs the jobs the way `cdbot run` does: at
start-up for the latest period, then whenever its own clock reaches a job's time, with
the fire time (the run-once key) computed from that clock by `latest_fire`. Two days
pass, with two restarts close to 06:00. Every (job, fire time) must appear once in
`job_runs`, finished, run by one scheduler; every post planned for a day exists once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.app import App
from bot.db.models import Cluster, JobRun, Post
from bot.settings import Settings
from connectors.base import Connector
from connectors.sandbox import SandboxState
from connectors.sandbox.server import SandboxServer
from content.calendar import load_events, notices_between
from schedules.content import feed_drafts, plan_day
from schedules.jobs import check_accounts, latest_fire
from tests.integration.test_content_jobs import org_file
from tests.integration.test_feeds_http import FeedSite
from tests.integration.test_feeds_http import site as site  # the feed site, as a fixture here

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
SKEWS = (-120.0, -45.0, 30.0, 120.0)  # seconds each scheduler's clock is off
STARTED = datetime(2026, 5, 31, 12, 0, tzinfo=TZ)  # real time of the first start-up
DAYS = (date(2026, 6, 1), date(2026, 6, 2))
ACCOUNT_CHECK, PLAN_DAY = time(6, 0), time(0, 5)  # as in bot/cli/ops.py (plan-day: the first hour)
FEEDS = time(6, 0)  # the example organisation's feeds_time


class Scheduler:
    """One scheduler: an App, its connectors and its skewed clock."""

    def __init__(self, number: int, app: App, connectors: dict[str, Connector], skew: float):
        self.name = f"scheduler-{number}"
        self.app = app
        self.connectors = connectors
        self.skew = timedelta(seconds=skew)
        self.calls = 0  # job runs this scheduler started (most find their key taken)

    def clock(self, real: datetime) -> datetime:
        """What this scheduler's clock reads at the real time `real`."""
        return (real + self.skew).astimezone(UTC)

    async def start_up(self, real: datetime) -> list[str]:
        """The catch-up `cdbot run` does at start-up: the account check and today's plan."""
        now = self.clock(real)
        self.calls += 2
        await self.account_check(now)
        planned = await plan_day(self.app, now.astimezone(TZ).date(), self.name)
        return ["plan-day"] if planned else []

    async def account_check(self, now: datetime) -> None:
        fire = latest_fire(ACCOUNT_CHECK.hour, TZ, now)
        await check_accounts(self.app.sessions, self.app.queue, self.connectors, fire, self.name)

    async def fire(self, job: str, moment: datetime) -> bool:
        """Run `job` as its trigger does when this clock reads `moment`; True if it ran."""
        now = moment.astimezone(UTC)
        self.calls += 1
        if job == "plan-day":
            return await plan_day(self.app, now.astimezone(TZ).date(), self.name) is not None
        if job == "feeds":
            fire = latest_fire(FEEDS.hour, TZ, now, minute=FEEDS.minute)
            return await feed_drafts(self.app, now, fire, self.name) is not None
        await self.account_check(now)
        return True


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(enforce_night_hours=False)) as running:
        yield running


@pytest.fixture
async def schedulers(
    database_url: str, tmp_path: Path, sandbox: SandboxServer, site: FeedSite
) -> AsyncIterator[list[Scheduler]]:
    org = org_file(tmp_path, cards=False, feeds=f"{site.url}/feeds/congbao-van-ban-moi.rss")
    async with AsyncExitStack() as stack:
        running = []
        for number, skew in enumerate(SKEWS):
            settings = Settings(
                _env_file=None, database_url=database_url, sandbox_url=sandbox.url, org_file=org
            )
            app = App(settings)
            stack.push_async_callback(app.aclose)
            connectors = await stack.enter_async_context(app.connectors())
            running.append(Scheduler(number, app, connectors, skew))
        async with running[0].app.sessions.begin() as session:
            session.add(Cluster(code="HCSN", name="Cụm Hành chính", zalo_group_id="g-hcsn"))
        yield running


@pytest.mark.slow
async def test_skewed_schedulers_run_each_job_once_per_fire_time(
    schedulers: list[Scheduler],
) -> None:
    first = await asyncio.gather(
        *(s.start_up(STARTED + timedelta(seconds=7 * n)) for n, s in enumerate(schedulers))
    )
    assert sum(len(ran) for ran in first) == 1  # one of them planned 31/05

    async def fire_all(job: str, at: time, day: date) -> int:
        """Each trigger fires when its own clock reads the time, plus a little delay."""
        scheduled = datetime.combine(day, at, TZ)
        ran = await asyncio.gather(
            *(
                s.fire(job, scheduled + timedelta(milliseconds=3 + 400 * n))
                for n, s in enumerate(schedulers)
            )
        )
        return sum(ran)

    slow, fast = schedulers[0], schedulers[-1]
    for day in DAYS:
        assert await fire_all("plan-day", PLAN_DAY, day) == 1
        # Restarts either side of 06:00 by the real clock: the fast clock already reads
        # 06:01 (its catch-up takes today's check), the slow one still 05:59 (yesterday's).
        await fast.start_up(datetime.combine(day, time(5, 59), TZ))
        await fire_all("account-check", ACCOUNT_CHECK, day)  # each checks; one records
        assert await fire_all("feeds", FEEDS, day) == 1
        await slow.start_up(datetime.combine(day, time(6, 1), TZ))

    async with schedulers[0].app.sessions() as session:
        runs = list(await session.scalars(select(JobRun)))
        posts = list(await session.scalars(select(Post)))

    keys = Counter((r.job, r.fire_time.astimezone(TZ)) for r in runs)
    assert max(keys.values()) == 1
    expected = {
        ("account-check", datetime.combine(d, ACCOUNT_CHECK, TZ))
        for d in (date(2026, 5, 31), *DAYS)
    }
    expected |= {("plan-day", datetime.combine(d, time(0), TZ)) for d in (date(2026, 5, 31), *DAYS)}
    expected |= {("feeds", datetime.combine(d, FEEDS, TZ)) for d in DAYS}
    assert set(keys) == expected
    assert all(r.finished_at is not None for r in runs)

    sources = Counter(p.source_key for p in posts)
    assert max(sources.values()) == 1  # every planned post exists once
    events, _ = load_events(local_events=schedulers[0].app.org.local_events)
    notices = {n.source_key for n in notices_between(events, date(2026, 5, 31), DAYS[-1])}
    assert {k for k in sources if k and k.startswith("event:")} == notices
    assert sum(1 for p in posts if p.source == "law-library") == 3  # one a day
    assert any(p.source == "feed" for p in posts)  # the feeds' items, read once
    print(
        f"\n4 schedulers, clocks {', '.join(f'{s:+g} s' for s in SKEWS)}, "
        f"{sum(s.calls for s in schedulers)} job starts over 2 days and 2 restarts: "
        f"{len(runs)} job_runs rows for {len(expected)} fire times; {len(posts)} posts, each once"
    )

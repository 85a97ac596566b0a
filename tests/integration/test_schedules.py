"""The in-process clock and run-once bookkeeping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import make_sessionmaker
from bot.db.models import JobRun
from schedules.clock import Clock
from schedules.runonce import STALE_RUN, claim_run, finish_run


async def test_clock_wakes_at_the_time_asked_and_only_the_latest_request_counts() -> None:
    woken = asyncio.Event()
    clock = Clock(ZoneInfo("Asia/Ho_Chi_Minh"))
    clock.start(woken.set)
    try:
        clock.wake_at(datetime.now(UTC) + timedelta(hours=1))
        clock.wake_at(datetime.now(UTC) + timedelta(milliseconds=100))  # replaces the first
        await asyncio.wait_for(woken.wait(), timeout=10)
    finally:
        clock.shutdown()


async def test_a_fire_time_is_claimed_by_exactly_one_scheduler(engine: AsyncEngine) -> None:
    sessions = make_sessionmaker(engine)
    fire = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)  # 07:30 in Hà Nội
    results = await asyncio.gather(
        *(claim_run(sessions, "legal-daily", fire, f"scheduler-{i}") for i in range(4))
    )
    assert sorted(results) == [False, False, False, True]
    assert await claim_run(sessions, "legal-daily", fire + timedelta(days=1), "scheduler-0")
    assert await claim_run(sessions, "calendar", fire, "scheduler-0")
    await finish_run(sessions, "legal-daily", fire, "ok")


async def started_long_ago(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine).begin() as session:
        since = datetime.now(UTC) - STALE_RUN - timedelta(minutes=1)
        await session.execute(update(JobRun).values(started_at=since))


async def test_a_run_a_dead_scheduler_left_unfinished_is_taken_over_once_stale(
    engine: AsyncEngine,
) -> None:
    sessions = make_sessionmaker(engine)
    fire = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)  # midnight in Hà Nội: the day's plan
    assert await claim_run(sessions, "plan-day", fire, "killed-midway")
    assert not await claim_run(sessions, "plan-day", fire, "restarted")  # may still be running
    await started_long_ago(engine)
    results = await asyncio.gather(
        *(claim_run(sessions, "plan-day", fire, f"scheduler-{i}") for i in range(4))
    )
    assert sorted(results) == [False, False, False, True]  # taken over by exactly one
    await finish_run(sessions, "plan-day", fire, "ok")
    await started_long_ago(engine)
    assert not await claim_run(sessions, "plan-day", fire, "restarted")  # finished: never again

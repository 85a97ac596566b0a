"""APScheduler 3 as the in-process clock, and nothing more.

It keeps no job store of its own (memory only) and owns no delivery state: it wakes
the dispatcher at the next due time and fires recurring jobs, whose run-once
bookkeeping is in the database (`schedules.runonce`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger

WAKE_JOB = "dispatch-wake"


class Clock:
    """Wakes callbacks at given times, in an explicit time zone."""

    def __init__(self, timezone: ZoneInfo) -> None:
        self._scheduler = AsyncIOScheduler(
            timezone=timezone,
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._wake: Callable[[], None] | None = None

    def start(self, wake: Callable[[], None]) -> None:
        """Start ticking; `wake` is called at each time given to `wake_at`."""
        self._wake = wake
        self._scheduler.start()

    def wake_at(self, when: datetime) -> None:
        """Call the wake callback at `when` (replacing any earlier request)."""
        if self._wake is None:
            raise RuntimeError("clock not started")
        self._scheduler.add_job(
            self._wake, DateTrigger(run_date=when), id=WAKE_JOB, replace_existing=True
        )

    def add_job(self, func: Callable[..., Any], trigger: Any, job_id: str) -> None:
        """A recurring job (its body must claim its run in `job_runs` first)."""
        self._scheduler.add_job(func, trigger, id=job_id, replace_existing=True)

    def shutdown(self) -> None:
        """Stop without waiting for running jobs (the dispatcher drains its own work)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

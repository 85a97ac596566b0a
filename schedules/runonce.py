"""Run-once bookkeeping: a recurring job runs once per fire time across every scheduler.

A run that never finished (its scheduler was killed midway) is taken over by the next
scheduler to ask once it is `STALE_RUN` old. The jobs are safe to repeat: every post they
queue carries a source key that the queue refuses twice, and the day's law item is looked
for by day (`schedules.content.legal_update`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import JobRun
from bot.db.types import db_now

log = logging.getLogger(__name__)

# Far longer than any job takes (the slowest reads a few feeds with timeouts).
STALE_RUN = timedelta(minutes=30)


async def claim_run(
    sessions: async_sessionmaker[AsyncSession], job: str, fire_time: datetime, worker: str
) -> bool:
    """True for exactly one caller per (job, fire_time); everyone else gets False.

    The exception is a run left unfinished for `STALE_RUN`: one later caller takes it over.
    """
    async with sessions.begin() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(JobRun)
            .values(job=job, fire_time=fire_time, worker=worker)
            .on_conflict_do_nothing()
            .returning(JobRun.id)
        )
        if (await session.scalar(statement)) is not None:
            return True
        taken_over = await session.scalar(
            update(JobRun)
            .where(
                JobRun.job == job,
                JobRun.fire_time == fire_time,
                JobRun.finished_at.is_(None),
                JobRun.started_at < db_now(-STALE_RUN.total_seconds()),
            )
            .values(worker=worker, started_at=db_now())
            .returning(JobRun.id)
        )
    if taken_over is None:
        return False
    log.warning(
        "việc %s (lượt %s) bắt đầu từ hơn %d phút trước mà chưa xong: chạy lại",
        job,
        fire_time.isoformat(),
        STALE_RUN.total_seconds() // 60,
    )
    return True


async def finish_run(
    sessions: async_sessionmaker[AsyncSession], job: str, fire_time: datetime, outcome: str
) -> None:
    """Record how a claimed run ended."""
    async with sessions.begin() as session:
        await session.execute(
            update(JobRun)
            .where(JobRun.job == job, JobRun.fire_time == fire_time)
            .values(finished_at=db_now(), outcome=outcome)
        )

"""Run-once bookkeeping: a recurring job runs once per fire time across every scheduler."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import JobRun
from bot.db.types import db_now


async def claim_run(
    sessions: async_sessionmaker[AsyncSession], job: str, fire_time: datetime, worker: str
) -> bool:
    """True for exactly one caller per (job, fire_time); everyone else gets False."""
    async with sessions.begin() as session:
        dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
        statement = (
            dialect.insert(JobRun)
            .values(job=job, fire_time=fire_time, worker=worker)
            .on_conflict_do_nothing()
            .returning(JobRun.id)
        )
        return (await session.scalar(statement)) is not None


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

"""Recurring jobs run by `cdbot run`. Each claims its fire time first, so it runs once."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.queue import PostQueue
from connectors.base import AuthExpired, Connector, PlatformError
from schedules.runonce import claim_run, finish_run

log = logging.getLogger(__name__)


def latest_fire(
    hour: int, tz: ZoneInfo, now: datetime | None = None, *, minute: int = 0
) -> datetime:
    """The most recent daily fire time at `hour`:`minute` in `tz`, in UTC (the run-once key)."""
    local = (now or datetime.now(UTC)).astimezone(tz)
    fire = datetime.combine(local.date(), time(hour, minute), tz)
    if fire > local:
        fire -= timedelta(days=1)
    return fire.astimezone(UTC)


async def check_accounts(
    sessions: async_sessionmaker[AsyncSession],
    queue: PostQueue,
    connectors: Mapping[str, Connector],
    fire_time: datetime,
    worker: str,
) -> None:
    """Read each account with its token: flag it before a post fails, or lift the flag.

    Every scheduler checks (it is one cheap read per account, and a token replaced by a
    person must be noticed by each); the first to claim the fire time records the run.
    """
    recording = await claim_run(sessions, "account-check", fire_time, worker)
    outcomes: list[str] = []
    for key, connector in connectors.items():
        try:
            await connector.check()
        except AuthExpired as exc:
            await queue.pause_account(key, seconds=None, needs_reauth=True, note=exc.message)
            log.error("tài khoản %s cần được cấp lại quyền: %s", key, exc.message)
            outcomes.append(f"{key}: needs_reauth")
        except PlatformError as exc:
            log.warning("không kiểm tra được tài khoản %s: %s", key, exc.message)
            outcomes.append(f"{key}: unchecked")
        else:
            await queue.clear_reauth(key)
            outcomes.append(f"{key}: ok")
    if recording:
        await finish_run(sessions, "account-check", fire_time, "; ".join(outcomes))

"""A clock for tests that must not depend on the hour they run at.

Zalo refuses follower broadcasts from 22:00 to 06:00 in Vietnam, and the connector and
the sandbox both follow that rule on their clocks. Tests that broadcast use this clock:
real time when it is daytime in Vietnam, else real time shifted to 10:00 of that day,
still ticking (leases, token lifetimes and windows keep working).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from connectors.sandbox import SandboxState

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")


def daytime_clock() -> Callable[[], datetime]:
    """Now, or now moved into the Vietnamese daytime, as a ticking clock."""
    local = datetime.now(UTC).astimezone(VIETNAM)
    if time(7, 0) <= local.time() < time(20, 0):
        return lambda: datetime.now(UTC)
    offset = datetime.combine(local.date(), time(10, 0), VIETNAM) - local
    return lambda: datetime.now(UTC) + offset


def daytime_unless_set(state: SandboxState) -> Callable[[], datetime]:
    """The sandbox's clock once a test sets it; until then a daytime clock.

    For a connector (or an App) talking to a sandbox whose own clock stays real, so that
    what the sandbox records lines up with the database's clock for read-back.
    """
    shifted = daytime_clock()
    real = state.clock
    return lambda: shifted() if state.clock is real else state.now()

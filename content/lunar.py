"""The Vietnamese lunar calendar (UTC+7, Hồ Ngọc Đức's rules), typed, over `vnlunar`.

vnlunar reads Hồ Ngọc Đức's tables for 1800–2199 (the calendars actually issued) and
computes astronomically outside them. Chinese libraries (UTC+8) give other dates for
events the bot announces, e.g. Tết 2030 and Trung thu 2034, so only this module converts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

# vnlunar ships no py.typed marker; every value it returns is re-typed below.
from vnlunar import convert_lunar_to_solar, get_lunar_date  # type: ignore[import-untyped]


@dataclass(frozen=True)
class LunarDate:
    """A day of the Vietnamese lunar calendar; `leap` marks the leap (nhuận) month."""

    day: int
    month: int
    year: int
    leap: bool = False


def to_lunar(d: date) -> LunarDate:
    """The lunar date of a solar day."""
    found = get_lunar_date(d.day, d.month, d.year)
    return LunarDate(
        day=int(found["day"]),
        month=int(found["month"]),
        year=int(found["year"]),
        leap=bool(found["leap"]),
    )


def to_solar(day: int, month: int, year: int, leap: bool = False) -> date | None:
    """The solar day of a lunar date, or None when that lunar date does not exist.

    30/12/2025 does not exist (month 12 of Ất Tỵ has 29 days), nor does a leap month
    in a year without one.
    """
    found = convert_lunar_to_solar(day, month, year, int(leap))
    if found is None:
        return None
    solar_day, solar_month, solar_year = found
    return date(int(solar_year), int(solar_month), int(solar_day))


def month_length(month: int, year: int, leap: bool = False) -> int | None:
    """29 or 30 days, or None when the year has no such month."""
    if to_solar(1, month, year, leap) is None:
        return None
    return 30 if to_solar(30, month, year, leap) is not None else 29


def leap_month(year: int) -> int | None:
    """The month repeated as a leap month in this lunar year, or None."""
    return next((m for m in range(1, 13) if to_solar(1, m, year, leap=True)), None)

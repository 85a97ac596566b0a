"""Vietnamese lunar dates (UTC+7): the known dates, leap months, and a second library agrees."""

from __future__ import annotations

from datetime import date, timedelta

import lunar_vn
import pytest

from content.lunar import LunarDate, leap_month, month_length, to_lunar, to_solar


@pytest.mark.parametrize(
    ("solar", "lunar"),
    [
        (date(1985, 1, 21), LunarDate(1, 1, 1985)),  # a month before China's Tết 1985
        (date(2007, 2, 17), LunarDate(1, 1, 2007)),  # new moon at 23:14 in UTC+7
        (date(2030, 2, 2), LunarDate(1, 1, 2030)),  # China: 03/02
        (date(2026, 2, 17), LunarDate(1, 1, 2026)),
        (date(2026, 2, 16), LunarDate(29, 12, 2025)),  # Giao thừa: month 12 has 29 days
        (date(2025, 7, 25), LunarDate(1, 6, 2025, leap=True)),
        (date(2037, 4, 24), LunarDate(10, 3, 2037)),
        (date(2034, 9, 26), LunarDate(15, 8, 2034)),
    ],
)
def test_known_dates_both_ways(solar: date, lunar: LunarDate) -> None:
    assert to_lunar(solar) == lunar
    assert to_solar(lunar.day, lunar.month, lunar.year, lunar.leap) == solar


def test_a_lunar_date_that_does_not_exist_is_none() -> None:
    assert to_solar(30, 12, 2025) is None
    assert to_solar(1, 7, 2025, leap=True) is None  # 2025's leap month is 6
    assert to_solar(31, 1, 2026) is None
    assert to_solar(1, 13, 2026) is None


TET = {
    1968: date(1968, 1, 29),
    1985: date(1985, 1, 21),
    2007: date(2007, 2, 17),
    2026: date(2026, 2, 17),
    2027: date(2027, 2, 6),
    2028: date(2028, 1, 26),
    2029: date(2029, 2, 13),
    2030: date(2030, 2, 2),
    2031: date(2031, 1, 23),
    2032: date(2032, 2, 11),
    2033: date(2033, 1, 31),
    2034: date(2034, 2, 19),
    2035: date(2035, 2, 8),
}


@pytest.mark.parametrize(("year", "tet"), TET.items())
def test_tet(year: int, tet: date) -> None:
    assert to_solar(1, 1, year) == tet
    assert to_lunar(tet) == LunarDate(1, 1, year)


# year: (Giỗ Tổ 10/3, Trung thu 15/8, Ông Công Ông Táo 23/12)
FESTIVALS = {
    2026: (date(2026, 4, 26), date(2026, 9, 25), date(2027, 1, 30)),
    2027: (date(2027, 4, 16), date(2027, 9, 15), date(2028, 1, 19)),
    2028: (date(2028, 4, 4), date(2028, 10, 3), date(2029, 2, 6)),
    2029: (date(2029, 4, 23), date(2029, 9, 22), date(2030, 1, 26)),
    2030: (date(2030, 4, 12), date(2030, 9, 12), date(2031, 1, 16)),
    2031: (date(2031, 4, 1), date(2031, 10, 1), date(2032, 2, 4)),
    2032: (date(2032, 4, 19), date(2032, 9, 19), date(2033, 1, 23)),
    2033: (date(2033, 4, 9), date(2033, 9, 8), date(2034, 2, 11)),
    2034: (date(2034, 4, 28), date(2034, 9, 26), date(2035, 1, 31)),
    2035: (date(2035, 4, 17), date(2035, 9, 16), date(2036, 1, 20)),
}


@pytest.mark.parametrize(("year", "days"), FESTIVALS.items())
def test_gio_to_trung_thu_ong_tao(year: int, days: tuple[date, date, date]) -> None:
    assert (to_solar(10, 3, year), to_solar(15, 8, year), to_solar(23, 12, year)) == days


@pytest.mark.parametrize(
    ("year", "month"), [(2025, 6), (2028, 5), (2031, 3), (2033, 11), (2026, None), (2030, None)]
)
def test_leap_month(year: int, month: int | None) -> None:
    assert leap_month(year) == month


def test_month_length() -> None:
    assert month_length(12, 2025) == 29
    assert month_length(6, 2025, leap=True) in (29, 30)
    assert month_length(6, 2026, leap=True) is None
    lengths = [month_length(m, 2026) for m in range(1, 13)]
    assert set(lengths) == {29, 30}
    tet = to_solar(1, 1, 2026)
    assert tet is not None
    days = sum(length or 0 for length in lengths)
    assert to_solar(1, 1, 2027) == tet + timedelta(days=days)  # 2026 has no leap month


# Months whose new moon falls within a minute of midnight: the two algorithms may
# differ there until the official calendar is issued (see the content reference, §2.2).
SUB_MINUTE_MONTHS = [
    (date(2054, 5, 7), date(2054, 6, 5)),
    (date(2072, 12, 9), date(2073, 1, 7)),
    (date(2077, 11, 15), date(2077, 12, 14)),
]


def test_agrees_with_lunar_vn_every_day_1968_to_2100() -> None:
    disagree = []
    day = date(1968, 1, 1)
    while day <= date(2100, 12, 31):
        ours = to_lunar(day)
        theirs = lunar_vn.solar_to_lunar(day)
        if (ours.day, ours.month, ours.year, ours.leap) != (
            theirs.day,
            theirs.month,
            theirs.year,
            bool(theirs.leap),
        ):
            disagree.append(day)
        else:
            assert to_solar(ours.day, ours.month, ours.year, ours.leap) == day
        day += timedelta(days=1)
    assert disagree, "the sub-minute months are expected to differ"
    assert all(any(a <= d <= b for a, b in SUB_MINUTE_MONTHS) for d in disagree)

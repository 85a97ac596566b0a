"""The event calendar: anniversary numbers, lunar dates, bad entries, notices, days off."""

from __future__ import annotations

import unicodedata
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.org import LocalEvent
from content.calendar import (
    Event,
    Occurrence,
    load_events,
    missing_occurrences,
    notices_between,
    occurrences,
    public_holidays,
)
from content.lunar import month_length, to_solar


@pytest.fixture(scope="module")
def shipped() -> list[Event]:
    events, problems = load_events()
    assert problems == []
    return events


def write(tmp_path: Path, text: str, name: str = "events.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def occurrence_in(events: list[Event], event_id: str, year: int) -> Occurrence:
    found = [
        o
        for o in occurrences(events, date(year, 1, 1), date(year, 12, 31))
        if o.event.id == event_id
    ]
    assert len(found) == 1, found
    return found[0]


# ---- the shipped calendar ------------------------------------------------------------------


def test_shipped_file_loads_without_problems(shipped: list[Event]) -> None:
    ids = {event.id for event in shipped}
    assert {"cong-doan-viet-nam", "quoc-te-lao-dong", "tet-nguyen-dan", "giao-thua"} <= ids
    assert {event.category for event in shipped} == {
        "union",
        "political",
        "holiday",
        "campaign",
        "traditional",
    }
    assert all(unicodedata.is_normalized("NFC", event.name) for event in shipped)


@pytest.mark.parametrize(
    ("event_id", "year", "years", "milestone"),
    [
        ("cong-doan-viet-nam", 2026, 97, None),
        ("cong-doan-viet-nam", 2029, 100, "tròn"),
        ("quoc-te-lao-dong", 2026, 140, "tròn"),
        ("quoc-te-lao-dong", 2027, 141, None),
        ("giai-phong-mien-nam", 2030, 55, "chẵn"),
        ("thanh-lap-dang", 2030, 100, "tròn"),
        ("tong-tuyen-cu", 2026, 80, "tròn"),
        ("doan-thanh-nien", 2026, 95, "chẵn"),
        ("dien-bien-phu", 2029, 75, "chẵn"),
        ("thuong-binh-liet-si", 2027, 80, "tròn"),
        ("nha-giao-viet-nam", 2027, 45, "chẵn"),
        ("quoc-khanh", 2030, 85, "chẵn"),
        ("sinh-nhat-bac-ho", 2026, 136, None),
    ],
)
def test_anniversary_number_and_milestone(
    shipped: list[Event], event_id: str, year: int, years: int, milestone: str | None
) -> None:
    occurrence = occurrence_in(shipped, event_id, year)
    assert (occurrence.years, occurrence.milestone) == (years, milestone)


def test_official_wording(shipped: list[Event]) -> None:
    assert occurrence_in(shipped, "cong-doan-viet-nam", 2026).wording == (
        "Kỷ niệm 97 năm Ngày thành lập Công đoàn Việt Nam (28/7/1929 – 28/7/2026)"
    )
    assert occurrence_in(shipped, "dien-bien-phu", 2026).wording == (
        "Kỷ niệm 72 năm Chiến thắng Điện Biên Phủ (7/5/1954 – 7/5/2026)"
    )
    tet = occurrence_in(shipped, "tet-nguyen-dan", 2026)
    assert (tet.wording, tet.years, tet.milestone) == ("Tết Nguyên đán", None, None)


@pytest.mark.parametrize(
    ("event_id", "year", "expected"),
    [
        ("tet-nguyen-dan", 2026, date(2026, 2, 17)),
        ("tet-nguyen-dan", 2030, date(2030, 2, 2)),
        ("giao-thua", 2026, date(2026, 2, 16)),
        ("giao-thua", 2030, date(2030, 2, 1)),
        ("gio-to-hung-vuong", 2026, date(2026, 4, 26)),
        ("gio-to-hung-vuong", 2037, date(2037, 4, 24)),
        ("trung-thu", 2034, date(2034, 9, 26)),
        ("ram-thang-gieng", 2030, date(2030, 2, 16)),
        ("ong-cong-ong-tao", 2027, date(2027, 1, 30)),  # 23/12 of lunar 2026
    ],
)
def test_lunar_events_land_on_solar_dates(
    shipped: list[Event], event_id: str, year: int, expected: date
) -> None:
    assert occurrence_in(shipped, event_id, year).date == expected


def test_leap_months_are_skipped(shipped: list[Event]) -> None:
    """2028 has a leap month 5: 15/8 falls once, in the ordinary month 8."""
    assert occurrence_in(shipped, "trung-thu", 2028).date == date(2028, 10, 3)


def test_lunar_anniversary_uses_the_solar_dates_of_both_years(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
events:
  - {id: le-hoi, name: lễ hội làng, calendar: lunar, day: 10, month: 3,
     base_year: 2016, category: traditional}
""",
    )
    events, problems = load_events(path)
    assert problems == []
    base, now = to_solar(10, 3, 2016), to_solar(10, 3, 2026)
    assert base is not None
    assert now is not None
    occurrence = occurrence_in(events, "le-hoi", 2026)
    assert (occurrence.years, occurrence.milestone) == (10, "tròn")
    assert occurrence.wording == (
        f"Kỷ niệm 10 năm Ngày lễ hội làng ({base.day}/{base.month}/2016 – "
        f"{now.day}/{now.month}/2026)"
    )


def test_no_anniversary_before_the_first_one(shipped: list[Event]) -> None:
    found = occurrences(shipped, date(1929, 1, 1), date(1930, 12, 31))
    assert [o.date for o in found if o.event.id == "cong-doan-viet-nam"] == [date(1930, 7, 28)]


# ---- mistakes in the file ------------------------------------------------------------------

MIXED = """
events:
  - {id: tot, name: sự kiện tốt, calendar: solar, day: 28, month: 7, base_year: 1929,
     category: union}
  - {id: ngay-31-2, name: ngày sai, calendar: solar, day: 31, month: 2, category: union}
  - {id: am-31, name: ngày âm sai, calendar: lunar, day: 31, month: 1, category: traditional}
  - {id: thang-13, name: tháng sai, calendar: solar, day: 1, month: 13, category: union}
  - {id: thieu-nhom, name: thiếu nhóm, calendar: solar, day: 1, month: 6}
  - {id: nhom-la, name: nhóm lạ, calendar: solar, day: 1, month: 6, category: sport}
  - {id: tot, name: trùng mã, calendar: solar, day: 2, month: 9, category: political}
  - {id: mau-sai, name: mẫu sai, calendar: solar, day: 3, month: 3, category: union,
     template: "{{ wording }"}
  - {id: bien-la, name: biến lạ, calendar: solar, day: 4, month: 3, category: union,
     template: "{{ ten_don_vi }}"}
  - {id: tuong-niem, name: tưởng niệm, calendar: solar, day: 5, month: 3, category: union,
     emoji: false, template: "{{ wording }} 🎉"}
  - {id: Sai Ma, name: mã sai, calendar: solar, day: 6, month: 3, category: union}
  - {id: truong-la, name: trường lạ, calendar: solar, day: 7, month: 3, category: union,
     colour: red}
  - {id: bao-truoc-am, name: báo trước âm, calendar: solar, day: 8, month: 3,
     category: union, lead_days: [-1]}
  - just a line
  - {id: nhuan, name: chỉ năm nhuận, calendar: solar, day: 29, month: 2, category: local}
"""


def test_bad_entries_are_reported_and_skipped(tmp_path: Path) -> None:
    events, problems = load_events(write(tmp_path, MIXED))
    assert [event.id for event in events] == ["tot", "nhuan"]
    assert events[0].name == "sự kiện tốt"
    assert len(problems) == 13, problems
    ids = ["ngay-31-2", "am-31", "thang-13", "thieu-nhom", "nhom-la"]
    by_id = dict(zip(ids, problems[:5], strict=True))
    for event_id, problem in by_id.items():
        assert f"«{event_id}»" in problem
        assert problem.endswith("đã bỏ qua.")
    assert "31/2 không có trong năm" in by_id["ngay-31-2"]
    assert "ngày âm lịch 31/1 không có" in by_id["am-31"]
    assert "1/13 không có" in by_id["thang-13"]
    assert "thiếu trường «category»" in by_id["thieu-nhom"]
    assert "«category» phải là một trong" in by_id["nhom-la"]
    assert "trùng" not in problems[5] and "đã dùng cho một sự kiện khác" in problems[5]
    assert "template" in problems[6] and "template" in problems[7]
    assert "biểu tượng cảm xúc" in problems[8]
    assert "chữ thường không dấu" in problems[9]
    assert "«colour» không được hỗ trợ" in problems[10]
    assert "phải từ 0 đến" in problems[11]
    assert "Sự kiện thứ 14" in problems[12]


def test_29_february_only_in_leap_years_and_not_a_problem(tmp_path: Path) -> None:
    events, _ = load_events(write(tmp_path, MIXED))
    start, end = date(2026, 1, 1), date(2029, 12, 31)
    leap_days = [o.date for o in occurrences(events, start, end) if o.event.id == "nhuan"]
    assert leap_days == [date(2028, 2, 29)]
    assert missing_occurrences(events, start, end) == []


def test_lunar_day_30_of_a_29_day_month_is_reported(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "events:\n  - {id: ba-muoi-tet, name: Ngày 30 Tết, calendar: lunar, day: 30, month: 12,"
        " category: traditional}\n",
    )
    events, problems = load_events(path)
    assert problems == []
    # Month 12 of lunar 2025 has 29 days; its day 30 would have been 17/02/2026.
    assert month_length(12, 2025) == 29
    year_2026 = (date(2026, 1, 1), date(2026, 12, 31))
    assert occurrences(events, *year_2026) == []
    [problem] = missing_occurrences(events, *year_2026)
    assert "Ngày 30 Tết" in problem and "2025" in problem and "29 ngày" in problem
    # A year whose month 12 has 30 days has the occurrence and no problem.
    full = next(y for y in range(2026, 2040) if month_length(12, y) == 30)
    span = (date(full + 1, 1, 1), date(full + 1, 12, 31))
    assert [o.date for o in occurrences(events, *span)] == [to_solar(30, 12, full)]
    assert missing_occurrences(events, *span) == []


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sai cú pháp YAML"):
        load_events(write(tmp_path, "events:\n  - id: a\n   name: [b\n"))
    with pytest.raises(ConfigError, match="events:"):
        load_events(write(tmp_path, "- id: a\n"))
    with pytest.raises(ConfigError, match="Không tìm thấy"):
        load_events(tmp_path / "khong-co.yaml")
    assert load_events(write(tmp_path, "")) == ([], [])


def test_local_events_join_the_calendar(tmp_path: Path) -> None:
    path = write(tmp_path, "events: []\n")
    local = [
        LocalEvent(name="Ngày hội Công nhân – Phiên chợ nghĩa tình", day=10, month=5),
        LocalEvent(name="Ngày hội Công nhân – phiên chợ nghĩa tình", day=11, month=5),
    ]
    events, problems = load_events(path, local)
    assert [(e.id, e.category, e.lead_days) for e in events] == [
        ("local-ngay-hoi-cong-nhan-phien-cho-nghia-tinh", "local", (3, 0))
    ]
    assert len(problems) == 1 and "đã dùng" in problems[0]
    assert occurrence_in(events, events[0].id, 2026).wording == local[0].name


# ---- notices -------------------------------------------------------------------------------


def test_notices_over_a_simulated_year(shipped: list[Event]) -> None:
    """Run daily through 2026: each (event, date, lead) once, on its day, never for a past event."""
    daily = []
    day = date(2026, 1, 1)
    while day <= date(2026, 12, 31):
        for notice in notices_between(shipped, day, day):
            assert notice.on == day
            assert notice.occurrence.date >= day
            daily.append(notice)
        day += timedelta(days=1)
    keys = [n.source_key for n in daily]
    assert [k for k, count in Counter(keys).items() if count > 1] == []
    expected = {
        f"event:{o.event.id}:{o.date.isoformat()}:{lead}"
        for o in occurrences(shipped, date(2026, 1, 1), date(2027, 12, 31))
        for lead in o.leads
        if (o.date - timedelta(days=lead)).year == 2026
    }
    assert set(keys) == expected
    # One run over the whole year (a catch-up after downtime) gives the same notices.
    assert notices_between(shipped, date(2026, 1, 1), date(2026, 12, 31)) == daily


def test_milestone_years_add_their_lead(shipped: list[Event]) -> None:
    def leads(year: int) -> list[int]:
        found = notices_between(shipped, date(year, 6, 1), date(year, 7, 28))
        return [n.lead for n in found if n.occurrence.event.id == "cong-doan-viet-nam"]

    assert leads(2026) == [7, 1, 0]
    assert leads(2029) == [30, 7, 1, 0]


def test_catch_up_announces_no_past_event(shipped: list[Event]) -> None:
    found = notices_between(shipped, date(2026, 7, 29), date(2026, 8, 5))
    assert all(n.occurrence.date >= date(2026, 7, 29) for n in found)
    assert not any(n.occurrence.event.id == "cong-doan-viet-nam" for n in found)


def test_notice_title_body_and_key(shipped: list[Event]) -> None:
    found = notices_between(shipped, date(2026, 7, 21), date(2026, 7, 28))
    union = {n.lead: n for n in found if n.occurrence.event.id == "cong-doan-viet-nam"}
    wording = "Kỷ niệm 97 năm Ngày thành lập Công đoàn Việt Nam (28/7/1929 – 28/7/2026)"
    assert union[7].title == f"Còn 7 ngày: {wording}"
    assert union[1].title == f"Ngày mai: {wording}"
    assert union[0].title == wording
    assert union[7].on == date(2026, 7, 21)
    assert union[7].source_key == "event:cong-doan-viet-nam:2026-07-28:7"
    assert union[7].body.startswith(wording + ".")
    assert "Còn 7 ngày nữa" in union[7].body


def test_every_shipped_template_renders(shipped: list[Event]) -> None:
    found = notices_between(shipped, date(2026, 1, 1), date(2030, 12, 31))
    assert len(found) > 300
    for notice in found:
        body = notice.body
        assert body
        assert unicodedata.is_normalized("NFC", body)
        assert "None" not in body
        if not notice.occurrence.event.emoji:
            assert all(ord(c) < 0x2600 for c in body), body


# ---- days off ------------------------------------------------------------------------------


def test_public_holidays_2026(tmp_path: Path) -> None:
    days = public_holidays(2026)
    assert "Tết" in days[date(2026, 2, 17)]
    assert date(2026, 5, 1) in days
    assert list(days) == sorted(days)


def test_holiday_override(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
years:
  2026:
    add:
      2026-01-02: Nghỉ bù Tết Dương lịch
    remove:
      - 2026-11-24
  2027:
""",
        "holidays.yaml",
    )
    days = public_holidays(2026, path)
    assert days[date(2026, 1, 2)] == "Nghỉ bù Tết Dương lịch"
    assert date(2026, 11, 24) not in days
    assert date(2026, 2, 17) in days
    assert public_holidays(2027, path) == public_holidays(2027)


def test_holiday_override_mistakes(tmp_path: Path) -> None:
    wrong_year = write(tmp_path, "years:\n  2026:\n    remove: [2027-01-01]\n", "a.yaml")
    with pytest.raises(ConfigError, match="ghi dưới năm 2026"):
        public_holidays(2026, wrong_year)
    not_a_date = write(tmp_path, "years:\n  2026:\n    remove: [ngày mai]\n", "b.yaml")
    with pytest.raises(ConfigError, match="phải là một ngày"):
        public_holidays(2026, not_a_date)

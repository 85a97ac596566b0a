"""`cdbot calendar show`: the year's events and days off, as a table and as JSON."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from tests.e2e.conftest import VN, Cdbot, assert_officer_error, ok

UNION_2026 = "Kỷ niệm 97 năm Ngày thành lập Công đoàn Việt Nam (28/7/1929 – 28/7/2026)"


def test_show_prints_the_year(cdbot: Cdbot) -> None:
    result = ok(cdbot("calendar", "show", "--year", "2026"))
    assert result.stderr == ""
    text = result.stdout
    assert "Lịch sự kiện năm 2026" in text
    assert UNION_2026 in text
    assert "28/07/2026" in text
    assert "10/3 ÂL" in text  # Giỗ Tổ
    assert "Kỷ niệm 140 năm Ngày Quốc tế Lao động (1/5/1886 – 1/5/2026)" in text
    assert "tròn" in text
    assert "Ngày nghỉ lễ, Tết năm 2026" in text
    assert "17/02/2026" in text
    assert "Chủ nhật" in text
    assert "Phiên chợ nghĩa tình" in text  # the example organisation's own day


def test_show_json(cdbot: Cdbot) -> None:
    data = cdbot.json("calendar", "show", "--year", "2029", "--json")
    assert data["year"] == 2029
    assert data["problems"] == []
    by_id = {event["id"]: event for event in data["events"]}
    union = by_id["cong-doan-viet-nam"]
    assert (union["date"], union["years"], union["milestone"]) == ("2029-07-28", 100, "tròn")
    assert union["lead_days"] == [30, 7, 1, 0]
    assert union["weekday"] == "Thứ Bảy"
    assert by_id["gio-to-hung-vuong"]["date"] == "2029-04-23"
    assert by_id["gio-to-hung-vuong"]["lunar"] == "10/3 ÂL"
    assert union["lunar"] is None
    assert any(event["category"] == "local" for event in data["events"])
    assert "2029-02-13" in {day["date"] for day in data["holidays"]}  # Tết 2029
    assert [e["date"] for e in data["events"]] == sorted(e["date"] for e in data["events"])


def test_default_year_is_this_year_in_vietnam(cdbot: Cdbot) -> None:
    data = cdbot.json("calendar", "show", "--json")
    assert data["year"] == datetime.now(VN).year


def test_bad_entries_are_warnings(cdbot: Cdbot, tmp_path: Path) -> None:
    events = tmp_path / "lich.yaml"
    events.write_text(
        "events:\n"
        "  - {id: tot, name: sự kiện tốt, calendar: solar, day: 2, month: 9, category: union}\n"
        "  - {id: sai, name: ngày sai, calendar: solar, day: 31, month: 2, category: union}\n",
        encoding="utf-8",
    )
    result = ok(cdbot("calendar", "show", "--year", "2026", "--events", events, "--json"))
    assert "Cảnh báo" in result.stderr and "«sai»" in result.stderr
    assert "31/2 không có trong năm" in result.stderr
    data = json.loads(result.stdout)
    assert "sự kiện tốt" in {event["wording"] for event in data["events"]}
    assert len(data["problems"]) == 1


def test_unreadable_organisation_file_is_a_warning(cdbot: Cdbot, tmp_path: Path) -> None:
    missing = tmp_path / "khong-co.yaml"
    result = ok(cdbot("calendar", "show", "--year", "2026", env={"CDBOT_ORG_FILE": str(missing)}))
    assert "Chưa đọc được ngày riêng của đơn vị" in result.stderr
    assert UNION_2026 in result.stdout


def test_year_out_of_range_is_refused(cdbot: Cdbot) -> None:
    message = assert_officer_error(cdbot("calendar", "show", "--year", "1800"))
    assert "1900–2199" in message


def test_year_not_a_number_is_refused(cdbot: Cdbot) -> None:
    message = assert_officer_error(cdbot("calendar", "show", "--year", "năm-nay"))
    assert "--year" in message


def test_missing_events_file_is_refused(cdbot: Cdbot, tmp_path: Path) -> None:
    message = assert_officer_error(
        cdbot("calendar", "show", "--events", tmp_path / "khong-co.yaml")
    )
    assert "Không tìm thấy tệp lịch sự kiện" in message

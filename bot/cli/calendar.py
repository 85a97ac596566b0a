"""`cdbot calendar …`: the year's anniversaries, lunar festivals, campaigns and days off."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import typer

from bot.cli.common import err, out, plain, print_json
from bot.errors import ConfigError, InputError

app = typer.Typer(
    help="Lịch sự kiện, ngày kỷ niệm và ngày nghỉ lễ trong năm.", no_args_is_help=True
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST_YEAR, LAST_YEAR = 1900, 2199  # the span of Hồ Ngọc Đức's lunar tables we rely on


@app.command("show")
def show(
    year: Annotated[
        int | None, typer.Option(help="Năm cần xem (1900–2199); mặc định là năm nay.")
    ] = None,
    events_file: Annotated[
        Path | None,
        typer.Option("--events", help="Tệp lịch sự kiện YAML; mặc định là lịch có sẵn của bot."),
    ] = None,
    org_file: Annotated[
        Path | None,
        typer.Option(
            "--org",
            help="Tệp cấu hình tổ chức (lấy ngày riêng của đơn vị); mặc định theo thiết lập.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="In kết quả dạng JSON.")] = False,
) -> None:
    """Xem lịch cả năm: ngày kỷ niệm (năm chẵn, năm tròn), ngày âm lịch, ngày nghỉ lễ.

    Ví dụ: cdbot calendar show --year 2029
    """
    from content.calendar import (
        EVENTS_FILE,
        load_events,
        missing_occurrences,
        occurrences,
        public_holidays,
    )

    year = datetime.now(VN).year if year is None else year
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise InputError(f"Năm {year} nằm ngoài khoảng {FIRST_YEAR}–{LAST_YEAR}.")
    local_events, problems = _local_events(org_file)
    events, event_problems = load_events(events_file or EVENTS_FILE, local_events)
    start, end = date(year, 1, 1), date(year, 12, 31)
    problems += event_problems + missing_occurrences(events, start, end)
    for problem in problems:
        err.print(plain(f"Cảnh báo: {problem}"), style="yellow")
    found = occurrences(events, start, end)
    days_off = public_holidays(year)
    if as_json:
        print_json(
            {
                "year": year,
                "events": [_event_dict(o) for o in found],
                "holidays": [
                    {"date": d.isoformat(), "weekday": _weekday(d), "name": name}
                    for d, name in days_off.items()
                ],
                "problems": problems,
            }
        )
        return
    _print_tables(year, found, days_off)


def _local_events(org_file: Path | None) -> tuple[list[Any], list[str]]:
    """The organisation's own dates; a missing or broken default file is only a warning."""
    from bot.cli.common import load_settings
    from bot.org import load_organisation

    if org_file is not None:
        return list(load_organisation(org_file).local_events), []
    try:
        return list(load_organisation(load_settings().org_file).local_events), []
    except ConfigError as exc:
        return [], [f"Chưa đọc được ngày riêng của đơn vị: {exc.message}"]


def _weekday(day: date) -> str:
    from content.calendar import WEEKDAYS

    return WEEKDAYS[day.weekday()]


def _lunar(occurrence: Any) -> str | None:
    """The lunar date of a lunar event's day, e.g. "10/3 ÂL" ("1/6 nhuận ÂL")."""
    from content.lunar import to_lunar

    if occurrence.event.calendar != "lunar":
        return None
    lunar = to_lunar(occurrence.date)
    return f"{lunar.day}/{lunar.month}{' nhuận' if lunar.leap else ''} ÂL"


def _event_dict(occurrence: Any) -> dict[str, Any]:
    event = occurrence.event
    return {
        "date": occurrence.date.isoformat(),
        "weekday": _weekday(occurrence.date),
        "lunar": _lunar(occurrence),
        "id": event.id,
        "name": event.name,
        "wording": occurrence.wording,
        "years": occurrence.years,
        "milestone": occurrence.milestone,
        "category": event.category,
        "priority": event.priority,
        "lead_days": list(occurrence.leads),
    }


def _print_tables(year: int, found: list[Any], days_off: dict[date, str]) -> None:
    from rich.table import Table

    from content.calendar import CATEGORIES

    events = Table(title=f"Lịch sự kiện năm {year}", title_justify="left")
    for column in ("Ngày", "Thứ", "Âm lịch", "Sự kiện", "Mốc", "Nhóm", "Đăng trước (ngày)"):
        events.add_column(column)
    for occurrence in found:
        events.add_row(
            occurrence.date.strftime("%d/%m/%Y"),
            _weekday(occurrence.date),
            _lunar(occurrence) or "",
            plain(occurrence.wording),
            occurrence.milestone or "",
            CATEGORIES[occurrence.event.category],
            ", ".join(map(str, occurrence.leads)),
        )
    out.print(events)
    if not days_off:
        out.print(f"Chưa có dữ liệu ngày nghỉ lễ cho năm {year}.")
        return
    holidays = Table(title=f"Ngày nghỉ lễ, Tết năm {year}", title_justify="left")
    for column in ("Ngày", "Thứ", "Ngày nghỉ"):
        holidays.add_column(column)
    for day, name in days_off.items():
        holidays.add_row(day.strftime("%d/%m/%Y"), _weekday(day), plain(name))
    out.print(holidays)

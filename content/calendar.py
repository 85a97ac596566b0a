"""The yearly event calendar: anniversaries, lunar festivals, campaigns and days off.

The events live in `data/events.yaml`, which the office edits. `load_events` keeps every
good entry and says in Vietnamese what is wrong with each bad one, so one typo does not
stop the calendar. `occurrences` places the events on solar dates, `notices_between`
turns them into the posts due ("còn 7 ngày", "ngày mai", the day itself).

A lunar day 30 is accepted in the file, but in a year whose month has 29 days the event
has no occurrence; `missing_occurrences` reports it for that year so the office decides
(Giao thừa, for instance, is written as "mùng 1 Tết, lùi 1 ngày", never as 30/12). A
solar 29/2 means "only in leap years" and is not reported.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Self

import yaml
from holidays import country_holidays
from jinja2 import (
    Environment,
    StrictUndefined,
    Template,
    TemplateSyntaxError,
    UndefinedError,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot import yamlfile
from bot.errors import ConfigError
from content.lunar import to_solar

DATA = Path(__file__).resolve().parent / "data"
EVENTS_FILE = DATA / "events.yaml"
HOLIDAYS_FILE = DATA / "holidays.yaml"

CATEGORIES: dict[str, str] = {
    "union": "Công đoàn",
    "political": "Chính trị",
    "holiday": "Lễ, Tết",
    "campaign": "Phong trào",
    "traditional": "Truyền thống",
    "local": "Địa phương",
}
PRIORITIES: dict[str, str] = {
    "top": "Đặc biệt",
    "high": "Cao",
    "medium": "Trung bình",
    "low": "Thấp",
}
WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
DEFAULT_TEMPLATE = "{{ wording }}."
LOCAL_LEAD_DAYS = (3, 0)
MAX_LEAD = 366

Category = Literal["union", "political", "holiday", "campaign", "traditional", "local"]
Priority = Literal["top", "high", "medium", "low"]
Milestone = Literal["tròn", "chẵn"]


def _is_emoji(char: str) -> bool:
    return ord(char) >= 0x1F000 or 0x2600 <= ord(char) <= 0x27BF


@cache
def _template(source: str) -> Template:
    environment = Environment(
        undefined=StrictUndefined, autoescape=False, trim_blocks=True, lstrip_blocks=True
    )
    return environment.from_string(source)


class Event(BaseModel):
    """One yearly entry of the calendar, checked as the office wrote it."""

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: Annotated[str, Field(max_length=80)]
    name: Annotated[str, Field(min_length=1)]
    calendar: Literal["solar", "lunar"]
    day: int
    month: int
    # Days added to the date above (Giao thừa = mùng 1 Tết, offset −1).
    offset: Annotated[int, Field(ge=-60, le=60)] = 0
    base_year: Annotated[int, Field(ge=1000, le=2199)] | None = None
    # The word before the name in the anniversary wording ("Ngày", or "" for "Chiến thắng…").
    prefix: str = "Ngày"
    category: Category
    priority: Priority = "medium"
    lead_days: tuple[int, ...] = (0,)
    # Extra leads used only in the years of a "tròn" or "chẵn" anniversary.
    milestone_lead_days: tuple[int, ...] = ()
    template: str = DEFAULT_TEMPLATE
    hashtags: tuple[str, ...] = ()
    emoji: bool = True

    @model_validator(mode="before")
    @classmethod
    def _normalise_text(cls, data: Any) -> Any:
        return yamlfile.nfc_tree(data)

    @field_validator("id", mode="before")
    @classmethod
    def _id(cls, value: Any) -> Any:
        if isinstance(value, str) and not re.fullmatch(r"[a-z0-9][a-z0-9-]*", value.strip()):
            raise ValueError(f"mã «{value}» chỉ gồm chữ thường không dấu, số và dấu gạch ngang")
        return value

    @field_validator("lead_days", "milestone_lead_days")
    @classmethod
    def _leads(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        wrong = [lead for lead in value if not 0 <= lead <= MAX_LEAD]
        if wrong:
            raise ValueError(f"số ngày báo trước {wrong[0]} phải từ 0 đến {MAX_LEAD}")
        return tuple(sorted(set(value), reverse=True))

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        tags = tuple(tag.strip().lstrip("#") for tag in value)
        for tag in tags:
            if not tag or not all(c.isalnum() or c == "_" for c in tag):
                raise ValueError(f"hashtag «{tag}» phải viết liền, chỉ gồm chữ và số")
        return tags

    @model_validator(mode="after")
    def _real_date(self) -> Self:
        if self.calendar == "solar":
            try:
                date(2024, self.month, self.day)  # a leap year: 29/2 means "leap years only"
            except (ValueError, OverflowError) as exc:
                raise ValueError(f"ngày {self.day}/{self.month} không có trong năm") from exc
        elif not (1 <= self.day <= 30 and 1 <= self.month <= 12):
            raise ValueError(
                f"ngày âm lịch {self.day}/{self.month} không có: "
                "ngày từ 1 đến 30, tháng từ 1 đến 12"
            )
        return self

    @model_validator(mode="after")
    def _renders(self) -> Self:
        if not self.emoji and any(_is_emoji(c) for c in self.template):
            raise ValueError("ngày tưởng niệm (emoji: false) không dùng biểu tượng cảm xúc")
        sample = {
            "wording": self.name,
            "name": self.name,
            "date": "01/01/2026",
            "years": 1 if self.base_year else None,
            "milestone": None,
            "lead": 1,
            "weekday": WEEKDAYS[0],
        }
        try:
            _template(self.template).render(sample)
        except TemplateSyntaxError as exc:
            raise ValueError(
                f"mẫu nội dung (template) sai cú pháp ở dòng {exc.lineno}; "
                "kiểm tra các cặp {{ }} và {% %}"
            ) from exc
        except UndefinedError as exc:
            raise ValueError(
                "mẫu nội dung (template) dùng một biến không có; "
                f"các biến dùng được: {', '.join(sample)}"
            ) from exc
        except Exception as exc:  # the office's template runs here: 1/0, a bad filter…
            raise ValueError("mẫu nội dung (template) không hiển thị được") from exc
        return self

    @property
    def leads(self) -> tuple[int, ...]:
        """Every lead time this event may use."""
        return tuple(sorted({*self.lead_days, *self.milestone_lead_days}, reverse=True))


class Occurrence(BaseModel):
    """An event on one solar date, with its anniversary number and official wording."""

    model_config = ConfigDict(frozen=True)

    event: Event
    date: date
    years: int | None = None
    milestone: Milestone | None = None
    wording: str

    @property
    def leads(self) -> tuple[int, ...]:
        """The lead times used this time (the milestone ones only in a milestone year)."""
        return self.event.leads if self.milestone else self.event.lead_days


@dataclass(frozen=True)
class Notice:
    """One post due: an occurrence announced `lead` days ahead (0 = on the day)."""

    occurrence: Occurrence
    lead: int

    @property
    def on(self) -> date:
        """The day the notice is posted."""
        return self.occurrence.date - timedelta(days=self.lead)

    @property
    def source_key(self) -> str:
        """What makes the notice unique, so a second run never posts it twice."""
        return f"event:{self.occurrence.event.id}:{self.occurrence.date.isoformat()}:{self.lead}"

    @cached_property
    def title(self) -> str:
        """The wording, with how soon it is when announced ahead."""
        wording = self.occurrence.wording
        if self.lead == 0:
            return wording
        if self.lead == 1:
            return f"Ngày mai: {wording}"
        return f"Còn {self.lead} ngày: {wording}"

    @cached_property
    def body(self) -> str:
        """The event's template rendered for this notice, Unicode NFC."""
        occurrence = self.occurrence
        text = _template(occurrence.event.template).render(
            wording=occurrence.wording,
            name=occurrence.event.name,
            date=occurrence.date.strftime("%d/%m/%Y"),
            years=occurrence.years,
            milestone=occurrence.milestone,
            lead=self.lead,
            weekday=WEEKDAYS[occurrence.date.weekday()],
        )
        return unicodedata.normalize("NFC", text).strip()


class LocalDate(Protocol):
    """A yearly solar date of the organisation (`bot.org.LocalEvent`)."""

    @property
    def name(self) -> str: ...
    @property
    def day(self) -> int: ...
    @property
    def month(self) -> int: ...


# ---- loading -------------------------------------------------------------------------------


def load_events(
    path: Path = EVENTS_FILE, local_events: Sequence[LocalDate] = ()
) -> tuple[list[Event], list[str]]:
    """The good events of the file plus the organisation's, and one problem per bad entry.

    Only a file that cannot be read or parsed at all raises `ConfigError`.
    """
    entries = _read_entries(path)
    local = [
        {
            "id": f"local-{_slug(item.name) or index}",
            "name": item.name,
            "calendar": "solar",
            "day": item.day,
            "month": item.month,
            "category": "local",
            "lead_days": list(LOCAL_LEAD_DAYS),
        }
        for index, item in enumerate(local_events, start=1)
    ]
    events: list[Event] = []
    problems: list[str] = []
    seen: set[str] = set()
    labelled = [(f"Sự kiện thứ {i} trong «{path.name}»", e) for i, e in enumerate(entries, 1)]
    labelled += [(f"Ngày riêng của đơn vị thứ {i}", e) for i, e in enumerate(local, 1)]
    for label, entry in labelled:
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label += f" («{entry['id']}»)"
        try:
            event = Event.model_validate(entry)
        except ValidationError as exc:
            problems.append(f"{label}: {_reason(exc)}; đã bỏ qua.")
            continue
        if event.id in seen:
            problems.append(f"{label}: mã «{event.id}» đã dùng cho một sự kiện khác; đã bỏ qua.")
            continue
        seen.add(event.id)
        events.append(event)
    return events, problems


def _read_entries(path: Path) -> list[Any]:
    data = _read_yaml(path, "lịch sự kiện")
    if data is None:
        return []
    if isinstance(data, dict) and "events" in data:
        if data["events"] is None:  # "events:" with nothing under it yet
            return []
        if isinstance(data["events"], list):
            return data["events"]
    raise ConfigError(
        f"Tệp «{path.name}» phải có mục «events:» là danh sách sự kiện "
        "(mỗi sự kiện bắt đầu bằng «- id: …»)."
    )


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"Không tìm thấy tệp {what} «{path}».") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Không đọc được tệp {what} «{path.name}» (cần mã UTF-8).") from exc
    try:
        return yamlfile.load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" ở dòng {mark.line + 1}" if mark else ""
        problem = yamlfile.problem(exc) or (
            f"sai cú pháp YAML{where}; hãy kiểm tra thụt lề và dấu hai chấm"
        )
        raise ConfigError(f"Tệp {what} «{path.name}» {problem}.") from exc


def _reason(exc: ValidationError) -> str:
    """The first thing pydantic refused, in Vietnamese."""
    error = exc.errors()[0]
    field = ".".join(str(part) for part in error["loc"])
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "value_error":
        return str(ctx.get("error", "giá trị không hợp lệ"))
    if kind == "missing":
        return f"thiếu trường «{field}»"
    if kind == "extra_forbidden":
        return f"trường «{field}» không được hỗ trợ, hãy kiểm tra lỗi chính tả"
    if kind == "literal_error":
        choices = str(ctx.get("expected", "")).replace("' or '", "', '").replace("'", "")
        return f"trường «{field}» phải là một trong: {choices}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"trường «{field}» phải là một số nguyên"
    if kind == "greater_than_equal":
        return f"trường «{field}» phải lớn hơn hoặc bằng {ctx.get('ge')}"
    if kind == "less_than_equal":
        return f"trường «{field}» phải nhỏ hơn hoặc bằng {ctx.get('le')}"
    if kind == "string_too_short":
        return f"trường «{field}» không được để trống"
    if kind in ("list_type", "tuple_type"):
        return f"trường «{field}» phải là một danh sách, ví dụ [7, 1, 0]"
    if kind in ("date_type", "date_parsing", "date_from_datetime_parsing"):
        return f"«{error.get('input')}» phải là một ngày dạng 2026-09-02"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return "mỗi sự kiện phải là một nhóm trường «tên_trường: giá trị»"
    return f"trường «{field}» không hợp lệ"


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_text = plain.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text).strip("-")[:60].strip("-")


# ---- placing events on dates ---------------------------------------------------------------


def occurrences(events: Sequence[Event], start: date, end: date) -> list[Occurrence]:
    """Every occurrence dated in [start, end], by date."""
    found = [item for item in _resolve(events, start, end) if isinstance(item, Occurrence)]
    return sorted(found, key=lambda o: (o.date, o.event.id))


def missing_occurrences(events: Sequence[Event], start: date, end: date) -> list[str]:
    """A Vietnamese sentence for each lunar day 30 that a year in [start, end] lacks."""
    return [item for item in _resolve(events, start, end) if isinstance(item, str)]


def _resolve(events: Sequence[Event], start: date, end: date) -> Iterator[Occurrence | str]:
    # A lunar year Y ends in the solar year Y + 1 and offsets move dates by up to 60 days,
    # so two years either side cover every date in range.
    for event in events:
        first = start.year - 2
        if event.base_year is not None:  # anniversaries start the year after the event
            first = max(first, event.base_year + 1)
        for year in range(first, end.year + 2):
            on = _date_in(event, year)
            if on is not None:
                if start <= on <= end:
                    yield _occurrence(event, year, on)
                continue
            would_be = _lunar_day_30(event, year)
            if would_be is not None and start <= would_be <= end:
                yield (
                    f"«{event.name}» ghi ngày {event.day}/{event.month} âm lịch, nhưng tháng "
                    f"{event.month} âm lịch năm {year} chỉ có 29 ngày: năm đó không có "
                    "ngày này, hãy sửa lịch nếu vẫn muốn đăng."
                )


def _date_in(event: Event, year: int) -> date | None:
    """The event's date in the solar or lunar `year`, or None when that year lacks it."""
    if event.calendar == "lunar":
        found = to_solar(event.day, event.month, year)
    else:
        try:
            found = date(year, event.month, event.day)
        except ValueError:  # 29/2 outside a leap year: expected, not reported
            found = None
    return None if found is None else found + timedelta(days=event.offset)


def _lunar_day_30(event: Event, year: int) -> date | None:
    """Where a lunar day 30 missing from `year` would have fallen (None if it exists)."""
    first = to_solar(1, event.month, year) if event.calendar == "lunar" else None
    if first is None or to_solar(event.day, event.month, year) is not None:
        return None
    return first + timedelta(days=event.day - 1 + event.offset)


def _occurrence(event: Event, year: int, on: date) -> Occurrence:
    """The occurrence in `year`, worded as an anniversary when the event has a base year."""
    if event.base_year is None:
        return Occurrence(event=event, date=on, wording=event.name)
    years = year - event.base_year
    base = _date_in(event, event.base_year)
    since = f"{base.day}/{base.month}/{base.year}" if base else f"{event.day}/{event.month}/?"
    name = f"{event.prefix} {event.name}".strip()
    wording = f"Kỷ niệm {years} năm {name} ({since} – {on.day}/{on.month}/{on.year})"
    milestone: Milestone | None = None
    if years % 10 == 0:
        milestone = "tròn"
    elif years % 5 == 0:
        milestone = "chẵn"
    return Occurrence(event=event, date=on, years=years, milestone=milestone, wording=wording)


def notices_between(events: Sequence[Event], start: date, end: date) -> list[Notice]:
    """Every notice to post on a day in [start, end], for events dated on or after `start`.

    A run that covers days missed during downtime gets each notice once and none for an
    event already past.
    """
    reach = max((max(event.leads, default=0) for event in events), default=0)
    found = [
        Notice(occurrence, lead)
        for occurrence in occurrences(events, start, end + timedelta(days=reach))
        for lead in occurrence.leads
        if occurrence.date >= start and start <= occurrence.date - timedelta(days=lead) <= end
    ]
    return sorted(found, key=lambda n: (n.on, n.occurrence.date, n.occurrence.event.id))


# ---- days off ------------------------------------------------------------------------------


class _YearOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    add: dict[date, str] = Field(default_factory=dict)
    remove: list[date] = Field(default_factory=list)


class _Overrides(BaseModel):
    model_config = ConfigDict(extra="forbid")

    years: dict[int, _YearOverride | None] = Field(default_factory=dict)


def public_holidays(year: int, override: Path = HOLIDAYS_FILE) -> dict[date, str]:
    """The year's days off (`holidays`, 1901–2100), corrected by the office's override file."""
    days = dict(country_holidays("VN", years=year, language="vi").items())
    change = _load_overrides(override).years.get(year)
    if change is not None:
        for day in change.remove:
            days.pop(day, None)
        days.update({day: unicodedata.normalize("NFC", name) for day, name in change.add.items()})
    return dict(sorted(days.items()))


def _load_overrides(path: Path) -> _Overrides:
    data = _read_yaml(path, "ngày nghỉ lễ")
    try:
        overrides = _Overrides.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(f"Tệp ngày nghỉ lễ «{path.name}»: {_reason(exc)}.") from exc
    for year, change in overrides.years.items():
        for day in [*(change.add if change else ()), *(change.remove if change else ())]:
            if day.year != year:
                raise ConfigError(
                    f"Tệp ngày nghỉ lễ «{path.name}»: ngày {day:%d/%m/%Y} ghi dưới năm {year}."
                )
    return overrides

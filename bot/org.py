"""The organisation's identity (name, signature, slogans, hashtags…) read from a YAML file.

Nothing about a particular federation is written in code: Hà Nội dissolved its district
federations in 2025, so every name and slogan comes from this file.
"""

from __future__ import annotations

from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from bot import yamlfile
from bot.db.models import Channel
from bot.errors import ConfigError


def _url(value: str, *, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc or any(ch.isspace() for ch in value):
        raise ValueError(f"địa chỉ «{value}» phải là một URL bắt đầu bằng {schemes[-1]}://")
    return value


def _https(value: str) -> str:
    return _url(value, schemes=("https",))


def _web(value: str) -> str:
    return _url(value, schemes=("http", "https"))


def _hashtag(value: str) -> str:
    tag = value.lstrip("#")
    if not tag or any(ch.isspace() or ch == "#" for ch in tag):
        raise ValueError(f"hashtag «{value}» phải là một từ liền, không có khoảng trắng")
    return tag


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


Text = Annotated[str, Field(min_length=1)]
HttpsUrl = Annotated[str, AfterValidator(_https)]
WebUrl = Annotated[str, AfterValidator(_web)]
Hashtag = Annotated[str, AfterValidator(_hashtag)]


def _choosable(channels: list[Channel]) -> list[Channel]:
    wrong = [c for c in channels if c not in Channel.choosable()]
    if wrong:
        allowed = ", ".join(c.value for c in Channel.choosable())
        raise ValueError(f"kênh «{wrong[0].value}» không chọn được; các kênh hợp lệ: {allowed}")
    return channels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    @model_validator(mode="before")
    @classmethod
    def _normalise_text(cls, data: Any) -> Any:
        return yamlfile.nfc_tree(data)


class LocalEvent(_Strict):
    """A yearly local date (solar calendar) the organisation marks, e.g. a founding day."""

    name: Text
    day: Annotated[int, Field(ge=1, le=31)]
    month: Annotated[int, Field(ge=1, le=12)]

    @model_validator(mode="after")
    def _real_date(self) -> LocalEvent:
        try:
            date(2024, self.month, self.day)  # a leap year, so 29/02 is accepted
        except ValueError as exc:
            raise ValueError(f"ngày {self.day}/{self.month} không có trong năm") from exc
        return self


def _clock_time(value: Any) -> Any:
    """ "07:30" (or YAML's 450, its sexagesimal reading of 07:30) as a time of day."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = f"{value // 60:02d}:{value % 60:02d}"
    if isinstance(value, str):
        try:
            hour, minute = (int(part) for part in value.strip().split(":"))
            return time(hour, minute)
        except (ValueError, OverflowError):  # an hour too big for the clock overflows
            raise ValueError(f"giờ «{value}» phải viết dạng 07:30") from None
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]
DEFAULT_TIMES = {"law": time(7, 30), "event": time(7, 0)}
CALENDAR_CATEGORIES = ("union", "political", "holiday", "campaign", "traditional", "local")


class FeedSource(_Strict):
    """An RSS or Atom feed read for the daily legal-policy update."""

    name: Text
    url: WebUrl
    adapter: Literal["generic", "congbao"] = "generic"


class Automation(_Strict):
    """What the automatic jobs queue, where, and whether a person approves it first."""

    # One item of the law library a day (content/data/law_library.yaml).
    legal_update: bool = True
    legal_update_approved: bool = True
    # Notices ahead of each event of the calendar (content/data/events.yaml).
    calendar: bool = True
    # Categories whose notices go out without a person; the others wait as drafts.
    calendar_approved: Annotated[list[str], AfterValidator(_unique)] = Field(
        default_factory=lambda: ["holiday", "traditional"]
    )
    # Feeds whose matching items become drafts (never published without a person).
    feeds: list[FeedSource] = Field(
        default_factory=lambda: [
            FeedSource(
                name="Công báo Chính phủ: văn bản mới ban hành",
                url="https://congbao.chinhphu.vn/cac-van-ban-moi-ban-hanh.rss",
                adapter="congbao",
            )
        ]
    )
    feeds_time: ClockTime = time(6, 0)
    # An infographic card is drawn as the image of automatic law and event posts.
    cards: bool = True
    channels: Annotated[
        list[Channel], Field(min_length=1), AfterValidator(_unique), AfterValidator(_choosable)
    ] = Field(default_factory=lambda: [Channel.FACEBOOK_PAGE, Channel.ZALO_GROUP])

    @model_validator(mode="after")
    def _known_categories(self) -> Automation:
        wrong = [c for c in self.calendar_approved if c not in CALENDAR_CATEGORIES]
        if wrong:
            raise ValueError(
                f"nhóm sự kiện «{wrong[0]}» không có; chọn: {', '.join(CALENDAR_CATEGORIES)}"
            )
        return self


class Organisation(_Strict):
    """Who publishes: names, signature, slogans and hashtags appended to every post."""

    name: Text
    short_name: Text
    area: Text
    signature: Text
    slogans: list[Text] = Field(default_factory=list)
    hashtags: Annotated[list[Hashtag], AfterValidator(_unique)] = Field(default_factory=list)
    website: WebUrl | None = None
    facebook_page_name: Text | None = None
    zalo_oa_name: Text | None = None
    article_cover_url: HttpsUrl
    example: bool = False
    default_channels: Annotated[
        list[Channel], Field(min_length=1), AfterValidator(_unique), AfterValidator(_choosable)
    ] = Field(default_factory=Channel.choosable)
    local_events: list[LocalEvent] = Field(default_factory=list)
    # When a post of each kind goes out by default (the automatic jobs use these).
    default_times: dict[
        Annotated[str, Field(pattern="^(infographic|law|event|news|story|video)$")], ClockTime
    ] = Field(default_factory=dict)
    automation: Automation = Field(default_factory=Automation)

    def time_for(self, kind: str) -> time:
        """The configured time of day for `kind`, else the built-in one, else 08:00."""
        return self.default_times.get(kind) or DEFAULT_TIMES.get(kind, time(8, 0))

    # Who a Zalo broadcast reaches (gender, ages, cities as Zalo's comma-separated codes);
    # empty means every follower.
    broadcast_target: dict[
        Annotated[str, Field(pattern="^(gender|ages|cities|locations|platform)$")], Text
    ] = Field(default_factory=dict)


FIELD_LABELS_VI = {"name": "tên", "day": "ngày", "month": "tháng"}


def load_organisation(path: Path) -> Organisation:
    """The organisation described by a YAML file; `ConfigError` says what to fix."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(f"Không tìm thấy tệp cấu hình tổ chức «{path}».") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Không đọc được tệp cấu hình «{path.name}» (cần mã UTF-8).") from exc
    try:
        data = yamlfile.load(text, _UniqueKeyLoader)
    except yaml.YAMLError as exc:
        if isinstance(exc, _DuplicateKey):
            where = yamlfile.where(exc)
            raise ConfigError(
                f"Tệp cấu hình «{path.name}» khai báo trường «{exc.key}» hai lần{where}."
            ) from exc
        problem = yamlfile.problem(exc) or (
            f"sai cú pháp YAML{yamlfile.where(exc)}, hãy kiểm tra thụt lề, "
            "dấu hai chấm và dấu ngoặc kép"
        )
        raise ConfigError(f"Tệp cấu hình «{path.name}» {problem}.") from exc
    if not isinstance(data, dict):
        raise ConfigError(
            f"Tệp cấu hình «{path.name}» phải gồm các dòng dạng «tên_trường: giá trị»."
        )
    try:
        return Organisation.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_explain(path.name, exc)) from exc


def _explain(file: str, exc: ValidationError) -> str:
    """The first validation error as one Vietnamese sentence naming the field."""
    errors = exc.errors()
    error = errors[0]
    field = _field_name(error["loc"])
    more = f" (và {len(errors) - 1} lỗi khác)" if len(errors) > 1 else ""
    return f"Tệp cấu hình «{file}», trường {field}: {_reason(error)}{more}."


def _field_name(loc: tuple[int | str, ...]) -> str:
    parts: list[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"mục thứ {item + 1}")
        elif not parts:
            parts.append(f"«{item}»")
        else:
            parts.append(f"«{item}» ({FIELD_LABELS_VI.get(item, item)})")
    return ", ".join(parts) or "(gốc)"


def _reason(error: Any) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    reasons = {
        "missing": "thiếu trường bắt buộc này",
        "extra_forbidden": "trường này không được hỗ trợ, hãy kiểm tra lỗi chính tả",
        "string_type": "phải là một chuỗi văn bản",
        "string_too_short": "không được để trống",
        "list_type": "phải là một danh sách (mỗi mục một dòng bắt đầu bằng «- »)",
        "too_short": "danh sách phải có ít nhất một mục",
        "bool_type": "phải là true hoặc false",
        "bool_parsing": "phải là true hoặc false",
        "int_type": "phải là một số nguyên",
        "int_parsing": "phải là một số nguyên",
        "int_from_float": "phải là một số nguyên",
        "greater_than_equal": f"phải lớn hơn hoặc bằng {ctx.get('ge')}",
        "less_than_equal": f"phải nhỏ hơn hoặc bằng {ctx.get('le')}",
        "model_type": "phải là một nhóm trường «tên_trường: giá trị»",
        "dict_type": "phải là một nhóm trường «tên_trường: giá trị»",
        "enum": (
            f"kênh «{value}» không hợp lệ; các kênh hợp lệ: "
            f"{', '.join(channel.value for channel in Channel.choosable())}"
        ),
    }
    if kind == "value_error":
        return str(ctx.get("error", "giá trị không hợp lệ"))
    return reasons.get(kind, "giá trị không hợp lệ")


class _DuplicateKey(yaml.MarkedYAMLError):
    def __init__(self, key: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem=f"duplicate key {key}", problem_mark=mark)
        self.key = key


class _UniqueKeyLoader(yamlfile.StrictLoader):
    """A safe loader that refuses a key written twice, which PyYAML silently overwrites."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable: the base class reports it properly
                continue
            if duplicate:
                raise _DuplicateKey(str(key), key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

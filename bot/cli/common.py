"""What every command shares: opening the app, times in the office's zone, output."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from rich.console import Console
from rich.text import Text

from bot.errors import ConfigError, InputError

T = TypeVar("T")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

_DATE_FORMATS = ("%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%d/%m/%Y %H:%M", "%Y-%m-%d %H:%M:%S")


def load_settings() -> Any:
    """Settings from the environment and .env, or a ConfigError in Vietnamese."""
    from pydantic import ValidationError

    from bot.settings import Settings

    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "CDBOT_" + str(first["loc"][0]).upper() if first["loc"] else "CDBOT_*"
        raise ConfigError(f"Thiết lập {key} không hợp lệ: {_setting_problem(first)}.") from exc


def _setting_problem(error: Any) -> str:
    """Pydantic's reason for a bad setting, in Vietnamese."""
    ctx = error.get("ctx") or {}
    kind = error["type"]
    if kind == "value_error":
        return str(error["msg"]).removeprefix("Value error, ")
    if kind == "bool_parsing":
        return "hãy ghi true hoặc false"
    if kind in ("int_parsing", "int_from_float"):
        return "phải là một số nguyên"
    if kind == "float_parsing":
        return "phải là một số"
    if kind in ("greater_than_equal", "greater_than"):
        bound = ctx.get("ge", ctx.get("gt"))
        return f"phải lớn hơn {'hoặc bằng ' if kind.endswith('equal') else ''}{bound}"
    if kind in ("less_than_equal", "less_than"):
        bound = ctx.get("le", ctx.get("lt"))
        return f"phải nhỏ hơn {'hoặc bằng ' if kind.endswith('equal') else ''}{bound}"
    return "giá trị không dùng được"


class DatabaseUnavailable(ConfigError):
    """Không mở được cơ sở dữ liệu."""


@contextmanager
def database_errors(url: str) -> Iterator[None]:
    """A database that cannot be reached or opened becomes one Vietnamese sentence."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import InterfaceError, OperationalError

    try:
        yield
    except (OperationalError, InterfaceError, OSError) as exc:
        where = make_url(url).render_as_string(hide_password=True)
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0][:200]
        raise DatabaseUnavailable(
            f"Không mở được cơ sở dữ liệu {where} ({reason}); kiểm tra CDBOT_DATABASE_URL."
        ) from exc


@contextmanager
def opened_app(*, migrate: bool = True) -> Iterator[Any]:
    """An App built from the settings, its schema checked, with logging set up."""
    from bot.app import App
    from bot.logs import setup_logging

    settings = load_settings()
    setup_logging(settings.log_level, settings.secret_values())
    app = App(settings)
    with database_errors(settings.database_url):
        if migrate:
            app.ensure_schema()
        yield app


def run(app: Any, work: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine against the app, closing its database pool afterwards."""

    async def wrapped() -> T:
        try:
            return await work()
        finally:
            await app.aclose()

    return asyncio.run(wrapped())


def parse_when(text: str, tz: ZoneInfo) -> datetime:
    """An officer's time ("YYYY-MM-DD HH:MM" or "DD/MM/YYYY HH:MM") in the office's zone."""
    cleaned = re.sub(r"\s+", " ", text.strip())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(cleaned, fmt).replace(tzinfo=tz)
        except ValueError:
            continue
    shown = "".join(c for c in cleaned if c.isprintable())[:40]
    raise InputError(
        f"Thời điểm «{shown}» không đúng dạng; hãy viết như «2026-12-01 07:30» (giờ Việt Nam)."
    )


def parse_day(text: str, label: str) -> date:
    """An officer's date ("YYYY-MM-DD" or "DD/MM/YYYY"); `label` names the option."""
    cleaned = text.strip()
    for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(cleaned, fmt).date()  # noqa: DTZ007 - a date, no time
        except ValueError:
            continue
    shown = "".join(c for c in cleaned if c.isprintable())[:40]
    raise InputError(f"Ngày «{shown}» ở {label} không đúng; hãy viết như «23/07/2026».")


def plain(text: str | None) -> Text:
    """Text the officer typed, shown as it is (never read as Rich markup)."""
    return Text(text or "")


def local(moment: datetime | None, tz: ZoneInfo) -> str:
    """A stored time as the officer reads it."""
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M") if moment else "—"


def iso(moment: datetime | None, tz: ZoneInfo) -> str | None:
    """A stored time for scripts: ISO 8601 with the office's offset."""
    return moment.astimezone(tz).isoformat() if moment else None


def print_json(data: Any) -> None:
    """JSON on stdout, UTF-8, for scripts."""
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def split_list(value: str | None) -> tuple[str, ...] | None:
    """'a, b,c' → ('a', 'b', 'c'); None or nothing listed is None ("the default")."""
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip()) or None

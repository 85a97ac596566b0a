"""Column types and SQL expressions that behave the same on SQLite and PostgreSQL.

Time is stored in UTC. SQLite has no time zone type, so `UTCDateTime` strips the
zone on the way in and puts UTC back on the way out; PostgreSQL gets `timestamptz`.
`db_now()` is the database's own clock, so claims and leases never trust a
worker's clock.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Float, TypeDecorator, literal
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime, stored in UTC on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        if not isinstance(moment, datetime):
            raise TypeError(f"not a datetime: {value!r}")
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


class db_now(FunctionElement[datetime]):  # reads like the SQL function it is
    """The database clock in UTC, optionally shifted by a number of seconds."""

    type = UTCDateTime()
    inherit_cache = True

    def __init__(self, offset_seconds: float | ColumnElement[float] = 0.0) -> None:
        # The offset is a bound parameter, so one cached statement serves every offset;
        # a named one (`bindparam("lease", type_=Float())`) or an expression lets a prebuilt
        # statement take it.
        if not isinstance(offset_seconds, ColumnElement):
            offset_seconds = literal(float(offset_seconds), Float())
        super().__init__(offset_seconds)


@compiles(db_now, "sqlite")
def _sqlite_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    # Same text shape as SQLAlchemy's SQLite DATETIME storage, so comparisons are exact.
    offset = compiler.process(element.clauses, **kw)
    return f"(strftime('%Y-%m-%d %H:%M:%f', 'now', ({offset}) || ' seconds') || '000')"


@compiles(db_now, "postgresql")
def _postgres_now(element: db_now, compiler: SQLCompiler, **kw: Any) -> str:
    offset = compiler.process(element.clauses, **kw)
    return f"(clock_timestamp() + make_interval(secs => {offset}))"

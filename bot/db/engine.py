"""Engines and sessions for SQLite (the default) and PostgreSQL (psycopg 3).

The same URL is accepted in its plain form (``sqlite:///…``, ``postgresql://…``);
the async driver is chosen here, in one place.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}
SYNC_DRIVERS = {"sqlite": "sqlite", "postgresql": "postgresql+psycopg"}
# The database cannot be reached or used right now (server gone, connection cut, SQLite
# locked past its busy timeout, pool exhausted): wait and try again, do not stop.
UNREACHABLE: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)


def backend(url: str | URL) -> str:
    """'sqlite' or 'postgresql'; anything else is refused."""
    name = make_url(url).get_backend_name()
    if name not in ASYNC_DRIVERS:
        raise ValueError(name)
    return name


# libpq settings for PostgreSQL unless the URL gives its own. A connection that cannot be
# opened within 5 s, or whose peer is gone (a dead host, a network that drops packets),
# becomes an error within about a minute, like a refused connection, and is waited out.
# Without them such a connection waits for the kernel: minutes to hours, with the whole
# process stuck behind it. (A server that is up but never answers a running query is
# not caught by these: its host still acknowledges and answers the probes.)
POSTGRES_DEFAULTS = {
    "connect_timeout": "5",  # seconds to open a connection
    "keepalives": "1",
    "keepalives_idle": "30",  # a silent connection is probed after 30 s …
    "keepalives_interval": "10",
    "keepalives_count": "3",  # … and given up after three unanswered probes
    "tcp_user_timeout": "60000",  # ms that data sent may stay unacknowledged
}


def async_url(url: str | URL) -> URL:
    """The URL with the async driver this project uses (and `POSTGRES_DEFAULTS`)."""
    parsed = make_url(url)
    return _with_defaults(parsed.set(drivername=ASYNC_DRIVERS[backend(parsed)]))


def sync_url(url: str | URL) -> URL:
    """The URL with a synchronous driver, for migrations (and `POSTGRES_DEFAULTS`)."""
    parsed = make_url(url)
    return _with_defaults(parsed.set(drivername=SYNC_DRIVERS[backend(parsed)]))


def _with_defaults(url: URL) -> URL:
    if url.get_backend_name() != "postgresql":
        return url
    missing = {k: v for k, v in POSTGRES_DEFAULTS.items() if k not in url.query}
    return url.update_query_dict(missing)


def ensure_sqlite_file(url: str | URL) -> None:
    """Create the folder of a SQLite file, and the file itself with mode 0600."""
    parsed = make_url(url)
    if backend(parsed) != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return
    path = Path(parsed.database)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _postgres_settings(dbapi_connection: Any, _record: Any) -> None:
    # The queue's statements are small and run all the time; the planner's cost estimate
    # for the next-due read (correlated subqueries) crossed jit_above_cost, and compiling
    # took 17 of its 24 ms at 1M rows.
    cursor = dbapi_connection.cursor()
    cursor.execute("SET jit = off")
    cursor.close()
    dbapi_connection.commit()  # the SET opened a transaction; a rollback would undo it


def make_engine(url: str | URL, *, pool_size: int = 10) -> AsyncEngine:
    """An async engine with the settings each backend needs for the queue."""
    target = async_url(url)
    if backend(target) == "sqlite":
        ensure_sqlite_file(url)
        # Pooled: a new aiosqlite connection costs a thread and the pragmas below.
        engine = create_async_engine(target, pool_size=pool_size, max_overflow=pool_size)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        target, pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )
    event.listen(engine.sync_engine, "connect", _postgres_settings)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[Any]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)

"""The database URL as the engines get it: driver chosen, PostgreSQL's time limits added."""

from __future__ import annotations

from bot.db.engine import POSTGRES_DEFAULTS, async_url, sync_url


def test_postgres_gets_time_limits_unless_the_url_sets_its_own() -> None:
    url = async_url("postgresql://bot@db.example/congdoan?connect_timeout=20")
    assert url.drivername == "postgresql+psycopg"
    assert url.query["connect_timeout"] == "20"  # the operator's own choice stays
    assert url.query["keepalives_idle"] == POSTGRES_DEFAULTS["keepalives_idle"]
    assert dict(sync_url("postgresql://bot@db.example/congdoan").query) == POSTGRES_DEFAULTS


def test_sqlite_urls_are_left_as_they_are() -> None:
    url = async_url("sqlite:///data/congdoan.sqlite3")
    assert url.drivername == "sqlite+aiosqlite" and not url.query
    assert not sync_url("sqlite:///data/congdoan.sqlite3").query

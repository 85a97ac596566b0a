"""Shared fixtures: real SQLite and real PostgreSQL databases, migrated by Alembic.

PostgreSQL: `CDBOT_TEST_POSTGRES_URL` (default: the local server on 127.0.0.1:5432 with
trust auth). A template database is migrated once per session and each test gets a
fresh copy. Without a server the PostgreSQL cases skip with the reason, unless
`CDBOT_REQUIRE_POSTGRES=1` (CI), where they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import make_engine
from bot.db.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "CDBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRE_POSTGRES = os.environ.get("CDBOT_REQUIRE_POSTGRES") == "1"
TEMPLATE = f"cdbot_test_template_{os.getpid()}"


def _admin_dsn() -> str:
    url = make_url(POSTGRES_URL)
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def _postgres_problem() -> str | None:
    try:
        with psycopg.connect(_admin_dsn(), connect_timeout=3):
            return None
    except psycopg.Error as exc:
        return f"PostgreSQL không sẵn sàng tại {POSTGRES_URL}: {exc}".splitlines()[0]


def _with_database(name: str) -> str:
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _execute(sql: str) -> None:
    with psycopg.connect(_admin_dsn(), autocommit=True) as conn:
        conn.execute(sql.encode())  # names are ours, not user input


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """The name of a migrated template database, or a skip."""
    problem = _postgres_problem()
    if problem:
        if REQUIRE_POSTGRES:
            pytest.fail(problem)
        pytest.skip(problem)
    _execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}"')
    _execute(f'CREATE DATABASE "{TEMPLATE}"')
    upgrade(_with_database(TEMPLATE))
    yield TEMPLATE
    _execute(f'DROP DATABASE IF EXISTS "{TEMPLATE}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_template: str) -> Iterator[str]:
    """A fresh migrated PostgreSQL database for one test."""
    name = f"cdbot_test_{uuid.uuid4().hex[:12]}"
    _execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_template}"')
    yield _with_database(name)
    _execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh migrated SQLite file for one test."""
    url = f"sqlite:///{tmp_path / 'cdbot.sqlite3'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An async engine on the test's database."""
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()

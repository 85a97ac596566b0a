"""The console over ASGI in the test's own loop, with one signed-in client per role."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette

from bot.app import App
from bot.db.models import Cluster, ClusterAdmin, Post
from bot.settings import Settings
from bot.web.app import create_app
from bot.web.auth import Users
from content.kinds import PostDraft

PASSWORD = "mat-khau-thu-nghiem"
ROLES = ("viewer", "editor", "approver", "admin")
CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
Client = Callable[[str], Awaitable[httpx.AsyncClient]]


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its lowest cost: the tests sign in hundreds of times, nobody guesses here."""
    from argon2 import PasswordHasher

    monkeypatch.setattr(
        "bot.web.auth._hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
async def bot(database_url: str, tmp_path: object) -> AsyncIterator[App]:
    settings = Settings(_env_file=None, database_url=database_url, secret_key=None)
    app = App(settings)
    async with app.sessions.begin() as session:
        cluster = Cluster(code="HCSN", name="Cụm Hành chính", zalo_group_id="5eefbd52e76d64fe35ff")
        session.add(cluster)
        await session.flush()
        session.add(ClusterAdmin(cluster_id=cluster.id, name="Chị Hoa", zalo_user_id="8812"))
    users = Users(app.sessions)
    for role in ROLES:
        await users.add(role, PASSWORD, role, display_name=f"Người {role}", actor="test")
    yield app
    await app.aclose()


@pytest.fixture
def console(bot: App) -> Starlette:
    return create_app(bot, secret="a test secret that is long enough")


@pytest.fixture
async def draft_post(bot: App) -> Post:
    draft = PostDraft(
        kind="story",
        title="Gương sáng",
        body="Chị Hoa vận động hiến máu.",
        scheduled_at=datetime.now(UTC) + timedelta(days=2),
        channels=("facebook_page", "zalo_group"),
    )
    return await bot.queue.add(draft, actor="test")


@pytest.fixture
async def client(console: Starlette) -> AsyncIterator[Client]:
    """`await client("editor")`: a client signed in with that role (None-role: anonymous)."""
    opened: list[httpx.AsyncClient] = []

    async def make(role: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=console, client=("127.0.0.1", 50000 + len(opened)))
        http = httpx.AsyncClient(transport=transport, base_url="http://console.test")
        opened.append(http)
        if role != "anonymous":
            await sign_in(http, role)
        return http

    yield make
    for http in opened:
        await http.aclose()


async def csrf_of(http: httpx.AsyncClient, path: str = "/login") -> str:
    page = await http.get(path)
    found = CSRF.search(page.text)
    assert found, page.text[:300]
    return found.group(1)


async def sign_in(
    http: httpx.AsyncClient, username: str, password: str = PASSWORD
) -> httpx.Response:
    token = await csrf_of(http)
    return await http.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": password, "next": "/"},
    )

"""The Zalo token store on SQLite and PostgreSQL against the sandbox's real token endpoint.

A refresh token works once, so the headline tests have eight workers (eight OS processes
on PostgreSQL, eight engines in one process on SQLite) meet an expired token together:
Zalo must be asked exactly once, and every worker must still send.
"""

from __future__ import annotations

import asyncio
import hashlib
import multiprocessing
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.credentials import DbTokenStore
from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import Credential
from bot.queue import PostQueue
from bot.secrets import Cipher
from connectors.base import AuthExpired, OutboundMessage, Unavailable
from connectors.sandbox import SANDBOX_ZALO_APP_ID, SANDBOX_ZALO_APP_SECRET, Fault, SandboxState
from connectors.sandbox.server import SandboxServer
from connectors.tokens import TokenPair, ZaloOAuthClient
from connectors.zalo import ZaloOAConnector

SECRET = "credentials-test-secret-key-0123456789"
GROUP = "f414c8f76fa586fbdfb4"
TOKEN_ROUTE = "zalo.access_token"
WORKERS = 8


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(enforce_night_hours=False)) as running:
        yield running


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxState:
    server.state.reset()
    return server.state


@pytest.fixture
async def engines(database_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    """Two engines on one database: two processes, as far as the database can tell."""
    first, second = make_engine(database_url), make_engine(database_url)
    yield first, second
    await first.dispose()
    await second.dispose()


@pytest.fixture
async def oauth(server: SandboxServer) -> AsyncIterator[ZaloOAuthClient]:
    async with oauth_client(str(server.url)) as client:
        yield client


class Consents:
    """Records on_consent_needed calls and pauses the account as the app does."""

    def __init__(self, queue: PostQueue) -> None:
        self.queue = queue
        self.notes: list[str] = []

    async def __call__(self, note: str) -> None:
        self.notes.append(note)
        await self.queue.pause_account("zalo", seconds=None, needs_reauth=True, note=note)


def oauth_client(url: str) -> ZaloOAuthClient:
    return ZaloOAuthClient(
        oauth_url=url, app_id=SANDBOX_ZALO_APP_ID, app_secret=SANDBOX_ZALO_APP_SECRET, timeout=10
    )


def new_store(engine: AsyncEngine, oauth: ZaloOAuthClient) -> tuple[DbTokenStore, Consents]:
    sessions = make_sessionmaker(engine)
    consents = Consents(PostQueue(sessions))
    store = DbTokenStore(sessions, Cipher(SECRET), oauth, on_consent_needed=consents)
    return store, consents


def issue(sandbox: SandboxState, *, expired: bool = False) -> TokenPair:
    """A pair the sandbox knows, as a connect would have stored it."""
    now = datetime.now(UTC)
    expiry = now - timedelta(minutes=5) if expired else now + timedelta(hours=25)
    access, refresh = "at-" + secrets.token_hex(8), "rt-" + secrets.token_hex(8)
    with sandbox.lock:
        sandbox.zalo_access_tokens[access] = expiry
        sandbox.zalo_refresh_tokens[refresh] = "unused"
    return TokenPair(access, refresh, expiry, now + timedelta(days=90))


def token_calls(sandbox: SandboxState) -> int:
    with sandbox.lock:
        return sum(1 for r in sandbox.requests if r["route"] == TOKEN_ROUTE)


def connector(url: str, store: Any) -> ZaloOAConnector:
    return ZaloOAConnector(
        openapi_url=url, access_token=store.current, article_cover_url="", timeout=10
    )


def group_message(n: int) -> OutboundMessage:
    return OutboundMessage(channel="zalo_group", target_id=GROUP, title="t", text=f"Tin số {n}")


async def expire_stored(engine: AsyncEngine, minutes: float = -1) -> None:
    moment = datetime.now(UTC) + timedelta(minutes=minutes)
    async with make_sessionmaker(engine).begin() as session:
        await session.execute(update(Credential).values(access_expires_at=moment))


# ---- one store ----------------------------------------------------------------------------


async def test_save_then_current(engine: AsyncEngine, sandbox: SandboxState, oauth) -> None:
    store, _ = new_store(engine, oauth)
    pair = issue(sandbox)
    assert await store.save(pair) == 1
    assert await store.current() == pair.access_token
    status = await store.status()
    assert status is not None
    assert (status.version, status.can_refresh) == (1, True)
    assert status.access_expires_at == pair.access_expires_at
    assert token_calls(sandbox) == 0
    assert pair.access_token not in repr(pair) and pair.access_token not in repr(status)


async def test_no_credential_asks_for_connect(engine, sandbox: SandboxState, oauth) -> None:
    store, _ = new_store(engine, oauth)
    with pytest.raises(AuthExpired, match="cdbot zalo connect"):
        await store.current()
    assert await store.status() is None
    assert token_calls(sandbox) == 0


async def test_refreshes_ahead_of_expiry(engine, sandbox: SandboxState, oauth, server) -> None:
    writer, _ = new_store(engine, oauth)
    old = issue(sandbox)
    await writer.save(old)
    await expire_stored(engine)
    store, _ = new_store(engine, oauth)  # a process starting now, with nothing cached
    fresh = await store.current()
    assert fresh != old.access_token
    assert token_calls(sandbox) == 1
    assert sandbox.zalo_refresh_tokens[old.refresh_token] == "used"
    status = await store.status()
    assert status is not None and status.version == 2
    assert status.access_expires_at is not None
    assert status.access_expires_at - datetime.now(UTC) > timedelta(hours=24)
    zalo = connector(str(server.url), store)
    await zalo.send(group_message(1))
    await zalo.aclose()
    assert await store.current() == fresh
    assert token_calls(sandbox) == 1


async def test_new_pair_is_committed_before_it_is_used(
    engines, sandbox: SandboxState, oauth, server
) -> None:
    first, second = engines
    store, _ = new_store(first, oauth)
    observer, _ = new_store(second, oauth)
    await store.save(issue(sandbox, expired=True))
    seen: list[tuple[int, bool]] = []

    async def token_as_sent() -> str:
        token = await store.current()
        # The moment the connector is about to use it, another engine must already see it.
        status = await observer.status()
        seen.append((status.version if status else 0, await observer.current() == token))
        return token

    zalo = ZaloOAConnector(
        openapi_url=str(server.url), access_token=token_as_sent, article_cover_url="", timeout=10
    )
    await zalo.send(group_message(1))
    await zalo.aclose()
    assert seen == [(2, True)]
    assert token_calls(sandbox) == 1


async def test_refused_refresh_asks_a_person_once_and_never_retries(
    engines, sandbox: SandboxState, oauth
) -> None:
    first, second = engines
    store, consents = new_store(first, oauth)
    other, other_consents = new_store(second, oauth)
    pair = issue(sandbox, expired=True)
    await store.save(pair)
    sandbox.zalo_refresh_tokens[pair.refresh_token] = "used"
    with pytest.raises(AuthExpired, match="cdbot zalo connect") as refused:
        await store.current()
    assert refused.value.code == "-14014"
    for leaked in (pair.access_token, pair.refresh_token):
        assert leaked not in refused.value.message and leaked not in consents.notes[0]
    assert len(consents.notes) == 1
    for again in (store.current, other.current):
        with pytest.raises(AuthExpired, match="cdbot zalo connect"):
            await again()
    with pytest.raises(AuthExpired):
        await other.refresh_after_rejection(pair.access_token)
    assert token_calls(sandbox) == 1
    assert (len(consents.notes), other_consents.notes) == (1, [])
    account = (await consents.queue.accounts())["zalo"]
    assert account.needs_reauth and "cdbot zalo connect" in str(account.note)
    status = await store.status()
    assert status is not None and not status.can_refresh
    # Connecting again brings the store back.
    again_pair = issue(sandbox)
    await other.save(again_pair)
    assert await store.current() == again_pair.access_token


async def test_rejection_after_another_process_rotated_does_not_ask_zalo(
    engines, sandbox: SandboxState, oauth
) -> None:
    first, second = engines
    store, _ = new_store(first, oauth)
    other, _ = new_store(second, oauth)
    await store.save(issue(sandbox))
    old = await store.current()
    rotated = await other.refresh_after_rejection(old)
    assert rotated != old
    assert token_calls(sandbox) == 1
    assert await store.refresh_after_rejection(old) == rotated
    assert token_calls(sandbox) == 1
    # Rejected again with the stored token itself: now it is refreshed, once.
    newest = await store.refresh_after_rejection(rotated)
    assert newest not in (old, rotated)
    assert token_calls(sandbox) == 2


async def test_token_endpoint_down_keeps_a_token_that_still_works(
    engine, sandbox: SandboxState, oauth
) -> None:
    writer, _ = new_store(engine, oauth)
    pair = issue(sandbox)
    await writer.save(pair)
    await expire_stored(engine, minutes=10)  # due (refresh ahead), not yet expired
    store, consents = new_store(engine, oauth)
    sandbox.push_fault(TOKEN_ROUTE, Fault("http_status", http_status=503))
    assert await store.current() == pair.access_token
    assert await store.current() == pair.access_token  # quiet for a minute: no second try
    assert token_calls(sandbox) == 1
    await expire_stored(engine)
    fresh, _ = new_store(engine, oauth)
    sandbox.push_fault(TOKEN_ROUTE, Fault("http_status", http_status=503))
    with pytest.raises(Unavailable):
        await fresh.current()
    # Nothing was spent: the same refresh token still works on the next try.
    assert await fresh.current() != pair.access_token
    assert token_calls(sandbox) == 3
    assert consents.notes == []


async def test_a_token_zalo_refuses_is_refreshed_once_and_the_send_retried(
    engine: AsyncEngine, sandbox: SandboxState, oauth, server
) -> None:
    store, consents = new_store(engine, oauth)
    pair = issue(sandbox)
    await store.save(pair)
    with sandbox.lock:  # Zalo revokes the access token before its stated expiry
        del sandbox.zalo_access_tokens[pair.access_token]
    zalo = ZaloOAConnector(
        openapi_url=server.url, access_token=store, article_cover_url="", timeout=10
    )
    try:
        receipt = await zalo.send(group_message(1))
    finally:
        await zalo.aclose()
    assert receipt.remote_id
    assert token_calls(sandbox) == 1
    assert [m["text"] for m in sandbox.messages()] == ["Tin số 1"]
    assert consents.notes == []


async def test_tokens_are_encrypted_at_rest(engine: AsyncEngine, sandbox, oauth) -> None:
    store, _ = new_store(engine, oauth)
    pair = issue(sandbox)
    await store.save(pair)
    async with engine.connect() as conn:
        row = (
            await conn.execute(text("SELECT access_token, refresh_token FROM credentials"))
        ).one()
    raw = " ".join(row)
    assert pair.access_token not in raw and pair.refresh_token not in raw
    assert Cipher(SECRET).decrypt(row[0]) == pair.access_token
    assert Cipher(SECRET).decrypt(row[1]) == pair.refresh_token


# ---- eight workers, one refresh -------------------------------------------------------------


async def _worker(url: str, sandbox_url: str, start: Any, n: int) -> dict[str, Any]:
    """One worker with its own engine: meet the others, take the token, send to the group."""
    engine = make_engine(url)
    async with oauth_client(sandbox_url) as oauth:
        store, consents = new_store(engine, oauth)
        zalo = connector(sandbox_url, store)
        try:
            await store.status()  # connected before the race starts
            await start()
            token = await store.current()
            receipt = await zalo.send(group_message(n))
            digest = hashlib.sha256(token.encode()).hexdigest()
            return {"token": digest, "remote_id": receipt.remote_id, "consents": consents.notes}
        finally:
            await zalo.aclose()
            await engine.dispose()


def _process_main(url: str, sandbox_url: str, barrier: Any, results: Any, n: int) -> None:
    async def start() -> None:
        barrier.wait(60)  # every process released at the same moment

    try:
        results.put(asyncio.run(_worker(url, sandbox_url, start, n)))
    except BaseException as exc:
        results.put({"error": repr(exc)})


async def _prepare_race(url: str, sandbox: SandboxState, sandbox_url: str) -> None:
    engine = make_engine(url)
    async with oauth_client(sandbox_url) as oauth:
        await new_store(engine, oauth)[0].save(issue(sandbox, expired=True))
    await engine.dispose()


def _check_race(sandbox: SandboxState, results: list[dict[str, Any]]) -> None:
    assert [r.get("error") for r in results] == [None] * WORKERS
    assert token_calls(sandbox) == 1
    assert len({r["token"] for r in results}) == 1
    assert len({r["remote_id"] for r in results}) == WORKERS
    texts = sorted(m["text"] for m in sandbox.messages() if m["channel"] == "zalo_group")
    assert texts == sorted(f"Tin số {n}" for n in range(WORKERS))
    assert all(r["consents"] == [] for r in results)


@pytest.mark.postgres
@pytest.mark.slow
async def test_eight_processes_refresh_once(
    postgres_url: str, sandbox: SandboxState, server: SandboxServer
) -> None:
    await _prepare_race(postgres_url, sandbox, str(server.url))
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    processes = [
        ctx.Process(target=_process_main, args=(postgres_url, str(server.url), barrier, results, n))
        for n in range(WORKERS)
    ]
    try:
        for process in processes:
            process.start()
        collected = [await asyncio.to_thread(results.get, True, 180) for _ in processes]
        for process in processes:
            await asyncio.to_thread(process.join, 30)
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
    assert [p.exitcode for p in processes] == [0] * WORKERS
    _check_race(sandbox, collected)


async def test_eight_engines_on_sqlite_refresh_once(
    sqlite_url: str, sandbox: SandboxState, server: SandboxServer
) -> None:
    await _prepare_race(sqlite_url, sandbox, str(server.url))
    barrier = asyncio.Barrier(WORKERS)

    async def start() -> None:
        await barrier.wait()

    outcomes = await asyncio.gather(
        *(_worker(sqlite_url, str(server.url), start, n) for n in range(WORKERS))
    )
    _check_race(sandbox, list(outcomes))


# ---- cdbot zalo connect ----------------------------------------------------------------------

# `cdbot` with the `zalo` sub-app registered as bot/cli/__init__.py is to register it.
CDBOT = (
    "import sys; from bot.cli import app, main, zalo; "
    "app.add_typer(zalo.app, name='zalo'); sys.exit(main(sys.argv[1:]))"
)


def cdbot(url: str, sandbox_url: str, *args: str) -> subprocess.Popen[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "CDBOT_DATABASE_URL": url,
        "CDBOT_ZALO_OAUTH_URL": sandbox_url,
        "CDBOT_ZALO_APP_ID": SANDBOX_ZALO_APP_ID,
        "CDBOT_ZALO_APP_SECRET": SANDBOX_ZALO_APP_SECRET,
        "CDBOT_SECRET_KEY": SECRET,
    }
    return subprocess.Popen(
        [sys.executable, "-c", CDBOT, "zalo", "connect", *args],
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        encoding="utf-8",
    )


def test_connect_in_browser_stores_the_pair_and_lifts_the_pause(
    sqlite_url: str, sandbox: SandboxState, server: SandboxServer
) -> None:
    engine = make_engine(sqlite_url)
    queue = PostQueue(make_sessionmaker(engine))
    asyncio.run(queue.pause_account("zalo", seconds=None, needs_reauth=True, note="hết hạn"))
    run = cdbot(sqlite_url, str(server.url), "--redirect-uri", "https://cd.example.vn/cb")
    assert run.stdout is not None
    url = next(line.strip() for line in run.stdout if "/v4/oa/permission?" in line)
    query = parse_qs(urlsplit(url).query)
    sandbox.register_auth_code("code-9", query["code_challenge"][0])
    pasted = f"https://cd.example.vn/cb?code=code-9&oa_id=1&state={query['state'][0]}"
    out, err = run.communicate(pasted + "\n", timeout=60)
    assert run.returncode == 0, err
    assert "phiên bản 1" in out and "Asia/Ho_Chi_Minh" in out

    async def stored() -> tuple[str, bool]:
        async with oauth_client(str(server.url)) as oauth:
            token = await new_store(engine, oauth)[0].current()
        paused = (await queue.accounts())["zalo"].needs_reauth
        await engine.dispose()
        return token, paused

    token, paused = asyncio.run(stored())
    assert token in sandbox.zalo_access_tokens and token not in out + err
    assert not paused
    used = cdbot(sqlite_url, str(server.url), "--refresh-token", "rt-already-used")
    out, err = used.communicate(timeout=60)
    assert used.returncode == 2
    assert "-14014" in err and "API Explorer" in err and "rt-already-used" not in out + err

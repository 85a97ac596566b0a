"""PostgreSQL goes away under a running `cdbot worker` and comes back.

The worker reaches PostgreSQL through a TCP proxy written here. Mid-run the proxy is cut:
every connection closed, and new ones refused or, in the hanging form, accepted and never
answered (a server or network that stopped answering; those connections stay silent even
after the outage). After the outage it relays again. The worker must not die, must lose
nothing and send nothing twice, and must pick the work up again by itself soon after the
database is back.

The outage lasts `CDBOT_TEST_OUTAGE_SECONDS` (10 s by default, to keep CI quick; the
figure in docs/RELIABILITY.md is from a manual run with 30).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.app import App
from bot.db.engine import POSTGRES_DEFAULTS
from bot.db.models import Delivery, Post
from bot.settings import Settings
from connectors.sandbox import SandboxState
from connectors.sandbox.server import SandboxServer
from tests.integration.processes import MINE, Bots, statuses, wait_for
from tests.integration.processes import bots as bots  # the fixture, here
from tests.integration.test_graceful_stop import MARK, queue_posts, received

OUTAGE_SECONDS = float(os.environ.get("CDBOT_TEST_OUTAGE_SECONDS", "10"))
RESUME_WITHIN = 10.0  # seconds from the database's return to the next message sent


class Proxy:
    """TCP from 127.0.0.1:`port` to `upstream`, which can be cut and restored."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._silent: list[socket.socket] = []
        self._lock = threading.Lock()

    def restore(self) -> None:
        """Listen (again, on the same port) and relay every new connection."""
        self._stop_listening()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()

    def cut(self, *, hang: bool = False) -> None:
        """Close every relayed connection; refuse new ones or, with `hang`, never answer them."""
        self._stop_listening()
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            _close(sock)
        if hang:
            self._listener = socket.create_server(("127.0.0.1", self.port))
            threading.Thread(target=self._hold, args=(self._listener,), daemon=True).start()

    def close(self) -> None:
        self.cut()
        for sock in self._silent:
            _close(sock)

    def _stop_listening(self) -> None:
        if self._listener is not None:
            _close(self._listener)
            self._listener = None

    def _hold(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # restored
            self._silent.append(client)  # open, never read, never answered

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
                server = socket.create_connection(self.upstream)
            except OSError:
                return  # cut
            with self._lock:
                self._sockets |= {client, server}
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pump, args=(source, target), daemon=True).start()


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        _close(source)
        _close(target)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(auto_register=True, enforce_night_hours=False)) as running:
        yield running


@pytest.fixture
def proxy(postgres_url: str) -> Iterator[Proxy]:
    url = make_url(postgres_url)
    running = Proxy((url.host or "127.0.0.1", url.port or 5432))
    running.restore()
    yield running
    running.close()


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.parametrize("hang", [False, True], ids=["refused", "hanging"])
async def test_worker_outlives_a_database_outage(
    postgres_url: str, proxy: Proxy, server: SandboxServer, bots: Bots, hang: bool
) -> None:
    app = App(Settings(_env_file=None, database_url=postgres_url, sandbox_url=server.url))
    try:
        total = await queue_posts(app, 20, ("zalo_group", "zalo_user"))
        server.state.latency_seconds = 0.3  # sends are in flight when the cut comes
        via_proxy = make_url(postgres_url).set(port=proxy.port).render_as_string(False)
        worker = bots.start("worker", via_proxy, str(server.url))
        before = await wait_for(app, "sent", 30)

        proxy.cut(hang=hang)
        await asyncio.sleep(OUTAGE_SECONDS)
        during = await statuses(app)
        assert worker.poll() is None, bots.output()  # still alive
        restored = datetime.now(UTC)
        proxy.restore()

        await wait_for(app, "sent", total, within=120)
        assert worker.poll() is None, bots.output()
        worker.send_signal(signal.SIGTERM)
        assert await bots.exit_code(worker, 30) == 0, bots.output()

        assert await statuses(app) == {"sent": total}  # nothing lost
        messages = received(server)
        assert len(messages) == total and max(messages.values()) == 1  # nothing twice
        async with app.sessions() as session:
            first_sent = await session.scalar(
                select(func.min(Delivery.sent_at))
                .join(Post)
                .where(MINE)
                .where(Delivery.sent_at > restored)
            )
        landed = [
            datetime.fromisoformat(m["at"]) for m in server.state.messages() if MARK in m["text"]
        ]
        first_new = min(at for at in landed if at > restored)
        assert first_sent is not None
        recorded, resumed = ((t - restored).total_seconds() for t in (first_sent, first_new))
        print(
            f"\noutage {OUTAGE_SECONDS:g} s with {during['sending']} sends in flight "
            f"({before}+ sent before): worker alive; first outcome recorded {recorded:.1f} s "
            f"and first new message {resumed:.1f} s after the database came back; "
            f"{total} sent, 0 lost, 0 duplicates"
        )
        # A connection the hanging proxy still holds is given up after the connect timeout.
        assert resumed <= RESUME_WITHIN + (
            float(POSTGRES_DEFAULTS["connect_timeout"]) if hang else 0
        )
        assert "Traceback" not in bots.output()
    finally:
        await app.aclose()

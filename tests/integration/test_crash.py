"""Kill -9 the running bot again and again: nothing lost, nothing sent twice.

A real `cdbot run` process sends to a sandbox that answers slowly (so sends are in
flight when the process dies) and sometimes creates a message then fails to answer.
The process is killed with SIGKILL several times and restarted; a last run then goes
until idle. Every delivery must end final, and the sandbox must hold at most one
message per delivery (exactly one for every delivery marked sent).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import App
from bot.db.models import Attempt, Cluster, ClusterAdmin, Delivery, Post
from bot.settings import Settings
from connectors.sandbox import SandboxState
from connectors.sandbox.server import SandboxServer
from content.kinds import PostDraft

KILLS = 4
POSTS = 30


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    state = SandboxState(auto_register=True, enforce_night_hours=False)
    # Slow answers keep sends in flight; some messages are created and their answer lost.
    state.set_random_faults("zalo.group_message", {"delay": 0.5, "commit_then_error": 0.05}, 7)
    state.set_random_faults("zalo.cs_message", {"delay": 0.5, "commit_then_error": 0.05}, 8)
    with SandboxServer(state) as running:
        yield running


def bot_process(database_url: str, sandbox_url: str, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDBOT_")}
    env |= {
        "CDBOT_DATABASE_URL": database_url,
        "CDBOT_SANDBOX_URL": sandbox_url,
        "CDBOT_POLL_SECONDS": "0.2",
        "CDBOT_LEASE_SECONDS": "10",
        "CDBOT_SETTLE_SECONDS": "0.5",
        "CDBOT_BACKOFF_BASE_SECONDS": "0.2",
        "CDBOT_ZALO_CONCURRENCY": "8",
        "CDBOT_LOG_LEVEL": "WARNING",
    }
    command = [sys.executable, "-m", "bot.cli", "run", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def queue_work(app: App) -> int:
    async with app.sessions.begin() as session:
        for n in range(3):
            cluster = Cluster(code=f"K{n}", name=f"Cụm {n}", zalo_group_id=f"{n:020x}")
            session.add(cluster)
            await session.flush()
            session.add(ClusterAdmin(cluster_id=cluster.id, name=f"QTV {n}", zalo_user_id=f"9{n}"))
    for n in range(POSTS):
        draft = PostDraft(
            kind="story",
            title=f"Tin {n}",
            body=f"Nội dung số {n}.",
            scheduled_at=datetime.now(UTC),
            channels=("zalo_group", "zalo_user"),
        )
        await app.queue.add(
            draft, actor="test", approve_for=await app.targets(draft.channels, None)
        )
    return POSTS * 6


@pytest.mark.slow
async def test_repeated_kills_lose_nothing_and_send_nothing_twice(
    sqlite_url: str, server: SandboxServer, tmp_path: Path
) -> None:
    app = App(Settings(_env_file=None, database_url=sqlite_url, sandbox_url=server.url))
    try:
        total = await queue_work(app)
        for _ in range(KILLS):
            seen = len(server.state.requests)
            process = bot_process(sqlite_url, str(server.url))
            for _ in range(200):  # kill only once this process is sending
                if len(server.state.requests) > seen:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.7)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        last = bot_process(sqlite_url, str(server.url), "--until-idle")
        code = await asyncio.to_thread(last.wait, 120)
        assert code == 0

        async with app.sessions() as session:
            # The day's automatic posts go out too; the count is of the posts queued here.
            mine = select(Delivery).join(Post).where(Post.source == "manual")
            rows = list(await session.scalars(mine))
        assert len(rows) == total
        statuses = Counter(d.status for d in rows)
        assert set(statuses) <= {"sent", "needs_human"}, statuses  # nothing lost

        received = Counter((m["target"], m["text"]) for m in server.state.messages())
        assert max(received.values()) == 1, received.most_common(3)  # nothing twice
        assert statuses["sent"] <= len(received)
        async with app.sessions() as session:
            outcomes = Counter(await session.scalars(select(Attempt.outcome)))
        assert outcomes[None] > 0  # attempts cut short by a kill: the crashes hit sends in flight
    finally:
        await app.aclose()

"""Real `cdbot run` / `cdbot worker` processes, for the tests that stop or starve one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import App
from bot.db.models import Delivery, Post

FAST = {
    "CDBOT_POLL_SECONDS": "0.2",
    "CDBOT_SETTLE_SECONDS": "0.5",
    "CDBOT_BACKOFF_BASE_SECONDS": "0.2",
    "CDBOT_LOG_LEVEL": "WARNING",
}
# The posts a test queued (`cdbot run` also plans the day's own posts).
MINE = Post.source == "manual"
EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "content/data/example/organisation.yaml"


class Bots:
    """Starts `cdbot` processes with our settings only, all writing to one log file."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "cdbot.log"
        self.started: list[subprocess.Popen[bytes]] = []

    def start(
        self,
        command: str,
        database_url: str,
        sandbox_url: str,
        *args: str,
        settings: dict[str, str] | None = None,
        own_posts: bool = True,
    ) -> subprocess.Popen[bytes]:
        """`cdbot COMMAND ARGS…` in the background; without `own_posts`, no day is planned."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDBOT_")}
        env |= {"CDBOT_DATABASE_URL": database_url, "CDBOT_SANDBOX_URL": sandbox_url}
        # The day's own posts draw cards and fit images: keep those files here.
        env |= {
            "CDBOT_CARDS_DIR": str(self.folder / "cards"),
            "CDBOT_MEDIA_CACHE_DIR": str(self.folder / "media"),
        }
        if not own_posts:
            env["CDBOT_ORG_FILE"] = str(self._without_own_posts())
        env |= FAST | (settings or {})
        with self.log.open("ab") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", command, *args],
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        self.started.append(process)
        return process

    def _without_own_posts(self) -> Path:
        text = EXAMPLE_ORG.read_text(encoding="utf-8")
        for switch in ("legal_update", "calendar"):
            text = text.replace(f"  {switch}: true", f"  {switch}: false")
        path = self.folder / "organisation.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    async def exit_code(self, process: subprocess.Popen[bytes], within: float) -> int:
        """The exit code, waited for (at most `within` seconds) without blocking the loop."""
        return await asyncio.to_thread(process.wait, within)

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


@pytest.fixture
def bots(tmp_path: Path) -> Iterator[Bots]:
    """Start `cdbot` processes; any still running when the test ends is killed."""
    started = Bots(tmp_path)
    yield started
    for process in started.started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def statuses(app: App) -> Counter[str]:
    """How many of the test's deliveries are in each status."""
    query = select(Delivery.status, func.count()).join(Post).where(MINE).group_by(Delivery.status)
    async with app.sessions() as session:
        return Counter({str(status): int(n) for status, n in (await session.execute(query))})


async def wait_for(app: App, status: str, at_least: int, within: float = 60.0) -> int:
    """Wait until at least `at_least` of the test's deliveries are in `status`."""
    for _ in range(int(within / 0.05)):
        count = (await statuses(app))[status]
        if count >= at_least:
            return count
        await asyncio.sleep(0.05)
    raise AssertionError(f"never {at_least} deliveries {status}: {await statuses(app)}")

"""Lateness at a steady rate: how long after its due time a delivery reaches the platform.

    .venv/bin/python bench/lateness.py [--rate 10] [--seconds 120]

Posts fall due at `--rate` a second for `--seconds`, each to its own Zalo group, queued in
a fresh SQLite database before one `cdbot run` starts; the sandbox runs in its own process.
Lateness of a delivery = the time the sandbox accepted its message (it records the time as
it handles the request; without faults or latency each delivery makes one call) minus the
post's due time. Prints p50, p99 and max; it never fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import start_sandbox  # noqa: E402 - after the path is set
from bot.app import App  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.queue import Target  # noqa: E402
from bot.settings import Settings  # noqa: E402
from content.kinds import PostDraft  # noqa: E402

LEAD_SECONDS = 10.0  # the first post is due this long after queuing, so start-up is not counted


async def queue_posts(url: str, total: int, rate: float) -> dict[str, datetime]:
    """Queue `total` posts due `1 / rate` s apart; the due time of each target group."""
    app = App(Settings(_env_file=None, database_url=url, log_level="WARNING"))
    first = datetime.now(UTC) + timedelta(seconds=LEAD_SECONDS)
    due: dict[str, datetime] = {}
    items = []
    for n in range(total):
        group = f"{n:020d}"
        due[group] = first + timedelta(seconds=n / rate)
        draft = PostDraft(
            kind="story",
            title=f"Bài {n}",
            body=f"Nội dung {n}",
            scheduled_at=due[group],
            channels=("zalo_group",),
        )
        items.append((draft, [Target(channel="zalo_group", target_id=group, label=group)]))
    try:
        await app.queue.add_many(items, actor="bench")
    finally:
        await app.aclose()
    return due


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=10.0, help="posts due per second")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--port", type=int, default=8192)
    args = parser.parse_args()
    total = int(args.rate * args.seconds)
    sandbox_url = f"http://127.0.0.1:{args.port}"
    sandbox = start_sandbox(args.port)
    try:
        with tempfile.TemporaryDirectory() as name:
            database = Path(name) / "lateness.sqlite3"
            url = f"sqlite:///{database}"
            upgrade(url)
            due = asyncio.run(queue_posts(url, total, args.rate))
            env = {k: v for k, v in os.environ.items() if not k.startswith("CDBOT_")}
            env |= {
                "CDBOT_DATABASE_URL": url,
                "CDBOT_SANDBOX_URL": sandbox_url,
                "CDBOT_LOG_LEVEL": "WARNING",
            }
            bot = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "run"],
                env=env,
                cwd=name,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                deadline = max(due.values()) + timedelta(seconds=120)
                while datetime.now(UTC) < deadline and bot.poll() is None:
                    time.sleep(1)
                    with sqlite3.connect(database) as conn:
                        row = conn.execute(
                            "SELECT count(*) FROM deliveries WHERE status = 'sent'"
                        ).fetchone()
                    if row[0] >= total:
                        break
            finally:
                bot.send_signal(signal.SIGTERM)
                bot.wait(timeout=60)
        messages = httpx.get(f"{sandbox_url}/_sandbox/messages", timeout=60).json()
    finally:
        sandbox.terminate()
        sandbox.wait()
    late = [
        (datetime.fromisoformat(m["at"]) - due[m["target"]]).total_seconds()
        for m in messages
        if m["target"] in due
    ]
    print(f"{total} posts due at {args.rate:g}/s for {args.seconds:g} s; {len(late)} arrived")
    print(f"{'p50 s':>7} {'p99 s':>7} {'max s':>7} {'min s':>7} {'target p99':>11}")
    print(
        f"{percentile(late, 0.5):>7.3f} {percentile(late, 0.99):>7.3f}"
        f" {max(late):>7.3f} {min(late):>7.3f} {'1.000':>11}"
    )


if __name__ == "__main__":
    main()

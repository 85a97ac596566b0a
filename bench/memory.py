"""Peak memory of `cdbot run`: idle, and while it sends a burst of deliveries.

    .venv/bin/python bench/memory.py [--deliveries 10000] [--idle-seconds 30]

Both phases run `cdbot run` on a fresh SQLite file with its in-process sandbox, Zalo group
messages and no Page gap. Idle: nothing queued, sampled for `--idle-seconds`. Burst:
`--deliveries` queued in the database before the process starts, sampled until every
delivery is final. Every 0.2 s it reads VmRSS and VmHWM (the kernel's peak RSS) of the
process from /proc/<pid>/status. It prints figures; it never fails on a size.
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
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import App  # noqa: E402 - after the path is set
from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Cluster  # noqa: E402
from bot.queue import Target  # noqa: E402
from bot.settings import Settings  # noqa: E402
from content.kinds import PostDraft  # noqa: E402

GROUPS = 20  # one post goes to 20 Zalo groups
FINAL = "('sent', 'failed', 'needs_human', 'cancelled')"


def status_kb(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB."""
    values: dict[str, int] = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


async def queue_burst(url: str, total: int) -> None:
    app = App(Settings(_env_file=None, database_url=url, log_level="WARNING"))
    targets = [
        Target(channel="zalo_group", target_id=f"{n:020x}", label=f"Nhóm {n}")
        for n in range(GROUPS)
    ]
    now = datetime.now(UTC)
    try:
        async with app.sessions.begin() as session:  # the in-process sandbox knows these groups
            for n in range(GROUPS):
                session.add(Cluster(code=f"B{n}", name=f"Cụm {n}", zalo_group_id=f"{n:020x}"))
        for start in range(0, total // GROUPS, 100):
            items = [
                (
                    PostDraft(
                        kind="story",
                        title=f"Bài {n}",
                        body=f"Nội dung {n}",
                        scheduled_at=now,
                        channels=("zalo_group",),
                    ),
                    targets,
                )
                for n in range(start, min(start + 100, total // GROUPS))
            ]
            await app.queue.add_many(items, actor="bench")
    finally:
        await app.aclose()


def count(path: Path, statuses: str) -> int:
    with sqlite3.connect(path) as conn:
        row = conn.execute(f"SELECT count(*) FROM deliveries WHERE status IN {statuses}").fetchone()
    return int(row[0])


def run_phase(
    folder: Path, database: Path, total: int, idle_seconds: float
) -> tuple[int, int, float]:
    """(peak VmHWM kB, last VmRSS kB, seconds) of one `cdbot run` from start to its stop."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CDBOT_")}
    env |= {
        "CDBOT_DATABASE_URL": f"sqlite:///{database}",
        "CDBOT_FACEBOOK_MIN_GAP_SECONDS": "0",
        "CDBOT_ZALO_REQUESTS_PER_MINUTE": "1000000",
        "CDBOT_POLL_SECONDS": "1",
        "CDBOT_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "run"],
        env=env,
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started = time.monotonic()
    peak = rss = 0
    last_check = 0.0
    try:
        while process.poll() is None:
            sample = status_kb(process.pid)
            peak, rss = max(peak, sample.get("VmHWM", 0)), sample.get("VmRSS", 0)
            elapsed = time.monotonic() - started
            if total == 0 and elapsed >= idle_seconds:
                break
            if total and elapsed - last_check >= 1:
                last_check = elapsed
                if count(database, FINAL) >= total:
                    break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"`cdbot run` exited with {process.returncode}")
        return peak, rss, time.monotonic() - started
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--idle-seconds", type=float, default=30.0)
    args = parser.parse_args()
    total = args.deliveries - args.deliveries % GROUPS
    print(f"{'phase':<22} {'peak MB':>8} {'last RSS MB':>12} {'seconds':>8} {'target':>7}")
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        database = folder / "idle.sqlite3"
        upgrade(f"sqlite:///{database}")
        peak, rss, seconds = run_phase(folder, database, 0, args.idle_seconds)
        print(f"{'idle':<22} {peak / 1024:>8.1f} {rss / 1024:>12.1f} {seconds:>8.0f} {'120':>7}")
        database = folder / "burst.sqlite3"
        upgrade(f"sqlite:///{database}")
        asyncio.run(queue_burst(f"sqlite:///{database}", total))
        peak, rss, seconds = run_phase(folder, database, total, 0)
        label = f"burst of {total}"
        sent = count(database, "('sent')")
        print(f"{label:<22} {peak / 1024:>8.1f} {rss / 1024:>12.1f} {seconds:>8.0f} {'250':>7}")
        print(
            f"burst: {sent} deliveries sent (with the day's own plan), {total / seconds:.1f} per s"
        )


if __name__ == "__main__":
    main()

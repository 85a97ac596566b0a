"""Dispatch throughput against a bare httpx loop, side by side, on the sandbox over loopback.

    .venv/bin/python bench/throughput.py [--deliveries 1000] [--latency 0 0.1] [--postgres URL]

For each added sandbox latency it sends the same number of Zalo group messages twice: once
with a bare loop of `concurrency` httpx tasks, once through the whole pipeline (queue in
the database, claim with lease, render, HTTP, record). It prints both rates and their ratio,
and the CPU time the sending process(es) spent per message: on a shared machine the rates
move with the neighbours, the CPU per message much less. At 0 ms it also runs each half
alone: the connector's sends without a database, and (with --postgres) the pipeline with
sends that succeed at once, without HTTP. With --postgres it also runs 1 and 4 `cdbot
worker` processes on PostgreSQL. It prints figures; it never fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import drop_postgres, fresh_postgres, start_sandbox  # noqa: E402
from bot.app import App  # noqa: E402 - after the path is set
from bot.db.migrate import upgrade  # noqa: E402
from bot.db.models import Cluster, Delivery  # noqa: E402
from bot.settings import Settings  # noqa: E402
from connectors.base import Connector, OutboundMessage, Receipt  # noqa: E402
from connectors.sandbox import SANDBOX_ZALO_ACCESS_TOKEN  # noqa: E402
from content.kinds import PostDraft  # noqa: E402

GROUPS = 20
WORKER_LEAD = 6.0  # seconds for the worker processes to start before the posts fall due


@dataclass(frozen=True)
class Rate:
    """Messages per second, and CPU milliseconds the sending process(es) spent per message."""

    per_second: float
    cpu_ms: float


async def bare_loop(url: str, total: int, concurrency: int) -> Rate:
    """A plain httpx loop with the same concurrency."""
    body = {"recipient": {"group_id": "0" * 20}, "message": {"text": "bare"}}
    headers = {"access_token": SANDBOX_ZALO_ACCESS_TOKEN}
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def worker() -> None:
            while not queue.empty():
                queue.get_nowait()
                response = await client.post("/v3.0/oa/group/message", json=body, headers=headers)
                response.raise_for_status()

        started, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return _rate(total, time.perf_counter() - started, time.process_time() - cpu)


async def queue_posts(app: App, total: int, due: datetime | None = None) -> None:
    async with app.sessions.begin() as session:
        for n in range(GROUPS):
            session.add(Cluster(code=f"B{n}", name=f"Cụm {n}", zalo_group_id=f"{n:020x}"))
    for n in range(total // GROUPS):
        draft = PostDraft(
            kind="story",
            title=f"Bài {n}",
            body=f"Nội dung {n}",
            scheduled_at=due or datetime.now(UTC),
            channels=("zalo_group",),
        )
        await app.queue.add(
            draft, actor="bench", approve_for=await app.targets(draft.channels, None)
        )


def settings(database_url: str, sandbox_url: str, concurrency: int) -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        sandbox_url=sandbox_url,
        zalo_concurrency=concurrency,
        zalo_requests_per_minute=1_000_000,  # measure the pipeline, not Zalo's quota
        poll_seconds=0.5,
        log_level="WARNING",
    )


@dataclass
class OffTheWire:
    """A connector whose sends succeed at once, without HTTP: the pipeline's own work."""

    inner: Connector

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def send(self, message: OutboundMessage) -> Receipt:
        return Receipt(remote_id=message.fingerprint)


async def connector_only(url: str, total: int, concurrency: int) -> Rate:
    """The Zalo connector's sends in a loop like the bare one: HTTP as the pipeline makes it."""
    with tempfile.TemporaryDirectory() as folder:
        database_url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
        upgrade(database_url)
        app = App(settings(database_url, url, concurrency))
        try:
            async with app.connectors() as connectors:
                zalo = connectors["zalo"]
                left = iter(range(total))

                async def worker() -> None:
                    for n in left:
                        text = f"Nội dung {n}"
                        await zalo.send(
                            OutboundMessage(
                                channel="zalo_group", target_id="0" * 20, title="", text=text
                            )
                        )

                started, cpu = time.perf_counter(), time.process_time()
                await asyncio.gather(*(worker() for _ in range(concurrency)))
                elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        finally:
            await app.aclose()
    return _rate(total, elapsed, cpu)


async def pipeline(
    database_url: str, sandbox_url: str, total: int, concurrency: int, *, wire: bool = True
) -> Rate:
    """Deliveries through claim, render, HTTP and record, in this process.

    Without `wire`, every send succeeds at once: what is left is the pipeline's own work.
    """
    upgrade(database_url)
    app = App(settings(database_url, sandbox_url, concurrency))
    try:
        await queue_posts(app, total)
        async with app.connectors() as connectors:
            if not wire:
                connectors = {name: OffTheWire(c) for name, c in connectors.items()}
            dispatcher = app.dispatcher(connectors)
            started, cpu = time.perf_counter(), time.process_time()
            await dispatcher.serve(asyncio.Event(), until_idle=True)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        counts = await app.queue.counts()
        assert counts.get("sent", 0) == total, counts
        return _rate(total, elapsed, cpu)
    finally:
        await app.aclose()


async def workers(database_url: str, sandbox_url: str, total: int, count: int) -> Rate:
    """Deliveries with `count` separate `cdbot worker` processes, at steady state.

    The posts fall due `WORKER_LEAD` seconds after the processes start, so their start-up is
    not counted: the rate is `total` over the time from the due time to the last `sent_at`,
    the CPU is what the workers used from the due time to their exit.
    """
    upgrade(database_url)
    app = App(settings(database_url, sandbox_url, 8))
    try:
        due = datetime.now(UTC) + timedelta(seconds=WORKER_LEAD)
        await queue_posts(app, total, due)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CDBOT_")}
        env |= {
            "CDBOT_DATABASE_URL": database_url,
            "CDBOT_SANDBOX_URL": sandbox_url,
            "CDBOT_POLL_SECONDS": "0.5",
            "CDBOT_ZALO_REQUESTS_PER_MINUTE": "1000000",
            "CDBOT_LOG_LEVEL": "WARNING",
        }
        children_before = _children_cpu()
        processes = [
            subprocess.Popen(  # noqa: ASYNC220 - started once, awaited in a thread below
                [sys.executable, "-m", "bot.cli", "worker", "--until-idle"],
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
            )
            for _ in range(count)
        ]
        await asyncio.sleep((due - datetime.now(UTC)).total_seconds())
        cpu_at_due = sum(_cpu_seconds(p.pid) for p in processes)
        for process in processes:
            await asyncio.to_thread(process.wait)
        cpu = _children_cpu() - children_before - cpu_at_due
        async with app.sessions() as session:
            sent, last = (
                await session.execute(
                    select(func.count(), func.max(Delivery.sent_at)).where(
                        Delivery.status == "sent"
                    )
                )
            ).one()
        assert sent == total and last is not None, (sent, total)
        return _rate(total, (last - due).total_seconds(), cpu)
    finally:
        await app.aclose()


def _rate(total: int, seconds: float, cpu_seconds: float) -> Rate:
    return Rate(total / seconds, cpu_seconds / total * 1000)


def _cpu_seconds(pid: int) -> float:
    """User and system CPU a running process has used so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def row(latency: float, setup: str, rate: Rate, bare: Rate, note: str = "") -> None:
    print(
        f"{latency * 1000:>6.0f}ms {setup:<24} {rate.per_second:>8.1f} "
        f"{rate.per_second / bare.per_second:>6.2f} {rate.cpu_ms:>7.2f}  {note}"
    )


def configure(url: str, **values: float) -> None:
    httpx.post(f"{url}/_sandbox/config", json=values).raise_for_status()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1000)
    parser.add_argument("--latency", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--postgres", help="admin URL, e.g. postgresql://postgres@127.0.0.1/postgres"
    )
    parser.add_argument("--port", type=int, default=8191)
    args = parser.parse_args()
    created: list[str] = []

    def database() -> str:
        """A fresh PostgreSQL database for one run, dropped at the end."""
        name, database_url = fresh_postgres(args.postgres)
        created.append(name)
        return database_url

    sandbox = start_sandbox(args.port)
    url = f"http://127.0.0.1:{args.port}"
    configure(url, zalo_rate_per_minute=10_000_000)
    try:
        print(f"{args.deliveries} Zalo group messages, concurrency {args.concurrency}")
        print(f"{'latency':>8} {'setup':<24} {'msg/s':>8} {'ratio':>6} {'cpu ms':>7}")
        for latency in args.latency:
            configure(url, latency_seconds=latency)
            total = args.deliveries if latency == 0 else max(200, args.deliveries // 4)
            total -= total % GROUPS  # whole posts: one message per cluster group
            bare = await bare_loop(url, total, args.concurrency)
            row(latency, "bare httpx loop", bare, bare)
            if latency == 0:  # what each half of the pipeline costs alone
                alone = await connector_only(url, total, args.concurrency)
                row(latency, "connector alone, no DB", alone, bare)
                if args.postgres:
                    own = await pipeline(database(), url, total, args.concurrency, wire=False)
                    row(latency, "pipeline, PG, no HTTP", own, bare)
            with tempfile.TemporaryDirectory() as folder:
                sqlite = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
                rate = await pipeline(sqlite, url, total, args.concurrency)
            row(latency, "pipeline, SQLite", rate, bare)
            if args.postgres:
                rate = await pipeline(database(), url, total, args.concurrency)
                row(latency, "pipeline, PostgreSQL", rate, bare)
                many = args.deliveries - args.deliveries % GROUPS  # steady state needs a run
                one = await workers(database(), url, many, 1)
                four = await workers(database(), url, many, 4)
                row(latency, "1 worker process, PG", one, bare)
                scaling = four.per_second / one.per_second
                row(latency, "4 worker processes, PG", four, bare, f"{scaling:.2f}x one worker")
    finally:
        sandbox.terminate()
        sandbox.wait()
        for name in created:
            drop_postgres(args.postgres, name)


if __name__ == "__main__":
    asyncio.run(main())

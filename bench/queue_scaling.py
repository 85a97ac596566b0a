"""The claim's cost as the deliveries table grows, on SQLite and PostgreSQL.

    .venv/bin/python bench/queue_scaling.py [--sizes 10000,100000,1000000] [--claims 200]
                                            [--batch 8] [--postgres URL | --no-postgres]

For each size it fills a fresh database with that many Zalo group deliveries, written
directly with one INSERT … SELECT: all `sent` except `--pending` (10,000) that are `pending`
and due. Then it times `--claims` calls of `PostQueue.claim` for `--batch` deliveries each,
as the dispatcher makes them, and prints the median and p95 per claim, the ratio of the
largest size to the smallest, and the query plan of the claim statement. It also times the
two other statements of a dispatcher loop pass: the next-due read (`due_times`)
and the sweep of abandoned sends (`sweep`), median of as many calls. PostgreSQL gets a
VACUUM ANALYZE after the load (what autovacuum would do); SQLite gets nothing, as in use.
It prints figures; it never fails on a timing.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event, text  # noqa: E402 - after the path is set

from bench.common import drop_postgres, fresh_postgres  # noqa: E402
from bot.app import App  # noqa: E402
from bot.db.migrate import upgrade  # noqa: E402
from bot.settings import Settings  # noqa: E402
from content.kinds import PostDraft  # noqa: E402

ACCOUNT = "zalo"
# One statement; rows 1..:pending are pending and due, the rest were sent long ago.
FILL = {
    "postgresql": """
        INSERT INTO deliveries (post_id, channel, target_id, target_label, account, status,
                                next_attempt_at, attempts, resends, sent_at)
        SELECT :post, 'zalo_group', n::text, 'nhóm', 'zalo',
               CASE WHEN n <= :pending THEN 'pending' ELSE 'sent' END,
               now() - make_interval(secs => n), CASE WHEN n <= :pending THEN 0 ELSE 1 END, 0,
               CASE WHEN n <= :pending THEN NULL ELSE now() - make_interval(secs => n) END
        FROM generate_series(1, :total) AS n
    """,
    "sqlite": """
        WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < :total)
        INSERT INTO deliveries (post_id, channel, target_id, target_label, account, status,
                                next_attempt_at, attempts, resends, sent_at)
        SELECT :post, 'zalo_group', CAST(n AS TEXT), 'nhóm', 'zalo',
               CASE WHEN n <= :pending THEN 'pending' ELSE 'sent' END,
               strftime('%Y-%m-%d %H:%M:%f', 'now', -n || ' seconds') || '000',
               CASE WHEN n <= :pending THEN 0 ELSE 1 END, 0,
               CASE WHEN n <= :pending THEN NULL
                    ELSE strftime('%Y-%m-%d %H:%M:%f', 'now', -n || ' seconds') || '000' END
        FROM s
    """,
}
EXPLAIN = {"postgresql": "EXPLAIN ", "sqlite": "EXPLAIN QUERY PLAN "}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def timed(calls: int, work: Any) -> list[float]:
    """Milliseconds of each of `calls` awaits of `work()`."""
    timings: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        await work()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


async def measure(
    url: str, total: int, pending: int, claims: int, batch: int, explain: bool
) -> tuple[float, float, float, float, float, list[str]]:
    """(fill s, claim median and p95 ms, next-due and sweep median ms, plan) for `total` rows."""
    upgrade(url)
    app = App(Settings(_env_file=None, database_url=url, log_level="WARNING"))
    backend = app.engine.dialect.name
    try:
        draft = PostDraft(
            kind="story", title="Bài", body="Nội dung", scheduled_at=datetime.now(UTC)
        )
        post = await app.queue.add(draft, actor="bench")
        started = time.perf_counter()
        async with app.engine.begin() as conn:
            await conn.execute(
                text(FILL[backend]), {"post": post.id, "pending": pending, "total": total}
            )
        if backend == "postgresql":
            async with app.engine.connect() as conn:
                await (await conn.execution_options(isolation_level="AUTOCOMMIT")).execute(
                    text("VACUUM ANALYZE deliveries")
                )
        filled = time.perf_counter() - started

        async def claim() -> None:
            got = await app.queue.claim(ACCOUNT, batch, worker="bench", lease_seconds=300)
            assert len(got) == batch, len(got)

        timings = await timed(claims, claim)
        next_due = statistics.median(
            await timed(claims, lambda: app.queue.due_times((ACCOUNT, "facebook")))
        )
        sweep = statistics.median(await timed(claims, app.queue.sweep))
        plan = await claim_plan(app, backend) if explain else []
        median, p95 = statistics.median(timings), percentile(timings, 0.95)
        return filled, median, p95, next_due, sweep, plan
    finally:
        await app.aclose()


async def claim_plan(app: App, backend: str) -> list[str]:
    """The plan of the statement `claim` sends, caught on its way to the driver."""
    seen: list[tuple[str, Any]] = []

    def catch(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE DELIVERIES"):
            seen.append((statement, parameters))

    event.listen(app.engine.sync_engine, "before_cursor_execute", catch)
    try:
        await app.queue.claim(ACCOUNT, 8, worker="bench", lease_seconds=300)
    finally:
        event.remove(app.engine.sync_engine, "before_cursor_execute", catch)
    statement, parameters = seen[0]
    async with app.engine.connect() as conn:
        result = await conn.exec_driver_sql(EXPLAIN[backend] + statement, parameters)
        rows: list[tuple[Any, ...]] = [tuple(row) for row in result]
    if backend == "sqlite":  # (id, parent, notused, detail)
        return [f"{row[0]:>3} {row[1]:>3}  {row[3]}" for row in rows]
    return [str(row[0]) for row in rows]


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated")
    parser.add_argument("--pending", type=int, default=10_000, help="due rows in each size")
    parser.add_argument("--claims", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8, help="deliveries per claim")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    backends = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
    print(f"{args.claims} claims of {args.batch}, {args.pending} pending rows in each size")
    print(
        f"{'backend':<11} {'rows':>9} {'fill s':>7} {'median ms':>10} {'p95 ms':>7}"
        f" {'next-due ms':>12} {'sweep ms':>9}"
    )
    plans: dict[str, list[str]] = {}
    for backend in backends:
        medians: list[float] = []
        for size in sizes:
            last = size == sizes[-1]
            with tempfile.TemporaryDirectory() as folder:
                name = ""
                if backend == "sqlite":
                    url = f"sqlite:///{Path(folder) / 'bench.sqlite3'}"
                else:
                    name, url = fresh_postgres(args.postgres)
                try:
                    filled, median, p95, next_due, sweep, plan = await measure(
                        url, size, min(args.pending, size), args.claims, args.batch, last
                    )
                finally:
                    if name:
                        drop_postgres(args.postgres, name)
            medians.append(median)
            if plan:
                plans[backend] = plan
            print(
                f"{backend:<11} {size:>9} {filled:>7.1f} {median:>10.2f} {p95:>7.2f}"
                f" {next_due:>12.2f} {sweep:>9.2f}"
            )
        if len(sizes) > 1:
            ratio = medians[-1] / medians[0]
            print(f"{backend:<11} median {sizes[-1]} / {sizes[0]} rows: {ratio:.2f}x")
    for backend, plan in plans.items():
        print(f"\nquery plan of the claim, {backend}, {sizes[-1]} rows:")
        for line in plan:
            print("  " + line)


if __name__ == "__main__":
    asyncio.run(main())

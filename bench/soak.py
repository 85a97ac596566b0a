"""Crash soak: bot processes killed with SIGKILL at random while they send, then an audit.

    .venv/bin/python bench/soak.py [--deliveries 10000] [--processes 4] [--kill-every 2]
                                   [--kill-for 180] [--backend postgresql|sqlite]

PostgreSQL (default): four `cdbot worker` processes on a fresh database; every
`--kill-every` seconds one of them, chosen at random, is killed and started again, for
`--kill-for` seconds and after that while deliveries still wait to be taken (stopping
early when all is done). SQLite: one `cdbot run` process, killed every 5 s. The sandbox
runs in its own process. Then every delivery must be final within lease
+ sweep + 60 s of the last kill, the sandbox must hold no message twice, `sent` must mean
landed, whatever waits for a person must say why, and no secret may appear in the DEBUG
logs or the database's error columns. Prints the figures; exits 1 when the promise broke.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.db.migrate import upgrade  # noqa: E402 - after the path is set
from tests.integration.soak import WRITE_FAULTS, SoakPlan, run_soak  # noqa: E402

DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_execute(admin_url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.encode())  # the names are ours


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--postgres", default=DEFAULT_POSTGRES, help="admin URL of the server")
    parser.add_argument("--deliveries", type=int, default=10_000)
    parser.add_argument("--processes", type=int, help="default 4 (PostgreSQL), 1 (SQLite)")
    parser.add_argument("--kill-every", type=float, help="seconds; default 2 (PG), 5 (SQLite)")
    parser.add_argument(
        "--kill-for", type=float, default=180.0, help="seconds of killing at least (0: none)"
    )
    parser.add_argument("--lease", type=int, default=15, help="CDBOT_LEASE_SECONDS")
    parser.add_argument("--latency", type=float, default=0.02, help="sandbox latency, seconds")
    parser.add_argument("--no-faults", action="store_true", help="kills only, no write faults")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--keep", action="store_true", help="keep the database, the logs and the sandbox's state"
    )
    return parser.parse_args()


async def main() -> int:
    args = arguments()
    sqlite = args.backend == "sqlite"
    work_dir = Path(tempfile.mkdtemp(prefix="cdbot-soak-"))
    database = f"cdbot_soak_{uuid.uuid4().hex[:8]}"
    if sqlite:
        url = f"sqlite:///{work_dir / 'soak.sqlite3'}"
    else:
        _admin_execute(args.postgres, f'CREATE DATABASE "{database}"')
        url = args.postgres.rsplit("/", 1)[0] + f"/{database}"
    plan = SoakPlan(
        database_url=url,
        work_dir=work_dir,
        deliveries=args.deliveries,
        processes=args.processes or (1 if sqlite else 4),
        command="run" if sqlite else "worker",
        kill_every=args.kill_every or (5.0 if sqlite else 2.0),
        kill_for=args.kill_for,
        lease_seconds=args.lease,
        latency=args.latency,
        faults={} if args.no_faults else dict(WRITE_FAULTS),
        seed=args.seed,
        save_sandbox_state=args.keep,
    )
    print(
        f"{plan.deliveries} deliveries, {plan.processes} × `cdbot {plan.command}` on"
        f" {args.backend}, one killed every {plan.kill_every:g} s for {plan.kill_for:g} s"
        f" and then while work waits, lease {plan.lease_seconds} s"
    )
    try:
        upgrade(url)
        report = await run_soak(plan)
    finally:
        if not args.keep:
            shutil.rmtree(work_dir, ignore_errors=True)
            if not sqlite:
                _admin_execute(args.postgres, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    for line in report.lines():
        print(line)
    if args.keep:
        print(f"logs: {work_dir}; database: {url}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

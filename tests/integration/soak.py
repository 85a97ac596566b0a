"""A crash soak: bot processes SIGKILLed at random while they send to a sandbox process.

`bench/soak.py` runs it full size and prints the figures; `tests/integration/test_soak.py`
runs a short form in CI. The checks at the end are the promise (`promise.py`): every
delivery final, never two messages for one delivery at the sandbox, `sent` only for what
landed, a reason on everything left to a person, no secret in the DEBUG logs or the error
columns, and the bot's files readable by their owner only.
"""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from bot.app import App
from bot.db.models import (
    TERMINAL,
    Attempt,
    Cluster,
    ClusterAdmin,
    Delivery,
    Post,
)
from bot.dispatcher import SWEEP_EVERY
from bot.queue import Target
from bot.settings import Settings
from content.kinds import PostDraft
from tests.integration.promise import (
    SANDBOX_SECRETS,
    error_texts,
    find_secrets,
    landing_problems,
    read_logs,
    sqlite_files,
    too_open,
    unfinished,
)

CHANNELS = ("facebook_page", "zalo_group", "zalo_user")
ADMINS_PER_CLUSTER = 2  # a post goes to the Page, its cluster's group and two admins
# Sends are slow now and then (so kills find them in flight); a few land and lose their
# answer, or the connection is cut before or after the sandbox acts on them.
WRITE_FAULTS = {"delay": 0.2, "commit_then_error": 0.02, "commit_then_reset": 0.01, "drop": 0.01}
WRITE_ROUTES = ("fb.feed", "zalo.group_message", "zalo.cs_message")
BOOT_TIMEOUT = 30.0
# No delivery final for this long while killing: the bot does not work at all; give up.
STALL_SECONDS = 120.0


@dataclass(frozen=True)
class SoakPlan:
    """What to run: how much work, how many processes, how often and how long to kill."""

    database_url: str
    work_dir: Path
    deliveries: int = 10_000
    processes: int = 4
    command: str = "worker"  # `cdbot run` for the one-process SQLite form
    kill_every: float = 2.0
    kill_for: float = 180.0
    lease_seconds: int = 15
    latency: float = 0.02
    faults: Mapping[str, float] = field(default_factory=lambda: dict(WRITE_FAULTS))
    seed: int = 1
    save_sandbox_state: bool = False  # sandbox-state.json in work_dir, to look into a failure


@dataclass
class SoakReport:
    """What happened, and what broke the promise (`problems`, empty when it held)."""

    deliveries: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    kills: int = 0
    held_at_kills: Counter[str] = field(default_factory=Counter)
    kill_seconds: float = 0.0
    tail_seconds: float = 0.0
    tail_limit: float = 0.0
    total_seconds: float = 0.0
    reconciled: int = 0
    resent: int = 0
    needs_human_reasons: Counter[str] = field(default_factory=Counter)
    landed: int = 0
    log_bytes: int = 0
    error_texts: int = 0
    problems: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """The figures, one per line."""
        rate = self.deliveries / self.total_seconds if self.total_seconds else 0.0
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(self.statuses.items()))
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.needs_human_reasons.items()))
        held = self.held_at_kills
        return [
            f"deliveries: {self.deliveries} ({statuses})",
            f"kills: {self.kills} in {self.kill_seconds:.0f} s; the killed processes held"
            f" {held['sending']} sends on the wire and {held['claimed']} claims",
            f"all final {self.tail_seconds:.1f} s after the last kill (limit"
            f" {self.tail_limit:.0f} s); {self.total_seconds:.0f} s in all,"
            f" {rate:.1f} deliveries/s",
            f"in doubt, then: found and marked sent {self.reconciled}; proven absent and"
            f" sent again {self.resent}; left to a person {sum(self.needs_human_reasons.values())}"
            f" ({reasons or 'none'})",
            f"messages at the sandbox: {self.landed}; secrets looked for in {self.log_bytes}"
            f" bytes of DEBUG logs and {self.error_texts} error, note and outcome values",
            "PASS" if not self.problems else "FAIL: " + "; ".join(self.problems),
        ]


# ---- the sandbox in its own process ------------------------------------------------------


def free_port() -> int:
    """A port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def start_sandbox(work_dir: Path) -> tuple[asyncio.subprocess.Process, str]:
    """`cdbot sandbox` on a free port, once it answers."""
    port = free_port()
    with open_log(work_dir / "sandbox.log") as log:
        process = await asyncio.create_subprocess_exec(
            *bot_command("sandbox", "--port", str(port)),
            stdout=log,
            stderr=log,
            cwd=work_dir,
            env=clean_env(),
        )
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline and process.returncode is None:
            try:
                (await http.get("/_sandbox/messages")).raise_for_status()
                return process, url
            except httpx.HTTPError:
                await asyncio.sleep(0.1)
    if process.returncode is None:
        process.kill()
    await process.wait()
    tail = (work_dir / "sandbox.log").read_text(errors="replace").strip().splitlines()[-3:]
    raise RuntimeError("the sandbox did not start: " + " | ".join(tail))


async def configure_sandbox(url: str, plan: SoakPlan) -> None:
    """No budgets to run into, some latency, and the write faults."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        config = {
            "fb_call_budget": 10**9,
            "zalo_rate_per_minute": 10**9,
            "enforce_night_hours": False,
            "latency_seconds": plan.latency,
        }
        (await http.post("/_sandbox/config", json=config)).raise_for_status()
        for n, route in enumerate(WRITE_ROUTES):
            body = {"route": route, "rates": dict(plan.faults), "seed": plan.seed + n}
            if "delay" in plan.faults:
                body["fields"] = {"delay": {"seconds": 0.3}}
            (await http.post("/_sandbox/random_faults", json=body)).raise_for_status()


async def sandbox_messages(url: str) -> list[dict[str, Any]]:
    """Every message the sandbox accepted."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as http:
        response = await http.get("/_sandbox/messages")
        response.raise_for_status()
        messages: list[dict[str, Any]] = response.json()
        return messages


async def save_state(url: str, path: Path) -> None:
    """The sandbox's whole state (messages and every request) as JSON."""
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        response = await http.get("/_sandbox/state")
        response.raise_for_status()
        await asyncio.to_thread(path.write_bytes, response.content)


# ---- bot processes -----------------------------------------------------------------------


def bot_command(*args: str) -> list[str]:
    """`cdbot …` with this interpreter."""
    return [sys.executable, "-m", "bot.cli", *args]


def clean_env() -> dict[str, str]:
    """The environment without any CDBOT_ setting of the caller's."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CDBOT_")}


@dataclass
class Fleet:
    """The bot processes of a soak; each start logs to its own file."""

    plan: SoakPlan
    sandbox_url: str
    secrets: Mapping[str, str]
    processes: dict[int, asyncio.subprocess.Process] = field(default_factory=dict)
    logs: list[Path] = field(default_factory=list)
    log_of: dict[int, Path] = field(default_factory=dict)
    starts: int = 0

    def env(self) -> dict[str, str]:
        """Settings for every bot process: fast polls, no Page gap, DEBUG logs, secrets set."""
        env = clean_env() | {
            "CDBOT_DATABASE_URL": self.plan.database_url,
            "CDBOT_SANDBOX_URL": self.sandbox_url,
            "CDBOT_LEASE_SECONDS": str(self.plan.lease_seconds),
            "CDBOT_POLL_SECONDS": "0.5",
            "CDBOT_SETTLE_SECONDS": "1",
            "CDBOT_BACKOFF_BASE_SECONDS": "0.5",
            "CDBOT_HTTP_TIMEOUT_SECONDS": "5",
            "CDBOT_FACEBOOK_MIN_GAP_SECONDS": "0",
            "CDBOT_ZALO_REQUESTS_PER_MINUTE": "1000000",
            "CDBOT_LOG_LEVEL": "DEBUG",
        }
        return env | {f"CDBOT_{name}": value for name, value in self.secrets.items()}

    async def start(self, slot: int) -> None:
        """Start (or restart) the process in `slot`."""
        self.starts += 1
        path = self.plan.work_dir / f"{self.plan.command}-{slot}-{self.starts}.log"
        self.logs.append(path)
        self.log_of[slot] = path
        with open_log(path) as log:
            self.processes[slot] = await asyncio.create_subprocess_exec(
                *bot_command(self.plan.command),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=log,
                cwd=self.plan.work_dir,  # no stray .env is read
                env=self.env(),
            )

    async def restart_exited(self) -> list[str]:
        """Start again any process that ended by itself, and say so (it should not)."""
        problems: list[str] = []
        for slot, process in self.processes.items():
            if process.returncode is not None:
                log = self.log_of[slot].name
                problems.append(f"`cdbot {self.plan.command}` exited by itself ({log})")
                await self.start(slot)
        return problems

    async def kill(self, slot: int) -> None:
        """SIGKILL the process in `slot` and reap it."""
        process = self.processes[slot]
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()

    async def stop(self) -> None:
        """SIGTERM every process; SIGKILL what has not stopped within a minute."""
        for process in self.processes.values():
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes.values():
            try:
                await asyncio.wait_for(process.wait(), 60)
            except TimeoutError:
                process.kill()
                await process.wait()


# ---- the work ----------------------------------------------------------------------------


async def queue_deliveries(app: App, deliveries: int) -> int:
    """Posts to the Page, a cluster's group and its two admins, round the clusters."""
    posts = max(1, deliveries // (2 + ADMINS_PER_CLUSTER))
    clusters = max(1, min(50, posts // 10))
    async with app.sessions.begin() as session:
        for n in range(clusters):
            cluster = Cluster(code=f"S{n}", name=f"Cụm {n}", zalo_group_id=f"{n + 1:020x}")
            session.add(cluster)
            await session.flush()
            for a in range(ADMINS_PER_CLUSTER):
                user = f"8{n:06d}{a}"
                session.add(
                    ClusterAdmin(cluster_id=cluster.id, name=f"QTV {n}.{a}", zalo_user_id=user)
                )
    targets = {n: await app.targets(CHANNELS, (f"S{n}",)) for n in range(clusters)}
    now = datetime.now(UTC)
    batch: list[tuple[PostDraft, Sequence[Target] | None]] = []
    for n in range(posts):
        draft = PostDraft(
            kind="story",
            title=f"Tin thử tải số {n}",
            body=f"Nội dung thử tải số {n}.",
            scheduled_at=now,
            channels=CHANNELS,
            clusters=(f"S{n % clusters}",),
        )
        batch.append((draft, targets[n % clusters]))
        if len(batch) == 100 or n == posts - 1:
            await app.queue.add_many(batch, actor="soak")
            batch = []
    return sum(len(t) for t in (targets[n % clusters] for n in range(posts)))


async def manual_statuses(app: App) -> Counter[str]:
    """Deliveries of the posts queued here (not the bot's own), by status."""
    query = (
        select(Delivery.status, func.count())
        .join(Post)
        .where(Post.source == "manual")
        .group_by(Delivery.status)
    )
    async with app.sessions() as session:
        rows = (await session.execute(query)).all()
    return Counter({str(status): int(n) for status, n in rows})


async def held_by(app: App, pid: int | None) -> Counter[str]:
    """What the process `pid` holds a lease on now, by status (worker names hold the pid)."""
    query = (
        select(Delivery.status, func.count())
        .where(Delivery.lease_owner.like(f"%:{pid}:%"))
        .group_by(Delivery.status)
    )
    async with app.sessions() as session:
        rows = (await session.execute(query)).all()
    return Counter({str(status): int(n) for status, n in rows})


def all_final(statuses: Counter[str]) -> bool:
    """True when no delivery is left in a live state."""
    return set(statuses) <= {str(s) for s in TERMINAL}


def waiting(statuses: Counter[str]) -> int:
    """Deliveries no process has taken yet."""
    return statuses["pending"] + statuses["retry_wait"]


def live(statuses: Counter[str]) -> int:
    """Deliveries not final yet."""
    return sum(n for status, n in statuses.items() if status not in TERMINAL)


async def run_soak(plan: SoakPlan) -> SoakReport:
    """Queue, start the processes, kill one at random every `kill_every` s, then audit."""
    report = SoakReport()
    plan.work_dir.mkdir(parents=True, exist_ok=True)
    sandbox, url = await start_sandbox(plan.work_dir)
    app = App(Settings(_env_file=None, database_url=plan.database_url, sandbox_url=url))
    run_secrets = {
        name: secrets.token_urlsafe(24)
        for name in ("SECRET_KEY", "ZALO_OA_SECRET_KEY", "FACEBOOK_APP_SECRET")
    }
    fleet = Fleet(plan, url, run_secrets)
    try:
        await configure_sandbox(url, plan)
        expected = await queue_deliveries(app, plan.deliveries)
        started = time.monotonic()
        for slot in range(plan.processes):
            await fleet.start(slot)
        await kill_phase(app, fleet, report, started)
        await wait_final(app, fleet, report, started)
        await fleet.stop()
        messages = await sandbox_messages(url)
        if plan.save_sandbox_state:
            await save_state(url, plan.work_dir / "sandbox-state.json")
        await audit(app, report, expected, messages)
        secret_values = {**SANDBOX_SECRETS, **{f"CDBOT_{k}": v for k, v in run_secrets.items()}}
        report.log_bytes = sum(path.stat().st_size for path in fleet.logs)
        columns = await error_texts(app)
        report.error_texts = len(columns)
        report.problems += find_secrets(read_logs(fleet.logs), secret_values)
        report.problems += find_secrets(columns, secret_values)
        report.problems += too_open(data_files(plan))
    finally:
        await fleet.stop()
        if sandbox.returncode is None:
            sandbox.terminate()
        await sandbox.wait()
        await app.aclose()
    return report


async def kill_phase(app: App, fleet: Fleet, report: SoakReport, started: float) -> None:
    """Kill a process at random every `kill_every` s (`report.kill_seconds`: the last kill).

    Killing goes on for `kill_for` seconds, and after that while deliveries still wait to be
    taken (a slow machine must not turn throughput into "lost"); it stops as soon as all is
    final, or when nothing has become final for `STALL_SECONDS`. `kill_for` 0 kills nothing.
    """
    plan, rng = fleet.plan, random.Random(fleet.plan.seed)
    last_kill = progress_at = started
    finals = 0
    while plan.kill_for > 0:
        await asyncio.sleep(plan.kill_every)
        statuses = await manual_statuses(app)
        now = time.monotonic()
        if all_final(statuses) or (now - started >= plan.kill_for and not waiting(statuses)):
            break
        if (done := sum(statuses.values()) - live(statuses)) > finals:
            finals, progress_at = done, now
        if now - progress_at > STALL_SECONDS:
            report.problems.append(f"nothing became final for {STALL_SECONDS:.0f} s")
            break
        report.problems += await fleet.restart_exited()
        slot = rng.randrange(plan.processes)
        report.held_at_kills += await held_by(app, fleet.processes[slot].pid)
        await fleet.kill(slot)
        report.kills += 1
        last_kill = time.monotonic()
        await fleet.start(slot)
    report.kill_seconds = last_kill - started


async def wait_final(app: App, fleet: Fleet, report: SoakReport, started: float) -> None:
    """Wait until all is final: within lease + sweep + 60 s of the last kill, if any."""
    last_kill = started + report.kill_seconds
    report.tail_limit = fleet.plan.lease_seconds + SWEEP_EVERY + 60
    if not report.kills:  # a run without kills: the time is the workload's, not a bound
        report.tail_limit = 3600
    while not all_final(statuses := await manual_statuses(app)):
        if time.monotonic() > last_kill + report.tail_limit:
            report.problems.append(f"not final by lease + sweep + 60 s: {dict(statuses)}")
            break
        await asyncio.sleep(0.5)
    done = time.monotonic()
    report.tail_seconds = max(0.0, done - last_kill)
    report.total_seconds = done - started


# ---- the checks --------------------------------------------------------------------------


async def audit(
    app: App, report: SoakReport, expected: int, messages: list[dict[str, Any]]
) -> None:
    """Fill the report's counts and problems from the database and the sandbox's messages."""
    async with app.sessions() as session:
        mine = list(
            await session.scalars(select(Delivery).join(Post).where(Post.source == "manual"))
        )
        every = list(await session.scalars(select(Delivery)))
        outcomes = Counter(await session.scalars(select(Attempt.outcome)))
    report.deliveries = len(mine)
    report.statuses = Counter(d.status for d in mine)
    report.reconciled = outcomes["reconciled"]
    report.resent = sum(1 for d in mine if d.resends)
    report.landed = len(messages)
    report.needs_human_reasons = Counter(
        d.last_error_code or "?" for d in mine if d.status == "needs_human"
    )
    if len(mine) != expected:
        report.problems.append(f"{len(mine)} deliveries, {expected} queued")
    report.problems += unfinished(mine) + landing_problems(every, messages)


def data_files(plan: SoakPlan) -> list[Path]:
    """Files the bot made: its SQLite database and what it keeps under data/."""
    paths = [path for path in (plan.work_dir / "data").rglob("*") if path.is_file()]
    url = make_url(plan.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        paths += sqlite_files(Path(url.database))
    return paths


def open_log(path: Path) -> IO[bytes]:
    """A log file only its owner can read (logs quote message texts)."""
    return os.fdopen(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_APPEND, 0o600), "ab")

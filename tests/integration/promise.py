"""The promise every reliability test checks: nothing lost, nothing twice, no secret shown.

Pure checks over what the database holds and what the sandbox accepted, shared by the
crash soak (`soak.py`) and the network fault test.
"""

from __future__ import annotations

import stat
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bot.app import App
from bot.db.models import (
    TERMINAL,
    Account,
    Attempt,
    AuditEntry,
    Credential,
    Delivery,
    JobRun,
)
from connectors.sandbox import (
    SANDBOX_PAGE_TOKEN,
    SANDBOX_ZALO_ACCESS_TOKEN,
    SANDBOX_ZALO_APP_SECRET,
    SANDBOX_ZALO_REFRESH_TOKEN,
)

SANDBOX_SECRETS = {
    "SANDBOX_PAGE_TOKEN": SANDBOX_PAGE_TOKEN,
    "SANDBOX_ZALO_ACCESS_TOKEN": SANDBOX_ZALO_ACCESS_TOKEN,
    "SANDBOX_ZALO_REFRESH_TOKEN": SANDBOX_ZALO_REFRESH_TOKEN,
    "SANDBOX_ZALO_APP_SECRET": SANDBOX_ZALO_APP_SECRET,
}


def unfinished(deliveries: Sequence[Delivery]) -> list[str]:
    """Deliveries left in a live state (lost, if nothing is running any more)."""
    live = Counter(d.status for d in deliveries if d.status not in TERMINAL)
    return [f"not final: {dict(live)}"] if live else []


def landing_problems(
    deliveries: Sequence[Delivery], messages: Sequence[Mapping[str, Any]]
) -> list[str]:
    """Compare every delivery with what the sandbox accepted: twice, or `sent` but absent.

    A message may land for a delivery not marked sent only if it waits for a person (or is
    still live, like the bot's own broadcast waiting for the morning).
    """
    problems: list[str] = []
    twice = [
        k
        for k, n in Counter((m["channel"], m["target"], m["text"]) for m in messages).items()
        if n > 1
    ]
    if twice:
        problems.append(f"{len(twice)} messages at the sandbox more than once")
    landed = {str(m["remote_id"]) for m in messages}
    sent = [d.remote_id for d in deliveries if d.status == "sent"]
    if len(set(sent)) != len(sent):
        problems.append("two sent deliveries share one remote id")
    ghosts = [r for r in sent if r not in landed]
    if ghosts:
        problems.append(f"{len(ghosts)} deliveries sent that the sandbox never accepted")
    unexplained = [d.id for d in deliveries if d.status == "needs_human" and not d.last_error]
    if unexplained:
        problems.append(f"{len(unexplained)} needs_human without a reason")
    orphans = len(landed - set(sent))
    waiting = sum(1 for d in deliveries if d.status == "needs_human" or d.status not in TERMINAL)
    if orphans > waiting:
        problems.append(f"{orphans} messages landed for deliveries not marked sent")
    return problems


async def error_texts(app: App) -> list[tuple[str, str]]:
    """(where, text) for every error, note and outcome column, and the stored credentials."""
    columns = {
        "deliveries.last_error": Delivery.last_error,
        "deliveries.last_error_code": Delivery.last_error_code,
        "attempts.error": Attempt.error,
        "attempts.error_code": Attempt.error_code,
        "job_runs.outcome": JobRun.outcome,
        "accounts.note": Account.note,
        "audit_log.detail": AuditEntry.detail,
        "credentials.access_token": Credential.access_token,
        "credentials.refresh_token": Credential.refresh_token,
    }
    found: list[tuple[str, str]] = []
    async with app.sessions() as session:
        for where, column in columns.items():
            values = await session.scalars(select(column).where(column.is_not(None)))
            found += [(where, str(value)) for value in values]
    return found


def read_logs(paths: Iterable[Path]) -> Iterable[tuple[str, str]]:
    """(file name, text) of each log, read lazily."""
    for path in paths:
        yield path.name, path.read_text(encoding="utf-8", errors="replace")


def find_secrets(texts: Iterable[tuple[str, str]], secret_values: Mapping[str, str]) -> list[str]:
    """'NAME in where' for each secret found; the secret itself is never repeated."""
    hits: set[str] = set()
    for where, text in texts:
        hits |= {f"{name} in {where}" for name, value in secret_values.items() if value in text}
    return sorted(hits)


def sqlite_files(database: Path) -> list[Path]:
    """A SQLite database and its write-ahead log and shared-memory files."""
    return [Path(f"{database}{suffix}") for suffix in ("", "-wal", "-shm")]


def too_open(paths: Iterable[Path]) -> list[str]:
    """'name has mode …' for each existing file that anyone but its owner may read."""
    modes = {path: stat.S_IMODE(path.stat().st_mode) for path in paths if path.exists()}
    return [f"{path.name} has mode {mode:o}" for path, mode in modes.items() if mode != 0o600]

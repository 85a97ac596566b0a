"""What the benchmarks share: a sandbox in its own process, and throw-away PostgreSQL databases."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def start_sandbox(port: int) -> subprocess.Popen[bytes]:
    """`cdbot sandbox` on `port`, returned once it answers."""
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "sandbox", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
    )
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/_sandbox/state", timeout=1)
            return process
        except httpx.HTTPError:
            time.sleep(0.1)
    process.terminate()
    raise RuntimeError("the sandbox did not start")


def fresh_postgres(admin_url: str) -> tuple[str, str]:
    """A new empty database on the server of `admin_url`: (its name, its URL)."""
    import psycopg

    name = f"cdbot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"'.encode())
    return name, admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

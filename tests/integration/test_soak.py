"""Crash soak, short form: `cdbot worker` processes on PostgreSQL, SIGKILLed at random.

The same code as `bench/soak.py` (tests/integration/soak.py), smaller: four workers send
to a sandbox in its own process while one of them, chosen at random, is killed every 2 s
and started again (for 30 s, then while deliveries still wait to be taken). Then
everything must be final within lease + sweep + 60 s of the last kill, the sandbox must
hold no message twice, `sent` must mean landed, whatever waits for a person must say why,
and no secret may show in the DEBUG logs or the error columns. It prints its figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.soak import SoakPlan, run_soak

DELIVERIES = 2000
KILL_FOR = 30.0


@pytest.mark.postgres
@pytest.mark.slow
async def test_workers_killed_at_random_lose_nothing_and_send_nothing_twice(
    postgres_url: str, tmp_path: Path
) -> None:
    plan = SoakPlan(
        database_url=postgres_url,
        work_dir=tmp_path,
        deliveries=DELIVERIES,
        kill_every=2.0,
        kill_for=KILL_FOR,
        lease_seconds=10,
    )
    report = await run_soak(plan)
    print("\n".join(report.lines()))
    assert report.problems == []
    assert report.deliveries == DELIVERIES
    assert report.kills >= 5
    assert report.held_at_kills["sending"] > 0  # the kills hit sends on the wire

"""A Hypothesis stateful test of the delivery state machine against the real queue (SQLite).

Two workers claim, begin (at times asking again, as after a commit whose answer was lost)
and report outcomes in any order; they crash (forgetting what they held), leases run out,
the sweep runs, uncertain sends are reconciled, the post is cancelled. A model "platform"
counts what really landed. Invariants:
- nothing ever lands twice for one delivery;
- nothing is begun after the cancel committed;
- a delivery marked sent really landed;
- once the faults stop, everything ends final.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select, true, update

from bot.db.engine import make_engine, make_sessionmaker
from bot.db.models import Base, Delivery
from bot.db.models import DeliveryStatus as S
from bot.queue import Claimed, PostQueue, Target
from content.kinds import PostDraft

WORKERS = ("A", "B")
TARGETS = [Target("zalo_group", f"g{n}", f"Nhóm {n}", f"C{n}") for n in range(3)]


class DeliveryMachine(RuleBasedStateMachine):
    """Random schedules of claims, sends, crashes and reconciliation."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = TemporaryDirectory()
        self.engine = make_engine(f"sqlite:///{Path(self.folder.name) / 'm.sqlite3'}")
        self.run(self._create())
        self.queue = PostQueue(make_sessionmaker(self.engine))
        draft = PostDraft(
            kind="story", title="T", body="B", scheduled_at=datetime.now(UTC) - timedelta(1)
        )
        self.post = self.run(self.queue.add(draft, actor="t", approve_for=TARGETS))
        self.landed: dict[int, int] = {}
        self.held: dict[str, dict[int, Claimed]] = {w: {} for w in WORKERS}
        self.in_flight: dict[str, dict[int, int]] = {w: {} for w in WORKERS}
        self.cancelled = False
        self.begun_after_cancel = 0

    def run(self, work: Any) -> Any:
        return self.loop.run_until_complete(work)

    async def _create(self) -> None:
        async with self.engine.begin() as connection:
            await connection.run_sync(Base.metadata.create_all)

    def teardown(self) -> None:
        self.run(self.engine.dispose())
        self.loop.close()
        self.folder.cleanup()

    def rows(self) -> list[Delivery]:
        async def read() -> list[Delivery]:
            async with make_sessionmaker(self.engine)() as session:
                return list(await session.scalars(select(Delivery).order_by(Delivery.id)))

        return list(self.run(read()))

    # ---- the workers ---------------------------------------------------------------------

    def _claim(self, worker: str, limit: int) -> list[Claimed]:
        """Claim; what comes back in doubt is looked up on the platform at once.

        Found → sent; absent → pending once; absent again → a person.
        """
        sends = []
        for claimed in self.run(self.queue.claim("zalo", limit, worker=worker, lease_seconds=600)):
            if claimed.status != S.IN_DOUBT:
                sends.append(claimed)
                continue
            attempt = claimed.current_attempt_id
            assert attempt is not None
            if self.landed.get(claimed.id):
                self.run(self.queue.finish(claimed.id, attempt, S.SENT, outcome="reconciled"))
            elif not self.run(self.queue.resend_after_absent(claimed, worker=worker)):
                self.run(self.queue.finish(claimed.id, attempt, S.NEEDS_HUMAN, outcome="absent"))
        return sends

    @rule(worker=st.sampled_from(WORKERS), limit=st.integers(1, 5))
    def claim(self, worker: str, limit: int) -> None:
        for claimed in self._claim(worker, limit):
            self.held[worker][claimed.id] = claimed

    @rule(worker=st.sampled_from(WORKERS), answer_lost=st.booleans(), data=st.data())
    def begin(self, worker: str, answer_lost: bool, data: st.DataObject) -> None:
        if not self.held[worker]:
            return
        delivery = data.draw(st.sampled_from(sorted(self.held[worker])))
        claimed = self.held[worker].pop(delivery)
        begin = partial(
            self.queue.begin_attempt, claimed, worker=worker, fingerprint="f", lease_seconds=600
        )
        attempt = self.run(begin())
        if answer_lost:  # the commit landed, its answer did not: the worker asks again
            assert self.run(begin()) == attempt
        if attempt is not None:
            self.begun_after_cancel += self.cancelled
            self.in_flight[worker][delivery] = attempt

    @rule(
        worker=st.sampled_from(WORKERS),
        outcome=st.sampled_from(["ok", "rejected", "unavailable", "unknown_landed", "unknown"]),
        data=st.data(),
    )
    def report(self, worker: str, outcome: str, data: st.DataObject) -> None:
        if not self.in_flight[worker]:
            return
        delivery = data.draw(st.sampled_from(sorted(self.in_flight[worker])))
        attempt = self.in_flight[worker].pop(delivery)
        if outcome in ("ok", "unknown_landed"):
            self.landed[delivery] = self.landed.get(delivery, 0) + 1
        status = {
            "ok": S.SENT,
            "rejected": S.FAILED,
            "unavailable": S.RETRY_WAIT,
            "unknown_landed": S.IN_DOUBT,
            "unknown": S.IN_DOUBT,
        }[outcome]
        self.run(self.queue.finish(delivery, attempt, status, outcome=outcome, remote_id="r"))

    @rule(worker=st.sampled_from(WORKERS), landed=st.booleans())
    def crash(self, worker: str, landed: bool) -> None:
        """The worker dies: what it held is forgotten; a send cut short may have landed."""
        for delivery in self.in_flight[worker]:
            if landed:
                self.landed[delivery] = self.landed.get(delivery, 0) + 1
        self.held[worker].clear()
        self.in_flight[worker].clear()
        # Only the dead worker's leases lapse: a live sender renews its own and stops its send
        # before the lease could run out (`Dispatcher._within_lease`), so the sweep never
        # takes a send that is still running.
        self.expire_leases(worker)

    def expire_leases(self, worker: str | None = None) -> None:
        """Time passes for the leases of `worker` (of every worker when None)."""

        async def expire() -> None:
            owned = Delivery.lease_owner == worker if worker else true()
            async with make_sessionmaker(self.engine).begin() as session:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.lease_expires_at.is_not(None), owned)
                    .values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
                )

        self.run(expire())

    # ---- the bot's housekeeping ---------------------------------------------------------

    @rule()
    def sweep(self) -> None:
        self.run(self.queue.sweep())

    @rule(worker=st.sampled_from(WORKERS))
    def retry_now(self, worker: str) -> None:
        async def due() -> None:
            async with make_sessionmaker(self.engine).begin() as session:
                await session.execute(
                    update(Delivery)
                    .where(Delivery.status.in_((S.RETRY_WAIT, S.IN_DOUBT)))
                    .values(next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
                )

        self.run(due())

    @precondition(lambda self: not self.cancelled)
    @rule()
    def cancel(self) -> None:
        self.run(self.queue.cancel(self.post.id, actor="t"))
        self.cancelled = True

    # ---- invariants -----------------------------------------------------------------------

    @invariant()
    def nothing_lands_twice(self) -> None:
        assert all(count <= 1 for count in self.landed.values()), self.landed

    @invariant()
    def nothing_begins_after_cancel(self) -> None:
        assert self.begun_after_cancel == 0

    @invariant()
    def sent_means_landed(self) -> None:
        for row in self.rows():
            if row.status == S.SENT:
                assert self.landed.get(row.id) == 1, (row.id, self.landed)

    def everything_ends_final_once_faults_stop(self) -> None:
        """Drive the machine with no more faults: every delivery must become final."""
        for _ in range(6):
            for worker in WORKERS:
                self.held[worker].clear()
                self.in_flight[worker].clear()
            self.expire_leases()
            self.sweep()
            self.retry_now("A")
            for claimed in self._claim("A", 10):
                attempt = self.run(
                    self.queue.begin_attempt(
                        claimed, worker="A", fingerprint="f", lease_seconds=600
                    )
                )
                if attempt is not None:
                    self.landed[claimed.id] = self.landed.get(claimed.id, 0) + 1
                    self.run(self.queue.finish(claimed.id, attempt, S.SENT, outcome="ok"))
        final = {S.SENT, S.FAILED, S.NEEDS_HUMAN, S.CANCELLED}
        assert {row.status for row in self.rows()} <= final
        self.nothing_lands_twice()


class ClosingMachine(DeliveryMachine):
    """The same machine, checking at the end of each run that everything ends final."""

    def teardown(self) -> None:
        try:
            self.everything_ends_final_once_faults_stop()
        finally:
            super().teardown()


TestDeliveryStateMachine = ClosingMachine.TestCase
TestDeliveryStateMachine.settings = settings(
    max_examples=60,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

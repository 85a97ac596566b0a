"""The dispatcher: claims due deliveries, sends them through connectors, records outcomes.

It holds no state another process needs: leases, due times and outcomes live in the
database (`bot.queue`). Concurrency is capped per account; the loop sleeps until the
next due time, woken by the in-process clock (`schedules.clock`) or by finished work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from bot.backoff import full_jitter
from bot.db.engine import UNREACHABLE
from bot.db.models import DeliveryStatus as S
from bot.queue import Claimed, DueTimes, PostQueue
from connectors.base import (
    AuthExpired,
    CannotTell,
    Connector,
    OutboundMessage,
    OutcomeUnknown,
    PlatformError,
    Receipt,
    Rejected,
    Throttled,
    Unavailable,
)

log = logging.getLogger(__name__)

T = TypeVar("T")
Compose = Callable[[Claimed], Awaitable[OutboundMessage]]
WakeAt = Callable[[datetime], None]


def worker_name() -> str:
    """host:pid:random, unique per process start."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Policy:
    """How hard and how often the dispatcher tries."""

    lease_seconds: float = 300.0
    max_attempts: int = 8
    backoff_base: float = 5.0
    backoff_cap: float = 3600.0
    settle_seconds: float = 15.0
    poll_seconds: float = 5.0
    idle_horizon_seconds: float = 60.0
    window_fallback: bool = True
    """Name an admin outside Zalo's 7-day window in the cluster's group instead."""
    stop_grace_seconds: float = 20.0
    """On stop, how long sends already on the wire may take to finish."""
    concurrency: Mapping[str, int] = field(default_factory=lambda: {"facebook": 1, "zalo": 8})


@dataclass(frozen=True)
class Verdict:
    """What a platform error means for the delivery and its account."""

    status: S
    outcome: str
    retry_in: float = 0.0
    refund: bool = False
    """The try does not count toward the attempt limit (the platform asked us to wait)."""
    pause: tuple[float | None, bool] | None = None
    """(seconds or None for "until a person acts", needs_reauth) to pause the account."""


# "Already posted" answers: after an uncertain first try they are evidence it landed.
DUPLICATE_CODES = frozenset({"506", "368"})
# Failed looks on the platform before an uncertain delivery goes to a person.
MAX_RECONCILE_TRIES = 6
# A send is stopped at this share of its lease (which it renews while it runs).
SEND_DEADLINE = 0.8
# Leases run for minutes: looking for abandoned sends once a second is plenty.
SWEEP_EVERY = 1.0
# Zalo will not let the OA write to this person now (no interaction in the last 7 days).
WINDOW_CLOSED = frozenset({"-230", "-232"})
# Content refusals worth one more try later (Facebook could not fetch a link's page).
RETRY_ONCE_CODES = frozenset({"1609005"})
RETRY_ONCE_SECONDS = 300.0
# Deliveries held per send slot: one on the wire, one being made ready or recorded.
HELD_PER_SLOT = 2
# Waiting for an unreachable database: full jitter from 1 s, never more than this between tries.
OUTAGE_RETRY_CAP = 5.0


def judge(exc: PlatformError, attempt: int, policy: Policy, *, resent: bool = False) -> Verdict:
    """The state machine's answer to a failed attempt number `attempt`.

    `resent` means this try followed an uncertain one that reconciliation did not find.
    """
    main_code = (exc.code or "").split("/")[0]  # "506/1234" is still a 506
    if resent and main_code in DUPLICATE_CODES and isinstance(exc, Rejected | Throttled):
        return Verdict(S.IN_DOUBT, "duplicate", policy.settle_seconds)
    if isinstance(exc, Rejected) and main_code in RETRY_ONCE_CODES and attempt == 1:
        return Verdict(S.RETRY_WAIT, "retry_once", RETRY_ONCE_SECONDS)
    if isinstance(exc, Throttled):
        return Verdict(S.RETRY_WAIT, "throttled", exc.retry_after, True, (exc.retry_after, False))
    if isinstance(exc, AuthExpired):
        return Verdict(S.RETRY_WAIT, "auth", 0.0, True, (None, True))
    if isinstance(exc, Rejected):
        return Verdict(S.FAILED, "rejected")
    if isinstance(exc, OutcomeUnknown):
        return Verdict(S.IN_DOUBT, "unknown", policy.settle_seconds)
    if isinstance(exc, Unavailable) and exc.retry_after is not None:
        return Verdict(S.RETRY_WAIT, "deferred", exc.retry_after, True)
    if attempt >= policy.max_attempts:
        return Verdict(S.FAILED, "unavailable")
    delay = full_jitter(attempt, base=policy.backoff_base, cap=policy.backoff_cap)
    return Verdict(S.RETRY_WAIT, "unavailable", delay)


class Dispatcher:
    """Moves deliveries of every account along the state machine."""

    def __init__(
        self,
        queue: PostQueue,
        connectors: Mapping[str, Connector],
        compose: Compose,
        policy: Policy,
        *,
        worker: str | None = None,
    ) -> None:
        self.queue = queue
        self.connectors = dict(connectors)
        self.compose = compose
        self.policy = policy
        self.worker = worker or worker_name()
        self._inflight: dict[str, set[asyncio.Task[None]]] = {k: set() for k in self.connectors}
        # A slot is a call on the platform's wire; claiming, rendering and recording happen
        # outside it, so up to one more slot's worth of deliveries is held and made ready.
        self._slots = {k: asyncio.Semaphore(self._cap(k)) for k in self.connectors}
        self._held: dict[int, asyncio.Task[None]] = {}  # the deliveries this process works on
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._stopping = False
        self._last_sweep = float("-inf")
        # When each account is next worth a claim, in loop time, from the last look at the
        # database; an account missing here is claimed on the next pass. A claim that comes
        # back short asks for a new look (`_stale`); a sweep that moved rows forgets it all.
        self._ready_at: dict[str, float] = {}
        self._sweep_due = float("inf")
        self._stale = True

    def _cap(self, account: str) -> int:
        return self.policy.concurrency.get(account, 1)

    def _room(self, account: str) -> int:
        """How many more deliveries of `account` this process may hold now."""
        return HELD_PER_SLOT * self._cap(account) - len(self._inflight[account])

    def _worth_claiming(self, account: str) -> bool:
        """Room for half a slot's worth: claims come in batches, not one per finished send.

        The deliveries already held and made ready keep the slots busy meanwhile.
        """
        return self._room(account) >= max(1, self._cap(account) // 2)

    @property
    def busy(self) -> int:
        """Deliveries this process is working on now."""
        return sum(len(tasks) for tasks in self._inflight.values())

    def wake(self) -> None:
        """Make the loop take a pass now: the time it asked the clock for has come.

        What each account has due stays known from the last look (`_ready_at`): the pass
        claims only where something is due. The clock fires at the times the loop asked
        for, which during a backlog is often "now"; it is not news of new work.
        """
        self._wake.set()

    def _ready(self, account: str, loop_time: float) -> bool:
        """Room for a batch, and (as far as the last look knows) something due."""
        return self._worth_claiming(account) and self._ready_at.get(account, loop_time) <= loop_time

    async def step(self) -> int:
        """Sweep (at most once a second), then lease and start what is due within each cap.

        A claimed delivery is sent; an in_doubt one is looked up on its platform.
        """
        loop_time = asyncio.get_running_loop().time()
        if loop_time - self._last_sweep >= SWEEP_EVERY:
            self._last_sweep = loop_time
            swept = await self.queue.sweep()
            self._sweep_due = float("inf")  # the next look says when a lease lapses next
            self._stale = True
            if swept:
                log.warning("%d lần gửi bị gián đoạn chuyển sang chờ đối soát", swept)
                self._ready_at.clear()  # what was swept is due for a look-up now
        started = 0
        for account, connector in self.connectors.items():
            if not self._ready(account, loop_time):
                continue
            room = self._room(account)
            claimed_now = await self.queue.claim(
                account, room, worker=self.worker, lease_seconds=self.policy.lease_seconds
            )
            if len(claimed_now) < room:  # nothing more due now: when next? look
                self._stale = True
            for claimed in claimed_now:
                work = self._reconcile if claimed.status == S.IN_DOUBT else self._deliver
                job = work(connector, claimed)
                running = self._held.get(claimed.id)
                if running is not None:
                    # Claimed again while a task is still at it: an outage outlasted its
                    # lease, or its last write has just made it due again. The new claim
                    # goes once that task has ended, never beside it.
                    job = _after(running, job)
                self._start(account, job, claimed.id)
            started += len(claimed_now)
        return started

    def _start(self, account: str, work: Coroutine[Any, Any, None], delivery_id: int) -> None:
        task = asyncio.ensure_future(work)
        self._inflight[account].add(task)
        self._held[delivery_id] = task

        def done(finished: asyncio.Task[None]) -> None:
            self._ready_at.pop(account, None)  # room again, and the outcome may have made work
            self._inflight[account].discard(finished)
            if self._held.get(delivery_id) is finished:
                del self._held[delivery_id]
            exc = None if finished.cancelled() else finished.exception()
            if isinstance(exc, UNREACHABLE):  # a lookup cut short: its lease runs out, it is redone
                log.warning("mất kết nối cơ sở dữ liệu khi đối soát: %s", _first_line(exc))
            elif exc is not None:
                log.error("lỗi không lường trước khi gửi", exc_info=exc)
            self._wake.set()

        task.add_done_callback(done)

    async def serve(
        self, stop: asyncio.Event, wake_at: WakeAt | None = None, *, until_idle: bool = False
    ) -> None:
        """Run until `stop` is set (or, with `until_idle`, until nothing is due soon), then drain.

        An unreachable database is waited out, never a reason to stop.
        """
        self._stop = stop
        outage = 0
        while not stop.is_set():
            self._wake.clear()
            try:
                await self.step()
                loop_time = asyncio.get_running_loop().time()
                if not self._stale and not any(self._ready(a, loop_time) for a in self.connectors):
                    # Full, or nothing due where there is room: a finished send, the clock or
                    # the time the last look gave wakes the loop.
                    await _first_of(self._wake, stop, self._until_ready(loop_time))
                    continue
                times = await self.queue.due_times(tuple(self.connectors))
                self._remember(times, loop_time)
                next_due, now = times.soonest, times.now
            except UNREACHABLE as exc:
                outage += 1
                delay = full_jitter(outage, base=1.0, cap=OUTAGE_RETRY_CAP)
                log.error(
                    "không kết nối được cơ sở dữ liệu (%s); thử lại sau %.1f giây",
                    _first_line(exc),
                    delay,
                )
                await _sleep_unless(stop, delay)
                continue
            if outage:
                log.warning("đã kết nối lại cơ sở dữ liệu sau %d lần thử", outage)
                outage = 0
                # A claim whose commit landed but whose answer was lost holds rows this
                # process never saw: hand them back now rather than when their lease ends.
                with contextlib.suppress(*UNREACHABLE):
                    await self.queue.release_unheld(self.worker, held=set(self._held))
            if until_idle and not self.busy and self._idle(now, next_due):
                log.debug("nothing due before %s (next: %s): idle", now, next_due)
                break
            soonest = now + timedelta(seconds=self.policy.poll_seconds)
            if next_due is not None and next_due < soonest:
                soonest = next_due
            if wake_at is not None:
                wake_at(soonest)
                timeout = self.policy.poll_seconds * 2  # the clock wakes us; this is a backstop
            else:
                timeout = max(0.0, (soonest - now).total_seconds())
            await _first_of(self._wake, stop, timeout)
        await self.drain(self.policy.stop_grace_seconds)

    def _remember(self, times: DueTimes, loop_time: float) -> None:
        """Keep, in loop time, when each account next has work (nothing queued: poll)."""
        self._stale = False
        for account, when in times.by_account.items():
            wait = self.policy.poll_seconds
            if when is not None:
                wait = min(wait, (when - times.now).total_seconds())
            self._ready_at[account] = loop_time + max(0.0, wait)
        if times.sweep_at is not None:  # the sweep runs in the pass after a lease lapses
            self._sweep_due = loop_time + max(0.0, (times.sweep_at - times.now).total_seconds())

    def _until_ready(self, loop_time: float) -> float:
        """Seconds until an account with room is due, a lease lapses, or the next poll."""
        room = [a for a in self.connectors if self._worth_claiming(a)]
        times = [self._ready_at.get(a, loop_time) for a in room]
        times.append(max(self._sweep_due, self._last_sweep + SWEEP_EVERY))
        return max(0.0, min(loop_time + self.policy.poll_seconds, *times) - loop_time)

    def _idle(self, now: datetime, next_due: datetime | None) -> bool:
        horizon = now + timedelta(seconds=self.policy.idle_horizon_seconds)
        return next_due is None or next_due > horizon

    async def drain(self, grace: float | None = None) -> None:
        """Stop: begin no new send, give sends on the wire `grace` seconds, hand back the rest.

        A send still running after `grace` is cut short and becomes `in_doubt` (it may have
        landed); a delivery claimed but not begun goes back to `pending` (`PostQueue.release`).
        """
        self._stopping = True
        tasks = {t for tasks in self._inflight.values() for t in tasks}
        if tasks:
            _finished, late = await asyncio.wait(tasks, timeout=grace)
            if late:
                log.warning("dừng: cắt %d lượt gửi chưa xong sau %s giây", len(late), grace)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
        try:
            released = await self.queue.release(
                self.worker, settle_seconds=self.policy.settle_seconds
            )
        except UNREACHABLE:
            log.warning("dừng khi mất kết nối cơ sở dữ liệu: lượt đang giữ sẽ được trả khi hết hạn")
            return
        if released:
            log.warning("dừng: trả lại %d lượt gửi chưa bắt đầu hoặc bị cắt", released)

    # ---- one delivery ---------------------------------------------------------------------

    async def _deliver(self, connector: Connector, claimed: Claimed) -> None:
        try:
            message = await _outlasting(partial(self.compose, claimed))
        except Exception as exc:  # bad media or our own bug: this delivery fails, others go on
            if not isinstance(exc, PlatformError):
                log.exception("không dựng được nội dung cho lượt gửi #%d", claimed.id)
            await _outlasting(partial(self._fail_before_send, claimed, exc))
            return
        async with self._slots[connector.account]:
            if self._stopping or self._stop.is_set():
                return  # stopping: nothing new goes on the wire; drain hands the claim back
            begin = partial(
                self.queue.begin_attempt,
                claimed,
                worker=self.worker,
                fingerprint=message.fingerprint,
                lease_seconds=self.policy.lease_seconds,
            )
            attempt = await _outlasting(begin)
            if attempt is None:  # paused since the claim, cancelled, or the lease went elsewhere
                await _outlasting(partial(self.queue.unclaim, claimed.id, worker=self.worker))
                return
            record: Callable[[], Awaitable[None]]
            try:
                receipt = await self._within_lease(claimed.id, attempt, connector.send(message))
            except PlatformError as exc:
                # A pause the platform asked for is in force before the slot is free again.
                verdict = await _outlasting(partial(self._judge, connector, claimed, exc))
                record = partial(self._record_error, claimed, attempt, exc, verdict)
            except Exception as exc:  # raised inside a connector: it may have sent
                log.exception("lỗi không lường trước khi gửi lượt #%d", claimed.id)
                settle = self.policy.settle_seconds
                record = partial(self._end, claimed, attempt, S.IN_DOUBT, "crash", exc, settle)
            else:
                if receipt.cooldown > 0:  # before the next send of this account can begin
                    await _outlasting(partial(self._cool_down, connector, receipt))
                record = partial(self._sent, claimed, attempt, receipt, "sent")
        await _outlasting(record)

    async def _as_sent(self, claimed: Claimed) -> OutboundMessage:
        """The message to look for: matched on the fingerprint recorded when it was sent."""
        try:
            message = await self.compose(claimed)
        except Exception:  # the media may be gone; the text's fingerprint is all we need
            message = OutboundMessage(
                channel=claimed.channel, target_id=claimed.target_id, title="", text=""
            )
        return message.model_copy(update={"sent_fingerprint": claimed.fingerprint or None})

    async def _within_lease(self, delivery_id: int, attempt: int, work: Awaitable[T]) -> T:
        """Run a send while renewing its lease, and stop it well before the lease could lapse.

        The sweep may only take a `sending` row whose sender is gone; a live sender keeps
        its lease, and a send that runs too long ends as an uncertain outcome.
        """
        lease = self.policy.lease_seconds

        async def renew() -> None:
            while True:
                await asyncio.sleep(lease / 3)
                with contextlib.suppress(*UNREACHABLE):  # the deadline below still holds
                    await self.queue.extend_lease(delivery_id, attempt, lease_seconds=lease)

        renewing = asyncio.ensure_future(renew())
        try:
            async with asyncio.timeout(lease * SEND_DEADLINE):
                return await work
        except TimeoutError as exc:
            raise OutcomeUnknown("Gửi quá lâu, đã dừng; sẽ đối soát.", code="deadline") from exc
        finally:
            renewing.cancel()

    async def _cool_down(self, connector: Connector, receipt: Receipt) -> None:
        """Rest the account after a send, as the platform asks."""
        await self.queue.pause_account(
            connector.account,
            seconds=receipt.cooldown,
            needs_reauth=False,
            note="Giãn cách giữa hai bài đăng theo giới hạn của nền tảng.",
        )

    async def _sent(self, claimed: Claimed, attempt: int, receipt: Receipt, outcome: str) -> None:
        """Record a delivery as sent."""
        await self.queue.finish(
            claimed.id,
            attempt,
            S.SENT,
            outcome=outcome,
            remote_id=receipt.remote_id,
            permalink=receipt.permalink,
        )

    async def _end(
        self,
        claimed: Claimed,
        attempt: int,
        status: S,
        outcome: str,
        exc: Exception,
        retry_in: float = 0.0,
        *,
        refund: bool = False,
        mention_instead: bool = False,
    ) -> None:
        """Record a failed attempt, with the error's code and text."""
        if isinstance(exc, PlatformError):
            code, text = exc.code, exc.message
        else:
            code, text = "internal", f"Lỗi nội bộ: {type(exc).__name__}: {exc}"
        await self.queue.finish(
            claimed.id,
            attempt,
            status,
            outcome=outcome,
            error_code=code,
            error=text[:2000],
            retry_in=retry_in,
            refund_attempt=refund,
            mention_instead=mention_instead,
        )

    async def _fail_before_send(self, claimed: Claimed, exc: Exception) -> None:
        attempt = await self.queue.begin_attempt(
            claimed, worker=self.worker, fingerprint="", lease_seconds=self.policy.lease_seconds
        )
        if attempt is not None:
            await self._end(claimed, attempt, S.FAILED, "internal", exc)

    async def _judge(self, connector: Connector, claimed: Claimed, exc: PlatformError) -> Verdict:
        """What a failed send means; pauses the account when the platform says so."""
        verdict = judge(exc, claimed.attempts + 1, self.policy, resent=claimed.resends > 0)
        if verdict.pause is not None:
            seconds, needs_reauth = verdict.pause
            await self.queue.pause_account(
                connector.account, seconds=seconds, needs_reauth=needs_reauth, note=exc.message
            )
        return verdict

    async def _record_error(
        self, claimed: Claimed, attempt: int, exc: PlatformError, verdict: Verdict
    ) -> None:
        mention = (
            self.policy.window_fallback
            and claimed.channel == "zalo_user"
            and exc.code in WINDOW_CLOSED
        )
        await self._end(
            claimed,
            attempt,
            verdict.status,
            verdict.outcome,
            exc,
            verdict.retry_in,
            refund=verdict.refund,
            mention_instead=mention,
        )

    async def _reconcile(self, connector: Connector, claimed: Claimed) -> None:
        async with self._slots[connector.account]:  # a look-up is a call on the wire too
            if self._stopping or self._stop.is_set():
                return  # drain lets go of the lease
            if await _outlasting(partial(self.queue.paused, connector.account)):
                # The account was paused while this look-up waited for its slot.
                await _outlasting(partial(self.queue.unclaim, claimed.id, worker=self.worker))
                return
            await self._look_up(connector, claimed)

    async def _look_up(self, connector: Connector, claimed: Claimed) -> None:
        attempt = claimed.current_attempt_id
        if attempt is None:  # never reached the wire
            await self.queue.resend_after_absent(claimed, worker=self.worker)
            return
        since = await self.queue.attempt_started(attempt)
        try:
            receipt = await connector.find_sent(await self._as_sent(claimed), since)
        except CannotTell as exc:
            await self._end(claimed, attempt, S.NEEDS_HUMAN, "cannot_tell", exc)
        except AuthExpired as exc:
            await self.queue.pause_account(
                connector.account, seconds=None, needs_reauth=True, note=exc.message
            )
            await self._end(claimed, attempt, S.IN_DOUBT, "reconcile_later", exc)
        except Throttled as exc:  # the account rests, as after a send; not a failed look
            await self.queue.pause_account(
                connector.account, seconds=exc.retry_after, needs_reauth=False, note=exc.message
            )
            await self._end(claimed, attempt, S.IN_DOUBT, "throttled", exc, exc.retry_after)
        except Exception as exc:  # could not look: look again later, a few times
            if claimed.reconcile_tries + 1 >= MAX_RECONCILE_TRIES:
                await self._end(claimed, attempt, S.NEEDS_HUMAN, "cannot_look", exc)
                return
            retry = full_jitter(
                claimed.reconcile_tries + 2,
                base=self.policy.settle_seconds,
                cap=self.policy.backoff_cap,
            )
            await self._end(claimed, attempt, S.IN_DOUBT, "reconcile_later", exc, retry)
        else:
            if receipt is not None:
                await self.queue.finish(
                    claimed.id,
                    attempt,
                    S.SENT,
                    outcome="reconciled",
                    remote_id=receipt.remote_id,
                    permalink=receipt.permalink,
                )
            elif not await self.queue.resend_after_absent(claimed, worker=self.worker):
                await self.queue.finish(
                    claimed.id,
                    attempt,
                    S.NEEDS_HUMAN,
                    outcome="absent_twice",
                    error_code="absent_after_resend",
                    error="Không thấy bài trên nền tảng kể cả sau khi gửi lại; cần người kiểm tra.",
                )


async def _after(previous: asyncio.Task[None], work: Coroutine[Any, Any, None]) -> None:
    """Run `work` once `previous` has ended, however it ended."""
    try:
        await asyncio.wait({previous})
    except BaseException:
        work.close()  # cancelled while waiting: the work never starts
        raise
    await work


async def _outlasting(work: Callable[[], Awaitable[T]]) -> T:
    """One database step of a delivery, retried through an outage instead of dropping it.

    A send's outcome is known only in this process, so it is written late rather than never.
    Late is still right: every write is guarded by the state it leaves and the attempt that
    owns the row, so a delivery another worker has taken over meanwhile is left alone.
    """
    failures = 0
    while True:
        try:
            return await work()
        except UNREACHABLE as exc:
            failures += 1
            if failures == 1:
                log.warning(
                    "mất kết nối cơ sở dữ liệu giữa một lượt gửi (%s); chờ để làm tiếp",
                    _first_line(exc),
                )
            await asyncio.sleep(full_jitter(failures, base=1.0, cap=OUTAGE_RETRY_CAP))


def _first_line(exc: BaseException) -> str:
    """The driver's reason for a database error, short enough for one log line."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _first_of(event: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()), asyncio.ensure_future(stop.wait())]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()

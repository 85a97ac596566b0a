"""The queue's promises on real SQLite and PostgreSQL: fan-out, claims, leases, cancel."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import make_sessionmaker
from bot.db.models import Attempt, Delivery, Post
from bot.db.models import DeliveryStatus as S
from bot.errors import InputError
from bot.queue import PostQueue, Target
from content.kinds import PostDraft

WORKER = "test-worker"


def draft(**overrides: object) -> PostDraft:
    values: dict[str, object] = {
        "kind": "story",
        "title": "Tiền lương làm thêm giờ",
        "body": "Người lao động làm thêm giờ được trả ít nhất 150% (Điều 98).",
        "scheduled_at": datetime.now(UTC) - timedelta(seconds=1),
    }
    values.update(overrides)
    return PostDraft.model_validate(values)


def targets(n: int) -> list[Target]:
    return [Target("zalo_group", f"group{i:03d}", f"Cụm {i}", f"C{i}") for i in range(n)]


@pytest.fixture
def queue(engine: AsyncEngine) -> PostQueue:
    return PostQueue(make_sessionmaker(engine))


async def force(engine: AsyncEngine, delivery_id: int, **values: object) -> None:
    async with make_sessionmaker(engine).begin() as session:
        await session.execute(update(Delivery).where(Delivery.id == delivery_id).values(**values))


async def test_approving_twice_adds_no_delivery(queue: PostQueue) -> None:
    post = await queue.add(draft(), actor="officer")
    _, first = await queue.approve(post.id, targets(3), actor="officer")
    _, second = await queue.approve(post.id, targets(3), actor="officer")
    assert (first, second) == (3, 0)
    assert len((await queue.get(post.id)).deliveries) == 3
    assert (await queue.get(post.id)).status == "approved"


async def test_nothing_is_claimed_before_its_time(queue: PostQueue) -> None:
    post = await queue.add(draft(scheduled_at=datetime.now(UTC) + timedelta(hours=1)), actor="o")
    await queue.approve(post.id, targets(2), actor="o")
    assert await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60) == []
    next_due = await queue.next_due()
    assert next_due is not None and next_due > datetime.now(UTC) + timedelta(minutes=59)


async def test_expired_lease_returns_to_pending_and_is_claimed_again(
    queue: PostQueue, engine: AsyncEngine
) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    [claimed] = await queue.claim("zalo", 10, worker="dead-worker", lease_seconds=60)
    assert await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60) == []
    await force(engine, claimed.id, lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    [again] = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    assert again.id == claimed.id
    # the dead worker can no longer start sending it
    assert (
        await queue.begin_attempt(claimed, worker="dead-worker", fingerprint="f", lease_seconds=60)
        is None
    )
    assert await queue.begin_attempt(again, worker=WORKER, fingerprint="f", lease_seconds=60)


async def test_death_while_sending_becomes_in_doubt_not_resent(
    queue: PostQueue, engine: AsyncEngine
) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    [claimed] = await queue.claim("zalo", 10, worker="dying", lease_seconds=60)
    assert await queue.begin_attempt(claimed, worker="dying", fingerprint="f", lease_seconds=60)
    await force(engine, claimed.id, lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert await queue.sweep() == 1
    again = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    assert [c.status for c in again] == [S.IN_DOUBT]  # leased to be looked up, never re-sent
    delivery = (await queue.get(post.id)).deliveries[0]
    assert delivery.status == S.IN_DOUBT
    assert delivery.last_error_code == "lease_expired"


async def test_cancelled_before_its_time_is_never_claimed(queue: PostQueue) -> None:
    post = await queue.add(draft(scheduled_at=datetime.now(UTC) + timedelta(seconds=1)), actor="o")
    await queue.approve(post.id, targets(2), actor="o")
    assert await queue.cancel(post.id, actor="o") == (2, 0)
    await asyncio.sleep(1.2)
    assert await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60) == []
    assert {d.status for d in (await queue.get(post.id)).deliveries} == {S.CANCELLED}


async def test_cancel_between_claim_and_send_stops_the_send(queue: PostQueue) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    [claimed] = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    await queue.cancel(post.id, actor="o")
    assert (
        await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60) is None
    )


async def test_a_begin_asked_again_after_its_answer_was_lost_gets_its_own_attempt(
    queue: PostQueue, engine: AsyncEngine
) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    [claimed] = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    first = await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60)
    # The commit landed but the connection broke before its answer: the same begin is asked
    # again. Without this the delivery sat in `sending` until its lease ran out.
    again = await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60)
    assert first is not None and again == first
    [delivery] = (await queue.get(post.id)).deliveries
    assert (delivery.status, delivery.attempts, delivery.current_attempt_id) == (
        S.SENDING,
        1,
        first,
    )
    async with make_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(Attempt)) == 1
    # Only the worker that began it, at that attempt, finds it so.
    assert (
        await queue.begin_attempt(claimed, worker="other", fingerprint="f", lease_seconds=60)
        is None
    )
    assert await queue.finish(claimed.id, first, S.SENT, outcome="sent", remote_id="r")
    assert (
        await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60) is None
    )


async def test_a_begin_asked_again_after_a_cancel_goes_no_further(queue: PostQueue) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    [claimed] = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    assert await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60)
    await queue.cancel(post.id, actor="o")  # between the lost answer and the asking again
    assert (
        await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60) is None
    )


async def test_cancelled_post_cannot_be_approved(queue: PostQueue) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.cancel(post.id, actor="o")
    with pytest.raises(InputError, match="huỷ"):
        await queue.approve(post.id, targets(1), actor="o")


async def test_post_is_done_when_every_delivery_is_final(queue: PostQueue) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(2), actor="o")
    for claimed in await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60):
        attempt = await queue.begin_attempt(
            claimed, worker=WORKER, fingerprint="f", lease_seconds=60
        )
        assert attempt is not None
        assert await queue.finish(claimed.id, attempt, S.SENT, outcome="sent", remote_id="r")
    assert (await queue.get(post.id)).status == "done"


async def test_attempt_is_written_before_the_send(queue: PostQueue, engine: AsyncEngine) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    [claimed] = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    attempt = await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60)
    async with make_sessionmaker(engine)() as session:
        row = await session.get(Attempt, attempt)
        assert row is not None and row.finished_at is None and row.worker == WORKER


async def test_paused_account_is_not_claimed(queue: PostQueue) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    await queue.pause_account("zalo", seconds=None, needs_reauth=True, note="token")
    assert await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60) == []
    await queue.resume_account("zalo")
    assert len(await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)) == 1


async def test_duplicate_source_key_is_refused(queue: PostQueue, engine: AsyncEngine) -> None:
    await queue.add(draft(source_key="legal:art-98"), actor="job")
    with pytest.raises(InputError):
        await queue.add(draft(source_key="legal:art-98"), actor="job")
    async with make_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(Post)) == 1


async def test_the_same_source_key_added_at_once_is_stored_once(
    queue: PostQueue, engine: AsyncEngine
) -> None:
    results = await asyncio.gather(
        *(queue.add(draft(source_key="law:blld-98"), actor="job") for _ in range(3)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, Post) for r in results) == 1
    assert all(isinstance(r, (Post, InputError)) for r in results), results
    async with make_sessionmaker(engine)() as session:
        assert await session.scalar(select(func.count()).select_from(Post)) == 1


@pytest.mark.postgres
async def test_concurrent_claims_on_postgres_never_overlap(postgres_url: str) -> None:
    from bot.db.engine import make_engine

    engine = make_engine(postgres_url, pool_size=20)
    try:
        queue = PostQueue(make_sessionmaker(engine))
        for _ in range(10):
            post = await queue.add(draft(), actor="o")
            await queue.approve(post.id, targets(100), actor="o")

        async def worker(name: str) -> list[int]:
            got: list[int] = []
            while batch := await queue.claim("zalo", 7, worker=name, lease_seconds=600):
                got += [c.id for c in batch]
            return got

        results = await asyncio.gather(*(worker(f"w{i}") for i in range(16)))
        claimed = [i for ids in results for i in ids]
        assert len(claimed) == 1000
        assert len(set(claimed)) == 1000
        assert sum(1 for ids in results if ids) > 1  # the work really was shared
    finally:
        await engine.dispose()


async def test_a_pause_is_never_shortened(queue: PostQueue) -> None:
    await queue.pause_account("facebook", seconds=600, needs_reauth=False, note="throttled")
    await queue.pause_account("facebook", seconds=5, needs_reauth=False, note="gap")
    state = (await queue.accounts())["facebook"]
    assert state.paused_until is not None
    assert state.paused_until > datetime.now(UTC) + timedelta(seconds=500)
    assert state.note == "throttled"
    await queue.pause_account("facebook", seconds=1200, needs_reauth=False, note="longer")
    assert (await queue.accounts())["facebook"].note == "longer"


async def test_a_send_that_fails_after_the_cancel_is_not_tried_again(queue: PostQueue) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(2), actor="o")
    first, second = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    attempts = []
    for claimed in (first, second):
        attempt = await queue.begin_attempt(
            claimed, worker=WORKER, fingerprint="f", lease_seconds=60
        )
        assert attempt is not None
        attempts.append(attempt)
    await queue.cancel(post.id, actor="o")  # both are already on the wire
    await queue.finish(first.id, attempts[0], S.RETRY_WAIT, outcome="unavailable")
    await queue.finish(second.id, attempts[1], S.IN_DOUBT, outcome="unknown")
    [doubtful] = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    assert doubtful.status == S.IN_DOUBT  # leased to be looked up, not to be sent
    await queue.resend_after_absent(doubtful, worker=WORKER)  # absent on the platform
    assert {d.status for d in (await queue.get(post.id)).deliveries} == {S.CANCELLED}
    assert await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60) == []


async def test_a_claim_whose_account_was_paused_meanwhile_goes_back_to_pending(
    queue: PostQueue,
) -> None:
    post = await queue.add(draft(), actor="o")
    await queue.approve(post.id, targets(1), actor="o")
    [claimed] = await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60)
    await queue.pause_account("zalo", seconds=600, needs_reauth=False, note="throttled")
    assert await queue.paused("zalo") and not await queue.paused("facebook")
    begun = await queue.begin_attempt(claimed, worker=WORKER, fingerprint="f", lease_seconds=60)
    assert begun is None  # nothing goes on the wire while the account rests
    await queue.unclaim(claimed.id, worker=WORKER)
    [delivery] = (await queue.get(post.id)).deliveries
    assert (delivery.status, delivery.lease_owner, delivery.attempts) == (S.PENDING, None, 0)
    assert await queue.claim("zalo", 10, worker=WORKER, lease_seconds=60) == []  # still paused

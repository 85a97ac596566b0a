"""The post queue: the only code that writes posts and deliveries.

Every state change of a delivery is one guarded UPDATE whose WHERE clause names the
state it leaves (and, once work has begun, the attempt that owns it), so two
processes can never both move the same row. "Now" always comes from the database.
See docs/ARCHITECTURE.md for the state machine.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from functools import cache
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import (
    Float,
    Integer,
    String,
    Text,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from bot.batch import GroupCommit
from bot.db.models import (
    CLAIMABLE,
    DUE,
    TERMINAL,
    Account,
    Attempt,
    AuditEntry,
    Channel,
    Cluster,
    Delivery,
    Post,
    PostStatus,
)
from bot.db.models import DeliveryStatus as S
from bot.db.types import db_now
from bot.errors import InputError
from bot.texts import POST_STATUS
from content.kinds import PostDraft


@dataclass(frozen=True)
class Target:
    """One place a post goes."""

    channel: str
    target_id: str
    label: str
    cluster_code: str | None = None


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker holds a lease on."""

    id: int
    post_id: int
    channel: str
    target_id: str
    account: str
    attempts: int
    resends: int
    current_attempt_id: int | None
    fingerprint: str | None = None
    reconcile_tries: int = 0
    status: str = "claimed"
    """`in_doubt` when leased for reconciliation rather than for a send."""


@dataclass(frozen=True)
class DueTimes:
    """What the dispatcher times its sleep by (see `PostQueue.due_times`)."""

    by_account: dict[str, datetime | None]
    """When each account next has a delivery to claim (a due time, a lapsed lease, the end of
    a pause); None: nothing queued."""
    sweep_at: datetime | None
    """When the first lease of a send runs out (the sweep then takes it)."""
    now: datetime

    @property
    def soonest(self) -> datetime | None:
        times = [t for t in (*self.by_account.values(), self.sweep_at) if t is not None]
        return max(min(times), self.now) if times else None


@dataclass(frozen=True)
class AccountState:
    """An account's health as the dispatcher and `status` see it."""

    key: str
    paused_until: datetime | None
    needs_reauth: bool
    note: str | None


def _insert_ignore(bind: AsyncSession | AsyncConnection, table: Any) -> Any:
    name = bind.dialect.name if isinstance(bind, AsyncConnection) else bind.get_bind().dialect.name
    dialect = postgresql if name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _post_cancelled() -> Any:
    """True for a delivery (in an UPDATE of deliveries) whose post has been cancelled."""
    return exists(
        select(Post.id).where(Post.id == Delivery.post_id, Post.status == PostStatus.CANCELLED)
    )


def _not_paused(account_column: Any) -> Any:
    paused = (
        select(Account.key)
        .where(Account.key == account_column)
        .where(or_(Account.needs_reauth, Account.paused_until > db_now()))
    )
    return ~exists(paused)


class PostQueue:
    """Posts and their deliveries, from draft to done."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._engine: AsyncEngine = sessions.kw["bind"]
        # One statement is its own transaction: no BEGIN and COMMIT round trips around it.
        self._single = self._engine.execution_options(isolation_level="AUTOCOMMIT")
        self._writes = GroupCommit(self._write_many, self._engine.connect)

    # ---- the officer's side -------------------------------------------------------------

    async def add(
        self, draft: PostDraft, *, actor: str, approve_for: Sequence[Target] | None = None
    ) -> Post:
        """Store a draft post; with `approve_for`, approve it in the same transaction."""
        [post] = await self.add_many([(draft, approve_for)], actor=actor)
        return post

    async def add_many(
        self, items: Sequence[tuple[PostDraft, Sequence[Target] | None]], *, actor: str
    ) -> list[Post]:
        """Store several posts in one transaction: all of them, or none."""
        posts: list[Post] = []
        async with self._sessions.begin() as session:
            for draft, approve_for in items:
                post = Post(
                    **_content(draft),
                    source=draft.source,
                    source_key=draft.source_key,
                    status=PostStatus.DRAFT,
                    author=actor,
                )
                session.add(post)
                try:
                    await session.flush()
                except IntegrityError as exc:  # the one unique column: the source key
                    if not draft.source_key:
                        raise
                    raise InputError(f"Đã có bài với mã nguồn «{draft.source_key}».") from exc
                session.add(AuditEntry(actor=actor, action="post.add", post_id=post.id))
                if approve_for is not None:
                    await self._approve_in(session, post, approve_for, actor)
                posts.append(post)
        return posts

    async def update_draft(self, post_id: int, draft: PostDraft, *, actor: str) -> list[str]:
        """Replace a draft's content; the media paths it no longer uses.

        Guarded by `status = 'draft'`: an approval that lands first wins.
        """
        async with self._sessions.begin() as session:
            before = await session.scalar(select(Post.media).where(Post.id == post_id))
            result = await session.execute(
                update(Post)
                .where(Post.id == post_id, Post.status == PostStatus.DRAFT)
                .values(**_content(draft))
            )
            if not getattr(result, "rowcount", 0):
                raise InputError(f"Bài #{post_id} không còn là bản nháp nên không sửa được nữa.")
            session.add(AuditEntry(actor=actor, action="post.edit", post_id=post_id))
        return [m for m in before or [] if m not in draft.media]

    async def reject(self, post_id: int, reason: str, *, actor: str) -> None:
        """Cancel a draft and record why, for the person who wrote it."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Post)
                .where(Post.id == post_id, Post.status == PostStatus.DRAFT)
                .values(status=PostStatus.CANCELLED)
            )
            if not getattr(result, "rowcount", 0):
                raise InputError(f"Bài #{post_id} không còn là bản nháp; hãy dùng «Huỷ bài».")
            session.add(
                AuditEntry(
                    actor=actor, action="post.reject", post_id=post_id, detail={"reason": reason}
                )
            )

    async def reschedule(
        self, post_id: int, day: date, clock: time | None, tz: ZoneInfo, *, actor: str
    ) -> tuple[datetime, datetime]:
        """Move a post that has not started sending to `day` (keeping its time unless `clock`).

        The post's `scheduled_at` and every delivery's `next_attempt_at` move together, or
        nothing moves: only drafts and approved posts whose deliveries are all untried
        `pending` rows, so a post is never split across two days. Returns (before, after).
        """
        async with self._sessions.begin() as session:
            post = await session.scalar(select(Post).where(Post.id == post_id).with_for_update())
            if post is None:
                raise InputError(f"Không có bài #{post_id}.")
            if post.status not in (PostStatus.DRAFT, PostStatus.APPROVED):
                status = POST_STATUS.get(post.status, post.status).lower()
                raise InputError(f"Bài #{post_id} {status}, không dời lịch được.")
            before = post.scheduled_at
            after = datetime.combine(day, clock or before.astimezone(tz).time(), tzinfo=tz)
            now = await session.scalar(select(db_now()))
            if now is not None and after <= now:
                today = now.astimezone(tz).date()
                raise InputError(
                    f"Ngày {day:%d/%m/%Y} đã qua; hãy chọn hôm nay hoặc một ngày sau."
                    if day < today
                    else f"{after:%H:%M} hôm nay đã qua; hãy chọn giờ muộn hơn hoặc ngày khác."
                )
            total = await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.post_id == post_id)
            )
            moved = await session.execute(
                update(Delivery)
                .where(Delivery.post_id == post_id, Delivery.status == S.PENDING)
                .where(Delivery.attempts == 0)
                .values(next_attempt_at=after)
            )
            if int(getattr(moved, "rowcount", 0) or 0) != int(total or 0):
                raise InputError(f"Bài #{post_id} đã bắt đầu gửi nên không dời lịch được.")
            post.scheduled_at = after
            detail = {"from": before.isoformat(), "to": after.astimezone(tz).isoformat()}
            session.add(
                AuditEntry(actor=actor, action="post.reschedule", post_id=post_id, detail=detail)
            )
        return before, after

    async def approve(
        self, post_id: int, targets: Sequence[Target], *, actor: str
    ) -> tuple[Post, int]:
        """Approve a post and create one delivery per target, all in one transaction.

        Approving again adds nothing: deliveries are unique per (post, channel, target).
        Returns the post and the number of deliveries created now.
        """
        async with self._sessions.begin() as session:
            post = await self._post_for_update(session, post_id)
            created = await self._approve_in(session, post, targets, actor)
        return post, created

    async def _approve_in(
        self, session: AsyncSession, post: Post, targets: Sequence[Target], actor: str
    ) -> int:
        if post.status == PostStatus.CANCELLED:
            raise InputError(f"Bài #{post.id} đã bị huỷ, không thể duyệt.")
        if post.status == PostStatus.DRAFT:
            post.status = PostStatus.APPROVED
            post.approver = actor
            post.approved_at = await session.scalar(select(db_now()))
        rows = [
            {
                "post_id": post.id,
                "channel": t.channel,
                "target_id": t.target_id,
                "target_label": t.label,
                "cluster_code": t.cluster_code,
                "account": Channel(t.channel).account,
                "status": S.PENDING,
                "next_attempt_at": post.scheduled_at,
            }
            for t in targets
        ]
        created = 0
        if rows:
            inserted = await session.scalars(
                _insert_ignore(session, Delivery).values(rows).returning(Delivery.id)
            )
            created = len(inserted.all())
        session.add(
            AuditEntry(actor=actor, action="post.approve", post_id=post.id, detail={"new": created})
        )
        return created

    async def cancel(self, post_id: int, *, actor: str) -> tuple[int, int]:
        """Cancel a post: deliveries not yet on the wire are cancelled.

        Returns (cancelled now, already being sent). A delivery in `sending` left the
        queue before the cancel and cannot be called back.
        """
        async with self._sessions.begin() as session:
            post = await self._post_for_update(session, post_id)
            if post.status == PostStatus.DONE:
                raise InputError(f"Bài #{post_id} đã đăng xong, không thể huỷ.")
            post.status = PostStatus.CANCELLED
            result = await session.execute(
                update(Delivery)
                .where(Delivery.post_id == post_id, Delivery.status.in_(CLAIMABLE))
                .values(status=S.CANCELLED, lease_owner=None, lease_expires_at=None)
            )
            in_flight = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.post_id == post_id, Delivery.status.in_((S.SENDING, S.IN_DOUBT)))
            )
            session.add(AuditEntry(actor=actor, action="post.cancel", post_id=post_id))
        return int(getattr(result, "rowcount", 0) or 0), int(in_flight or 0)

    async def retry(self, post_id: int, *, actor: str) -> int:
        """Send again the deliveries that failed or that a person confirmed were not sent."""
        async with self._sessions.begin() as session:
            post = await self._post_for_update(session, post_id)
            if post.status == PostStatus.CANCELLED:
                raise InputError(f"Bài #{post_id} đã bị huỷ.")
            if post.status == PostStatus.DRAFT:
                raise InputError(f"Bài #{post_id} chưa được duyệt.")
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.post_id == post_id,
                    Delivery.status.in_((S.FAILED, S.NEEDS_HUMAN)),
                )
                .values(
                    status=S.PENDING,
                    attempts=0,
                    resends=0,
                    next_attempt_at=db_now(),
                    last_error=None,
                    last_error_code=None,
                )
            )
            count = int(getattr(result, "rowcount", 0) or 0)
            if count:
                post.status = PostStatus.APPROVED
            session.add(AuditEntry(actor=actor, action="post.retry", post_id=post_id))
        return count

    async def _post_for_update(self, session: AsyncSession, post_id: int) -> Post:
        post = await session.scalar(select(Post).where(Post.id == post_id).with_for_update())
        if post is None:
            raise InputError(f"Không có bài #{post_id}.")
        return post

    async def get(self, post_id: int) -> Post:
        """A post with its deliveries."""
        async with self._sessions() as session:
            post = await session.scalar(
                select(Post).where(Post.id == post_id).options(selectinload(Post.deliveries))
            )
        if post is None:
            raise InputError(f"Không có bài #{post_id}.")
        return post

    async def list_posts(self, status: str | None = None) -> list[Post]:
        """Posts (newest schedule last), with their deliveries."""
        query = (
            select(Post).options(selectinload(Post.deliveries)).order_by(Post.scheduled_at, Post.id)
        )
        if status:
            query = query.where(Post.status == status)
        async with self._sessions() as session:
            return list(await session.scalars(query))

    # ---- the dispatcher's side ----------------------------------------------------------

    async def claim(
        self, account: str, limit: int, *, worker: str, lease_seconds: float
    ) -> list[Claimed]:
        """Lease up to `limit` due deliveries of an account that is not paused.

        A delivery to send (pending, retry_wait, or claimed by a worker whose lease ran out)
        becomes claimed. An in_doubt one keeps its status and is leased for reconciliation:
        `Claimed.status` says which. One statement for both, so a busy loop pays for one.
        """
        if limit <= 0:
            return []
        params = {
            "p_account": account,
            "p_limit": limit,
            "p_worker": worker,
            "p_lease": lease_seconds,
        }
        async with self._single.connect() as conn:
            rows = (await conn.execute(_claim_statement(), params)).all()
        return [Claimed(**row._asdict()) for row in rows]

    async def begin_attempt(
        self, claimed: Claimed, *, worker: str, fingerprint: str, lease_seconds: float
    ) -> int | None:
        """Record the attempt and move claimed → sending, before any HTTP call.

        Returns the attempt id, or None when the lease was lost, the post cancelled or the
        account paused since the claim (see `unclaim`). Begins asked for at about the same
        time share one transaction and one UPDATE (`bot.batch`); each row keeps its own guard.

        Asked again after a commit whose answer was lost, it returns the attempt that commit
        began while the row is as it left it: `sending`, under this worker, at this attempt
        number. Only this begin leaves a row so: worker names are unique, a dispatcher runs
        one task per delivery (`Dispatcher.step`), and every other begin raises the number.
        Otherwise it gets None like any late begin, and the row is looked up once its lease
        lapses.
        """
        begun = await self._writes(
            _Begin(
                delivery_id=claimed.id,
                number=claimed.attempts + 1,
                worker=worker,
                fingerprint=fingerprint,
                lease_seconds=lease_seconds,
            )
        )
        assert not isinstance(begun, bool)
        return begun

    async def _write_many(
        self, conn: AsyncConnection, items: Sequence[_Begin | _Finish]
    ) -> list[int | bool | None]:
        """Outcomes and begins asked for at about the same time: one transaction for all."""
        finishes = [(n, item) for n, item in enumerate(items) if isinstance(item, _Finish)]
        begins = [(n, item) for n, item in enumerate(items) if isinstance(item, _Begin)]
        results: list[int | bool | None] = [None] * len(items)
        async with conn.begin():
            if finishes:
                recorded = await self._finish_many(conn, [item for _, item in finishes])
                for (n, _), ok in zip(finishes, recorded, strict=True):
                    results[n] = ok
            if begins:
                begun = await self._begin_many(conn, [item for _, item in begins])
                for (n, _), attempt in zip(begins, begun, strict=True):
                    results[n] = attempt
        return results

    async def _begin_many(self, conn: AsyncConnection, items: Sequence[_Begin]) -> list[int | None]:
        begun: list[int | None] = [None] * len(items)
        rows = [
            {"delivery_id": i.delivery_id, "number": i.number, "worker": i.worker} for i in items
        ]
        attempt_ids = list((await conn.scalars(_NEW_ATTEMPTS, rows)).all())
        for group in _groups(items, lambda i: (i.worker, i.lease_seconds)):
            first = items[group[0]]
            params: dict[str, Any] = {"p_worker": first.worker, "p_lease": first.lease_seconds}
            for n, index in enumerate(group):
                params |= {
                    f"d{n}": items[index].delivery_id,
                    f"a{n}": attempt_ids[index],
                    f"n{n}": items[index].number,
                    f"f{n}": items[index].fingerprint,
                }
            moved = dict((await conn.execute(_begin_statement(len(group)), params)).all())
            for index in group:
                begun[index] = moved.get(items[index].delivery_id)
        unused = sorted(set(attempt_ids) - set(begun))
        if unused:
            await conn.execute(delete(Attempt).where(Attempt.id.in_(unused)))
        return begun

    async def unclaim(self, delivery_id: int, *, worker: str) -> None:
        """Let go of a claim that may not go ahead now (its account was paused meanwhile).

        A claimed delivery goes back to pending; an in_doubt one stays in doubt, unleased.
        """
        async with self._single.connect() as conn:
            await conn.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,
                    Delivery.status.in_((S.CLAIMED, S.IN_DOUBT)),
                    Delivery.lease_owner == worker,
                )
                .values(
                    status=case((Delivery.status == S.CLAIMED, S.PENDING), else_=Delivery.status),
                    lease_owner=None,
                    lease_expires_at=None,
                )
            )

    async def paused(self, account: str) -> bool:
        """Whether the account rests now (a pause in force, or waiting for a person)."""
        async with self._single.connect() as conn:
            return bool(await conn.scalar(select(~_not_paused(literal(account)))))

    async def finish(
        self,
        delivery_id: int,
        attempt_id: int,
        status: S,
        *,
        outcome: str,
        remote_id: str | None = None,
        permalink: str | None = None,
        error_code: str | None = None,
        error: str | None = None,
        retry_in: float = 0.0,
        refund_attempt: bool = False,
        mention_instead: bool = False,
    ) -> bool:
        """Record how an attempt ended. False if another outcome was recorded first.

        `mention_instead` adds, in the same transaction, a mention of the admin in the
        cluster's group (Zalo's 7-day window was closed for a direct message). Outcomes
        recorded at about the same time share one transaction (`bot.batch`).
        """
        recorded = await self._writes(
            _Finish(
                delivery_id=delivery_id,
                attempt_id=attempt_id,
                status=status,
                outcome=outcome,
                remote_id=remote_id,
                permalink=permalink,
                error_code=error_code,
                error=error,
                retry_in=retry_in,
                refund_attempt=refund_attempt,
                mention_instead=mention_instead,
            )
        )
        return recorded is True

    async def _finish_many(self, conn: AsyncConnection, items: Sequence[_Finish]) -> list[bool]:
        recorded = [False] * len(items)
        for group in _groups(items, _Finish.kind):
            params: dict[str, Any] = {}
            for n, index in enumerate(group):
                item = items[index]
                params |= {
                    f"d{n}": item.delivery_id,
                    f"a{n}": item.attempt_id,
                    f"c{n}": item.error_code,
                    f"e{n}": item.error,
                    f"r{n}": item.remote_id,
                    f"l{n}": item.permalink,
                    f"t{n}": item.retry_in,
                }
            statement = _finish_statement(*items[group[0]].kind(), len(group))
            moved = set(await conn.scalars(statement, params))
            for index in group:
                recorded[index] = items[index].delivery_id in moved
        done = [item for item, ok in zip(items, recorded, strict=True) if ok]
        if done:
            await conn.execute(
                _FINISH_ATTEMPT,
                [
                    {
                        "p_attempt": i.attempt_id,
                        "p_outcome": i.outcome,
                        "p_error_code": i.error_code,
                        "p_error": i.error,
                        "p_remote_id": i.remote_id,
                    }
                    for i in done
                ],
            )
        for item in done:
            if item.mention_instead:
                await self._add_mention_in(conn, item.delivery_id)
        final = [i.delivery_id for i in done if i.status in TERMINAL]
        if final:
            await conn.execute(_CLOSE_POSTS, {"p_ids": final})
        return recorded

    async def extend_lease(
        self, delivery_id: int, attempt_id: int, *, lease_seconds: float
    ) -> None:
        """Keep a send's lease while it is still running."""
        async with self._single.connect() as conn:
            await conn.execute(
                update(Delivery)
                .where(
                    Delivery.id == delivery_id,
                    Delivery.current_attempt_id == attempt_id,
                    Delivery.status == S.SENDING,
                )
                .values(lease_expires_at=db_now(lease_seconds))
            )

    async def sweep(self) -> int:
        """Deliveries whose sender vanished mid-send become in_doubt, never silently re-sent."""
        async with self._single.connect() as conn:
            result = await conn.execute(
                update(Delivery)
                .where(_HELD, Delivery.status == S.SENDING, Delivery.lease_expires_at < db_now())
                .values(
                    status=S.IN_DOUBT,
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=db_now(),
                    last_error="Tiến trình gửi dừng giữa chừng; cần đối soát.",
                    last_error_code="lease_expired",
                )
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def release(self, worker: str, *, settle_seconds: float) -> int:
        """Hand back what a stopping worker still holds; returns how many rows moved.

        Claimed but not begun → pending. A send cut short → in_doubt, looked up after
        `settle_seconds` (it may have landed). An in_doubt row being reconciled is let go.
        """
        mine = Delivery.lease_owner == worker
        unleased = {"lease_owner": None, "lease_expires_at": None}
        async with self._sessions.begin() as session:
            claimed = await session.execute(
                update(Delivery)
                .where(mine, Delivery.status == S.CLAIMED)
                .values(status=S.PENDING, **unleased)
            )
            cut = await session.execute(
                update(Delivery)
                .where(mine, Delivery.status == S.SENDING)
                .values(
                    status=S.IN_DOUBT,
                    next_attempt_at=db_now(settle_seconds),
                    last_error="Bot dừng khi đang gửi; cần đối soát.",
                    last_error_code="stopped",
                    **unleased,
                )
            )
            looked = await session.execute(
                update(Delivery).where(mine, Delivery.status == S.IN_DOUBT).values(**unleased)
            )
        return sum(int(getattr(r, "rowcount", 0) or 0) for r in (claimed, cut, looked))

    async def release_unheld(self, worker: str, *, held: set[int]) -> int:
        """Claims of `worker` it does not know it holds go back to pending (nothing began)."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(Delivery.lease_owner == worker, Delivery.status == S.CLAIMED)
                .where(Delivery.id.not_in(held) if held else true())
                .values(status=S.PENDING, lease_owner=None, lease_expires_at=None)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def resend_after_absent(self, claimed: Claimed, *, worker: str) -> bool:
        """A reconciled delivery proved absent goes back to pending, once."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(Delivery)
                .where(
                    Delivery.id == claimed.id,
                    Delivery.status == S.IN_DOUBT,
                    Delivery.lease_owner == worker,
                    Delivery.resends < 1,
                )
                .values(
                    status=case((_post_cancelled(), S.CANCELLED), else_=S.PENDING),
                    resends=Delivery.resends + 1,
                    lease_owner=None,
                    lease_expires_at=None,
                    next_attempt_at=db_now(),
                )
            )
            return bool(getattr(result, "rowcount", 0))

    async def _add_mention_in(self, conn: AsyncConnection, delivery_id: int) -> bool:
        """Name in the cluster's group an admin Zalo will not let us message directly.

        Adds one `zalo_mention` delivery (once, by the unique key); False when the admin's
        cluster has no group or the post was cancelled.
        """
        row = (
            await conn.execute(
                select(
                    Delivery.post_id,
                    Delivery.target_id,
                    Delivery.target_label,
                    Delivery.cluster_code,
                    Cluster.zalo_group_id,
                    Post.status,
                )
                .join(Cluster, Cluster.code == Delivery.cluster_code)
                .join(Post, Post.id == Delivery.post_id)
                .where(Delivery.id == delivery_id, Delivery.channel == Channel.ZALO_USER)
            )
        ).first()
        if row is None or not row.zalo_group_id or row.status == PostStatus.CANCELLED:
            return False
        inserted = await conn.scalar(
            _insert_ignore(conn, Delivery)
            .values(
                post_id=row.post_id,
                channel=Channel.ZALO_MENTION,
                target_id=f"{row.zalo_group_id}/{row.target_id}",
                target_label=f"Nhắc {row.target_label} trong nhóm",
                cluster_code=row.cluster_code,
                account="zalo",
                status=S.PENDING,
                next_attempt_at=db_now(),
            )
            .returning(Delivery.id)
        )
        return inserted is not None

    async def attempt_started(self, attempt_id: int) -> datetime:
        """When an attempt began (reconciliation looks for the post from then on)."""
        async with self._sessions() as session:
            started = await session.scalar(
                select(Attempt.started_at).where(Attempt.id == attempt_id)
            )
        if started is None:
            raise LookupError(attempt_id)
        return started

    async def first_attempt_started(self, delivery_id: int) -> datetime | None:
        """When the delivery's first attempt began (a message in parts resumes from then)."""
        async with self._sessions() as session:
            return await session.scalar(
                select(func.min(Attempt.started_at)).where(Attempt.delivery_id == delivery_id)
            )

    async def post_of(self, post_id: int) -> Post:
        """The post a delivery belongs to (for rendering)."""
        async with self._sessions() as session:
            post = await session.get(Post, post_id)
        if post is None:
            raise LookupError(post_id)
        return post

    # ---- accounts -------------------------------------------------------------------------

    async def pause_account(
        self, key: str, *, seconds: float | None, needs_reauth: bool, note: str
    ) -> None:
        """Pause an account for `seconds`, or until a person acts (`needs_reauth`).

        A timed pause never shortens a longer one already in force.
        """
        values: dict[str, Any]
        if needs_reauth or seconds is None:
            values = {"needs_reauth": True, "note": note}
        else:
            longer = Account.paused_until > db_now(seconds)
            values = {
                "paused_until": case((longer, Account.paused_until), else_=db_now(seconds)),
                "note": case((longer, Account.note), else_=note),
            }
        async with self._sessions.begin() as session:
            await session.execute(
                _insert_ignore(session, Account).values(key=key, needs_reauth=False)
            )
            await session.execute(update(Account).where(Account.key == key).values(**values))

    async def clear_reauth(self, key: str) -> None:
        """The token works again: lift the wait for a person (not a timed pause)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Account)
                .where(Account.key == key, Account.needs_reauth)
                .values(needs_reauth=False, note=None)
            )

    async def resume_account(self, key: str) -> None:
        """Lift a pause (a token was replaced)."""
        async with self._sessions.begin() as session:
            await session.execute(
                update(Account)
                .where(Account.key == key)
                .values(needs_reauth=False, paused_until=None, note=None)
            )

    async def accounts(self) -> dict[str, AccountState]:
        """Every account row, by key."""
        async with self._sessions() as session:
            rows = await session.scalars(select(Account))
            return {
                a.key: AccountState(a.key, a.paused_until, a.needs_reauth, a.note) for a in rows
            }

    # ---- reading the state ------------------------------------------------------------------

    async def next_due(self) -> datetime | None:
        """When the dispatcher next has something to do (a due time, a pause ending, a lease)."""
        return (await self.due_times()).soonest

    async def due_times(self, accounts: Sequence[str] = ()) -> DueTimes:
        """When each of `accounts` next has work, when a send's lease runs out, and "now".

        With no accounts, one entry "*" covers them all. One statement, so one snapshot:
        rows moving between states while it runs cannot make it miss them; each part reads
        one of the partial indexes (`_DUE`, `_HELD`), never the history.
        """
        keys = tuple(accounts) or ("*",)
        async with self._single.connect() as conn:
            row = (await conn.execute(_due_times_statement(keys))).one()
        *per_account, sweep_at, now = row
        by_account = {
            key: min((t for t in per_account[n * 3 : n * 3 + 3] if t is not None), default=None)
            for n, key in enumerate(keys)
        }
        return DueTimes(by_account, sweep_at, now)

    async def counts(self) -> dict[str, int]:
        """Deliveries by status."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(Delivery.status, func.count()).group_by(Delivery.status)
            )
            return {str(status): int(n) for status, n in rows.all()}

    async def known_sources(self, keys: Sequence[str]) -> set[str]:
        """Which of `keys` already name a stored post (the automatic jobs' memory)."""
        found: set[str] = set()
        async with self._sessions() as session:
            for start in range(0, len(keys), 500):
                chunk = list(keys[start : start + 500])
                rows = await session.scalars(
                    select(Post.source_key).where(Post.source_key.in_(chunk))
                )
                found.update(key for key in rows if key)
        return found

    async def scheduled_from(self, source: str, start: datetime, end: datetime) -> bool:
        """Whether a post of `source` is scheduled from `start` (inclusive) to `end`."""
        async with self._sessions() as session:
            found = await session.scalar(
                select(Post.id)
                .where(Post.source == source, Post.scheduled_at >= start, Post.scheduled_at < end)
                .limit(1)
            )
        return found is not None

    async def now(self) -> datetime:
        """The database's clock."""
        async with self._sessions() as session:
            value: datetime | None = await session.scalar(select(db_now()))
        if value is None:
            raise RuntimeError("the database returned no time")
        return value


class _Write(Protocol):
    @property
    def delivery_id(self) -> int: ...


W = TypeVar("W", bound=_Write)


@dataclass(frozen=True)
class _Begin:
    delivery_id: int
    number: int
    worker: str
    fingerprint: str
    lease_seconds: float


@dataclass(frozen=True)
class _Finish:
    delivery_id: int
    attempt_id: int
    status: S
    outcome: str
    remote_id: str | None
    permalink: str | None
    error_code: str | None
    error: str | None
    retry_in: float
    refund_attempt: bool
    mention_instead: bool

    def kind(self) -> tuple[S, bool, bool]:
        """Outcomes of one kind are recorded by one statement."""
        return self.status, self.refund_attempt, self.outcome == "reconcile_later"


# The dispatcher's own writes, built once: each runs for every delivery.
_NEW_ATTEMPTS = insert(Attempt).returning(Attempt.id, sort_by_parameter_order=True)
_FINISH_ATTEMPT = (
    update(Attempt)
    .where(Attempt.id == bindparam("p_attempt"))
    .values(
        finished_at=db_now(),
        outcome=bindparam("p_outcome"),
        error_code=bindparam("p_error_code"),
        error=bindparam("p_error"),
        remote_id=bindparam("p_remote_id"),
    )
)
# Posts of the deliveries :p_ids whose deliveries are all final become done.
_CLOSE_POSTS = (
    update(Post)
    .where(
        Post.id.in_(
            select(Delivery.post_id).where(Delivery.id.in_(bindparam("p_ids", expanding=True)))
        ),
        Post.status == PostStatus.APPROVED,
        ~exists(
            select(Delivery.id).where(
                Delivery.post_id == Post.id, Delivery.status.not_in(tuple(TERMINAL))
            )
        ),
    )
    .values(status=PostStatus.DONE)
)


def _groups(items: Sequence[W], key: Callable[[W], Hashable]) -> list[list[int]]:
    """Indexes of `items` by `key`, in order; a delivery twice in one batch goes in two groups."""
    groups: list[tuple[Hashable, set[int], list[int]]] = []
    for index, item in enumerate(items):
        delivery = item.delivery_id
        for k, ids, members in groups:
            if k == key(item) and delivery not in ids:
                ids.add(delivery)
                members.append(index)
                break
        else:
            groups.append((key(item), {delivery}, [index]))
    return [members for _, _, members in groups]


def _each(name: str, size: int, type_: Any) -> Any:
    """A value that differs by row in a set-based UPDATE: CASE id WHEN :d0 THEN :name0 … END."""
    return case(
        *(
            (
                Delivery.id == bindparam(f"d{n}", type_=Integer()),
                bindparam(f"{name}{n}", type_=type_),
            )
            for n in range(size)
        )
    )


def _ids(size: int) -> list[Any]:
    return [bindparam(f"d{n}", type_=Integer()) for n in range(size)]


@cache
def _claim_statement() -> Any:
    """Lease up to :p_limit due deliveries of :p_account (see `PostQueue.claim`)."""
    due = (
        select(Delivery.id)
        .where(
            Delivery.account == bindparam("p_account", type_=String()),
            _DUE,
            Delivery.next_attempt_at <= db_now(),
            or_(
                Delivery.status.in_((S.PENDING, S.RETRY_WAIT)),
                Delivery.lease_expires_at.is_(None),
                Delivery.lease_expires_at < db_now(),
            ),
            _not_paused(Delivery.account),
        )
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(bindparam("p_limit", type_=Integer()))
        .with_for_update(skip_locked=True)
    )
    return (
        update(Delivery)
        .where(Delivery.id.in_(due.scalar_subquery()))
        .values(
            status=case((Delivery.status == S.IN_DOUBT, S.IN_DOUBT), else_=S.CLAIMED),
            lease_owner=bindparam("p_worker", type_=String()),
            lease_expires_at=db_now(bindparam("p_lease", type_=Float())),
        )
        .returning(*_CLAIMED_COLUMNS)
    )


@cache
def _begin_statement(size: int) -> Any:
    """claimed → sending for `size` deliveries of one worker, each guarded as if alone.

    A row this worker already began at attempt :n (a lost answer, asked again) keeps its
    attempt. Returns each moved row's id and current attempt.
    """
    claimed = Delivery.status == S.CLAIMED
    begun = (Delivery.status == S.SENDING) & (Delivery.attempts == _each("n", size, Integer()))
    return (
        update(Delivery)
        .where(
            Delivery.id.in_(_ids(size)),
            claimed | (begun & ~_post_cancelled()),  # a cancel stops a begin asked again too
            Delivery.lease_owner == bindparam("p_worker"),
            _not_paused(Delivery.account),
        )
        .values(
            status=S.SENDING,
            attempts=case((claimed, Delivery.attempts + 1), else_=Delivery.attempts),
            current_attempt_id=case(
                (claimed, _each("a", size, Integer())), else_=Delivery.current_attempt_id
            ),
            fingerprint=_each("f", size, String()),
            lease_expires_at=db_now(bindparam("p_lease", type_=Float())),
        )
        .returning(Delivery.id, Delivery.current_attempt_id)
    )


@cache
def _finish_statement(status: S, refund_attempt: bool, looked_again: bool, size: int) -> Any:
    """Record how `size` attempts ended alike; each row is guarded by its own attempt."""
    values: dict[str, Any] = {
        "status": status,
        "lease_owner": None,
        "lease_expires_at": None,
        "last_error_code": _each("c", size, String()),
        "last_error": _each("e", size, Text()),
    }
    if status == S.SENT:
        values |= {
            "remote_id": _each("r", size, String()),
            "permalink": _each("l", size, Text()),
            "sent_at": db_now(),
        }
    if status in (S.RETRY_WAIT, S.IN_DOUBT):
        values["next_attempt_at"] = db_now(_each("t", size, Float()))
    if refund_attempt:
        values["attempts"] = Delivery.attempts - 1
    if looked_again:
        values["reconcile_tries"] = Delivery.reconcile_tries + 1
    if status == S.RETRY_WAIT:  # a post cancelled meanwhile is not tried again
        values["status"] = case((_post_cancelled(), S.CANCELLED), else_=status)
    return (
        update(Delivery)
        .where(
            Delivery.id.in_(_ids(size)),
            Delivery.current_attempt_id == _each("a", size, Integer()),
            Delivery.status.in_((S.SENDING, S.IN_DOUBT, S.NEEDS_HUMAN)),
        )
        .values(**values)
        .returning(Delivery.id)
    )


@cache
def _due_times_statement(accounts: tuple[str, ...]) -> Any:
    """Three times per account (or for all, "*"), the first send lease to lapse, and now."""
    columns: list[Any] = []
    for account in accounts:
        mine = true() if account == "*" else Delivery.account == account
        its = true() if account == "*" else Account.key == account
        leased = Delivery.lease_expires_at > db_now()  # an in_doubt row being reconciled
        due = select(func.min(Delivery.next_attempt_at)).where(
            _DUE,
            mine,
            or_(
                Delivery.status.in_((S.PENDING, S.RETRY_WAIT)),
                (Delivery.status == S.IN_DOUBT) & ~func.coalesce(leased, False),
            ),
            _not_paused(Delivery.account),
        )
        # A claim or a look-up whose worker vanished is claimed again when its lease lapses.
        lease = select(func.min(Delivery.lease_expires_at)).where(
            _DUE, mine, Delivery.status.in_((S.CLAIMED, S.IN_DOUBT))
        )
        live = or_(
            exists(select(Delivery.id).where(_DUE, Delivery.account == Account.key)),
            exists(select(Delivery.id).where(_HELD, Delivery.account == Account.key)),
        )
        paused = select(func.min(Account.paused_until)).where(
            its, Account.paused_until > db_now(), ~Account.needs_reauth, live
        )
        columns += [due.scalar_subquery(), lease.scalar_subquery(), paused.scalar_subquery()]
    sending = select(func.min(Delivery.lease_expires_at)).where(_HELD, Delivery.status == S.SENDING)
    return select(*columns, sending.scalar_subquery(), db_now())


_CLAIMED_COLUMNS = (
    Delivery.id,
    Delivery.post_id,
    Delivery.channel,
    Delivery.target_id,
    Delivery.account,
    Delivery.attempts,
    Delivery.resends,
    Delivery.current_attempt_id,
    Delivery.fingerprint,
    Delivery.reconcile_tries,
    Delivery.status,
)


async def clusters_for(session: AsyncSession, codes: Sequence[str] | None) -> list[Cluster]:
    """The clusters a post targets (None = all), with admins loaded."""
    query = select(Cluster).options(selectinload(Cluster.admins)).order_by(Cluster.code)
    if codes is not None:
        query = query.where(Cluster.code.in_(list(codes)))
    return list(await session.scalars(query))


def _content(draft: PostDraft) -> dict[str, Any]:
    """A post's columns that come from the officer's draft (on add and on edit)."""
    return {
        "kind": draft.kind,
        "category": draft.plan_category,
        "title": draft.title,
        "body": draft.body,
        "link": draft.link,
        "hashtags": list(draft.hashtags),
        "media": draft.media,
        "channels": list(draft.channels),
        "clusters": list(draft.clusters) if draft.clusters is not None else None,
        "details": draft.details,
        "scheduled_at": draft.scheduled_at,
    }


# The claim's status test written with literal values, as the partial index `ix_deliveries_due`
# states it: SQLite uses a partial index only when the query repeats its condition, and a
# bound parameter does not (with it, SQLite scanned the whole table: 19x slower at 1M rows).
_DUE = Delivery.status.in_(
    bindparam("due_statuses", [s.value for s in DUE], expanding=True, literal_execute=True)
)
# The same for `ix_deliveries_sending`: rows on the wire or in doubt, by lease.
_HELD = Delivery.status.in_(
    bindparam(
        "held_statuses", [S.SENDING.value, S.IN_DOUBT.value], expanding=True, literal_execute=True
    )
)

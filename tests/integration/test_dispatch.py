"""The whole pipeline over real HTTP to the sandbox, on SQLite and PostgreSQL.

Each test queues posts, runs the dispatcher until nothing is due, and then checks the
database against what the sandbox really received: one message per delivery, never two.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, select, update

from bot.app import App
from bot.db.models import Attempt, Cluster, ClusterAdmin, Delivery, Post
from bot.queue import Target
from bot.settings import Settings
from connectors.sandbox import SANDBOX_PAGE_TOKEN, Fault, SandboxState
from connectors.sandbox.server import SandboxServer
from content.kinds import PostDraft
from schedules.clock import Clock
from tests.clock import daytime_unless_set

CLUSTERS = [
    ("C1", "Cụm Giáo dục", "aa11bb22cc33dd44ee55"),
    ("C2", "Cụm Y tế", "ff66aa77bb88cc99dd00"),
]
ADMINS = [
    ("C1", "Nguyễn Văn An", "1000000000000000001"),
    ("C2", "Trần Thị Bình", "1000000000000000002"),
]


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(enforce_night_hours=False, article_verify_polls=1)) as running:
        yield running


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxState:
    server.state.reset()
    server.state.enforce_night_hours = False
    return server.state


@pytest.fixture
async def bot(
    database_url: str, server: SandboxServer, sandbox: SandboxState
) -> AsyncIterator[App]:
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        sandbox_url=server.url,
        poll_seconds=0.2,
        settle_seconds=0.1,
        backoff_base_seconds=0.05,
        http_timeout_seconds=3,
        lease_seconds=30,
        facebook_min_gap_seconds=0,
    )
    app = App(settings, clock=daytime_unless_set(sandbox))
    async with app.sessions.begin() as session:
        for code, name, group in CLUSTERS:
            session.add(Cluster(code=code, name=name, zalo_group_id=group))
        await session.flush()
        ids = {c.code: c.id for c in await session.scalars(select(Cluster))}
        for code, name, user in ADMINS:
            session.add(ClusterAdmin(cluster_id=ids[code], name=name, zalo_user_id=user))
    yield app
    await app.aclose()


async def queue_post(bot: App, title: str, channels: tuple[str, ...], **extra: Any) -> Post:
    draft = PostDraft(
        kind="story",
        title=title,
        body=f"Nội dung của «{title}».",
        scheduled_at=extra.pop("at", datetime.now(UTC)),
        channels=channels,
        **extra,
    )
    targets = await bot.targets(draft.channels, draft.clusters)
    return await bot.queue.add(draft, actor="test", approve_for=targets)


async def run_until_idle(bot: App) -> None:
    async with bot.connectors() as connectors:
        dispatcher = bot.dispatcher(connectors)
        await asyncio.wait_for(dispatcher.serve(asyncio.Event(), until_idle=True), timeout=60)


async def deliveries(bot: App) -> list[Delivery]:
    async with bot.sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


def publish_calls(sandbox: SandboxState, route: str) -> int:
    return sum(1 for r in sandbox.requests if r["route"] == route)


ALL = ("facebook_page", "zalo_broadcast", "zalo_group", "zalo_user")


async def test_every_target_gets_exactly_one_message(bot: App, sandbox: SandboxState) -> None:
    for n in range(3):
        await queue_post(bot, f"Bài số {n}", ALL)
    await run_until_idle(bot)
    rows = await deliveries(bot)
    assert len(rows) == 3 * (1 + 1 + 2 + 2)
    assert {d.status for d in rows} == {"sent"}
    received = Counter((m["channel"], m["target"], m["text"]) for m in sandbox.messages())
    assert len(received) == len(rows)
    assert set(received.values()) == {1}
    remote = {m["remote_id"] for m in sandbox.messages()}
    assert {d.remote_id for d in rows} <= remote | {m.get("post_id") for m in sandbox.messages()}
    assert {p.status for p in await bot.queue.list_posts()} == {"done"}


async def test_lost_response_is_reconciled_not_reposted(bot: App, sandbox: SandboxState) -> None:
    sandbox.push_fault("fb.feed", Fault(kind="commit_then_error"))
    await queue_post(bot, "Phản hồi bị mất", ("facebook_page",))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    [post] = [m for m in sandbox.messages() if m["channel"] == "facebook_page"]
    assert delivery.status == "sent", (
        delivery.last_error,
        delivery.last_error_code,
        sandbox.requests,
    )
    assert delivery.remote_id == post["remote_id"]
    assert publish_calls(sandbox, "fb.feed") == 1


async def test_a_delivery_claimed_again_under_a_live_task_waits_for_it(
    bot: App, sandbox: SandboxState
) -> None:
    await queue_post(bot, "Kết nối chậm", ("zalo_group",))
    held = asyncio.Event()
    async with bot.connectors() as connectors:
        dispatcher = bot.dispatcher(connectors)
        compose = dispatcher.compose

        async def held_up(claimed: Any) -> Any:  # as if the database were away for a while
            await held.wait()
            return await compose(claimed)

        dispatcher.compose = held_up
        assert await dispatcher.step() == 2
        async with bot.sessions.begin() as session:  # the outage outlasted every lease
            await session.execute(
                update(Delivery).values(lease_expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
        assert await dispatcher.step() == 2  # claimed again: each waits for the task at it
        held.set()
        await asyncio.wait_for(dispatcher.serve(asyncio.Event(), until_idle=True), timeout=30)
    assert {d.status for d in await deliveries(bot)} == {"sent"}
    assert publish_calls(sandbox, "zalo.group_message") == 2


async def test_revoked_token_pauses_then_every_waiting_post_goes_once(
    bot: App, sandbox: SandboxState
) -> None:
    sandbox.fb_tokens[SANDBOX_PAGE_TOKEN] = "revoked"
    for n in range(3):
        await queue_post(bot, f"Chờ token {n}", ("facebook_page",))
    await run_until_idle(bot)
    rows = await deliveries(bot)
    assert {d.status for d in rows} == {"retry_wait", "pending"}
    assert all(d.attempts == 0 for d in rows)  # a pause does not spend attempts
    assert publish_calls(sandbox, "fb.feed") == 1  # nothing more after the first refusal
    account = (await bot.queue.accounts())["facebook"]
    assert account.needs_reauth and "190/460" in (account.note or "")

    sandbox.fb_tokens[SANDBOX_PAGE_TOKEN] = "valid"
    await bot.queue.resume_account("facebook")
    await run_until_idle(bot)
    assert {d.status for d in await deliveries(bot)} == {"sent"}
    assert len([m for m in sandbox.messages() if m["channel"] == "facebook_page"]) == 3


async def test_throttle_pauses_the_account_without_spending_attempts(
    bot: App, sandbox: SandboxState
) -> None:
    sandbox.push_fault("fb.feed", Fault(kind="throttle", minutes=5))
    await queue_post(bot, "Bị giới hạn", ("facebook_page",))
    await run_until_idle(bot)  # idle: the only work waits for the pause to end
    [delivery] = await deliveries(bot)
    assert (delivery.status, delivery.attempts) == ("retry_wait", 0)
    paused = (await bot.queue.accounts())["facebook"].paused_until
    assert paused is not None and paused > datetime.now(UTC) + timedelta(minutes=4)
    assert publish_calls(sandbox, "fb.feed") == 1


async def test_rejected_content_fails_with_a_reason(bot: App, sandbox: SandboxState) -> None:
    sandbox.push_fault("fb.feed", Fault.photo_rejected())
    await queue_post(bot, "Ảnh hỏng", ("facebook_page", "zalo_group"))
    await run_until_idle(bot)
    by_channel = {d.channel: d for d in await deliveries(bot) if d.cluster_code in (None, "C1")}
    assert by_channel["facebook_page"].status == "failed"
    assert "tham số không hợp lệ" in (by_channel["facebook_page"].last_error or "")
    assert by_channel["zalo_group"].status == "sent"


async def test_unreachable_link_is_tried_once_more_later(bot: App, sandbox: SandboxState) -> None:
    sandbox.push_fault("fb.feed", Fault.link_scrape_failed())
    await queue_post(bot, "Liên kết chưa đọc được", ("facebook_page",))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert (delivery.status, delivery.attempts) == ("retry_wait", 1)
    assert "không đọc được liên kết" in (delivery.last_error or "")


async def test_transient_refusal_is_retried(bot: App, sandbox: SandboxState) -> None:
    sandbox.push_fault("zalo.group_message", Fault(kind="error", code=-200))
    sandbox.push_fault("zalo.group_message", Fault(kind="error", code=-200))
    await queue_post(bot, "Thử lại", ("zalo_group",), clusters=("C1",))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert (delivery.status, delivery.attempts) == ("sent", 3)
    assert len(sandbox.messages()) == 1


async def test_broadcast_with_unknown_outcome_waits_for_a_person(
    bot: App, sandbox: SandboxState
) -> None:
    sandbox.push_fault("zalo.broadcast", Fault(kind="commit_then_error"))
    await queue_post(bot, "Phát đi không rõ", ("zalo_broadcast",))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert delivery.status == "needs_human"
    assert "không cho đọc lại" in (delivery.last_error or "")
    assert len(sandbox.zalo_broadcasts) == 1  # never sent a second time


async def test_group_message_with_lost_response_is_found_in_history(
    bot: App, sandbox: SandboxState
) -> None:
    sandbox.push_fault("zalo.group_message", Fault(kind="commit_then_error"))
    await queue_post(bot, "Nhóm mất phản hồi", ("zalo_group",), clusters=("C2",))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert delivery.status == "sent"
    assert len(sandbox.messages()) == 1


async def test_reconciliation_matches_what_was_sent_not_today_s_rendering(
    bot: App, sandbox: SandboxState
) -> None:
    sandbox.push_fault("zalo.group_message", Fault(kind="commit_then_error"))
    bot.settings.settle_seconds = 600  # the first run leaves it in doubt
    await queue_post(bot, "Chữ ký đổi", ("zalo_group",), clusters=("C1",))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert delivery.status == "in_doubt"
    org = bot.org
    bot.__dict__["org"] = org.model_copy(update={"signature": "Chữ ký mới của năm sau"})
    async with bot.sessions.begin() as session:
        await session.execute(update(Delivery).values(next_attempt_at=datetime.now(UTC)))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert delivery.status == "sent"
    assert len(sandbox.messages()) == 1  # found by its recorded fingerprint, not re-sent


async def test_cancelled_post_is_never_sent(bot: App, sandbox: SandboxState) -> None:
    post = await queue_post(bot, "Sẽ huỷ", ALL, at=datetime.now(UTC) + timedelta(seconds=1))
    await bot.queue.cancel(post.id, actor="test")
    await asyncio.sleep(1.1)
    await run_until_idle(bot)
    assert sandbox.messages() == []
    assert {d.status for d in await deliveries(bot)} == {"cancelled"}


async def test_poison_delivery_fails_alone(bot: App, sandbox: SandboxState) -> None:
    post = await queue_post(bot, "Bài lành", ("zalo_group",))
    async with bot.sessions.begin() as session:  # a row our own renderer cannot handle
        await session.execute(
            insert(Delivery).values(
                post_id=post.id,
                channel="fax",
                target_id="x",
                target_label="x",
                account="zalo",
                status="pending",
                next_attempt_at=datetime.now(UTC),
            )
        )
    await run_until_idle(bot)
    statuses = {d.channel: d.status for d in await deliveries(bot)}
    assert statuses == {"zalo_group": "sent", "fax": "failed"}
    poison = next(d for d in await deliveries(bot) if d.channel == "fax")
    assert "KeyError" in (poison.last_error or "")


async def test_image_gone_before_sending_fails_with_reason(
    bot: App, sandbox: SandboxState, tmp_path: Any
) -> None:
    from PIL import Image

    image = tmp_path / "anh.png"
    Image.new("RGB", (10, 10)).save(image)
    await queue_post(bot, "Ảnh bị xoá", ("facebook_page",), images=(image,))
    image.unlink()
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert delivery.status == "failed"
    assert "anh.png" in (delivery.last_error or "")
    assert sandbox.messages() == []


async def test_minimum_gap_between_page_posts_holds_the_next_one(
    bot: App, sandbox: SandboxState
) -> None:
    bot.settings.facebook_min_gap_seconds = 600
    for n in range(2):
        await queue_post(bot, f"Giãn cách {n}", ("facebook_page",))
    await run_until_idle(bot)  # idle: the second waits for the gap to pass
    statuses = sorted(d.status for d in await deliveries(bot))
    assert statuses == ["pending", "sent"]
    assert publish_calls(sandbox, "fb.feed") == 1
    paused = (await bot.queue.accounts())["facebook"].paused_until
    assert paused is not None and paused > datetime.now(UTC) + timedelta(minutes=9)


async def test_daily_account_check_flags_a_revoked_token(bot: App, sandbox: SandboxState) -> None:
    from schedules.jobs import check_accounts

    sandbox.fb_tokens[SANDBOX_PAGE_TOKEN] = "revoked"
    fire = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    async with bot.connectors() as connectors:
        await check_accounts(bot.sessions, bot.queue, connectors, fire, "w1")
        await check_accounts(bot.sessions, bot.queue, connectors, fire, "w2")
    accounts = await bot.queue.accounts()
    assert accounts["facebook"].needs_reauth
    assert "zalo" not in accounts or not accounts["zalo"].needs_reauth
    assert sum(1 for r in sandbox.requests if r["method"] == "GET") == 4  # each checks each

    sandbox.fb_tokens[SANDBOX_PAGE_TOKEN] = "valid"  # a person replaced the token
    async with bot.connectors() as connectors:
        await check_accounts(bot.sessions, bot.queue, connectors, fire, "w3")
    assert not (await bot.queue.accounts())["facebook"].needs_reauth


async def test_admin_outside_the_window_is_named_in_the_group_instead(
    bot: App, sandbox: SandboxState
) -> None:
    sandbox.add_user(ADMINS[0][2], ADMINS[0][1], datetime.now(UTC) - timedelta(days=8))
    await queue_post(bot, "Nhắc tên", ("zalo_user",), clusters=("C1",))
    await run_until_idle(bot)
    by_channel = {d.channel: d for d in await deliveries(bot)}
    assert by_channel["zalo_user"].status == "failed"
    assert "7 ngày" in (by_channel["zalo_user"].last_error or "")
    assert by_channel["zalo_mention"].status == "sent"
    [message] = sandbox.messages()
    assert (message["channel"], message["target"]) == ("zalo_group", CLUSTERS[0][2])
    assert message["text"].startswith(f"[@{ADMINS[0][2]}] ")
    assert not any(r["route"] == "zalo.cs_message" for r in sandbox.requests)
    assert (await bot.queue.get(by_channel["zalo_user"].post_id)).status == "done"


async def test_broadcast_at_night_goes_out_once_in_the_morning(
    bot: App, sandbox: SandboxState
) -> None:
    sandbox.enforce_night_hours = True
    night = datetime(2026, 12, 1, 16, 0, tzinfo=UTC)  # 23:00 in Hà Nội
    sandbox.set_now(night)
    await queue_post(bot, "Phát buổi sáng", ("zalo_broadcast",))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert (delivery.status, delivery.attempts) == ("retry_wait", 0)
    assert sandbox.zalo_broadcasts == []
    sandbox.set_now(night + timedelta(hours=7, minutes=5))  # 06:05
    async with bot.sessions.begin() as session:  # the morning has come
        await session.execute(update(Delivery).values(next_attempt_at=datetime.now(UTC)))
    await run_until_idle(bot)
    [delivery] = await deliveries(bot)
    assert delivery.status == "sent"
    assert len(sandbox.zalo_broadcasts) == 1


async def test_targets_follow_the_clusters_chosen(bot: App) -> None:
    targets = await bot.targets(("zalo_group", "zalo_user"), ("C2",))
    assert targets == [
        Target("zalo_group", "ff66aa77bb88cc99dd00", "Nhóm Cụm Y tế", "C2"),
        Target("zalo_user", "1000000000000000002", "Trần Thị Bình", "C2"),
    ]


@pytest.mark.postgres
async def test_two_workers_on_postgres_send_each_delivery_once(
    postgres_url: str, server: SandboxServer, sandbox: SandboxState
) -> None:
    def app() -> App:
        return App(
            Settings(
                _env_file=None,
                database_url=postgres_url,
                sandbox_url=server.url,
                poll_seconds=0.2,
                zalo_concurrency=16,
            ),
            clock=daytime_unless_set(sandbox),
        )

    first, second = app(), app()
    try:
        async with first.sessions.begin() as session:
            session.add(Cluster(code="C1", name="Cụm", zalo_group_id="aa11bb22cc33dd44ee55"))
        for n in range(100):
            await queue_post(first, f"Bài {n}", ("zalo_group", "zalo_broadcast"))
        await asyncio.gather(run_until_idle(first), run_until_idle(second))
        rows = await deliveries(first)
        assert len(rows) == 200 and {d.status for d in rows} == {"sent"}
        texts = Counter((m["channel"], m["text"]) for m in sandbox.messages())
        assert len(texts) == 200 and set(texts.values()) == {1}
        async with first.sessions() as session:
            workers = set(await session.scalars(select(Attempt.worker)))
        assert len(workers) == 2  # both took a share
    finally:
        await first.aclose()
        await second.aclose()


async def test_with_the_clock_a_backlog_is_not_looked_for_on_every_wake(
    bot: App, sandbox: SandboxState
) -> None:
    """The clock wakes the loop at the time it asked for; that is no reason to claim every
    account and read the due times again (a backlog made that a busy loop)."""
    sandbox.latency_seconds = 0.2  # sends take long enough for a backlog to last
    for n in range(60):
        await queue_post(bot, f"Tồn đọng {n}", ("zalo_group",))
    statements = Counter[str]()

    def count(*args: Any) -> None:
        statements[args[2].split()[0]] += 1  # SELECT, UPDATE, INSERT …

    event.listen(bot.engine.sync_engine, "before_cursor_execute", count)
    clock = Clock(bot.settings.tz)
    async with bot.connectors() as connectors:
        dispatcher = bot.dispatcher(connectors)
        clock.start(dispatcher.wake)
        try:
            serving = dispatcher.serve(asyncio.Event(), clock.wake_at, until_idle=True)
            await asyncio.wait_for(serving, timeout=60)
        finally:
            clock.shutdown()
            event.remove(bot.engine.sync_engine, "before_cursor_execute", count)
    rows = await deliveries(bot)
    assert len(rows) == 120 and {d.status for d in rows} == {"sent"}
    # Reads are a post's, once for its deliveries, and the due times after a claim came
    # back short; waking at the time asked for is no reason for more (it made hundreds).
    assert statements["SELECT"] < len(rows), statements

"""The automatic content jobs over a simulated year, on real SQLite and PostgreSQL.

The day is the job's argument, so a year passes in seconds; two schedulers plan every
day, and every notice of the calendar and every law item must be queued exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select, update

from bot.app import App
from bot.db.models import Cluster, JobRun, Post
from bot.settings import Settings
from content.calendar import load_events, notices_between
from content.library import load_library
from schedules.content import feed_drafts, plan_day
from schedules.runonce import STALE_RUN, claim_run
from tests.integration.test_feeds_http import NOW, FeedSite
from tests.integration.test_feeds_http import site as site  # the feed site, as a fixture here

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "content/data/example/organisation.yaml"
START = date(2026, 8, 1)  # every library item is within its verify_by date until 31/12/2026


def org_file(folder: Path, *, cards: bool, feeds: str | None) -> Path:
    text = EXAMPLE_ORG.read_text(encoding="utf-8")
    text = text.replace("  cards: true", f"  cards: {str(cards).lower()}")
    if feeds:
        text = text.replace("https://congbao.chinhphu.vn/cac-van-ban-moi-ban-hanh.rss", feeds)
    path = folder / "organisation.yaml"
    path.write_text(text, "utf-8")
    return path


async def make_bot(
    database_url: str, folder: Path, *, cards: bool, feeds: str | None = None
) -> App:
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        org_file=org_file(folder, cards=cards, feeds=feeds),
        cards_dir=folder / "cards",
    )
    bot = App(settings)
    async with bot.sessions.begin() as session:
        session.add_all(
            [
                Cluster(code="HCSN", name="Cụm Hành chính", zalo_group_id="g-hcsn"),
                Cluster(code="GD", name="Cụm Giáo dục", zalo_group_id="g-gd"),
            ]
        )
    return bot


@pytest.fixture
async def bot(database_url: str, tmp_path: Path) -> AsyncIterator[App]:
    app = await make_bot(database_url, tmp_path, cards=False)
    yield app
    await app.aclose()


async def posts(bot: App) -> list[Post]:
    async with bot.sessions() as session:
        return list(await session.scalars(select(Post).order_by(Post.id)))


@pytest.mark.slow
async def test_a_year_of_days_queues_every_notice_and_law_item_once(bot: App) -> None:
    days = [START + timedelta(days=n) for n in range(365)]
    law_days: list[date] = []
    for day in days:
        first = await plan_day(bot, day, "scheduler-1")
        second = await plan_day(bot, day, "scheduler-2")  # a second scheduler, same day
        assert first is not None
        assert second is None
        if any(key.split()[1].startswith("law:") for key in first.queued):
            law_days.append(day)

    stored = await posts(bot)
    keys = Counter(p.source_key for p in stored)
    assert all(n == 1 for n in keys.values())

    events, problems = load_events(local_events=bot.org.local_events)
    assert problems == []
    expected = {n.source_key for n in notices_between(events, days[0], days[-1])}
    assert {k for k in keys if k and k.startswith("event:")} == expected

    library = load_library().items
    law_posts = [p for p in stored if p.source == "law-library"]
    assert [p.source_key for p in law_posts] == [item.source_key for item in library]
    assert law_days == days[: len(library)]  # one a day, in order, until the library runs out
    assert all(p.status == "approved" and p.details["citation"] for p in law_posts)


async def test_a_day_whose_planning_was_cut_short_is_planned_by_the_next_scheduler(
    bot: App,
) -> None:
    day = date(2026, 7, 28)
    fire = datetime.combine(day, datetime.min.time(), bot.settings.tz).astimezone(UTC)
    assert await claim_run(bot.sessions, "plan-day", fire, "killed-midway")  # and nothing more
    assert await plan_day(bot, day, "scheduler-2") is None  # the first may still be at it
    async with bot.sessions.begin() as session:
        since = datetime.now(UTC) - STALE_RUN - timedelta(minutes=1)
        await session.execute(update(JobRun).values(started_at=since))
    outcome = await plan_day(bot, day, "scheduler-2")
    assert outcome is not None and outcome.queued
    assert len(await posts(bot)) == len(outcome.queued)
    law_posts = [p.source_key for p in await posts(bot) if p.source == "law-library"]
    assert len(law_posts) == 1

    # Killed again, this time after queuing everything and before saying it had finished.
    async with bot.sessions.begin() as session:
        since = datetime.now(UTC) - STALE_RUN - timedelta(minutes=1)
        await session.execute(update(JobRun).values(started_at=since, finished_at=None))
    again = await plan_day(bot, day, "scheduler-3")
    assert again is not None and again.queued == []  # nothing twice, not even a second law item
    assert [p.source_key for p in await posts(bot) if p.source == "law-library"] == law_posts


async def test_a_repeated_day_adds_nothing_and_approval_follows_the_category(bot: App) -> None:
    day = date(2026, 7, 28)  # 97 năm Công đoàn Việt Nam (union: waits for a person)
    outcome = await plan_day(bot, day, "scheduler-1")
    assert outcome is not None
    again = await plan_day(bot, day, "scheduler-1")
    assert again is None
    stored = await posts(bot)
    union = [p for p in stored if p.source_key == "event:cong-doan-viet-nam:2026-07-28:0"]
    assert len(union) == 1
    assert union[0].status == "draft"
    assert union[0].title.startswith("Kỷ niệm 97 năm Ngày thành lập Công đoàn Việt Nam")
    assert union[0].details["event_date"] == "2026-07-28"

    tet = date(2027, 2, 6)  # Tết Đinh Mùi: a traditional day, published without a person
    await plan_day(bot, tet, "scheduler-1")
    tet_posts = [p for p in await posts(bot) if (p.source_key or "").startswith("event:tet")]
    assert tet_posts
    assert all(p.status == "approved" for p in tet_posts)


async def test_the_law_item_carries_an_infographic(sqlite_url: str, tmp_path: Path) -> None:
    bot = await make_bot(sqlite_url, tmp_path, cards=True)
    try:
        await plan_day(bot, START, "scheduler-1")
        [law] = [p for p in await posts(bot) if p.source == "law-library"]
        [card] = law.media
        with Image.open(card) as image:
            assert image.size == (1080, 1350)
        assert law.scheduled_at.astimezone(bot.settings.tz).strftime("%H:%M") == "07:30"
    finally:
        await bot.aclose()


async def test_feed_items_become_drafts_once(
    database_url: str, tmp_path: Path, site: FeedSite
) -> None:
    url = f"{site.url}/feeds/congbao-van-ban-moi.rss"
    bot = await make_bot(database_url, tmp_path, cards=False, feeds=url)
    try:
        first = await feed_drafts(bot, NOW, NOW, "scheduler-1")
        assert first is not None
        assert first.queued, first.warnings
        assert await feed_drafts(bot, NOW, NOW, "scheduler-2") is None  # same fire time
        later = NOW + timedelta(days=1)
        again = await feed_drafts(bot, later, later, "scheduler-1")
        assert again is not None
        assert again.queued == []  # the same items, already stored: nothing new
        stored = [p for p in await posts(bot) if p.source == "feed"]
        assert len(stored) == len(first.queued)
        assert all(p.status == "draft" and p.kind == "law" for p in stored)
        assert all(p.source_key and p.source_key.startswith("feed:") for p in stored)
    finally:
        await bot.aclose()

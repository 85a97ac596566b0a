"""Tổng quan: today's and this week's queue, what needs a person, accounts, coming events."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.db.models import Delivery, Post
from bot.errors import BotError
from bot.web.app import bot_of, page, render
from bot.web.auth import VIEW

if TYPE_CHECKING:
    from bot.app import App
    from content.calendar import Occurrence

NEEDS_PERSON = ("failed", "in_doubt", "needs_human")


@page(VIEW)
async def dashboard(request: Request) -> Response:
    bot = bot_of(request)
    tz = bot.settings.tz
    now = datetime.now(UTC)
    today = now.astimezone(tz).date()
    start = datetime.combine(today, datetime.min.time(), tz)
    week_end = start + timedelta(days=7)
    async with bot.sessions() as session:
        week = list(
            await session.scalars(
                select(Post)
                .where(Post.scheduled_at >= start, Post.scheduled_at < week_end)
                .where(Post.status != "cancelled")
                .order_by(Post.scheduled_at)
                .limit(200)
            )
        )
        stuck = list(
            await session.scalars(
                select(Delivery)
                .where(Delivery.status.in_(NEEDS_PERSON))
                .order_by(Delivery.id.desc())
                .limit(50)
            )
        )
        drafts = len(list(await session.scalars(select(Post.id).where(Post.status == "draft"))))
    accounts = await bot.queue.accounts()
    counts = await bot.queue.counts()
    tomorrow = start + timedelta(days=1)
    return render(
        request,
        "dashboard.html",
        {
            "today": [p for p in week if p.scheduled_at < tomorrow],
            "week": [p for p in week if p.scheduled_at >= tomorrow],
            "stuck": stuck,
            "drafts": drafts,
            "accounts": accounts,
            "counts": counts,
            "events": _coming_events(bot, today),
        },
    )


def _coming_events(bot: App, today: date) -> list[Occurrence]:
    """The calendar's events in the next 45 days (none if the file cannot be read)."""
    from content.calendar import load_events, occurrences

    try:
        events, _ = load_events(local_events=bot.org.local_events)
    except BotError:  # a broken calendar file must not take the dashboard down
        return []
    return occurrences(events, today, today + timedelta(days=45))


routes = [Route("/", dashboard)]

"""The automatic content jobs: the day's event notices, the daily law item, feed drafts.

Each job claims its day (or fire time) in `job_runs` first, so however many schedulers
run, a day is planned once; each post carries a source key (`event:…`, `law:…`,
`feed:…`), so nothing is ever queued twice even if a run is repeated by hand. The jobs
only queue posts, at the organisation's default times; the dispatcher sends them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.errors import BotError, InputError
from content.kinds import PostDraft
from schedules.runonce import claim_run, finish_run

if TYPE_CHECKING:
    from bot.app import App
    from content.calendar import Notice
    from content.library import LawItem

log = logging.getLogger(__name__)
ACTOR = "bot"


@dataclass
class Outcome:
    """What a run queued and what a person should look at."""

    queued: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [f"{len(self.queued)} bài", *self.warnings]
        return "; ".join(parts)[:2000]


def _at(bot: App, day: date, kind: str) -> datetime:
    """`day` at the organisation's time for `kind`, in UTC."""
    local = datetime.combine(day, bot.org.time_for(kind), bot.settings.tz)
    return local.astimezone(UTC)


def _fire(bot: App, day: date) -> datetime:
    """The run-once key of a daily job: the start of `day` in the office's zone."""
    return datetime.combine(day, datetime.min.time(), bot.settings.tz).astimezone(UTC)


async def plan_day(bot: App, day: date, worker: str) -> Outcome | None:
    """Queue `day`'s event notices and law item; None when another run already did."""
    if not await claim_run(bot.sessions, "plan-day", _fire(bot, day), worker):
        return None
    outcome = Outcome()
    automation = bot.org.automation
    if automation.calendar:
        await _guarded(outcome, "lịch sự kiện", calendar_notices(bot, day, outcome))
    if automation.legal_update:
        await _guarded(outcome, "bản tin pháp luật", legal_update(bot, day, outcome))
    for warning in outcome.warnings:
        log.warning("%s", warning)
    await finish_run(bot.sessions, "plan-day", _fire(bot, day), outcome.summary())
    return outcome


async def _guarded(outcome: Outcome, what: str, job: Any) -> None:
    """Run one part of the day's plan; a failure is reported and the other part still runs."""
    try:
        await job
    except BotError as exc:
        outcome.warnings.append(f"Không lập được {what}: {exc.message}")


async def calendar_notices(bot: App, day: date, outcome: Outcome) -> None:
    """Queue the notices the event calendar has for `day`."""
    from content.calendar import load_events, notices_between

    events, problems = load_events(local_events=bot.org.local_events)
    outcome.warnings += problems
    notices = notices_between(events, day, day)
    known = await bot.queue.known_sources([n.source_key for n in notices])
    approved = set(bot.org.automation.calendar_approved)
    for notice in notices:
        if notice.source_key in known:
            continue
        event = notice.occurrence.event
        draft = PostDraft(
            kind="event",
            title=notice.title[:200],
            body=notice.body,
            event_date=notice.occurrence.date,
            hashtags=tuple(event.hashtags),
            images=_card_for_notice(bot, notice),
            scheduled_at=_at(bot, day, "event"),
            channels=tuple(bot.org.automation.channels),
            source="calendar",
            source_key=notice.source_key,
        )
        await _queue(bot, draft, approve=event.category in approved, outcome=outcome)


async def legal_update(bot: App, day: date, outcome: Outcome) -> None:
    """Queue the next item of the law library for `day`, or say why there is none."""
    from content.library import load_library

    library = load_library()
    outcome.warnings += library.problems
    # One item a day, even when a run cut short after queuing it is run again: its key is
    # the item's, so the next unused item would otherwise follow it the same day.
    next_day = day + timedelta(days=1)
    if await bot.queue.scheduled_from("law-library", _fire(bot, day), _fire(bot, next_day)):
        return
    used = await bot.queue.known_sources([item.source_key for item in library.items])
    item, held = library.next_item(used, day)
    outcome.warnings += held
    if item is None:
        outcome.warnings.append(
            "Thư viện hỏi – đáp pháp luật đã dùng hết: hôm nay không có bản tin pháp luật; "
            "hãy bổ sung mục mới vào content/data/law_library.yaml."
        )
        return
    draft = PostDraft(
        kind="law",
        title=item.title,
        body=item.summary,
        citation=item.full_citation,
        as_of=item.as_of,
        link=item.source_url,
        hashtags=("PhapLuatLaoDong",),
        images=_card_for_law(bot, item),
        scheduled_at=_at(bot, day, "law"),
        channels=tuple(bot.org.automation.channels),
        source="law-library",
        source_key=item.source_key,
    )
    await _queue(bot, draft, approve=bot.org.automation.legal_update_approved, outcome=outcome)


async def _queue(bot: App, draft: PostDraft, *, approve: bool, outcome: Outcome) -> None:
    targets = await bot.targets(draft.channels, None) if approve else None
    try:
        post = await bot.queue.add(draft, actor=ACTOR, approve_for=targets)
    except InputError:  # queued meanwhile by a run started by hand: the key says it is there
        return
    state = "đã duyệt" if approve else "chờ duyệt"
    outcome.queued.append(f"#{post.id} {draft.source_key} ({state})")


def _card_for_law(bot: App, item: LawItem) -> tuple[Path, ...]:
    from content.cards import Card

    card = Card(
        title=item.title,
        points=item.points,
        citation=item.full_citation,
        as_of=item.as_of,
        organisation=bot.org.name,
        kicker="GIẢI ĐÁP PHÁP LUẬT",
    )
    return _draw(bot, card, item.source_key)


def _card_for_notice(bot: App, notice: Notice) -> tuple[Path, ...]:
    from content.cards import Card

    occurrence = notice.occurrence
    points = [line.strip() for line in notice.body.splitlines() if line.strip()][:4]
    card = Card(
        title=occurrence.wording,
        points=tuple(points),
        citation=None,
        as_of=None,
        organisation=bot.org.name,
        kicker="THÔNG BÁO SỰ KIỆN",
    )
    return _draw(bot, card, notice.source_key)


def _draw(bot: App, card: Any, source_key: str) -> tuple[Path, ...]:
    """The card as the post's image, when the organisation wants cards."""
    from content.cards import write_card

    if not bot.org.automation.cards:
        return ()
    name = "".join(c if c.isalnum() or c in "-_" else "_" for c in source_key) + ".png"
    return (write_card(card, bot.settings.cards_dir / name).resolve(),)


async def feed_drafts(bot: App, now: datetime, fire_time: datetime, worker: str) -> Outcome | None:
    """Read the configured feeds; each new matching item becomes a draft for a person."""
    from content.feeds import Feed, draft_fields, fetch_all, new_feed_client

    if not await claim_run(bot.sessions, "feeds", fire_time, worker):
        return None
    outcome = Outcome()
    feeds = [Feed(name=f.name, url=f.url, adapter=f.adapter) for f in bot.org.automation.feeds]
    async with new_feed_client() as client:
        reports = await fetch_all(client, feeds, now=now)
    outcome.warnings += [r.problem for r in reports if r.problem]
    matches = [match for report in reports for match in report.matches]
    known = await bot.queue.known_sources([item.source_key for item, _ in matches])
    when = _next(bot, now, "law")
    for item, score in matches:
        if item.source_key in known:
            continue
        fields = dict(draft_fields(item, score))
        note = fields.pop("note")
        try:
            draft = PostDraft.model_validate(
                fields | {"scheduled_at": when, "channels": tuple(bot.org.automation.channels)}
            )
        except ValueError as exc:
            outcome.warnings.append(f"Bỏ qua tin «{item.title[:80]}»: {exc}")
            continue
        await _queue(bot, draft, approve=False, outcome=outcome)
        log.info("tin mới thành bản nháp: %s (%s)", item.title[:80], note)
    for warning in outcome.warnings:
        log.warning("%s", warning)
    await finish_run(bot.sessions, "feeds", fire_time, outcome.summary())
    return outcome


def _next(bot: App, now: datetime, kind: str) -> datetime:
    """The next time of day for `kind` after `now`."""
    today = now.astimezone(bot.settings.tz).date()
    at = _at(bot, today, kind)
    return at if at > now else _at(bot, today + timedelta(days=1), kind)

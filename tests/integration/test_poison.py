"""Deliveries our own code cannot prepare fail alone, with their reason, after one attempt.

Three kinds of poison sit at the head of the queue among many good deliveries: a post
whose image was replaced on disk by garbage after approval, one whose image was cut in
half, and a delivery on a channel the renderer does not know (it raises inside our own
composing code). Each must end `failed` with its error after exactly one attempt,
nothing of it may reach the platform, and every good delivery must still go out once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import insert, select

from bot.app import App
from bot.db.models import Cluster, Delivery
from bot.settings import Settings
from connectors.sandbox import SandboxState
from connectors.sandbox.server import SandboxServer
from content.kinds import PostDraft

GOOD = 20
GROUPS = ("g-poison-1", "g-poison-2")


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(enforce_night_hours=False)) as running:
        yield running


@pytest.fixture
async def bot(database_url: str, server: SandboxServer, tmp_path: Path) -> AsyncIterator[App]:
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        sandbox_url=server.url,
        media_cache_dir=tmp_path / "media",
        poll_seconds=0.2,
        facebook_min_gap_seconds=0,
        facebook_concurrency=4,
    )
    app = App(settings)
    async with app.sessions.begin() as session:
        session.add_all(
            Cluster(code=f"C{n}", name=f"Cụm {n}", zalo_group_id=group)
            for n, group in enumerate(GROUPS)
        )
    yield app
    await app.aclose()


async def queue(bot: App, title: str, when: datetime, images: tuple[Path, ...] = ()) -> int:
    draft = PostDraft(
        kind="story",
        title=title,
        body=f"Nội dung «{title}».",
        images=images,
        scheduled_at=when,
        channels=("facebook_page", "zalo_group"),
    )
    post = await bot.queue.add(
        draft, actor="test", approve_for=await bot.targets(draft.channels, None)
    )
    return post.id


async def test_poison_fails_alone_after_one_attempt(
    bot: App, server: SandboxServer, tmp_path: Path
) -> None:
    first = datetime.now(UTC) - timedelta(minutes=1)  # the poison is claimed first
    garbage, halved = tmp_path / "hong.png", tmp_path / "nua.png"
    for path in (garbage, halved):
        Image.new("RGB", (64, 64), (200, 30, 40)).save(path)
    broken = {
        await queue(bot, "Ảnh hỏng", first, (garbage,)),
        await queue(bot, "Ảnh cụt", first, (halved,)),
    }
    garbage.write_bytes(b"not an image at all")  # replaced on disk after approval
    halved.write_bytes(halved.read_bytes()[: halved.stat().st_size // 2])
    unknown = await queue(bot, "Kênh lạ", first)  # its real targets are good
    async with bot.sessions.begin() as session:  # a row our own renderer cannot handle
        await session.execute(
            insert(Delivery).values(
                post_id=unknown,
                channel="fax",
                target_id="x",
                target_label="x",
                account="zalo",
                status="pending",
                next_attempt_at=first,
            )
        )
    for n in range(GOOD):
        await queue(bot, f"Bài lành {n}", datetime.now(UTC))

    async with bot.connectors() as connectors:
        dispatcher = bot.dispatcher(connectors)
        await asyncio.wait_for(dispatcher.serve(asyncio.Event(), until_idle=True), timeout=120)

    async with bot.sessions() as session:
        rows = list(await session.scalars(select(Delivery)))
    poison = [d for d in rows if d.post_id in broken or d.channel == "fax"]
    good = [d for d in rows if d not in poison]
    assert len(poison) == 2 * (1 + len(GROUPS)) + 1
    assert {(d.status, d.attempts) for d in poison} == {("failed", 1)}
    for delivery in poison:
        reason = delivery.last_error or ""
        assert ("KeyError" if delivery.channel == "fax" else "Không đọc được ảnh") in reason

    assert {d.status for d in good} == {"sent"}
    assert len(good) == (GOOD + 1) * (1 + len(GROUPS))
    messages = Counter((m["target"], m["text"]) for m in server.state.messages())
    assert max(messages.values()) == 1
    assert len(messages) == len(good)  # nothing of the poison reached the platform
    print(
        f"\n{len(poison)} poison deliveries among {len(rows)}: each failed after 1 attempt "
        f"with its reason; {len(good)} good ones sent, each once"
    )

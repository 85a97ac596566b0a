"""Documents to Zalo groups and admins, and uploads reused across processes.

The connector against the sandbox over HTTP (in process), then whole `App`s on a real
database (SQLite and PostgreSQL) with the sandbox on loopback: two processes share one
upload, an upload older than Zalo keeps it is never reused, and a post with documents
reaches every group and admin exactly once, even when an answer is lost mid-way.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from bot.app import App
from bot.db.models import Cluster, ClusterAdmin, Delivery, Upload
from bot.settings import Settings
from connectors.base import OutboundMessage, OutcomeUnknown, Rejected, Unavailable
from connectors.sandbox import SANDBOX_ZALO_ACCESS_TOKEN, Fault, SandboxState, create_app
from connectors.sandbox.server import SandboxServer
from connectors.zalo import BROADCAST_FROM, BROADCAST_UNTIL, VIETNAM, ZaloOAConnector
from content.kinds import PostDraft
from content.media import ZALO_DOCUMENT_MAX
from tests.documents import write_docx, write_pdf

GROUP = "f414c8f76fa586fbdfb4"
OTHER_GROUP = "aa11bb22cc33dd44ee55"
USER = "2512523625412515"
NOON_VN = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def write_png(path: Path) -> Path:
    Image.new("RGB", (32, 32), (200, 0, 0)).save(path, format="PNG")
    return path


def routes(state: SandboxState) -> list[str | None]:
    return [entry["route"] for entry in state.requests]


def group_message(target: str = GROUP, **extra: Any) -> OutboundMessage:
    return OutboundMessage(
        channel="zalo_group", target_id=target, title="Kế hoạch", text="Gửi các cụm", **extra
    )


def shown(state: SandboxState, group: str = GROUP) -> list[str]:
    """What the group shows, oldest first: texts, and files by name."""
    return [m.file_name or m.text for m in state.zalo_groups[group].messages]


@pytest.fixture
def state() -> SandboxState:
    return SandboxState()


@pytest.fixture
async def zalo(state: SandboxState) -> AsyncIterator[ZaloOAConnector]:
    async def token() -> str:
        return SANDBOX_ZALO_ACCESS_TOKEN

    connector = ZaloOAConnector(
        openapi_url="http://sandbox",
        access_token=token,
        article_cover_url="https://congdoan.example.vn/cover.jpg",
        clock=state.now,
        sandbox=True,
        transport=httpx.ASGITransport(app=create_app(state)),
    )
    yield connector
    await connector.aclose()


# ---- the connector -----------------------------------------------------------------------------


async def test_text_and_image_first_then_each_document(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    """Everything is uploaded before the first message; the receipt is the text's id."""
    image = write_png(tmp_path / "anh.png")
    pdf, docx = write_pdf(tmp_path / "Kế hoạch.pdf"), write_docx(tmp_path / "Mẫu.docx")
    since = state.now()
    message = group_message(images=(image,), documents=(pdf, docx))
    receipt = await zalo.send(message)
    assert routes(state) == ["zalo.upload"] * 3 + ["zalo.group_message"] * 3
    assert shown(state) == ["Gửi các cụm", "Kế hoạch.pdf", "Mẫu.docx"]
    first = state.zalo_groups[GROUP].messages[0]
    assert first.media_type == "image" and receipt.remote_id == first.message_id
    found = await zalo.find_sent(message, since)
    assert found is not None and found.remote_id == receipt.remote_id


async def test_an_admin_gets_the_document_as_a_cs_file_message(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    state.add_user(USER, "Chủ tịch cụm")
    pdf = write_pdf(tmp_path / "ke-hoach.pdf")
    message = OutboundMessage(
        channel="zalo_user", target_id=USER, title="T", text="Kính gửi", documents=(pdf,)
    )
    await zalo.send(message)
    assert routes(state) == ["zalo.quota", "zalo.upload", "zalo.cs_message", "zalo.cs_message"]
    assert [m.file_name or m.text for m in state.zalo_users[USER].messages] == [
        "Kính gửi",
        "ke-hoach.pdf",
    ]
    assert await zalo.find_sent(message, NOON_VN - timedelta(days=400)) is not None


async def test_a_document_too_big_is_refused_before_anything_is_sent(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    big = write_pdf(tmp_path / "qua-lon.pdf", padding=ZALO_DOCUMENT_MAX)
    with pytest.raises(Rejected) as caught:
        await zalo.send(group_message(documents=(big,)))
    assert caught.value.code == "-210"
    assert "«qua-lon.pdf»" in caught.value.message
    assert state.messages() == []


async def test_a_document_of_the_wrong_type_is_refused_before_anything_is_sent(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    fake = write_png(tmp_path / "anh.png").rename(tmp_path / "that-ra-la-anh.pdf")
    with pytest.raises(Rejected) as caught:
        await zalo.send(group_message(documents=(fake,)))
    assert caught.value.code == "-201"
    assert state.messages() == []
    assert routes(state) == ["zalo.upload"]


async def test_an_expired_token_is_uploaded_again_and_the_file_sent_once(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    """Zalo dropped the file before our six days were up: -100, upload afresh, send once."""
    state.set_now(NOON_VN)
    state.zalo_upload_ttl = timedelta(hours=1)
    pdf = write_pdf(tmp_path / "ke-hoach.pdf")
    await zalo.send(group_message(documents=(pdf,)))
    state.set_now(NOON_VN + timedelta(hours=2))
    await zalo.send(group_message(OTHER_GROUP, documents=(pdf,)))
    outcomes = [(e["route"], e["outcome"]) for e in state.requests[3:]]
    assert outcomes == [
        ("zalo.group_message", "ok"),
        ("zalo.group_message", "error:-100"),
        ("zalo.upload", "ok"),
        ("zalo.group_message", "ok"),
    ]
    assert shown(state, OTHER_GROUP) == ["Gửi các cụm", "ke-hoach.pdf"]


@pytest.mark.parametrize(("later", "uploads"), [(timedelta(days=5), 1), (timedelta(days=7), 2)])
async def test_an_upload_is_reused_for_six_days_only(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path, later: timedelta, uploads: int
) -> None:
    """Five days on, the token is reused; seven days on the sandbox clock, it is not."""
    state.set_now(NOON_VN)
    pdf = write_pdf(tmp_path / "ke-hoach.pdf")
    await zalo.send(group_message(documents=(pdf,)))
    state.set_now(NOON_VN + later)
    await zalo.send(group_message(OTHER_GROUP, documents=(pdf,)))
    assert routes(state).count("zalo.upload") == uploads
    assert all(e["outcome"] == "ok" for e in state.requests)  # never a -100
    assert shown(state, OTHER_GROUP) == ["Gửi các cụm", "ke-hoach.pdf"]


async def test_a_failure_after_the_text_is_resumed_without_repeating_it(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    """The file message fails (surely not sent); the next attempt sends only the file."""
    pdf = write_pdf(tmp_path / "ke-hoach.pdf")
    first_try = state.now()
    state.zalo_upload_ttl = timedelta(seconds=-1)  # every file message now answers -100
    with pytest.raises(Unavailable) as caught:
        await zalo.send(group_message(documents=(pdf,)))
    assert caught.value.code == "-100"
    assert caught.value.message.startswith("Đã gửi 1/2 phần")
    assert shown(state) == ["Gửi các cụm"]
    message = group_message(documents=(pdf,))
    assert await zalo.find_sent(message, first_try) is None  # partial is not "sent"
    state.zalo_upload_ttl = timedelta(days=7)
    receipt = await zalo.send(message.model_copy(update={"resume_since": first_try}))
    assert shown(state) == ["Gửi các cụm", "ke-hoach.pdf"]
    assert receipt.remote_id == state.zalo_groups[GROUP].messages[0].message_id


async def test_a_lost_answer_on_a_file_message_reconciles_as_sent(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    state.add_group(GROUP, "Cụm 1")
    pdf = write_pdf(tmp_path / "ke-hoach.pdf")
    since = state.now()
    state.push_fault("zalo.group_message", Fault("commit_then_error"))
    with pytest.raises(OutcomeUnknown):
        await zalo.send(group_message(documents=(pdf,)))  # the text's answer is lost
    assert shown(state) == ["Gửi các cụm"]
    message = group_message(documents=(pdf,))
    assert await zalo.find_sent(message, since) is None
    await zalo.send(message.model_copy(update={"resume_since": since}))
    found = await zalo.find_sent(message, since)
    assert found is not None and found.remote_id == state.zalo_groups[GROUP].messages[0].message_id
    assert shown(state) == ["Gửi các cụm", "ke-hoach.pdf"]


# ---- whole apps on one database ----------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(enforce_night_hours=False)) as running:
        yield running


@pytest.fixture
def sandbox(server: SandboxServer) -> SandboxState:
    server.state.reset()
    server.state.set_now(None)
    server.state.zalo_upload_ttl = timedelta(days=7)
    return server.state


def settings(database_url: str, server: SandboxServer) -> Settings:
    return Settings(
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


async def send_from_apps(
    database_url: str, server: SandboxServer, messages: list[OutboundMessage], between: Any = None
) -> None:
    """Each message from its own `App` (its own engine), all of them open at once."""
    async with AsyncExitStack() as stack:
        apps = [App(settings(database_url, server), clock=server.state.now) for _ in messages]
        for app in apps:
            stack.push_async_callback(app.aclose)
        opened = [await stack.enter_async_context(app.connectors()) for app in apps]
        for number, (connectors, message) in enumerate(zip(opened, messages, strict=True)):
            if number and between is not None:
                between()
            await connectors["zalo"].send(message)


async def stored_uploads(database_url: str, server: SandboxServer) -> list[Upload]:
    app = App(settings(database_url, server))
    try:
        async with app.sessions() as session:
            return list(await session.scalars(select(Upload)))
    finally:
        await app.aclose()


async def test_two_processes_upload_the_same_image_once(
    database_url: str, server: SandboxServer, sandbox: SandboxState, tmp_path: Path
) -> None:
    image = write_png(tmp_path / "anh.png")
    copy = write_png(tmp_path / "ban-sao.png")  # same bytes, another file
    first = group_message(images=(image,))
    second = group_message(OTHER_GROUP, images=(copy,))
    await send_from_apps(database_url, server, [first, second])
    assert routes(sandbox).count("zalo.upload") == 1
    sent = [g.messages[0].attachment_id for g in sandbox.zalo_groups.values()]
    assert len(sent) == 2 and sent[0] == sent[1]
    [row] = await stored_uploads(database_url, server)
    assert (row.account, row.kind, row.remote_id) == ("zalo-sandbox", "image", sent[0])


async def test_an_upload_seven_days_old_is_not_reused_by_another_process(
    database_url: str, server: SandboxServer, sandbox: SandboxState, tmp_path: Path
) -> None:
    sandbox.set_now(NOON_VN)
    pdf = write_pdf(tmp_path / "ke-hoach.pdf")
    messages = [group_message(documents=(pdf,)), group_message(OTHER_GROUP, documents=(pdf,))]
    await send_from_apps(
        database_url,
        server,
        messages,
        between=lambda: sandbox.set_now(NOON_VN + timedelta(days=7)),
    )
    assert routes(sandbox).count("zalo.upload") == 2
    assert all(e["outcome"] == "ok" for e in sandbox.requests)  # it was never tried
    [row] = await stored_uploads(database_url, server)
    assert (row.kind, row.uploaded_at) == ("file", NOON_VN + timedelta(days=7))


# ---- the pipeline ------------------------------------------------------------------------------


def daytime() -> datetime:
    """Now, or 10:00 today in Vietnam at night: the follower article goes at any hour."""
    now = datetime.now(UTC)
    local = now.astimezone(VIETNAM)
    if BROADCAST_FROM <= local.time() < BROADCAST_UNTIL:
        return now
    return datetime.combine(local.date(), time(10, 0), VIETNAM).astimezone(UTC)


@pytest.fixture
async def bot(
    database_url: str, server: SandboxServer, sandbox: SandboxState
) -> AsyncIterator[App]:
    app = App(settings(database_url, server), clock=daytime)
    async with app.sessions.begin() as session:
        for code, group in (("C1", GROUP), ("C2", OTHER_GROUP)):
            cluster = Cluster(code=code, name=f"Cụm {code}", zalo_group_id=group)
            session.add(cluster)
            await session.flush()
            session.add(ClusterAdmin(cluster_id=cluster.id, name=f"QTV {code}", zalo_user_id=code))
    yield app
    await app.aclose()


async def run_post(bot: App, tmp_path: Path) -> list[Delivery]:
    draft = PostDraft(
        kind="event",
        title="Kỷ niệm 28/7",
        body="Các cụm tổ chức sinh hoạt chuyên đề.",
        event_date=datetime(2026, 7, 28, tzinfo=UTC).date(),
        scheduled_at=datetime.now(UTC),
        documents=(write_pdf(tmp_path / "Kế hoạch.pdf"), write_docx(tmp_path / "Mẫu.docx")),
    )
    targets = await bot.targets(draft.channels, draft.clusters)
    await bot.queue.add(draft, actor="test", approve_for=targets)
    async with bot.connectors() as connectors:
        dispatcher = bot.dispatcher(connectors)
        await asyncio.wait_for(dispatcher.serve(asyncio.Event(), until_idle=True), timeout=60)
    async with bot.sessions() as session:
        return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def test_a_post_with_documents_reaches_each_group_and_admin_once(
    bot: App, sandbox: SandboxState, tmp_path: Path
) -> None:
    rows = await run_post(bot, tmp_path)
    assert {d.status for d in rows} == {"sent"}
    assert len(rows) == 1 + 1 + 2 + 2
    for group in (GROUP, OTHER_GROUP):
        assert shown(sandbox, group)[1:] == ["Kế hoạch.pdf", "Mẫu.docx"]
    for user in ("C1", "C2"):
        assert [m.file_name for m in sandbox.zalo_users[user].messages][1:] == [
            "Kế hoạch.pdf",
            "Mẫu.docx",
        ]
    assert routes(sandbox).count("zalo.upload") == 2  # one per document, for all targets
    files = [m for m in sandbox.messages() if "file" in m]
    assert {m["channel"] for m in files} == {"zalo_group", "zalo_user"}  # not Page nor article
    assert len(files) == 2 * 4


async def test_a_lost_answer_mid_post_is_completed_without_repeating_the_text(
    bot: App, sandbox: SandboxState, tmp_path: Path
) -> None:
    """The first group text lands but its answer is lost: in doubt, reconciled as partial
    (absent), resent once: the resend sends only the two files."""
    sandbox.push_fault("zalo.group_message", Fault("commit_then_error"))
    rows = await run_post(bot, tmp_path)
    assert {d.status for d in rows} == {"sent"}
    assert sum(d.resends for d in rows) == 1
    for group in (GROUP, OTHER_GROUP):
        texts = [t for t in shown(sandbox, group) if t not in ("Kế hoạch.pdf", "Mẫu.docx")]
        assert len(texts) == 1
        assert shown(sandbox, group)[1:] == ["Kế hoạch.pdf", "Mẫu.docx"]

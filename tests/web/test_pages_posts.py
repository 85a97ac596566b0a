"""The post pages: compose (uploads, errors, preview), approvals, the post, the calendar."""

from __future__ import annotations

import io
import re
import stat
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select, update

from bot.app import App
from bot.db.models import AuditEntry, Delivery, Post
from bot.web.pages_posts import uploads_dir
from content.kinds import PostDraft
from tests.web.conftest import Client, csrf_of


@pytest.fixture
def bot(bot: App, tmp_path: Path) -> App:
    """The shared test bot, with its media folders in the test's own directory."""
    bot.settings.media_cache_dir = tmp_path / "data" / "media"
    return bot


def png(size: tuple[int, int] = (40, 30), kind: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 20, 30)).save(buffer, kind)
    return buffer.getvalue()


def tomorrow() -> str:
    return (datetime.now(UTC) + timedelta(days=1)).date().isoformat()


def law_form(token: str, **changes: Any) -> dict[str, Any]:
    form: dict[str, Any] = {
        "csrf_token": token,
        "action": "draft",
        "kind": "law",
        "title": "Làm thêm giờ tối đa bao nhiêu?",
        "body": "Người lao động làm thêm không quá 40 giờ mỗi tháng.",
        "citation": "Điều 107 Bộ luật Lao động 2019",
        "as_of": "2026-07-01",
        "link": "https://vbpl.vn/boluatlaodong",
        "hashtags": "LamThemGio",
        "date": tomorrow(),
        "time": "07:30",
        "channels": ["facebook_page", "zalo_group"],
    }
    return form | changes


async def post_count(bot: App) -> int:
    async with bot.sessions() as session:
        return int(await session.scalar(select(func.count(Post.id))) or 0)


async def audit_of(bot: App, post_id: int, action: str) -> list[AuditEntry]:
    async with bot.sessions() as session:
        rows = await session.scalars(
            select(AuditEntry).where(AuditEntry.post_id == post_id, AuditEntry.action == action)
        )
        return list(rows)


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<span class="field-error" id="err-{name}">([^<]*)</span>', page)
    assert found, f"no error shown for {name}"
    return found.group(1)


# ---- compose -------------------------------------------------------------------------------


async def test_a_law_explainer_with_an_image_is_stored_as_a_draft(bot: App, client: Client) -> None:
    http = await client("editor")
    token = await csrf_of(http, "/compose")
    files = [("images", ("bảng lương.png", png(), "image/png"))]
    response = await http.post("/compose", data=law_form(token), files=files)
    assert response.status_code == 303, response.text[:2000]
    post_id = int(response.headers["location"].rsplit("/", 1)[1])
    post = await bot.queue.get(post_id)
    assert (post.kind, post.status, post.author) == ("law", "draft", "web:editor")
    assert post.details == {"citation": "Điều 107 Bộ luật Lao động 2019", "as_of": "2026-07-01"}
    assert post.link == "https://vbpl.vn/boluatlaodong"
    assert post.hashtags == ["LamThemGio"]
    assert post.channels == ["facebook_page", "zalo_group"]
    assert post.clusters is None
    assert post.scheduled_at.astimezone(bot.settings.tz).time() == time(7, 30)
    [stored] = [Path(p) for p in post.media]
    assert stored.parent == uploads_dir(bot).resolve()
    assert stored.suffix == ".png" and "bảng" not in stored.name
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stored.read_bytes() == png()
    assert await audit_of(bot, post_id, "post.add")
    page = await http.get(response.headers["location"])
    assert "Đã lưu bản nháp" in page.text
    image = await http.get(f"/posts/{post_id}/media/0")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"


async def test_errors_keep_the_input_and_sit_beside_their_field(bot: App, client: Client) -> None:
    http = await client("editor")
    token = await csrf_of(http, "/compose")
    response = await http.post("/compose", data=law_form(token, citation=""))
    assert response.status_code == 400
    assert "cần căn cứ" in field_error(response.text, "citation")
    assert 'value="Làm thêm giờ tối đa bao nhiêu?"' in response.text
    assert "Người lao động làm thêm không quá 40 giờ mỗi tháng.</textarea>" in response.text
    assert 'value="https://vbpl.vn/boluatlaodong"' in response.text

    empty = await http.post("/compose", data=law_form(token, title=" ", link="vbpl.vn"))
    assert field_error(empty.text, "title") == "Tiêu đề không được để trống."
    assert "http://" in field_error(empty.text, "link")

    past = await http.post("/compose", data=law_form(token, date="2020-01-01"))
    assert "đã qua" in field_error(past.text, "date")
    none = await http.post("/compose", data=law_form(token, channels=[]))
    assert "ít nhất một kênh" in field_error(none.text, "channels")
    long = await http.post(
        "/compose", data=law_form(token, kind="story", body="chữ " * 700, link="")
    )
    assert "vượt giới hạn 2.000 ký tự" in field_error(long.text, "body")
    assert await post_count(bot) == 0


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("anh.png", "đây là văn bản, không phải ảnh".encode(), "không phải ảnh đọc được"),
        ("anh.png", png(kind="GIF"), "phải là JPEG hoặc PNG"),
        ("ghichu.txt", b"plain text", "không phải ảnh JPEG hoặc PNG"),
        ("to.png", b"\x89PNG" + b"0" * (10 * 1024 * 1024), "lớn hơn 10 MB"),
    ],
    ids=["text-named-png", "gif-named-png", "text-file", "over-10-mb"],
)
async def test_a_file_that_is_not_a_good_image_is_refused_and_nothing_stored(
    bot: App, client: Client, name: str, data: bytes, message: str
) -> None:
    http = await client("editor")
    token = await csrf_of(http, "/compose")
    files = [
        ("images", ("tot.png", png(), "image/png")),
        ("images", (name, data, "image/png")),
    ]
    response = await http.post("/compose", data=law_form(token), files=files)
    assert response.status_code == 400
    assert message in field_error(response.text, "images")
    assert 'value="Làm thêm giờ tối đa bao nhiêu?"' in response.text
    assert await post_count(bot) == 0
    folder = uploads_dir(bot)
    assert not folder.exists() or not any(folder.iterdir())
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".upload-")]


async def test_the_preview_says_when_zalo_gets_a_shortened_text_or_too_long_one(
    client: Client,
) -> None:
    http = await client("editor")
    token = await csrf_of(http, "/compose")
    form = {
        "kind": "story",
        "title": "Bữa cơm công đoàn",
        "body": ("Chia sẻ yêu thương với người lao động. " * 70)[:2500],
        "link": "https://congdoan.example/bai",
        "channels": ["facebook_page", "zalo_group", "zalo_broadcast"],
    }
    headers = {"x-csrf-token": token}
    shortened = (await http.post("/compose/preview", json=form, headers=headers)).json()
    group = shortened["channels"]["zalo_group"]
    assert group["chosen"] and group["shortened"] and not group["too_long"]
    assert group["length"] <= group["limit"] == 2000
    assert "Xem toàn văn: https://congdoan.example/bai" in group["text"]
    assert any("rút gọn" in w for w in group["warnings"])
    assert not shortened["channels"]["facebook_page"]["too_long"]
    assert shortened["article"]["title"] == "Bữa cơm công đoàn"

    too_long = (
        await http.post("/compose/preview", json=form | {"link": ""}, headers=headers)
    ).json()
    group = too_long["channels"]["zalo_group"]
    assert group["too_long"] and not group["shortened"]
    assert any("từ chối" in w for w in group["warnings"])

    title = (
        await http.post("/compose/preview", json=form | {"title": "T" * 160}, headers=headers)
    ).json()
    assert any("150" in w for w in title["channels"]["zalo_broadcast"]["warnings"])
    assert (await http.post("/compose/preview", json=form)).status_code == 403  # no CSRF


# ---- who may approve -------------------------------------------------------------------------


async def test_an_editor_saves_drafts_but_cannot_approve(
    bot: App, client: Client, draft_post: Post
) -> None:
    http = await client("editor")
    token = await csrf_of(http, "/compose")
    page = await http.get("/compose")
    assert "Lưu nháp" in page.text and "Duyệt và lên lịch" not in page.text
    refused = await http.post(f"/posts/{draft_post.id}/approve", data={"csrf_token": token})
    assert refused.status_code == 403
    forged = await http.post("/compose", data=law_form(token, action="approve"))
    assert forged.status_code == 403
    assert await post_count(bot) == 1
    assert (await http.get("/approvals")).status_code == 403


async def test_an_approver_approves_and_the_deliveries_are_created(
    bot: App, client: Client, draft_post: Post
) -> None:
    http = await client("approver")
    token = await csrf_of(http, "/approvals")
    queue = await http.get("/approvals")
    assert "Gương sáng" in queue.text and "Cán bộ soạn" in queue.text
    response = await http.post(
        f"/posts/{draft_post.id}/approve", data={"csrf_token": token, "next": "/approvals"}
    )
    assert response.status_code == 303 and response.headers["location"] == "/approvals"
    post = await bot.queue.get(draft_post.id)
    assert post.status == "approved" and post.approver == "web:approver"
    assert sorted((d.channel, d.target_id) for d in post.deliveries) == [
        ("facebook_page", bot.page_id),
        ("zalo_group", "5eefbd52e76d64fe35ff"),
    ]
    assert (await audit_of(bot, post.id, "post.approve"))[0].actor == "web:approver"
    assert "Đã duyệt bài" in (await http.get("/approvals")).text


async def test_compose_and_approve_at_once(bot: App, client: Client) -> None:
    http = await client("approver")
    token = await csrf_of(http, "/compose")
    response = await http.post("/compose", data=law_form(token, action="approve"))
    assert response.status_code == 303
    [post] = await bot.queue.list_posts()
    assert post.status == "approved" and len(post.deliveries) == 2


async def test_a_rejection_needs_a_reason_and_records_it(
    bot: App, client: Client, draft_post: Post
) -> None:
    http = await client("approver")
    token = await csrf_of(http, "/approvals")
    url = f"/posts/{draft_post.id}/reject"
    await http.post(url, data={"csrf_token": token, "reason": "   "})
    assert (await bot.queue.get(draft_post.id)).status == "draft"
    assert "Hãy ghi lý do" in (await http.get("/approvals")).text
    reason = "Cần ghi rõ tên đoàn viên và đơn vị."
    response = await http.post(url, data={"csrf_token": token, "reason": reason})
    assert response.status_code == 303
    assert (await bot.queue.get(draft_post.id)).status == "cancelled"
    [entry] = await audit_of(bot, draft_post.id, "post.reject")
    assert (entry.actor, entry.detail) == ("web:approver", {"reason": reason})
    page = await http.get(f"/posts/{draft_post.id}")
    assert reason in page.text and "Từ chối" in page.text


# ---- editing a draft -----------------------------------------------------------------------


async def test_an_editor_edits_a_draft_until_it_is_approved(
    bot: App, client: Client, draft_post: Post
) -> None:
    http = await client("editor")
    url = f"/posts/{draft_post.id}/edit"
    page = await http.get(url)
    assert 'value="Gương sáng"' in page.text
    token = await csrf_of(http, url)
    form = law_form(token, kind="story", title="Gương sáng tháng Bảy", citation="", link="")
    response = await http.post(url, data=form)
    assert response.status_code == 303
    post = await bot.queue.get(draft_post.id)
    assert post.title == "Gương sáng tháng Bảy" and post.details == {}
    assert await audit_of(bot, post.id, "post.edit")
    await bot.approve(post.id, actor="test")
    late = await http.get(url)
    assert late.status_code == 303 and late.headers["location"] == f"/posts/{post.id}"


# ---- rescheduling ---------------------------------------------------------------------------


async def test_reschedule_moves_the_post_and_its_deliveries_together(
    bot: App, client: Client, draft_post: Post
) -> None:
    await bot.approve(draft_post.id, actor="test")
    http = await client("approver")
    token = await csrf_of(http, f"/posts/{draft_post.id}")
    tz = bot.settings.tz
    before = draft_post.scheduled_at.astimezone(tz)
    day = before.date() + timedelta(days=3)
    headers = {"accept": "application/json", "x-csrf-token": token}
    url = f"/posts/{draft_post.id}/reschedule"
    moved = await http.post(url, data={"date": day.isoformat()}, headers=headers)
    assert moved.status_code == 200 and moved.json()["ok"], moved.text
    post = await bot.queue.get(draft_post.id)
    after = post.scheduled_at.astimezone(tz)
    assert after.date() == day
    assert after.time().replace(microsecond=0) == before.time().replace(microsecond=0)
    assert {d.next_attempt_at for d in post.deliveries} == {post.scheduled_at}
    [entry] = await audit_of(bot, post.id, "post.reschedule")
    assert entry.actor == "web:approver"

    past = await http.post(url, data={"date": "2020-05-01"}, headers=headers)
    assert past.status_code == 422 and "đã qua" in past.json()["error"]
    async with bot.sessions.begin() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == post.id, Delivery.channel == "facebook_page")
            .values(status="sent", attempts=1)
        )
    later = (day + timedelta(days=1)).isoformat()
    started = await http.post(url, data={"date": later}, headers=headers)
    assert started.status_code == 422 and "bắt đầu gửi" in started.json()["error"]
    again = await bot.queue.get(post.id)
    assert again.scheduled_at == post.scheduled_at
    assert {d.next_attempt_at for d in again.deliveries} == {post.scheduled_at}


async def test_the_post_page_form_reschedules_without_javascript(
    bot: App, client: Client, draft_post: Post
) -> None:
    http = await client("approver")
    url = f"/posts/{draft_post.id}"
    page = await http.get(url)
    assert f'action="/posts/{draft_post.id}/reschedule"' in page.text
    token = await csrf_of(http, url)
    day = (datetime.now(UTC) + timedelta(days=10)).date()
    form = {"csrf_token": token, "date": day.isoformat(), "time": "09:15"}
    response = await http.post(f"{url}/reschedule", data=form)
    assert response.status_code == 303 and response.headers["location"] == url
    moved = (await bot.queue.get(draft_post.id)).scheduled_at.astimezone(bot.settings.tz)
    assert (moved.date(), moved.time()) == (day, time(9, 15))
    assert "Đã dời bài" in (await http.get(url)).text


# ---- reading ------------------------------------------------------------------------------


async def test_the_calendar_shows_the_months_posts_and_events(bot: App, client: Client) -> None:
    tz = bot.settings.tz
    draft = PostDraft(
        kind="event",
        title="Hội nghị cán bộ chủ chốt",
        body="Mời các đồng chí dự hội nghị.",
        event_date=date(2026, 7, 20),
        scheduled_at=datetime(2026, 7, 15, 7, 30, tzinfo=tz),
        channels=("facebook_page",),
    )
    post = await bot.queue.add(draft, actor="test")
    http = await client("viewer")
    page = (await http.get("/calendar?month=2026-07")).text
    assert "Tháng 7/2026" in page and "Thứ Hai" in page
    cells = dict(re.findall(r'data-date="(\d{4}-\d\d-\d\d)"(.*?)</section>', page, re.S))
    assert "thành lập Công đoàn Việt Nam" in cells["2026-07-28"]
    assert f'href="/posts/{post.id}"' in cells["2026-07-15"]
    assert "Hội nghị cán bộ chủ chốt" in cells["2026-07-15"]
    assert 'draggable="false"' in cells["2026-07-15"]  # a viewer moves nothing
    assert "month=2026-06" in page and "month=2026-08" in page
    april = (await http.get("/calendar?month=2026-04")).text
    cells = dict(re.findall(r'data-date="(\d{4}-\d\d-\d\d)"(.*?)</section>', april, re.S))
    assert "ÂL" in cells["2026-04-26"] and "Hùng Vương" in cells["2026-04-26"]


async def test_the_post_page_lists_every_delivery(
    bot: App, client: Client, draft_post: Post
) -> None:
    await bot.approve(draft_post.id, actor="test")
    async with bot.sessions.begin() as session:
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == draft_post.id, Delivery.channel == "facebook_page")
            .values(status="sent", attempts=1, permalink="https://facebook.com/p/1")
        )
        await session.execute(
            update(Delivery)
            .where(Delivery.post_id == draft_post.id, Delivery.channel == "zalo_group")
            .values(status="failed", attempts=3, last_error="Zalo từ chối: nhóm không tồn tại.")
        )
    approver = await client("approver")
    page = (await approver.get(f"/posts/{draft_post.id}")).text
    assert "Nhóm Cụm Hành chính" in page and "HCSN" in page
    assert "Đã gửi" in page and 'href="https://facebook.com/p/1"' in page
    assert "Thất bại" in page and "Zalo từ chối: nhóm không tồn tại." in page
    assert "Gửi lại lượt lỗi" in page and "Huỷ bài" in page
    viewer = await client("viewer")
    seen = (await viewer.get(f"/posts/{draft_post.id}")).text
    assert "Zalo từ chối" in seen and "Gửi lại lượt lỗi" not in seen
    token = await csrf_of(approver, f"/posts/{draft_post.id}")
    await approver.post(f"/posts/{draft_post.id}/retry", data={"csrf_token": token})
    post = await bot.queue.get(draft_post.id)
    assert {d.channel: d.status for d in post.deliveries}["zalo_group"] == "pending"


async def test_the_list_filters_by_status_and_pages(bot: App, client: Client) -> None:
    tz = bot.settings.tz
    start = datetime.now(tz).replace(microsecond=0) + timedelta(days=1)
    drafts = [
        (
            PostDraft(
                kind="story",
                title=f"Bài số {n}",
                body="Nội dung.",
                scheduled_at=start + timedelta(hours=n),
                channels=("facebook_page",),
                source="feed" if n == 0 else "manual",
            ),
            None,
        )
        for n in range(30)
    ]
    await bot.queue.add_many(drafts, actor="test")
    http = await client("viewer")
    first = (await http.get("/posts?status=draft")).text
    assert "Bài số 29" in first and "Bài số 0<" not in first and "Trang 1/2" in first
    second = (await http.get("/posts?status=draft&page=2")).text
    assert "Bài số 0<" in second
    assert "Không có bài nào" in (await http.get("/posts?status=done")).text
    approver = await client("approver")
    assert "Nguồn tin văn bản mới (tự động)" in (await approver.get("/approvals")).text


async def test_unknown_posts_are_not_found(client: Client) -> None:
    http = await client("viewer")
    assert (await http.get("/posts/999")).status_code == 404
    assert (await http.get("/posts/999/media/0")).status_code == 404

"""Contract suite: the real Facebook and Zalo connectors against the sandbox over real HTTP.

Most tests run the sandbox in-process through `httpx.ASGITransport`; the timeout and
connection tests use a real `SandboxServer` on loopback, since the in-process transport
cannot time out.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from connectors.base import (
    AuthExpired,
    CannotTell,
    Connector,
    OutboundMessage,
    OutcomeUnknown,
    PlatformError,
    Rejected,
    Throttled,
    Unavailable,
)
from connectors.facebook import HISTORY_PAGE_SIZE, HISTORY_PAGES, FacebookPageConnector
from connectors.sandbox import (
    SANDBOX_PAGE_ID,
    SANDBOX_PAGE_TOKEN,
    SANDBOX_ZALO_ACCESS_TOKEN,
    Fault,
    SandboxState,
    create_app,
)
from connectors.sandbox.records import FbPost
from connectors.sandbox.server import SandboxServer
from connectors.zalo import ZaloOAConnector
from content.media import write_sample_video
from tests.clock import daytime_clock, daytime_unless_set

BASE_URL = "http://sandbox"
API_VERSION = "v26.0"  # bot.settings default
APP_SECRET = "contract-test-app-secret"
COVER_URL = "https://congdoan.example.vn/cover.jpg"
NOON_VN = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)  # 12:00 in Asia/Ho_Chi_Minh
NIGHT_VN = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)  # 23:00 in Asia/Ho_Chi_Minh
GROUP = "f414c8f76fa586fbdfb4"
USER = "2512523625412515"


# ---- builders ------------------------------------------------------------------------------


def build_facebook(
    *,
    base_url: str = BASE_URL,
    transport: httpx.AsyncBaseTransport | None = None,
    app_secret: str | None = None,
    timeout: float = 5.0,
    video_poll_seconds: float = 0.01,
) -> FacebookPageConnector:
    """The Facebook connector with the arguments bot/app.py passes (and a short video poll)."""
    return FacebookPageConnector(
        graph_url=base_url,
        video_url=base_url,
        api_version=API_VERSION,
        page_id=SANDBOX_PAGE_ID,
        page_token=SANDBOX_PAGE_TOKEN,
        app_secret=app_secret,
        timeout=timeout,
        video_poll_seconds=video_poll_seconds,
        sandbox=True,
        transport=transport,
    )


def build_zalo(
    *,
    base_url: str = BASE_URL,
    transport: httpx.AsyncBaseTransport | None = None,
    token: str = SANDBOX_ZALO_ACCESS_TOKEN,
    timeout: float = 5.0,
    clock: Callable[[], datetime] | None = None,
) -> ZaloOAConnector:
    """The Zalo connector with the arguments bot/app.py passes (and a short verify poll)."""

    async def access_token() -> str:
        return token

    return ZaloOAConnector(
        openapi_url=base_url,
        access_token=access_token,
        article_cover_url=COVER_URL,
        timeout=timeout,
        sandbox=True,
        verify_poll_seconds=0.01,
        transport=transport,
        clock=clock or daytime_clock(),
    )


def fb_message(
    text: str, *, link: str | None = None, images: tuple[Path, ...] = ()
) -> OutboundMessage:
    return OutboundMessage(
        channel="facebook_page",
        target_id=SANDBOX_PAGE_ID,
        title="Tin công đoàn",
        text=text,
        link=link,
        images=images,
    )


def zalo_message(
    channel: str, target: str, text: str, title: str = "Tin công đoàn"
) -> OutboundMessage:
    return OutboundMessage(channel=channel, target_id=target, title=title, text=text)


def write_png(path: Path, width: int, height: int, colour: tuple[int, int, int]) -> Path:
    """A real PNG file made with Pillow."""
    Image.new("RGB", (width, height), colour).save(path, format="PNG")
    return path


def routes(state: SandboxState) -> list[str | None]:
    return [entry["route"] for entry in state.requests]


def free_closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture
def state() -> SandboxState:
    """A fresh sandbox that checks appsecret_proof (night hours off; a test turns them on)."""
    return SandboxState(fb_app_secret=APP_SECRET, enforce_night_hours=False)


@pytest.fixture
def transport(state: SandboxState) -> httpx.ASGITransport:
    return httpx.ASGITransport(app=create_app(state))


@pytest.fixture
async def fb(transport: httpx.ASGITransport) -> AsyncIterator[FacebookPageConnector]:
    connector = build_facebook(transport=transport, app_secret=APP_SECRET)
    yield connector
    await connector.aclose()


@pytest.fixture
async def zalo(
    transport: httpx.ASGITransport, state: SandboxState
) -> AsyncIterator[ZaloOAConnector]:
    connector = build_zalo(transport=transport, clock=daytime_unless_set(state))
    yield connector
    await connector.aclose()


@pytest.fixture
def server() -> Iterator[SandboxServer]:
    """The sandbox on a real loopback port (no appsecret_proof check)."""
    with SandboxServer(SandboxState()) as running:
        yield running


# ---- both connectors -----------------------------------------------------------------------


async def test_both_connectors_satisfy_the_protocol_and_close(transport: httpx.ASGITransport):
    """Both connectors are `Connector`s with the right account and channels; aclose closes."""
    facebook = build_facebook(transport=transport)
    zalo = build_zalo(transport=transport)
    assert isinstance(facebook, Connector)
    assert isinstance(zalo, Connector)
    assert (facebook.account, facebook.channels) == ("facebook", frozenset({"facebook_page"}))
    assert zalo.account == "zalo"
    assert zalo.channels == frozenset({"zalo_group", "zalo_user", "zalo_broadcast", "zalo_mention"})
    assert facebook.sandbox and zalo.sandbox
    await facebook.aclose()
    await zalo.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await facebook.send(fb_message("sau khi đóng"))
    with pytest.raises(RuntimeError, match="closed"):
        await zalo.send(zalo_message("zalo_group", GROUP, "sau khi đóng"))


# ---- Facebook: publishing ------------------------------------------------------------------


async def test_fb_text_post(fb: FacebookPageConnector, state: SandboxState):
    """A text post lands on the feed; the receipt carries the post id and its permalink."""
    receipt = await fb.send(fb_message("Chào mừng ngày thành lập Công đoàn Việt Nam 28/7"))
    [post] = state.fb_posts
    assert post.message == "Chào mừng ngày thành lập Công đoàn Việt Nam 28/7"
    assert receipt.remote_id == post.id
    assert receipt.permalink == post.permalink_url
    assert receipt.permalink.startswith(f"https://www.facebook.com/{SANDBOX_PAGE_ID}/posts/")
    assert [m["text"] for m in state.messages()] == [post.message]
    assert routes(state) == ["fb.feed"]


async def test_fb_app_secret_proof_is_accepted_and_checked(
    fb: FacebookPageConnector, state: SandboxState, transport: httpx.ASGITransport
):
    """With a sandbox that requires appsecret_proof, the right secret posts and a wrong one not."""
    await fb.send(fb_message("Có appsecret_proof đúng"))
    wrong = build_facebook(transport=transport, app_secret="not-the-secret")
    try:
        with pytest.raises(PlatformError) as caught:
            await wrong.send(fb_message("Có appsecret_proof sai"))
    finally:
        await wrong.aclose()
    assert caught.value.code == "100"
    assert [p.message for p in state.fb_posts] == ["Có appsecret_proof đúng"]


async def test_fb_link_post(fb: FacebookPageConnector, state: SandboxState):
    """A link post records the link next to the text."""
    link = "https://congdoan.example.vn/tin/dai-hoi-2026"
    receipt = await fb.send(fb_message("Đại hội Công đoàn cơ sở", link=link))
    [post] = state.fb_posts
    assert (post.message, post.link) == ("Đại hội Công đoàn cơ sở", link)
    assert receipt.remote_id == post.id


async def test_fb_one_image_is_a_multipart_photo_post(
    fb: FacebookPageConnector, state: SandboxState, tmp_path: Path
):
    """One image goes to /photos as a file upload with the text as caption, published."""
    image = write_png(tmp_path / "infographic.png", 64, 48, (200, 30, 30))
    receipt = await fb.send(fb_message("Infographic an toàn lao động", images=(image,)))
    [photo] = state.fb_photos.values()
    [post] = state.fb_posts
    assert photo.size == image.stat().st_size  # the bytes arrived as the `source` file
    assert photo.published and photo.caption == "Infographic an toàn lao động"
    assert post.photo_ids == [photo.id] and post.message == "Infographic an toàn lao động"
    assert receipt.remote_id == post.id
    assert receipt.permalink == post.permalink_url
    assert routes(state) == ["fb.photos", "fb.post_read"]


async def test_fb_several_images_are_one_album_post_in_order(
    fb: FacebookPageConnector, state: SandboxState, tmp_path: Path
):
    """Three unpublished photos, then one /feed post attaching them in the message's order."""
    images = tuple(
        write_png(tmp_path / f"anh-{i}.png", 16 * (i + 1), 16 * (i + 1), (10 * i, 80, 160))
        for i in range(3)
    )
    sizes = [path.stat().st_size for path in images]
    assert len(set(sizes)) == 3  # the sizes tell the photos apart
    receipt = await fb.send(fb_message("Hội thao công nhân 2026", images=images))
    assert routes(state) == ["fb.photos", "fb.photos", "fb.photos", "fb.feed"]
    [post] = state.fb_posts
    assert [state.fb_photos[pid].size for pid in post.photo_ids] == sizes
    assert all(not state.fb_photos[pid].published for pid in post.photo_ids)
    assert receipt.remote_id == post.id and receipt.permalink == post.permalink_url
    [visible] = state.messages()
    assert (visible["text"], visible["remote_id"]) == ("Hội thao công nhân 2026", post.id)


# ---- Facebook: read-back -------------------------------------------------------------------


async def test_fb_find_sent_finds_a_sent_post_and_not_an_unsent_one(fb: FacebookPageConnector):
    """After a post, find_sent returns its receipt; for text never sent it returns None."""
    since = datetime.now(UTC)
    sent = await fb.send(fb_message("Thông báo  họp\nBan chấp hành"))
    found = await fb.find_sent(fb_message("Thông báo họp Ban chấp hành"), since)
    assert found is not None
    assert (found.remote_id, found.permalink) == (sent.remote_id, sent.permalink)
    assert await fb.find_sent(fb_message("Một bài chưa từng đăng"), since) is None


async def test_fb_find_sent_ignores_posts_before_the_window(
    fb: FacebookPageConnector, state: SandboxState
):
    """Posts older than `since` minus 5 minutes are not matched; newer ones are."""
    state.set_now(NOON_VN - timedelta(minutes=10))
    await fb.send(fb_message("Bài cũ trùng nội dung"))
    state.set_now(NOON_VN - timedelta(minutes=4))
    recent = await fb.send(fb_message("Bài mới trong cửa sổ"))
    assert len(state.messages()) == 2
    assert await fb.find_sent(fb_message("Bài cũ trùng nội dung"), NOON_VN) is None
    found = await fb.find_sent(fb_message("Bài mới trong cửa sổ"), NOON_VN)
    assert found is not None and found.remote_id == recent.remote_id


async def test_fb_find_sent_pages_back_past_newer_posts(
    fb: FacebookPageConnector, state: SandboxState
):
    """A post with 150 newer ones is found on the second page, not taken for absent.

    At a few posts a second (the crash soak's pace), an uncertain send used to be looked up
    only in the newest 100 posts, judged absent and sent again.
    """
    since = datetime.now(UTC)
    sent = await fb.send(fb_message("Bài cần tìm lại"))
    for n in range(150):
        await fb.send(fb_message(f"Bài mới hơn số {n}"))
    found = await fb.find_sent(fb_message("Bài cần tìm lại"), since)
    assert found is not None and found.remote_id == sent.remote_id
    assert await fb.find_sent(fb_message("Bài chưa từng đăng"), since) is None
    reads = [r for r in state.requests if r["route"] == "fb.published_posts"]
    assert len(reads) == 2 + 2  # two pages for each look


async def test_fb_find_sent_cannot_tell_past_its_page_limit(
    fb: FacebookPageConnector, state: SandboxState
):
    """With more posts since the send than it reads back, it says so instead of "absent"."""
    since = datetime.now(UTC)
    for n in range(HISTORY_PAGES * HISTORY_PAGE_SIZE + 1):
        state.fb_posts.append(FbPost(f"p{n}", f"Bài {n}", None, state.now(), f"https://f/{n}"))
    with pytest.raises(CannotTell):
        await fb.find_sent(fb_message("Bài không có"), since)


# ---- Facebook: errors through the wire -----------------------------------------------------


async def test_fb_revoked_token_is_auth_expired(fb: FacebookPageConnector, state: SandboxState):
    """190/460 (password changed) pauses the account: AuthExpired, nothing posted."""
    state.push_fault("fb.feed", Fault.token_revoked())
    with pytest.raises(AuthExpired) as caught:
        await fb.send(fb_message("Không tới được"))
    assert caught.value.code == "190/460"
    assert state.fb_posts == []


async def test_fb_throttle_reads_the_regain_time(fb: FacebookPageConnector, state: SandboxState):
    """80001 with estimated_time_to_regain_access 3 minutes is Throttled for 180 s."""
    state.push_fault("fb.feed", Fault(kind="throttle", minutes=3))
    with pytest.raises(Throttled) as caught:
        await fb.send(fb_message("Quá nhiều lượt gọi"))
    assert caught.value.code == "80001"
    assert caught.value.retry_after == 180
    assert state.fb_posts == []


async def test_fb_rejected_photo(fb: FacebookPageConnector, state: SandboxState, tmp_path: Path):
    """A photo Facebook refuses (100/1366046) is Rejected, and no post appears."""
    state.push_fault("fb.photos", Fault.photo_rejected())
    image = write_png(tmp_path / "hong.png", 8, 8, (0, 0, 0))
    with pytest.raises(Rejected) as caught:
        await fb.send(fb_message("Ảnh bị từ chối", images=(image,)))
    assert caught.value.code == "100/1366046"
    assert state.messages() == []


async def test_fb_empty_message_is_rejected(fb: FacebookPageConnector, state: SandboxState):
    """An empty post gets the sandbox's real 197, classified Rejected."""
    with pytest.raises(Rejected) as caught:
        await fb.send(fb_message(""))
    assert caught.value.code == "197"
    assert state.fb_posts == []


async def test_fb_policy_block_is_throttled(fb: FacebookPageConnector, state: SandboxState):
    """368/1390008 (posting too often) and bare 368 (policy block) both pause, never reject."""
    state.push_fault("fb.feed", Fault.policy_block())
    with pytest.raises(Throttled) as rate:
        await fb.send(fb_message("Đăng quá dày"))
    assert rate.value.code == "368/1390008" and rate.value.retry_after > 0
    state.push_fault("fb.feed", Fault("error", code=368, message="(#368) Temporarily blocked"))
    with pytest.raises(Throttled) as policy:
        await fb.send(fb_message("Bị chặn tạm thời"))
    assert policy.value.code == "368"
    assert policy.value.retry_after >= 3600
    assert state.fb_posts == []


async def test_fb_commit_then_error_is_unknown_and_reconciles(
    fb: FacebookPageConnector, state: SandboxState
):
    """A 500 after the post committed is OutcomeUnknown; find_sent then finds that one post."""
    since = datetime.now(UTC)
    message = fb_message("Đã đăng nhưng mất phản hồi")
    state.push_fault("fb.feed", Fault("commit_then_error"))
    with pytest.raises(OutcomeUnknown) as caught:
        await fb.send(message)
    assert caught.value.code == "2"
    [post] = state.fb_posts
    assert len(state.messages()) == 1
    found = await fb.find_sent(message, since)
    assert found is not None
    assert (found.remote_id, found.permalink) == (post.id, post.permalink_url)


async def test_fb_bare_500_on_a_write_is_unknown(fb: FacebookPageConnector, state: SandboxState):
    """An HTML 500 with no Graph error body after a POST is OutcomeUnknown, not a rejection."""
    state.push_fault("fb.feed", Fault("http_status", http_status=500))
    with pytest.raises(OutcomeUnknown) as caught:
        await fb.send(fb_message("Cổng trả 500"))
    assert caught.value.code == "http_500"


async def test_fb_commit_then_hang_times_out_as_unknown(server: SandboxServer):
    """On a real socket, a post that commits and then hangs past the timeout is OutcomeUnknown."""
    assert server.url is not None
    server.state.push_fault("fb.feed", Fault("commit_then_hang", seconds=30))
    connector = build_facebook(base_url=server.url, timeout=0.3)
    message = fb_message("Đăng rồi treo")
    since = datetime.now(UTC)
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            await connector.send(message)
        assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
        [post] = server.state.fb_posts
        assert [m["remote_id"] for m in server.state.messages()] == [post.id]
        found = await connector.find_sent(message, since)
    finally:
        await connector.aclose()
    assert found is not None and found.remote_id == post.id


async def test_fb_connection_refused_is_unavailable():
    """A port nobody listens on means surely not sent: Unavailable."""
    connector = build_facebook(base_url=f"http://127.0.0.1:{free_closed_port()}", timeout=2.0)
    try:
        with pytest.raises(Unavailable) as caught:
            await connector.send(fb_message("Không ai nghe"))
    finally:
        await connector.aclose()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)
    assert caught.value.retry_after is None


async def test_fb_photo_post_survives_a_failed_permalink_read(
    fb: FacebookPageConnector, state: SandboxState, tmp_path: Path
):
    """A published photo post is reported sent even when reading its permalink fails."""
    state.push_fault("fb.post_read", Fault.throttle(minutes=1))
    image = write_png(tmp_path / "anh.png", 8, 8, (1, 2, 3))
    receipt = await fb.send(fb_message("Ảnh đã lên trang", images=(image,)))
    [post] = state.fb_posts
    assert receipt.remote_id == post.id


# ---- Zalo: publishing ----------------------------------------------------------------------


async def test_zalo_group_text(zalo: ZaloOAConnector, state: SandboxState):
    """A group text lands in that group; the receipt is Zalo's message_id."""
    state.add_group("other-group", "Cụm khác")
    receipt = await zalo.send(zalo_message("zalo_group", GROUP, "Chào cả cụm thi đua số 3"))
    [message] = state.zalo_groups[GROUP].messages
    assert message.text == "Chào cả cụm thi đua số 3"
    assert receipt.remote_id == message.message_id
    assert state.zalo_groups["other-group"].messages == []
    [logged] = state.messages()
    assert (logged["channel"], logged["target"]) == ("zalo_group", GROUP)


async def test_zalo_user_text(zalo: ZaloOAConnector, state: SandboxState):
    """A CS text to an admin who interacted recently lands in their conversation."""
    state.add_user(USER, "Chủ tịch CĐCS")
    receipt = await zalo.send(zalo_message("zalo_user", USER, "Kính gửi đồng chí chủ tịch"))
    [message] = state.zalo_users[USER].messages
    assert message.text == "Kính gửi đồng chí chủ tịch"
    assert receipt.remote_id == message.message_id
    assert routes(state) == ["zalo.quota", "zalo.cs_message"]  # the window is checked first


async def test_zalo_broadcast_creates_verifies_then_broadcasts(
    zalo: ZaloOAConnector, state: SandboxState
):
    """Broadcast: article create, verify (-214 first, then the id), one broadcast of that id."""
    state.set_now(NOON_VN)
    text = "Luật Công đoàn 2024 có hiệu lực.\n\nNhững điểm mới cần biết."
    receipt = await zalo.send(zalo_message("zalo_broadcast", "followers", text, "Luật mới"))
    assert routes(state) == [
        "zalo.article_create",
        "zalo.article_verify",
        "zalo.article_verify",
        "zalo.broadcast",
    ]
    assert [e["outcome"] for e in state.requests] == ["ok", "error:-214", "ok", "ok"]
    [article] = state.zalo_articles.values()
    assert article.title == "Luật mới" and article.cover_url == COVER_URL
    assert [item["content"] for item in article.body] == [
        "Luật Công đoàn 2024 có hiệu lực.",
        "Những điểm mới cần biết.",
    ]
    [broadcast] = state.zalo_broadcasts
    assert broadcast.article_id == article.id
    assert receipt.remote_id == broadcast.message_id


# ---- Zalo: read-back -----------------------------------------------------------------------


async def test_zalo_find_sent_in_a_group(zalo: ZaloOAConnector):
    """find_sent reads the group's history: the sent text is found, an unsent one is not."""
    since = datetime.now(UTC)
    sent = await zalo.send(zalo_message("zalo_group", GROUP, "Lịch  họp cụm\ntháng 12"))
    found = await zalo.find_sent(zalo_message("zalo_group", GROUP, "Lịch họp cụm tháng 12"), since)
    assert found is not None and found.remote_id == sent.remote_id
    assert await zalo.find_sent(zalo_message("zalo_group", GROUP, "Chưa gửi"), since) is None


async def test_zalo_find_sent_with_a_user(zalo: ZaloOAConnector, state: SandboxState):
    """find_sent reads the user's conversation: the sent text is found, an unsent one is not."""
    since = datetime.now(UTC)
    state.add_user(USER, "Chủ tịch CĐCS")
    sent = await zalo.send(zalo_message("zalo_user", USER, "Nhắc nộp báo cáo quý"))
    found = await zalo.find_sent(zalo_message("zalo_user", USER, "Nhắc nộp báo cáo quý"), since)
    assert found is not None and found.remote_id == sent.remote_id
    assert await zalo.find_sent(zalo_message("zalo_user", USER, "Chưa gửi"), since) is None
    assert "zalo.user_conversation" in routes(state)


async def test_zalo_find_sent_on_a_broadcast_cannot_tell(
    zalo: ZaloOAConnector, state: SandboxState
):
    """A broadcast cannot be read back: CannotTell, without any request."""
    with pytest.raises(CannotTell):
        await zalo.find_sent(zalo_message("zalo_broadcast", "followers", "x"), datetime.now(UTC))
    assert state.requests == []


async def test_zalo_find_sent_looks_past_ten_newer_group_messages(zalo: ZaloOAConnector):
    """A group message followed by ten others within the window is still found."""
    since = datetime.now(UTC)
    sent = await zalo.send(zalo_message("zalo_group", GROUP, "Tin cần đối soát"))
    for number in range(10):
        await zalo.send(zalo_message("zalo_group", GROUP, f"Tin khác số {number}"))
    found = await zalo.find_sent(zalo_message("zalo_group", GROUP, "Tin cần đối soát"), since)
    assert found is not None and found.remote_id == sent.remote_id


# ---- Zalo: errors through the wire ---------------------------------------------------------


async def test_zalo_disabled_group_is_rejected(zalo: ZaloOAConnector, state: SandboxState):
    """A group whose asset expired answers -237: Rejected."""
    state.add_group(GROUP, "Cụm 3", enabled=False)
    with pytest.raises(Rejected) as caught:
        await zalo.send(zalo_message("zalo_group", GROUP, "Nhóm đã tắt"))
    assert caught.value.code == "-237"
    assert state.messages() == []


async def test_zalo_unknown_group_is_rejected(zalo: ZaloOAConnector, state: SandboxState):
    """A group the OA is not in answers -403: Rejected."""
    state.auto_register = False
    with pytest.raises(Rejected) as caught:
        await zalo.send(zalo_message("zalo_group", "not-our-group", "OA không ở trong nhóm"))
    assert caught.value.code == "-403"
    assert state.zalo_groups == {}


async def test_zalo_user_outside_the_window_is_rejected(zalo: ZaloOAConnector, state: SandboxState):
    """A user whose last interaction is 8 days old answers -230: Rejected."""
    state.add_user(USER, "Chủ tịch CĐCS", datetime.now(UTC) - timedelta(days=8))
    with pytest.raises(Rejected) as caught:
        await zalo.send(zalo_message("zalo_user", USER, "Quá 7 ngày"))
    assert caught.value.code == "-230"
    assert state.zalo_users[USER].messages == []


async def test_zalo_invalid_token_is_auth_expired(
    transport: httpx.ASGITransport, state: SandboxState
):
    """A connector with a token Zalo does not know gets -216: AuthExpired."""
    connector = build_zalo(transport=transport, token="not-a-real-token")
    try:
        with pytest.raises(AuthExpired) as caught:
            await connector.send(zalo_message("zalo_group", GROUP, "Sai mã truy cập"))
    finally:
        await connector.aclose()
    assert caught.value.code == "-216"
    assert state.messages() == []


async def test_zalo_rate_limit_is_throttled(zalo: ZaloOAConnector, state: SandboxState):
    """-32 (per-minute limit) is Throttled with a positive wait."""
    state.push_fault("zalo.group_message", Fault.throttle())
    with pytest.raises(Throttled) as caught:
        await zalo.send(zalo_message("zalo_group", GROUP, "Quá nhanh"))
    assert caught.value.code == "-32"
    assert caught.value.retry_after == 60
    assert state.messages() == []


async def test_zalo_broadcast_at_night_is_deferred(zalo: ZaloOAConnector, state: SandboxState):
    """At 23:00 Vietnam time a broadcast answers -234: Unavailable with a retry_after."""
    state.enforce_night_hours = True
    state.set_now(NIGHT_VN)
    with pytest.raises(Unavailable) as caught:
        await zalo.send(zalo_message("zalo_broadcast", "followers", "Tin đêm", "Tin đêm"))
    assert caught.value.code == "-234"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert state.zalo_broadcasts == []


async def test_zalo_commit_then_error_is_unknown(zalo: ZaloOAConnector, state: SandboxState):
    """A 500 after the group message committed is OutcomeUnknown; the group holds one message."""
    state.push_fault("zalo.group_message", Fault("commit_then_error"))
    with pytest.raises(OutcomeUnknown) as caught:
        await zalo.send(zalo_message("zalo_group", GROUP, "Gửi rồi mất phản hồi"))
    assert caught.value.code == "http_500"
    assert [m.text for m in state.zalo_groups[GROUP].messages] == ["Gửi rồi mất phản hồi"]
    assert len(state.messages()) == 1


async def test_zalo_text_over_2000_characters_is_rejected(
    zalo: ZaloOAConnector, state: SandboxState
):
    """A text longer than 2,000 characters is refused (-201): Rejected, nothing sent."""
    with pytest.raises(Rejected) as caught:
        await zalo.send(zalo_message("zalo_group", GROUP, "a" * 2001))
    assert caught.value.code == "-201"
    assert state.messages() == []
    receipt = await zalo.send(zalo_message("zalo_group", GROUP, "a" * 2000))
    assert receipt.remote_id == state.messages()[0]["remote_id"]


async def test_zalo_connection_refused_is_unavailable():
    """A port nobody listens on means surely not sent: Unavailable."""
    connector = build_zalo(base_url=f"http://127.0.0.1:{free_closed_port()}", timeout=2.0)
    try:
        with pytest.raises(Unavailable) as caught:
            await connector.send(zalo_message("zalo_group", GROUP, "Không ai nghe"))
    finally:
        await connector.aclose()
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_zalo_commit_then_hang_times_out_as_unknown(server: SandboxServer):
    """On a real socket, a group message that commits then hangs is OutcomeUnknown, recorded."""
    assert server.url is not None
    server.state.push_fault("zalo.group_message", Fault("commit_then_hang", seconds=30))
    connector = build_zalo(base_url=server.url, timeout=0.3)
    try:
        with pytest.raises(OutcomeUnknown) as caught:
            await connector.send(zalo_message("zalo_group", GROUP, "Gửi rồi treo"))
    finally:
        await connector.aclose()
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert [m.text for m in server.state.zalo_groups[GROUP].messages] == ["Gửi rồi treo"]


# ---- media ------------------------------------------------------------------------------------


async def test_fb_video_waits_for_processing_and_returns_the_post(
    transport: httpx.ASGITransport, state: SandboxState, tmp_path: Path
) -> None:
    """A video is uploaded, polled until ready, and its receipt is the Page post read-back finds."""
    state.video_processing_polls = 2
    fb = build_facebook(transport=transport, app_secret=APP_SECRET)
    message = fb_message("Video an toàn lao động").model_copy(
        update={"video": write_sample_video(tmp_path / "atvsld.mp4")}
    )
    try:
        receipt = await fb.send(message)
        found = await fb.find_sent(message, datetime.now(UTC) - timedelta(minutes=1))
    finally:
        await fb.aclose()
    [posted] = state.messages()
    assert receipt.remote_id == posted["remote_id"]
    assert found is not None and found.remote_id == receipt.remote_id
    assert sum(1 for r in routes(state) if r == "fb.videos") == 1


async def test_fb_video_that_fails_processing_is_rejected(
    transport: httpx.ASGITransport, state: SandboxState, tmp_path: Path
) -> None:
    state.video_fails = True
    fb = build_facebook(transport=transport, app_secret=APP_SECRET)
    message = fb_message("Video hỏng").model_copy(
        update={"video": write_sample_video(tmp_path / "x.mp4")}
    )
    try:
        with pytest.raises(Rejected):
            await fb.send(message)
    finally:
        await fb.aclose()


async def test_zalo_group_image_is_uploaded_once_and_sent_with_its_caption(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    image = write_png(tmp_path / "anh.png", 64, 64, (200, 0, 0))
    message = zalo_message("zalo_group", GROUP, "Ảnh hoạt động").model_copy(
        update={"images": (image,)}
    )
    await zalo.send(message)
    await zalo.send(message.model_copy(update={"target_id": "a" * 20}))
    assert routes(state).count("zalo.upload") == 1  # the attachment is reused
    assert [m["text"] for m in state.messages()] == ["Ảnh hoạt động", "Ảnh hoạt động"]


async def test_zalo_user_image_after_the_window_check(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    state.add_user(USER, "Lan")
    image = write_png(tmp_path / "anh.png", 32, 32, (0, 0, 200))
    message = zalo_message("zalo_user", USER, "Gửi chị Lan").model_copy(update={"images": (image,)})
    await zalo.send(message)
    assert routes(state) == ["zalo.quota", "zalo.upload", "zalo.cs_message"]


async def test_zalo_image_over_the_limit_is_refused_by_zalo(
    zalo: ZaloOAConnector, state: SandboxState, tmp_path: Path
) -> None:
    """The app fits images to 1 MB first; sent as they are, Zalo refuses big ones."""
    big = tmp_path / "big.png"
    Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3)).save(big, format="PNG")
    assert big.stat().st_size > 1024 * 1024
    message = zalo_message("zalo_group", GROUP, "Ảnh lớn").model_copy(update={"images": (big,)})
    with pytest.raises(Rejected):
        await zalo.send(message)


async def test_zalo_broadcast_of_an_image_post_links_its_public_copy(
    transport: httpx.ASGITransport, state: SandboxState, tmp_path: Path
) -> None:
    zalo = ZaloOAConnector(
        openapi_url=BASE_URL,
        access_token=build_zalo_token,
        article_cover_url=COVER_URL,
        public_media_url="https://congdoan.example/media/",
        broadcast_target={"gender": "0"},
        verify_poll_seconds=0.01,
        clock=lambda: datetime(2026, 12, 1, 3, 0, tzinfo=UTC),  # 10:00 in Hà Nội
        sandbox=True,
        transport=transport,
    )
    image = write_png(tmp_path / "thông báo.png", 16, 16, (0, 0, 0))
    message = zalo_message("zalo_broadcast", "followers", "Đoạn một.\n\nĐoạn hai.").model_copy(
        update={"images": (image,)}
    )
    try:
        await zalo.send(message)
    finally:
        await zalo.aclose()
    [article] = state.zalo_articles.values()
    assert article.cover_url == "https://congdoan.example/media/th%C3%B4ng%20b%C3%A1o.png"
    assert article.body[0] == {"type": "image", "url": article.cover_url}
    assert len(state.zalo_broadcasts) == 1


async def build_zalo_token() -> str:
    return SANDBOX_ZALO_ACCESS_TOKEN


async def test_fb_video_not_yet_visible_cannot_be_called_absent(
    transport: httpx.ASGITransport, state: SandboxState, tmp_path: Path
) -> None:
    """A processing video is not among published posts: read-back must not say "absent"."""
    fb = build_facebook(transport=transport, app_secret=APP_SECRET)
    message = fb_message("Video đang xử lý").model_copy(
        update={"video": write_sample_video(tmp_path / "v.mp4")}
    )
    try:
        with pytest.raises(CannotTell):
            await fb.find_sent(message, datetime.now(UTC) - timedelta(minutes=1))
    finally:
        await fb.aclose()

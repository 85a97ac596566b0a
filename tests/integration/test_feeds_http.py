"""`fetch` end to end over real loopback HTTP: the saved feeds, error statuses, a slow and a
closed port, the headers actually sent."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

import httpx
import pytest

from content.feeds import Feed, FeedReport, fetch, fetch_all, new_feed_client

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
NOW = datetime(2026, 6, 1, 8, 0, tzinfo=UTC) - timedelta(hours=7)  # 08:00 in Hà Nội


class FeedSite(ThreadingHTTPServer):
    """Serves tests/data/feeds under /feeds/, error statuses, a redirect and a slow route."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.user_agents: list[str] = []
        self.release = threading.Event()  # ends the slow route's wait at teardown

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FeedSite

    def do_GET(self) -> None:
        self.server.user_agents.append(self.headers.get("User-Agent", ""))
        if self.path.startswith("/feeds/"):
            path = FEEDS / self.path.removeprefix("/feeds/")
            if path.is_file():
                self._send(200, path.read_bytes(), "application/rss+xml; charset=utf-8")
                return
        elif self.path.startswith("/status/"):
            self._send(int(self.path.removeprefix("/status/")), b"<h1>Error</h1>", "text/html")
            return
        elif self.path.startswith("/moved/"):
            self.send_response(301)
            self.send_header("Location", self.path.replace("/moved/", "/feeds/", 1))
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        elif self.path == "/big":
            with contextlib.suppress(OSError):  # the client stops reading at its limit
                self._send(200, b" " * (6 * 1024 * 1024), "application/rss+xml")
            return
        elif self.path == "/slow":
            self.server.release.wait(5)
            with contextlib.suppress(OSError):  # the client gave up long ago
                self._send(200, b"<rss/>", "application/rss+xml")
            return
        self._send(404, b"<h1>Not found</h1>", "text/html")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the tests read what they need from the server."""


@pytest.fixture(scope="module")
def site() -> Iterator[FeedSite]:
    server = FeedSite()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with new_feed_client(timeout=2.0) as client:
        yield client


def feed(site: FeedSite, path: str, adapter: Literal["generic", "congbao"] = "generic") -> Feed:
    return Feed(name=path.rsplit("/", 1)[-1], url=f"{site.url}{path}", adapter=adapter)


async def test_congbao(site: FeedSite, client: httpx.AsyncClient) -> None:
    report = await fetch(client, feed(site, "/feeds/congbao-van-ban-moi.rss", "congbao"), now=NOW)
    assert report.healthy, report.problem
    assert len(report.items) == 8  # the repeated 161/2026 is read once
    assert [(i.doc_number, s.value) for i, s in report.matches] == [
        ("162/2026/NĐ-CP", 27),
        ("161/2026/NĐ-CP", 21),
        ("12/2026/TT-BNV", 18),
        ("31/2026/QĐ-UBND", 18),  # Hà Nội
        ("105/2026/NĐ-CP", 9),
    ]
    assert report.newest == datetime(2026, 5, 31, 0, 30, tzinfo=UTC)
    assert len({i.source_key for i in report.items}) == 8


async def test_broken_dates_are_repaired(site: FeedSite, client: httpx.AsyncClient) -> None:
    report = await fetch(client, feed(site, "/feeds/nld-chinh-sach.rss"), now=NOW)
    published = {i.title[:20]: i.published for i in report.items}
    assert published == {
        "Lương tối thiểu vùng": datetime(2026, 5, 31, 9, 30, tzinfo=UTC),  # +07
        "Bão số 2 đổ bộ, báo ": datetime(2026, 5, 31, 2, 10, tzinfo=UTC),  # GMT+7
        "Nghị định 293/2025/N": datetime(2026, 5, 30, 3, 52, tzinfo=UTC),  # US, U+202F
        "Đóng BHXH tự nguyện:": datetime(2026, 5, 29, 8, 5, tzinfo=UTC),  # US, NBSP
        "Tăng lương hưu 8% từ": datetime(2026, 5, 28, 0, 45, tzinfo=UTC),  # ISO, no zone
        "Không lường trước rủ": None,  # "hôm qua"
    }
    assert report.problem == "nguồn tin «nld-chinh-sach.rss» có 1 tin không đọc được ngày đăng"
    assert not report.healthy
    titles = [i.title for i, _ in report.matches]
    assert len(titles) == 4
    assert not any(t.startswith(("Bão", "Không lường")) for t in titles)


async def test_atom(site: FeedSite, client: httpx.AsyncClient) -> None:
    report = await fetch(client, feed(site, "/feeds/xaydungchinhsach.atom"), now=NOW)
    assert report.healthy, report.problem
    assert [s.hits[0] for _, s in report.matches] == ["nghỉ lễ", "lương cơ sở"]


async def test_same_link_in_two_feeds_is_matched_once(
    site: FeedSite, client: httpx.AsyncClient
) -> None:
    policy, welfare = await fetch_all(
        client,
        [feed(site, "/feeds/nld-chinh-sach.rss"), feed(site, "/feeds/nld-an-sinh-xa-hoi.rss")],
        now=NOW,
    )
    pension = "Tăng lương hưu 8% từ tháng 7/2026"
    assert pension in [i.title for i, _ in policy.matches]
    assert [i.title for i, _ in welfare.matches] == [
        "Công đoàn Hà Nội trao 500 suất quà cho công nhân khó khăn"
    ]
    assert pension in [i.title for i in welfare.items]  # still reported, just not drafted twice
    assert welfare.healthy, welfare.problem  # "Thứ sáu, 29/05/2026 - 14:20" was repaired


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/feeds/stale.rss", "tin mới nhất đã cũ 10 ngày"),
        ("/feeds/empty.rss", "không có tin nào"),
        ("/feeds/laodong-challenge.html", "trả về nội dung không phải RSS/Atom"),
        ("/feeds/malformed.xml", "có XML bị lỗi (dòng 13: mismatched tag)"),
        ("/status/403", "không truy cập được (HTTP 403)"),
        ("/status/404", "không truy cập được (HTTP 404)"),
        ("/status/500", "không truy cập được (HTTP 500)"),
        ("/feeds/khong-co.rss", "không truy cập được (HTTP 404)"),
        ("/slow", "không phản hồi kịp (quá thời gian chờ)"),
        ("/big", "trả về nội dung quá lớn (trên 5 MB)"),
    ],
)
async def test_unhealthy(site: FeedSite, path: str, problem: str) -> None:
    async with new_feed_client(timeout=0.5) as client:
        report = await fetch(client, feed(site, path), now=NOW)
    assert not report.healthy
    assert report.problem == f"nguồn tin «{path.rsplit('/', 1)[-1]}» {problem}"


async def test_stale_and_malformed_feeds_still_give_their_items(
    site: FeedSite, client: httpx.AsyncClient
) -> None:
    stale = await fetch(client, feed(site, "/feeds/stale.rss"), now=NOW)
    assert stale.newest == datetime(2026, 5, 22, 0, 0, tzinfo=UTC)
    assert len(stale.matches) == 2
    malformed = await fetch(client, feed(site, "/feeds/malformed.xml"), now=NOW)
    assert [i.title for i, _ in malformed.matches] == ["Hướng dẫn đóng kinh phí công đoàn năm 2026"]


async def test_future_items_are_dropped(site: FeedSite, client: httpx.AsyncClient) -> None:
    report = await fetch(client, feed(site, "/feeds/future.rss"), now=NOW)
    assert report.problem == ("nguồn tin «future.rss» có 1 tin đề ngày trong tương lai (đã bỏ qua)")
    assert [i.guid for i in report.items] == ["hnm-801"]
    assert [i.guid for i, _ in report.matches] == ["hnm-801"]
    assert report.newest == datetime(2026, 5, 31, 11, 0, tzinfo=UTC)


async def test_connection_refused(client: httpx.AsyncClient) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = Feed(name="Hà Nội Mới", url=f"http://127.0.0.1:{port}/rss/xa-hoi")
    report = await fetch(client, closed, now=NOW)
    assert report == FeedReport(
        closed, problem="nguồn tin «Hà Nội Mới» không truy cập được (không kết nối được máy chủ)"
    )


async def test_browser_headers_and_redirects(site: FeedSite) -> None:
    # A bare client: fetch itself must send the browser's headers and follow the redirect.
    async with httpx.AsyncClient() as bare:
        before = len(site.user_agents)
        report = await fetch(bare, feed(site, "/moved/xaydungchinhsach.atom"), now=NOW)
    assert report.healthy, report.problem
    sent = site.user_agents[before:]
    assert len(sent) == 2  # the 301, then the feed
    assert all(ua.startswith("Mozilla/5.0 (Windows NT 10.0; Win64; x64)") for ua in sent)
    assert all("Chrome/" in ua and "python-httpx" not in ua for ua in sent)

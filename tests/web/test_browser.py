"""The console in a real headless Chromium, against a real `cdbot run` and its sandbox.

An officer signs in, composes a law explainer with an image, sees the previews, approves
it and watches it reach every target; then reschedules a post by dragging it on the
calendar, exports a report, and uses the console on a 390-pixel phone screen.

Screenshots go to CDBOT_SCREENSHOTS (default: a temporary folder);
`CDBOT_SCREENSHOTS=docs/img .venv/bin/python -m pytest tests/web/test_browser.py`
refreshes the ones in the docs.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
from openpyxl import load_workbook
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "content" / "data" / "example"
CDBOT = Path(sys.executable).with_name("cdbot")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
VN = ZoneInfo("Asia/Ho_Chi_Minh")
USER, PASSWORD = "lan", "mat-khau-cua-lan"


if not Path(CHROMIUM).exists():
    if os.environ.get("CDBOT_REQUIRE_BROWSER"):
        pytest.fail("Chromium is required here (make test installs it)", pytrace=False)
    pytest.skip("no Chromium on this machine (make test installs it)", allow_module_level=True)

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Console:
    """A `cdbot run` serving the console, with the example clusters and one admin."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CDBOT_")} | {
            "CDBOT_DATABASE_URL": f"sqlite:///{folder / 'db.sqlite3'}",
            "CDBOT_MEDIA_CACHE_DIR": str(folder / "media"),
            "CDBOT_CARDS_DIR": str(folder / "cards"),
            "CDBOT_WEB_PORT": str(self.port),
            "CDBOT_POLL_SECONDS": "0.5",
            "CDBOT_FACEBOOK_MIN_GAP_SECONDS": "0",
            "CDBOT_LOG_LEVEL": "WARNING",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def cdbot(self, *args: str, stdin: str | None = None) -> None:
        subprocess.run(
            [str(CDBOT), *args],
            env=self.env,
            input=stdin,
            text=True,
            check=True,
            timeout=60,
            capture_output=True,
        )

    def start(self) -> None:
        self.cdbot(
            "cluster",
            "import",
            *(str(EXAMPLE / f"{n}.csv") for n in ("clusters", "unions", "admins")),
        )
        self.cdbot(
            "user",
            "add",
            USER,
            "--role",
            "admin",
            "--name",
            "Nguyễn Thị Lan",
            "--password-stdin",
            stdin=PASSWORD + "\n",
        )
        with (self.folder / "run.log").open("wb") as log:
            self.process = subprocess.Popen(
                [str(CDBOT), "run"], env=self.env, stdout=log, stderr=log
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.3)
        raise AssertionError((self.folder / "run.log").read_text())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    running = Console(tmp_path_factory.mktemp("console"))
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("CDBOT_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def signed_in(browser: Browser, console: Console, width: int = 1280) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 900},
        locale="vi-VN",
        timezone_id="Asia/Ho_Chi_Minh",
        accept_downloads=True,
    )
    page = context.new_page()
    page.goto(f"{console.url}/")
    assert "/login" in page.url
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{console.url}/")
    return page


def png(path: Path) -> Path:
    Image.new("RGB", (1200, 800), (143, 24, 32)).save(path, "PNG")
    return path


def compose(page: Page, console: Console, *, title: str, when: datetime, image: Path | None) -> int:
    """Fill the compose form for a law explainer to the HCSN group and the Page; its post id."""
    page.goto(f"{console.url}/compose")
    page.select_option("select[name=kind]", "law")
    page.fill("input[name=title]", title)
    page.fill(
        "textarea[name=body]",
        "Thời giờ làm thêm không quá 40 giờ một tháng và 200 giờ một năm.",
    )
    page.fill("input[name=citation]", "Điều 107 Bộ luật Lao động 2019")
    page.fill("input[name=link]", "https://vbpl.vn/bo-luat-lao-dong-2019")
    for channel in ("zalo_broadcast", "zalo_user"):
        page.uncheck(f"input[name=channels][value={channel}]")
    page.check("input[name=clusters][value=HCSN]")
    page.fill("input[name=date]", when.strftime("%Y-%m-%d"))
    page.fill("input[name=time]", when.strftime("%H:%M"))
    if image is not None:
        page.set_input_files("input[name=images]", str(image))
    page.click("button[name=action][value=draft]")
    page.wait_for_url(f"{console.url}/posts/*")
    return int(page.url.rstrip("/").rsplit("/", 1)[1])


def test_an_officer_composes_approves_and_sees_it_sent(
    browser: Browser, console: Console, shots: Path, tmp_path: Path
) -> None:
    page = signed_in(browser, console)
    page.screenshot(path=str(shots / "console-dashboard.png"), full_page=True)

    # The previews follow the form as the officer types.
    page.goto(f"{console.url}/compose")
    page.select_option("select[name=kind]", "law")
    page.fill("input[name=title]", "Làm thêm giờ tối đa bao nhiêu?")
    page.fill("textarea[name=body]", "Không quá 40 giờ một tháng.")
    facebook = page.locator("[data-pane=facebook_page]")
    facebook.get_by_text("LÀM THÊM GIỜ TỐI ĐA BAO NHIÊU?").wait_for(timeout=10_000)
    assert "ký tự" in facebook.inner_text()

    now = datetime.now(VN)
    post_id = compose(
        page,
        console,
        title="Làm thêm giờ tối đa bao nhiêu?",
        when=now,
        image=png(tmp_path / "anh.png"),
    )
    page.goto(f"{console.url}/approvals")
    page.locator(f"form[action='/posts/{post_id}/approve'] button").click()
    page.wait_for_load_state()

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        page.goto(f"{console.url}/posts/{post_id}")
        rows = page.locator("table tbody tr")
        texts = [rows.nth(i).inner_text() for i in range(rows.count())]
        if texts and all("Đã gửi" in t for t in texts):
            break
        time.sleep(1)
    else:
        raise AssertionError(texts)
    assert len(texts) == 2  # the Page and the HCSN group
    page.screenshot(path=str(shots / "console-post-sent.png"), full_page=True)


def test_a_post_is_rescheduled_by_dragging_it_on_the_calendar(
    browser: Browser, console: Console, shots: Path
) -> None:
    page = signed_in(browser, console)
    first = (datetime.now(VN).replace(day=1) + timedelta(days=32)).replace(day=3, hour=8, minute=0)
    post_id = compose(page, console, title="Bài để dời lịch", when=first, image=None)
    page.goto(f"{console.url}/calendar?month={first:%Y-%m}")
    target = first + timedelta(days=4)
    page.drag_and_drop(f"[data-post-id='{post_id}']", f"[data-date='{target:%Y-%m-%d}']")
    page.locator(f"[data-date='{target:%Y-%m-%d}'] [data-post-id='{post_id}']").wait_for(
        timeout=10_000
    )
    page.screenshot(path=str(shots / "console-calendar.png"), full_page=True)
    page.goto(f"{console.url}/posts/{post_id}")
    assert target.strftime("%d/%m/%Y") in page.inner_text("main")


def test_a_report_is_exported(browser: Browser, console: Console, tmp_path: Path) -> None:
    page = signed_in(browser, console)
    page.goto(f"{console.url}/reports")
    with page.expect_download() as info:
        page.click("a[href^='/reports/export.xlsx']")
    saved = tmp_path / "bao-cao.xlsx"
    info.value.save_as(saved)
    workbook = load_workbook(saved)
    assert workbook.sheetnames
    assert workbook.worksheets[0].max_row > 1


@pytest.mark.parametrize("path", ["/", "/compose", "/calendar", "/posts", "/reports"])
def test_the_console_fits_a_phone(
    browser: Browser, console: Console, shots: Path, path: str
) -> None:
    page = signed_in(browser, console, width=390)
    page.goto(f"{console.url}{path}")
    overflow = page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= 390, (path, overflow)
    name = {"/": "dashboard", "/compose": "compose"}.get(path)
    if name:
        page.screenshot(path=str(shots / f"console-{name}-phone.png"), full_page=True)

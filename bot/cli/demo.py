"""`cdbot demo`: the whole pipeline on a throw-away database and the built-in sandbox."""

from __future__ import annotations

import asyncio
import tempfile
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from bot.cli.common import out, plain
from bot.settings import EXAMPLE_ORG_DIR
from connectors.zalo import BROADCAST_FROM, BROADCAST_UNTIL, VIETNAM

DEMO_TIMEOUT_SECONDS = 120
DEMO_CONSOLE_PORT = 8080
DEMO_USER, DEMO_PASSWORD = "demo", "congdoan-demo"  # a throw-away database, for the demo only
LEGAL_SOURCE = (
    "https://thuvienphapluat.vn/van-ban/Lao-dong-Tien-luong/Bo-Luat-lao-dong-2019-333670.aspx"
)

DEMO_POSTS: list[dict[str, Any]] = [
    {
        "kind": "law",
        "title": "Làm thêm giờ được trả lương thế nào?",
        "body": (
            "Người lao động làm thêm giờ được trả lương ít nhất bằng 150% vào ngày thường, "
            "200% vào ngày nghỉ hằng tuần và 300% vào ngày nghỉ lễ, tết, ngày nghỉ có hưởng "
            "lương (Điều 98 Bộ luật Lao động 2019)."
        ),
        "link": LEGAL_SOURCE,
        "citation": "Điều 98 Bộ luật Lao động 2019 (45/2019/QH14)",
        "as_of": date(2026, 7, 23),
        "hashtags": ("PhapLuatLaoDong",),
    },
    {
        "kind": "event",
        "title": "Kỷ niệm 97 năm Ngày thành lập Công đoàn Việt Nam (28/7/1929 – 28/7/2026)",
        "body": (
            "Các cụm thi đua tổ chức sinh hoạt chuyên đề, tuyên dương cán bộ công đoàn tiêu biểu."
        ),
        "event_date": date(2026, 7, 28),
        "place": "Các công đoàn cơ sở trong huyện",
        "document": "Kế hoạch kỷ niệm 28-7.pdf",
    },
    {
        "kind": "news",
        "title": "Chương trình “Tết sum vầy” năm 2027",
        "body": "Công đoàn hỗ trợ xe đưa công nhân về quê đón Tết; đăng ký qua công đoàn cơ sở.",
        "link": "https://congdoan.vn/tet-sum-vay",
    },
    {
        "kind": "story",
        "title": "Người tốt, việc tốt: chị Nguyễn Thị Hoa",
        "body": "Chủ tịch công đoàn cơ sở đã vận động 40 đoàn viên hiến máu tình nguyện năm nay.",
    },
    {
        "kind": "video",
        "title": "Video: an toàn, vệ sinh lao động trong xưởng may",
        "body": "Năm điều công nhân cần nhớ để làm việc an toàn trong Tháng hành động ATVSLĐ.",
        "video": True,
    },
    {
        "kind": "infographic",
        "title": "Infographic: 11 ngày nghỉ lễ, tết hưởng nguyên lương",
        "body": (
            "Người lao động được nghỉ làm việc, hưởng nguyên lương trong các ngày lễ, tết "
            "(Điều 112)."
        ),
        "images": 1,
    },
    {
        "kind": "infographic",
        "title": "Bộ ảnh: Tháng Công nhân 2026 tại các cụm thi đua",
        "body": "Một số hình ảnh hoạt động Tháng Công nhân của các công đoàn cơ sở.",
        "images": 3,
    },
]


def _demo_image(folder: Path, name: str, colour: tuple[int, int, int]) -> Path:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (1080, 1350), colour)
    draw = ImageDraw.Draw(image)
    draw.rectangle((60, 60, 1020, 1290), outline=(255, 255, 255), width=12)
    draw.text((120, 640), "congdoan-bot demo", fill=(255, 255, 255))
    path = folder / name
    image.save(path, "PNG")
    return path


def _daytime() -> datetime:
    """Now, or 10:00 today in Vietnam when it is night: the demo broadcasts at any hour."""
    now = datetime.now(UTC)
    local = now.astimezone(VIETNAM)
    if BROADCAST_FROM <= local.time() < BROADCAST_UNTIL:
        return now
    return datetime.combine(local.date(), time(10, 0), VIETNAM).astimezone(UTC)


def run_demo(*, keep_open: bool = False) -> int:
    """Run the demo; 0 only if every delivery reached `sent`."""
    with tempfile.TemporaryDirectory(prefix="cdbot-demo-") as tmp:
        return asyncio.run(_demo(Path(tmp), keep_open=keep_open))


async def _demo(folder: Path, *, keep_open: bool) -> int:
    from bot.app import App
    from bot.cli.posts import build_draft, check_targets
    from bot.db.migrate import upgrade
    from bot.directory import import_directory, list_clusters
    from bot.logs import setup_logging
    from bot.settings import Settings
    from connectors.sandbox import SandboxState
    from content.media import write_sample_pdf, write_sample_video
    from schedules.clock import Clock

    setup_logging("WARNING")
    url = f"sqlite:///{folder / 'demo.sqlite3'}"
    settings = Settings(
        _env_file=None,  # the demo never uses the office's .env
        database_url=url,
        sandbox=True,
        facebook_page_token=None,
        zalo_app_secret=None,  # the demo never reaches the real OA, whatever the environment
        org_file=EXAMPLE_ORG_DIR / "organisation.yaml",
        poll_seconds=1.0,
        backoff_base_seconds=1.0,
        facebook_min_gap_seconds=0,  # a rehearsal need not space the Page's posts
        settle_seconds=1.0,
    )
    upgrade(url)
    # A rehearsal at any hour: the sandbox's night rule for broadcasts is off here.
    state = SandboxState(auto_register=False, enforce_night_hours=False)
    bot = App(settings, sandbox_state=state, clock=_daytime)
    try:
        async with bot.sessions.begin() as session:
            await import_directory(
                session, [EXAMPLE_ORG_DIR / n for n in ("clusters.csv", "unions.csv", "admins.csv")]
            )
        async with bot.sessions() as session:
            clusters = await list_clusters(session)
        for cluster in clusters:
            if cluster.zalo_group_id:
                state.add_group(cluster.zalo_group_id, f"Cụm {cluster.name}")
            for admin in cluster.admins:
                state.add_user(admin.zalo_user_id, admin.name)
        out.print(
            f"[bold]Demo congdoan-bot[/bold]: {bot.org.name} (dữ liệu mẫu), "
            f"{len(clusters)} cụm thi đua."
        )

        now = await bot.queue.now()
        for index, spec in enumerate(DEMO_POSTS):
            fields = dict(spec)
            images = [
                _demo_image(folder, f"anh-{index}-{i}.png", (180 - 30 * i, 30, 40))
                for i in range(int(fields.pop("images", 0)))
            ]
            if fields.pop("video", False):
                fields["video"] = write_sample_video(folder / "atvsld.mp4")
            if "document" in fields:  # a cluster group shows it as a file message
                document = write_sample_pdf(folder / fields.pop("document"), "Ke hoach 28-7")
                fields["documents"] = (document,)
            fields |= {
                "images": tuple(images),
                "scheduled_at": now + timedelta(seconds=2 + index),
                "channels": tuple(bot.org.default_channels),
            }
            draft = build_draft(fields, now)
            targets = await check_targets(bot, draft)
            await bot.queue.add(draft, actor="demo", approve_for=targets)
        total = sum((await bot.queue.counts()).values())
        out.print(f"Đã xếp {len(DEMO_POSTS)} bài, {total} lượt gửi, đến hạn trong vài giây tới.")

        async with bot.connectors() as connectors:
            out.print(f"Hộp cát (trang xem bài đã gửi): {bot.sandbox_url}/")
            dispatcher = bot.dispatcher(connectors)
            clock = Clock(settings.tz)
            clock.start(dispatcher.wake)
            stop = asyncio.Event()
            serving = asyncio.create_task(dispatcher.serve(stop, clock.wake_at, until_idle=True))
            await _progress(bot, serving, total)
            clock.shutdown()
            ok = await _report(bot, {c.code: c.name for c in clusters})
            console = f"http://127.0.0.1:{DEMO_CONSOLE_PORT}/"
            login = f"đăng nhập «{DEMO_USER}», mật khẩu «{DEMO_PASSWORD}»"
            if keep_open:
                from bot.cli.web import serve_console
                from bot.web.auth import Users

                await Users(bot.sessions).add(
                    DEMO_USER, DEMO_PASSWORD, "admin", display_name="Cán bộ demo", actor="demo"
                )
                out.print(f"Bảng điều khiển web: {console} ({login}).")
                out.print(f"Hộp cát vẫn mở tại {bot.sandbox_url}/ — nhấn Ctrl-C để thoát.")
                await serve_console(bot, "127.0.0.1", DEMO_CONSOLE_PORT, asyncio.Event())
            out.print(
                f"Xem trên bảng điều khiển web: chạy «cdbot demo --keep-open» rồi mở {console} "
                f"({login})."
            )
        return 0 if ok else 1
    finally:
        await bot.aclose()


async def _progress(bot: Any, serving: asyncio.Task[None], total: int) -> None:
    last = -1
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEMO_TIMEOUT_SECONDS
    while not serving.done() and loop.time() < deadline:
        sent = (await bot.queue.counts()).get("sent", 0)
        if sent != last:
            out.print(f"  đã gửi {sent}/{total}")
            last = sent
        await asyncio.wait({serving}, timeout=0.5)
    if not serving.done():
        serving.cancel()
        out.print("[red]Quá thời gian chờ của demo.[/red]")
    else:
        await serving


def _mark(statuses: list[str]) -> str:
    """'✓' when all are sent, else how many of them are."""
    from bot.texts import DELIVERY_STATUS

    if not statuses:
        return "—"
    sent = statuses.count("sent")
    if sent == len(statuses):
        return f"✓ {sent}/{sent}" if len(statuses) > 1 else "✓"
    pending = [DELIVERY_STATUS.get(s, s) for s in statuses if s != "sent"]
    return f"{sent}/{len(statuses)} ({pending[0]})"


async def _report(bot: Any, names: dict[str, str]) -> bool:
    """A table for the whole organisation, then one per cluster; True if all was sent."""
    from rich.table import Table

    posts = await bot.queue.list_posts()
    whole = Table(title="Toàn đơn vị")
    for column in ("Bài", "Trang Facebook", "Zalo: người quan tâm"):
        whole.add_column(column)
    clusters: dict[str, Table] = {}
    for post in posts:
        label = plain(f"#{post.id} {post.title[:40]}")
        by_channel: dict[tuple[str | None, str], list[str]] = {}
        for d in post.deliveries:
            by_channel.setdefault((d.cluster_code, d.channel), []).append(d.status)
        whole.add_row(
            label,
            _mark(by_channel.get((None, "facebook_page"), [])),
            _mark(by_channel.get((None, "zalo_broadcast"), [])),
        )
        for code in sorted({c for c, _ in by_channel if c}):
            table = clusters.get(code)
            if table is None:
                table = clusters[code] = Table(title=f"{names.get(code, code)} ({code})")
                for column in ("Bài", "Nhóm Zalo", "Quản trị viên"):
                    table.add_column(column)
            table.add_row(
                label,
                _mark(by_channel.get((code, "zalo_group"), [])),
                _mark(by_channel.get((code, "zalo_user"), [])),
            )
    out.print(whole)
    for code in sorted(clusters):
        out.print(clusters[code])
    statuses = [d.status for post in posts for d in post.deliveries]
    all_sent = all(s == "sent" for s in statuses)
    verdict = "mọi lượt gửi đã tới nơi" if all_sent else "CÓ lượt gửi chưa tới nơi"
    out.print(
        f"[bold]Kết quả: {statuses.count('sent')}/{len(statuses)} lượt gửi, {verdict}.[/bold]"
    )
    return all_sent

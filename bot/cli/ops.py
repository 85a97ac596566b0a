"""Commands for running the bot and looking after it: db, config, org, clusters, status, run."""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import local, opened_app, out, plain, print_json, run

db_app = typer.Typer(help="Cơ sở dữ liệu.", no_args_is_help=True)
config_app = typer.Typer(help="Kiểm tra thiết lập.", no_args_is_help=True)
org_app = typer.Typer(help="Thông tin tổ chức (tệp YAML).", no_args_is_help=True)
cluster_app = typer.Typer(
    help="Cụm thi đua, công đoàn cơ sở và quản trị viên.", no_args_is_help=True
)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Tạo hoặc nâng cấp cơ sở dữ liệu lên phiên bản mới nhất."""
    from bot.db.migrate import current_revision, upgrade

    with opened_app(migrate=False) as bot:
        url = bot.settings.database_url
        upgrade(url)
        out.print(f"Cơ sở dữ liệu đã ở phiên bản {current_revision(url)}.")


@config_app.command("check")
def config_check(
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Kiểm tra thiết lập, tệp tổ chức và chế độ từng kênh (thật hay hộp cát)."""
    with opened_app(migrate=False) as bot:
        bot.check_production()
        org = bot.org
        modes = bot.modes()
        report = {
            "database": bot.engine.url.render_as_string(hide_password=True),
            "timezone": bot.settings.timezone,
            "organisation": org.name,
            "channels": {k: "sandbox" if m.sandbox else "live" for k, m in modes.items()},
        }
        if as_json:
            print_json(report)
            return
        out.print(f"Cơ sở dữ liệu: {report['database']}")
        out.print(f"Múi giờ: {bot.settings.timezone}")
        out.print(f"Tổ chức: {org.name}")
        for mode in modes.values():
            label = "HỘP CÁT (chưa có thông tin đăng nhập thật)" if mode.sandbox else "THẬT"
            out.print(f"Kênh {mode.account}: {label}")
        out.print("Thiết lập hợp lệ.")


@org_app.command("show")
def org_show(
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Xem tên, chữ ký, khẩu hiệu và hashtag của tổ chức."""
    with opened_app(migrate=False) as bot:
        org = bot.org
        if as_json:
            print_json(org.model_dump(mode="json"))
            return
        if org.example:
            out.print("[yellow]Đây là DỮ LIỆU MẪU, hãy thay bằng thông tin của đơn vị.[/yellow]")
        out.print(plain(org.name), style="bold")
        out.print(plain(f"Chữ ký:\n{org.signature}"))
        out.print(plain("Khẩu hiệu: " + " | ".join(org.slogans)))
        out.print(plain("Hashtag: " + " ".join("#" + h for h in org.hashtags)))


@cluster_app.command("import")
def cluster_import(
    files: Annotated[
        list[Path],
        typer.Argument(help="Một tệp XLSX ba trang tính, hoặc tới ba tệp CSV.", metavar="TỆP..."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Chỉ xem trước thay đổi, không ghi.")
    ] = False,
) -> None:
    """Nhập cụm thi đua, công đoàn cơ sở và quản trị viên từ Excel hoặc CSV.

    Mỗi loại có trong tệp sẽ thay thế toàn bộ loại đó. Một dòng sai là bỏ cả lần nhập.
    """
    from bot.directory import import_directory

    with opened_app() as bot:

        async def work() -> Any:
            async with bot.sessions() as session:
                report = await import_directory(session, files)
                if dry_run:
                    await session.rollback()
                else:
                    await session.commit()
                return report

        report = run(bot, work)
        out.print(str(report))
        out.print("Chưa ghi gì (--dry-run)." if dry_run else "Đã nhập xong.")


@cluster_app.command("list")
def cluster_list(
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Liệt kê cụm thi đua với nhóm Zalo, số công đoàn cơ sở và quản trị viên."""
    from rich.table import Table

    from bot.directory import list_clusters

    with opened_app() as bot:

        async def work() -> Any:
            async with bot.sessions() as session:
                return await list_clusters(session)

        clusters = run(bot, work)
        if as_json:
            print_json(
                [
                    {
                        "code": c.code,
                        "name": c.name,
                        "zalo_group_id": c.zalo_group_id,
                        "unions": [u.name for u in c.unions],
                        "admins": [
                            {"name": a.name, "zalo_user_id": a.zalo_user_id} for a in c.admins
                        ],
                    }
                    for c in clusters
                ]
            )
            return
        table = Table(title=f"Cụm thi đua ({len(clusters)})")
        for column in ("Mã", "Tên cụm", "Nhóm Zalo", "CĐCS", "Quản trị viên"):
            table.add_column(column)
        for c in clusters:
            table.add_row(
                plain(c.code),
                plain(c.name),
                plain(c.zalo_group_id or "—"),
                str(len(c.unions)),
                plain(", ".join(a.name for a in c.admins)),
            )
        out.print(table)
        if not clusters:
            out.print("Chưa có cụm nào; nhập bằng «cdbot cluster import TỆP».")


def status(as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False) -> None:
    """Tình trạng: lượt gửi theo trạng thái, sức khoẻ từng tài khoản, lần gửi kế tiếp."""
    from bot.texts import ACCOUNT, DELIVERY_STATUS

    with opened_app() as bot:

        async def work() -> tuple[Any, Any, Any]:
            return await bot.queue.counts(), await bot.queue.accounts(), await bot.queue.next_due()

        counts, accounts, next_due = run(bot, work)
        tz = bot.settings.tz
        modes = bot.modes()
        health = {}
        for key, mode in modes.items():
            state = accounts.get(key)
            health[key] = {
                "mode": "sandbox" if mode.sandbox else "live",
                "needs_reauth": bool(state and state.needs_reauth),
                "paused_until": state.paused_until.isoformat()
                if state and state.paused_until
                else None,
                "note": state.note if state else None,
            }
        if as_json:
            print_json(
                {
                    "deliveries": counts,
                    "accounts": health,
                    "next_due": next_due.astimezone(tz).isoformat() if next_due else None,
                }
            )
            return
        out.print("[bold]Lượt gửi[/bold]")
        for key, label in DELIVERY_STATUS.items():
            if counts.get(key):
                out.print(f"  {label}: {counts[key]}")
        if not counts:
            out.print("  (chưa có)")
        out.print("[bold]Tài khoản[/bold]")
        for key, h in health.items():
            mode = "HỘP CÁT" if h["mode"] == "sandbox" else "thật"
            if h["needs_reauth"]:
                state = f"TẠM DỪNG, cần cấp lại quyền: {h['note']}"
            elif h["paused_until"]:
                state = f"tạm dừng đến {local(accounts[key].paused_until, tz)}"
            else:
                state = "hoạt động"
            out.print(f"  {ACCOUNT[key]} ({mode}): {state}")
        out.print(f"Lần gửi kế tiếp: {local(next_due, tz)}")


def run_command(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Thoát khi không còn gì đến hạn trong 60 giây tới.")
    ] = False,
) -> None:
    """Chạy bot: đồng hồ lịch và bộ gửi trong một tiến trình (mặc định với SQLite)."""
    _serve(until_idle=until_idle, label="run")


def worker(
    until_idle: Annotated[
        bool, typer.Option("--until-idle", help="Thoát khi không còn gì đến hạn trong 60 giây tới.")
    ] = False,
) -> None:
    """Chỉ chạy bộ gửi; chạy nhiều tiến trình cùng lúc khi dùng PostgreSQL."""
    _serve(until_idle=until_idle, label="worker")


def _serve(*, until_idle: bool, label: str) -> None:
    from schedules.clock import Clock

    with opened_app() as bot:

        async def work() -> None:
            stop = asyncio.Event()
            grace = bot.settings.stop_grace_seconds

            def stopping() -> None:
                if not stop.is_set():
                    out.print(f"Đang dừng: chờ các lượt đang gửi xong (tối đa {grace:g} giây)…")
                stop.set()

            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stopping)
            async with bot.connectors() as connectors:
                dispatcher = bot.dispatcher(connectors)
                clock = Clock(bot.settings.tz)
                clock.start(dispatcher.wake)
                if label == "run":
                    await _daily_jobs(bot, clock, connectors, dispatcher.worker)
                    _serve_webhooks(bot, stop)
                    _serve_console(bot, stop)
                out.print(f"Bắt đầu ({label}, {dispatcher.worker}); Ctrl-C để dừng.")
                if bot.sandbox_server is not None:
                    out.print(f"Hộp cát: {bot.sandbox_url}/")
                try:
                    await dispatcher.serve(stop, clock.wake_at, until_idle=until_idle)
                finally:
                    clock.shutdown()
            out.print("Đã dừng.")

        run(bot, work)


ACCOUNT_CHECK_HOUR = 6


def _serve_webhooks(bot: Any, stop: asyncio.Event) -> None:
    """Serve the webhook routes in this loop, until `stop`, when CDBOT_WEBHOOK_PORT is set."""
    s = bot.settings
    if s.webhook_port is None:
        return
    from bot.webhook import serve

    asyncio.get_running_loop().create_task(
        serve(bot.webhook_app(), s.webhook_host, s.webhook_port, stop)
    )
    out.print(
        f"Webhook: http://{s.webhook_host}:{s.webhook_port}/webhooks/zalo và /webhooks/facebook"
    )


def _serve_console(bot: Any, stop: asyncio.Event) -> None:
    """Serve the web console in this loop, until `stop`, when CDBOT_WEB_PORT is set."""
    s = bot.settings
    if s.web_port is None:
        return
    from bot.cli.web import serve_console

    asyncio.get_running_loop().create_task(serve_console(bot, s.web_host, s.web_port, stop))
    out.print(f"Bảng điều khiển: http://{s.web_host}:{s.web_port}/")


async def _daily_jobs(bot: Any, clock: Any, connectors: Any, worker: str) -> None:
    """The scheduler's recurring jobs; each also runs once at start-up for its last period.

    The day is planned (event notices, the law item) just after midnight, so its posts
    wait in the queue for their times, and asked again every hour: a plan that a crash cut
    short is taken over once stale (`schedules.runonce`); otherwise the hour finds the day
    planned. The feeds are read at the organisation's hour and only give drafts.
    """
    from apscheduler.triggers.cron import CronTrigger

    from schedules.content import feed_drafts, plan_day
    from schedules.jobs import check_accounts, latest_fire

    tz = bot.settings.tz
    feeds_at = bot.org.automation.feeds_time

    async def account_check() -> None:
        fire = latest_fire(ACCOUNT_CHECK_HOUR, tz)
        await check_accounts(bot.sessions, bot.queue, connectors, fire, worker)

    async def plan_today() -> None:
        await plan_day(bot, datetime.now(tz).date(), worker)

    async def read_feeds() -> None:
        if bot.org.automation.feeds:
            now = datetime.now(UTC)
            fire = latest_fire(feeds_at.hour, tz, now, minute=feeds_at.minute)
            await feed_drafts(bot, now, fire, worker)

    clock.add_job(account_check, CronTrigger(hour=ACCOUNT_CHECK_HOUR, timezone=tz), "account-check")
    clock.add_job(plan_today, CronTrigger(minute=5, timezone=tz), "plan-day")
    trigger = CronTrigger(hour=feeds_at.hour, minute=feeds_at.minute, timezone=tz)
    clock.add_job(read_feeds, trigger, "feeds")
    # Catch up at start-up; the feeds wait for their hour (items stay in a feed for days).
    await account_check()
    await plan_today()


def sandbox(
    host: Annotated[str, typer.Option(help="Địa chỉ lắng nghe.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Cổng.")] = 8090,
) -> None:
    """Chạy hộp cát giả lập Facebook và Zalo, kèm trang xem bài đã gửi."""
    from connectors.sandbox.server import serve_forever

    out.print(
        f"Hộp cát tại http://{host}:{port}/ (đặt CDBOT_SANDBOX_URL=http://{host}:{port} cho bot)."
    )
    serve_forever(host, port)

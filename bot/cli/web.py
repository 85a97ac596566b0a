"""`cdbot web` (the console) and `cdbot user …` (who may sign in to it)."""

from __future__ import annotations

import asyncio
import getpass
import signal
import sys
from typing import Annotated, Any

import typer

from bot.cli.common import opened_app, out, plain, print_json, run
from bot.errors import InputError

user_app = typer.Typer(help="Người dùng bảng điều khiển web và mã API.", no_args_is_help=True)
ACTOR = "cli"


def web(
    host: Annotated[
        str | None, typer.Option(help="Địa chỉ lắng nghe (mặc định 127.0.0.1).")
    ] = None,
    port: Annotated[int, typer.Option(help="Cổng.")] = 8080,
) -> None:
    """Mở bảng điều khiển web cho cán bộ truyền thông (mặc định http://127.0.0.1:8080).

    Chỉ phục vụ trang web; việc gửi bài do «cdbot run» hoặc «cdbot worker» làm.
    Tạo người dùng đầu tiên bằng «cdbot user add».
    """
    with opened_app() as bot:
        bind = host or bot.settings.web_host

        async def work() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            if not await _has_users(bot):
                out.print("Chưa có người dùng nào: tạo bằng «cdbot user add TÊN --role admin».")
            out.print(f"Bảng điều khiển: http://{bind}:{port}/ (Ctrl-C để dừng)")
            await serve_console(bot, bind, port, stop)
            out.print("Đã dừng.")

        run(bot, work)


async def serve_console(bot: Any, host: str, port: int, stop: asyncio.Event) -> None:
    """Serve the console in this loop until `stop` is set."""
    from bot.web.app import console_secret, create_app
    from bot.webhook import serve

    app = create_app(
        bot, secret=console_secret(bot.settings), https_only=bot.settings.web_https_only
    )
    await serve(app, host, port, stop)


async def _has_users(bot: Any) -> bool:
    from bot.web.auth import Users

    return await Users(bot.sessions).count() > 0


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("Mật khẩu: ")
    if getpass.getpass("Nhập lại mật khẩu: ") != first:
        raise InputError("Hai lần nhập mật khẩu không khớp.")
    return first


@user_app.command("add")
def add_user(
    username: Annotated[str, typer.Argument(help="Tên đăng nhập.", metavar="TÊN")],
    role: Annotated[
        str, typer.Option(help="Vai trò: viewer, editor, approver hoặc admin.")
    ] = "editor",
    name: Annotated[str, typer.Option(help="Họ tên hiển thị.")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Đọc mật khẩu từ một dòng ở đầu vào chuẩn.")
    ] = False,
) -> None:
    """Thêm người dùng bảng điều khiển web (hỏi mật khẩu, ít nhất 10 ký tự).

    Vai trò: viewer xem; editor soạn bản nháp; approver duyệt và lên lịch;
    admin quản lý tài khoản, cụm thi đua và người dùng.

    Ví dụ: cdbot user add lan --role approver --name "Nguyễn Thị Lan"
    """
    from bot.web.auth import Users

    password = _password(password_stdin)
    with opened_app() as bot:
        users = Users(bot.sessions)
        person = run(
            bot, lambda: users.add(username, password, role, display_name=name, actor=ACTOR)
        )
    out.print(plain(f"Đã thêm «{person.username}» ({person.role.value})."))


@user_app.command("list")
def list_users(
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Liệt kê người dùng và vai trò."""
    from rich.table import Table

    from bot.web.auth import ROLE_NAMES, Users

    with opened_app() as bot:
        users = Users(bot.sessions)
        rows = run(bot, users.all)
    if as_json:
        print_json(
            [
                {
                    "username": p.username,
                    "name": p.display_name,
                    "role": p.role.value,
                    "disabled": d,
                }
                for p, d in rows
            ]
        )
        return
    table = Table(title=f"Người dùng ({len(rows)})")
    for column in ("Tên đăng nhập", "Họ tên", "Vai trò", "Trạng thái"):
        table.add_column(column)
    for p, disabled in rows:
        state = "đã khoá" if disabled else "hoạt động"
        table.add_row(plain(p.username), plain(p.display_name), ROLE_NAMES[p.role], state)
    out.print(table)


@user_app.command("token")
def new_token(
    username: Annotated[str, typer.Argument(help="Tên đăng nhập.", metavar="TÊN")],
    label: Annotated[str, typer.Option("--name", help="Mã dùng cho việc gì.")] = "API",
) -> None:
    """Tạo mã API cho một người dùng (in ra một lần duy nhất; chỉ lưu bản băm).

    Dùng: Authorization: Bearer <mã> với các địa chỉ /api/v1/… (xem /api/v1/openapi.json).
    """
    from bot.web.auth import Users

    with opened_app() as bot:
        users = Users(bot.sessions)
        token = run(bot, lambda: users.new_token(username.strip().lower(), label, actor=ACTOR))
    out.print(token)

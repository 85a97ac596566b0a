"""`cdbot`: the media officer's command line, in Vietnamese.

Errors the officer can fix (`InputError`, `ConfigError`) print one sentence and exit
with code 2; nothing is written when they happen. Heavy modules are imported inside
the commands, so `cdbot --help` stays fast.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
import typer.rich_utils as rich_help

from bot.cli import calendar, content, ops, posts, web, zalo

for name, text in {
    "ARGUMENTS_PANEL_TITLE": "Tham số",
    "OPTIONS_PANEL_TITLE": "Tuỳ chọn",
    "COMMANDS_PANEL_TITLE": "Lệnh",
    "ERRORS_PANEL_TITLE": "Lỗi",
    "ABORTED_TEXT": "Đã dừng.",
    "DEFAULT_STRING": "[mặc định: {}]",
    "REQUIRED_LONG_STRING": "[bắt buộc]",
    "ENVVAR_STRING": "[biến môi trường: {}]",
    "RICH_HELP": "Xem [blue]'{command_path} {help_option}'[/] để được hướng dẫn.",
}.items():
    setattr(rich_help, name, text)

app = typer.Typer(
    name="cdbot",
    help=(
        "Bot đăng bài của công đoàn: Trang Facebook và Zalo OA theo cụm thi đua.\n\n"
        "Bắt đầu: «cdbot demo» chạy thử với hộp cát; «cdbot post add --help» để soạn bài."
    ),
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(posts.app, name="post")
app.add_typer(ops.cluster_app, name="cluster")
app.add_typer(ops.org_app, name="org")
app.add_typer(ops.db_app, name="db")
app.add_typer(ops.config_app, name="config")
app.add_typer(zalo.app, name="zalo")
app.add_typer(calendar.app, name="calendar")
app.add_typer(content.feeds_app, name="feeds")
app.command("plan")(content.plan)
app.add_typer(web.user_app, name="user")
app.command("web")(web.web)
app.command("status")(ops.status)
app.command("run")(ops.run_command)
app.command("worker")(ops.worker)
app.command("sandbox")(ops.sandbox)


@app.command("demo")
def demo(
    keep_open: Annotated[
        bool,
        typer.Option("--keep-open", help="Giữ hộp cát mở sau khi chạy để xem trên trình duyệt."),
    ] = False,
) -> None:
    """Chạy thử trọn vẹn: CSDL tạm, tổ chức mẫu, bài mọi loại, hộp cát; in bảng kết quả."""
    from bot.cli.demo import run_demo

    raise typer.Exit(run_demo(keep_open=keep_open))


def _usage_message(exc: Exception) -> str:
    """Click's usage errors, said in Vietnamese."""
    import typer._click.exceptions as ce

    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "cdbot"
    param = getattr(exc, "param", None)
    name = "?"
    if param is not None:
        is_option = param.opts and param.opts[0].startswith("-")
        name = param.opts[0] if is_option else (getattr(param, "metavar", None) or param.name)
    if isinstance(exc, ce.NoSuchOption):
        text = f"Không có tuỳ chọn «{exc.option_name}»."
    elif isinstance(exc, ce.MissingParameter):
        text = f"Thiếu «{name}»."
    elif isinstance(exc, ce.BadParameter):
        text = f"Giá trị của «{name}» không hợp lệ."
    elif str(exc).startswith("No such command"):
        text = f"Không có lệnh {str(exc).removeprefix('No such command').strip(' .')}."
    else:
        text = f"Lệnh không đúng cú pháp ({exc})."
    return f"{text} Xem «{path} --help»."


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `cdbot` console script."""
    import typer._click.exceptions as ce

    from bot.errors import BotError

    try:
        code = app(args=argv, standalone_mode=False)
    except ce.NoArgsIsHelpError as exc:
        exc.show()
        return 0
    except ce.UsageError as exc:
        sys.stderr.write(_usage_message(exc) + "\n")
        return 2
    except (typer.Abort, KeyboardInterrupt):
        sys.stderr.write("Đã dừng.\n")
        return 130
    except BotError as exc:
        sys.stderr.write(exc.message + "\n")
        return 2
    except BrokenPipeError:  # the reader (a pager, `head`) went away
        return 0
    except Exception as exc:  # a bug of ours: one sentence for the officer, details in DEBUG
        import logging
        import os

        logging.getLogger("bot").debug("lỗi không lường trước", exc_info=exc)
        sys.stderr.write(
            f"Lỗi không lường trước ({type(exc).__name__}). Chạy lại với CDBOT_LOG_LEVEL=DEBUG "
            "để xem chi tiết và báo cho người quản trị.\n"
        )
        if os.environ.get("CDBOT_LOG_LEVEL", "").upper() == "DEBUG":
            import traceback

            traceback.print_exception(exc)
        return 1
    return code if isinstance(code, int) else 0

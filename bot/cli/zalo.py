"""`cdbot zalo …`: connect the bot to the Zalo OA and look at the stored tokens.

`connect` gets a token pair in one of two ways and stores it encrypted, then lifts the
account's "needs re-authorisation" pause:

- consent in a browser (OAuth v4 with PKCE): print the permission URL, read back the
  `code` Zalo redirected the browser with, exchange it;
- `--refresh-token` from Zalo's developer console (API Explorer): used once, at once,
  for a fresh pair, since Zalo invalidates a refresh token the first time it is used.

Tokens are never printed.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import typer

from bot.cli.common import iso, local, opened_app, out, plain, print_json, run
from bot.errors import ConfigError, InputError
from bot.settings import reveal

app = typer.Typer(help="Kết nối và kiểm tra Zalo OA.", no_args_is_help=True)

ACCOUNT = "zalo"
REDIRECT_SETTING = "CDBOT_ZALO_REDIRECT_URI"
ADVICE_REFRESH = (
    "mã đã dùng hoặc đã hết hạn, hãy lấy mã mới trong API Explorer hoặc cấp quyền qua trình "
    "duyệt bằng «cdbot zalo connect»."
)
ADVICE_CODE = "mã code chỉ dùng được một lần trong 10 phút, hãy chạy lại «cdbot zalo connect»."


def _app_credentials(settings: Any) -> tuple[str, str]:
    app_id, app_secret = settings.zalo_app_id, reveal(settings.zalo_app_secret)
    if not app_id or app_secret is None:
        raise ConfigError(
            "Cần đặt CDBOT_ZALO_APP_ID và CDBOT_ZALO_APP_SECRET (trang nhà phát triển Zalo) "
            "trước khi kết nối."
        )
    return str(app_id), app_secret


def _oauth(settings: Any) -> Any:
    """The Zalo OAuth client for this app (an async context manager)."""
    from connectors.tokens import ZaloOAuthClient

    app_id, app_secret = _app_credentials(settings)
    return ZaloOAuthClient(
        oauth_url=settings.zalo_oauth_url,
        app_id=app_id,
        app_secret=app_secret,
        timeout=settings.http_timeout_seconds,
    )


def _pause_for_consent(bot: Any) -> Any:
    """What the token store calls when Zalo refuses a refresh: the account waits for a person."""

    async def pause(note: str) -> None:
        await bot.queue.pause_account(ACCOUNT, seconds=None, needs_reauth=True, note=note)

    return pause


def _cipher(settings: Any) -> Any:
    from bot.secrets import Cipher

    key = reveal(settings.secret_key)
    if key is None:
        raise ConfigError("Cần đặt CDBOT_SECRET_KEY để mã Zalo được mã hoá trước khi lưu.")
    return Cipher(key)


def code_from(answer: str, expected_state: str | None) -> str:
    """The `code` from what the officer pasted: the code itself or the whole redirect URL."""
    text = answer.strip()
    if "code=" in text:
        query = urlsplit(text).query or text.split("?", 1)[-1]
        params = parse_qs(query)
        state = params.get("state", [None])[0]
        if expected_state is not None and state is not None and state != expected_state:
            raise InputError(
                "Địa chỉ vừa dán không thuộc lần kết nối này (state không khớp); "
                "hãy chạy lại «cdbot zalo connect»."
            )
        text = params.get("code", [""])[0].strip()
    if not text or any(ch.isspace() for ch in text):
        raise InputError("Chưa có mã code hợp lệ; hãy dán mã code hoặc cả địa chỉ trình duyệt.")
    return text


@app.command("connect")
def connect(
    refresh_token: Annotated[
        str | None,
        typer.Option(
            "--refresh-token",
            help=(
                "Mã làm mới (refresh token) lấy từ API Explorer của Zalo. Mã này chỉ dùng được "
                "MỘT lần: bot đổi nó ngay lấy cặp mã mới, đừng dùng lại ở nơi khác. "
                "Ghi «-» để nhập kín."
            ),
        ),
    ] = None,
    code: Annotated[
        str | None,
        typer.Option(
            "--code",
            help="Mã code (hoặc cả địa chỉ) trình duyệt được chuyển đến; cần --code-verifier.",
        ),
    ] = None,
    code_verifier: Annotated[
        str | None,
        typer.Option("--code-verifier", help="Mã xác minh PKCE đã dùng để tạo đường dẫn."),
    ] = None,
    redirect_uri: Annotated[
        str | None,
        typer.Option(
            "--redirect-uri",
            help=f"Địa chỉ callback đã khai báo trong trang Zalo (mặc định {REDIRECT_SETTING}).",
        ),
    ] = None,
    url_only: Annotated[
        bool,
        typer.Option(
            "--url-only", help="Chỉ in đường dẫn cấp quyền và mã xác minh, để dùng với --code."
        ),
    ] = False,
) -> None:
    """Kết nối bot với Zalo OA và lưu cặp mã (đã mã hoá) vào cơ sở dữ liệu."""
    if refresh_token is not None and (code or code_verifier or url_only):
        raise InputError("Chỉ dùng một cách: --refresh-token, hoặc cấp quyền qua trình duyệt.")
    if code is not None and not code_verifier:
        raise InputError("--code cần đi kèm --code-verifier đã dùng để tạo đường dẫn cấp quyền.")
    with opened_app() as bot:
        settings = bot.settings
        app_id, _ = _app_credentials(settings)  # checked before anything is asked of Zalo
        cipher = _cipher(settings)
        uri = redirect_uri or settings.zalo_redirect_uri
        if refresh_token == "-":
            refresh_token = typer.prompt("Mã làm mới (refresh token)", hide_input=True)
        verifier = code_verifier
        if refresh_token is None and code is None:
            verifier, code = _consent_in_browser(settings, app_id, uri, verifier, url_only)
            if code is None:
                return
        elif code is not None:
            code = code_from(code, None)

        async def work() -> Any:
            from bot.credentials import DbTokenStore
            from connectors.base import AuthExpired

            pause = _pause_for_consent(bot)
            await bot.queue.accounts()  # the database answers before Zalo's grant is spent
            async with _oauth(settings) as oauth:
                try:
                    if refresh_token is not None:
                        pair = await oauth.refresh(refresh_token.strip())
                    else:
                        pair = await oauth.exchange_code(str(code), str(verifier), uri)
                except AuthExpired as exc:
                    advice = ADVICE_REFRESH if refresh_token is not None else ADVICE_CODE
                    raise AuthExpired(
                        f"{exc.message.rstrip('.')}; {advice}", code=exc.code
                    ) from exc
                store = DbTokenStore(bot.sessions, cipher, oauth, on_consent_needed=pause)
                version = await store.save(pair)
            await bot.queue.resume_account(ACCOUNT)
            return pair, version

        pair, version = run(bot, work)
        tz = settings.tz
        out.print(f"Đã kết nối Zalo OA và lưu cặp mã đã mã hoá (phiên bản {version}).")
        out.print(f"Mã truy cập còn hạn đến {local(pair.access_expires_at, tz)} ({tz.key}).")
        out.print(
            f"Mã làm mới còn hạn đến {local(pair.refresh_expires_at, tz)} ({tz.key}); "
            "bot tự làm mới trước khi hết hạn."
        )
        out.print("Tài khoản Zalo đã được gỡ tạm dừng.")


def _consent_in_browser(
    settings: Any, app_id: str, uri: str | None, verifier: str | None, url_only: bool
) -> tuple[str, str | None]:
    """Print the permission URL; return the verifier and the code pasted back (None: URL only)."""
    from connectors.tokens import new_pkce, permission_url, pkce_challenge

    if not uri:
        raise ConfigError(
            f"Chưa có địa chỉ callback: đặt {REDIRECT_SETTING} hoặc dùng --redirect-uri "
            "(đúng địa chỉ đã khai báo trong trang nhà phát triển Zalo)."
        )
    verifier = verifier or new_pkce()[0]
    state = secrets.token_urlsafe(12)
    url = permission_url(settings.zalo_oauth_url, app_id, uri, pkce_challenge(verifier), state)
    out.print("Mở đường dẫn sau bằng tài khoản quản trị OA rồi bấm «Cho phép»:")
    out.print(url, markup=False)
    if url_only:
        out.print(f"Mã xác minh (dùng với --code-verifier): {verifier}", markup=False)
        return verifier, None
    out.print("Trình duyệt sẽ chuyển tới địa chỉ callback có «code=…» (mã dùng được 10 phút).")
    answer = typer.prompt("Dán mã code hoặc cả địa chỉ đó")
    return verifier, code_from(answer, state)


@app.command("status")
def status(
    check: Annotated[
        bool, typer.Option("--check", help="Gọi thử Zalo (đọc thông tin OA) bằng mã đã lưu.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Xem mã Zalo đã lưu (hạn dùng, phiên bản) và tài khoản có đang chờ cấp lại quyền."""
    with opened_app() as bot:
        settings = bot.settings

        async def work() -> tuple[Any, Any, bool | None]:
            from bot.credentials import credential_status

            stored = await credential_status(bot.sessions, ACCOUNT)
            account = (await bot.queue.accounts()).get(ACCOUNT)
            checked = await _check(bot) if check and stored is not None else None
            return stored, account, checked

        stored, account, checked = run(bot, work)
        tz = settings.tz
        if as_json:
            print_json(
                {
                    "connected": stored is not None,
                    "version": stored.version if stored else None,
                    "access_expires_at": iso(stored.access_expires_at, tz) if stored else None,
                    "refresh_expires_at": iso(stored.refresh_expires_at, tz) if stored else None,
                    "can_refresh": stored.can_refresh if stored else False,
                    "needs_reauth": bool(account and account.needs_reauth),
                    "check_ok": checked,
                }
            )
            return
        if stored is None:
            out.print("Chưa kết nối Zalo OA; chạy «cdbot zalo connect».")
        else:
            updated = local(stored.updated_at, tz)
            out.print(f"Mã Zalo đã lưu: phiên bản {stored.version}, cập nhật lúc {updated}.")
            out.print(f"Mã truy cập còn hạn đến {local(stored.access_expires_at, tz)} ({tz.key}).")
            if stored.can_refresh:
                refresh = local(stored.refresh_expires_at, tz)
                out.print(f"Mã làm mới còn hạn đến {refresh} ({tz.key}).")
            else:
                out.print("Không còn mã làm mới hợp lệ; chạy «cdbot zalo connect».")
        if account is not None and account.needs_reauth:
            note = f"Tài khoản Zalo đang TẠM DỪNG, cần cấp lại quyền: {account.note}"
            out.print(note, markup=False)  # the note quotes Zalo, never read it as markup
        if checked is not None:
            out.print("Gọi thử Zalo: thành công." if checked else "Gọi thử Zalo: THẤT BẠI.")


async def _check(bot: Any) -> bool:
    """Read the OA's profile with the stored token (refreshing it first if it is due)."""
    from bot.credentials import DbTokenStore
    from connectors.base import PlatformError
    from connectors.zalo import ZaloOAConnector

    settings = bot.settings
    async with _oauth(settings) as oauth:
        store = DbTokenStore(
            bot.sessions, _cipher(settings), oauth, on_consent_needed=_pause_for_consent(bot)
        )
        connector = ZaloOAConnector(
            openapi_url=settings.zalo_openapi_url,
            access_token=store.current,
            article_cover_url="",
            timeout=settings.http_timeout_seconds,
        )
        try:
            await connector.check()
        except PlatformError as exc:
            out.print(exc.message, markup=False)
            return False
        finally:
            await connector.aclose()
    return True


ASSET_WARNING_DAYS = 7


@app.command("groups")
def groups(
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Liệt kê nhóm Zalo của OA và kiểm tra nhóm của từng cụm thi đua.

    Báo lỗi (mã thoát 1) khi nhóm của một cụm không có trong OA hoặc đã bị vô hiệu hoá;
    cảnh báo khi gói nhóm (asset) hết hạn trong vòng 7 ngày.
    """
    from rich.table import Table

    from bot.directory import list_clusters

    with opened_app() as bot:

        async def work() -> tuple[list[Any], dict[str, Any], list[Any]]:
            async with bot.sessions() as session:
                clusters = await list_clusters(session)
            async with bot.connectors() as connectors:
                zalo = connectors["zalo"]
                listed = await zalo.groups()
                details = {
                    c.code: await zalo.group(c.zalo_group_id)
                    for c in clusters
                    if c.zalo_group_id and any(g.group_id == c.zalo_group_id for g in listed)
                }
                return clusters, details, listed

        clusters, details, listed = run(bot, work)
        today = bot.clock().astimezone(bot.settings.tz).date()
        rows = []
        problems = 0
        for cluster in clusters:
            info = details.get(cluster.code)
            if not cluster.zalo_group_id:
                verdict = "chưa khai báo nhóm Zalo"
                problems += 1
            elif info is None:
                verdict = "OA không quản lý nhóm này"
                problems += 1
            elif info.status != "enabled":
                verdict = "nhóm đã bị vô hiệu hoá: cần gia hạn gói nhóm"
                problems += 1
            elif (
                info.asset_valid_through
                and (info.asset_valid_through - today).days <= ASSET_WARNING_DAYS
            ):
                verdict = f"gói nhóm hết hạn ngày {info.asset_valid_through:%d/%m/%Y}: gia hạn sớm"
            else:
                verdict = "tốt"
            rows.append((cluster, info, verdict))
        if as_json:
            print_json(
                {
                    "groups": [
                        {
                            "group_id": g.group_id,
                            "name": g.name,
                            "status": g.status,
                            "members": g.members,
                        }
                        for g in listed
                    ],
                    "clusters": [
                        {
                            "code": c.code,
                            "zalo_group_id": c.zalo_group_id,
                            "status": i.status if i else None,
                            "asset_valid_through": i.asset_valid_through.isoformat()
                            if i and i.asset_valid_through
                            else None,
                            "verdict": v,
                        }
                        for c, i, v in rows
                    ],
                }
            )
        else:
            table = Table(title=f"Nhóm Zalo của các cụm thi đua (OA quản lý {len(listed)} nhóm)")
            for column in ("Cụm", "Nhóm", "Thành viên", "Gói nhóm đến", "Đánh giá"):
                table.add_column(column)
            for cluster, info, verdict in rows:
                table.add_row(
                    plain(cluster.code),
                    plain(info.name if info else cluster.zalo_group_id or "—"),
                    str(info.members) if info and info.members is not None else "—",
                    f"{info.asset_valid_through:%d/%m/%Y}"
                    if info and info.asset_valid_through
                    else "—",
                    plain(verdict),
                )
            out.print(table)
        if problems:
            raise typer.Exit(1)

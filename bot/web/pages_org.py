"""The office's own pages: clusters and their import, accounts, reports, users.

- Cụm thi đua: the directory with each cluster's Zalo group status; the import from Excel
  or CSV is parsed by `bot.directory` (as `cdbot cluster import`), shown as a diff, and
  applied all-or-nothing from the files kept on the server, never from the browser.
- Tài khoản: the Facebook Page token (stored encrypted) and the Zalo OA consent flow
  (OAuth v4 with PKCE, as `cdbot zalo connect`), against Zalo or the built-in sandbox.
- Báo cáo: posts and deliveries by month, plan category, kind, channel and cluster,
  with the share of clusters each post reached; XLSX and CSV exports.
- Người dùng: roles, disabling, passwords and API tokens through `bot.web.auth.Users`.

One module because the console's pages are owned one module each; the parts are
separated below and each could move to its own module unchanged.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import re
import secrets
import shutil
import tempfile
import time
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import func, select
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot.db.models import (
    ApiToken,
    AuditEntry,
    Cluster,
    Credential,
    Delivery,
    Post,
    User,
)
from bot.errors import BotError, ConfigError, InputError
from bot.settings import reveal
from bot.web.app import bot_of, flash, page, render, users_of
from bot.web.auth import ADMINISTER, VIEW, Person

if TYPE_CHECKING:
    from bot.app import App
    from bot.directory import ImportReport
    from bot.secrets import Cipher
    from connectors.sandbox.server import SandboxServer
    from connectors.zalo import GroupInfo


def _person(request: Request) -> Person:
    person: Person = request.state.person
    return person


def _tail(token: str) -> str:
    """What may be shown of a token: its last four characters."""
    return "…" + token[-4:]


async def _form_text(request: Request) -> dict[str, str]:
    """The form's text fields, stripped (files are left out)."""
    form = await request.form()
    return {k: v.strip() for k, v in form.items() if isinstance(v, str)}


# ==== Cụm thi đua ===============================================================================

GROUPS_CHECKED = "zalo.groups_checked"
ASSET_WARNING_DAYS = 7  # as `cdbot zalo groups`
ZALO_WINDOW = timedelta(days=7)


@page(VIEW)
async def clusters_page(request: Request) -> Response:
    from bot.directory import list_clusters

    bot = bot_of(request)
    async with bot.sessions() as session:
        clusters = await list_clusters(session)
        check = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == GROUPS_CHECKED)
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    checked: dict[str, Any] = dict(check.detail or {}) if check else {}
    statuses = checked.get("clusters", {})
    now = datetime.now(UTC)
    return render(
        request,
        "clusters.html",
        {
            "clusters": clusters,
            "statuses": {
                c.code: statuses[c.code]
                for c in clusters
                if c.code in statuses and statuses[c.code].get("group_id") == c.zalo_group_id
            },
            "checked_at": check.at if check else None,
            "checked_by": check.actor if check else None,
            "listed": checked.get("listed"),
            "totals": {
                "unions": sum(len(c.unions) for c in clusters),
                "members": sum(u.members or 0 for c in clusters for u in c.unions),
                "admins": sum(len(c.admins) for c in clusters),
                "no_group": sum(1 for c in clusters if not c.zalo_group_id),
            },
            "window_open": lambda moment: moment is not None and now - moment < ZALO_WINDOW,
            "may_administer": _person(request).may(ADMINISTER),
        },
    )


@page(ADMINISTER)
async def check_groups(request: Request) -> Response:
    """Ask Zalo (or the sandbox) for each cluster group's status, as `cdbot zalo groups`."""
    from bot.directory import list_clusters
    from connectors.base import PlatformError

    bot = bot_of(request)
    async with bot.sessions() as session:
        clusters = await list_clusters(session)
    try:
        listed, details = await _zalo_groups(bot, clusters)
    except PlatformError as exc:
        flash(request, f"Không kiểm tra được nhóm Zalo: {exc.message}", "error")
        return RedirectResponse("/clusters", status_code=303)
    today = bot.clock().astimezone(bot.settings.tz).date()
    results = {c.code: _group_verdict(c, details.get(c.code), today) for c in clusters}
    async with bot.sessions.begin() as session:
        session.add(
            AuditEntry(
                actor=_person(request).actor,
                action=GROUPS_CHECKED,
                detail={"listed": len(listed), "clusters": results},
            )
        )
    problems = sum(1 for r in results.values() if r["level"] == "bad")
    message = f"Đã kiểm tra {len(results)} cụm; OA quản lý {len(listed)} nhóm."
    if problems:
        flash(request, f"{message} {problems} cụm có nhóm Zalo cần xử lý.", "error")
    else:
        flash(request, message)
    return RedirectResponse("/clusters", status_code=303)


async def _zalo_groups(
    bot: App, clusters: list[Cluster]
) -> tuple[list[GroupInfo], dict[str, GroupInfo]]:
    """The OA's groups and, for each cluster whose group the OA manages, its details."""
    from connectors.zalo import ZaloOAConnector

    async with bot.connectors() as connectors:
        zalo = connectors["zalo"]
        if not isinstance(zalo, ZaloOAConnector):
            raise ConfigError("Kênh Zalo không hỗ trợ đọc danh sách nhóm.")
        listed = await zalo.groups()
        ids = {g.group_id for g in listed}
        details = {
            c.code: await zalo.group(c.zalo_group_id)
            for c in clusters
            if c.zalo_group_id and c.zalo_group_id in ids
        }
    return listed, details


def _group_verdict(cluster: Cluster, info: GroupInfo | None, today: date) -> dict[str, Any]:
    """One cluster's group as `cdbot zalo groups` judges it, ready to store as JSON."""
    valid = info.asset_valid_through if info else None
    if not cluster.zalo_group_id:
        level, verdict = "bad", "chưa khai báo nhóm Zalo"
    elif info is None:
        level, verdict = "bad", "OA không quản lý nhóm này"
    elif info.status != "enabled":
        level, verdict = "bad", "nhóm đã bị vô hiệu hoá: cần gia hạn gói nhóm"
    elif valid and (valid - today).days <= ASSET_WARNING_DAYS:
        level, verdict = "warn", f"gói nhóm hết hạn ngày {valid:%d/%m/%Y}: gia hạn sớm"
    else:
        level, verdict = "ok", "tốt"
    return {
        "group_id": cluster.zalo_group_id,
        "name": info.name if info else None,
        "members": info.members if info else None,
        "asset_valid_through": valid.isoformat() if valid else None,
        "level": level,
        "verdict": verdict,
    }


# ---- import --------------------------------------------------------------------------------

IMPORT_KEY = "cluster_import"
IMPORT_ROOT = Path(tempfile.gettempdir()) / "cdbot-cluster-imports"
IMPORT_TTL = 3600.0  # seconds a preview may wait for its confirmation
IMPORT_ID = re.compile(r"[A-Za-z0-9_-]{22,64}")
MAX_IMPORT_FILES = 3
MAX_IMPORT_BYTES = 5 * 1024 * 1024
SHOWN_CHANGES = 200  # per kind; the counts are always complete

KIND_TITLES = {"clusters": "Cụm thi đua", "unions": "Công đoàn cơ sở", "admins": "Quản trị viên"}
# Per kind: the attributes compared, with their labels.
FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "clusters": (("code", "Mã cụm"), ("name", "Tên cụm"), ("zalo_group_id", "Nhóm Zalo")),
    "unions": (("name", "Tên"), ("members", "Số đoàn viên")),
    "admins": (("name", "Họ tên"), ("position", "Chức vụ"), ("zalo_user_id", "Zalo user ID")),
}
Snapshot = dict[str, dict[tuple[str, str], dict[str, Any]]]


@dataclass(frozen=True)
class ChangeLine:
    """One record an import adds, changes or removes."""

    kind: str
    action: str  # add | change | remove
    cluster: str
    label: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preview:
    """What an import would do, and the directory it was computed against."""

    report: ImportReport
    changes: dict[str, list[ChangeLine]]
    digest: str


def _snapshot(clusters: Iterable[Cluster]) -> Snapshot:
    snap: Snapshot = {"clusters": {}, "unions": {}, "admins": {}}
    for c in clusters:
        key = c.code.casefold()
        snap["clusters"][(key, "")] = {
            "code": c.code,
            "name": c.name,
            "zalo_group_id": c.zalo_group_id,
            "cluster": c.code,
        }
        for u in c.unions:
            snap["unions"][(key, u.name.casefold())] = {
                "name": u.name,
                "members": u.members,
                "cluster": c.code,
            }
        for a in c.admins:
            snap["admins"][(key, a.zalo_user_id.casefold())] = {
                "name": a.name,
                "position": a.position,
                "zalo_user_id": a.zalo_user_id,
                "cluster": c.code,
            }
    return snap


def _digest(snap: Snapshot) -> str:
    rows = sorted(
        (kind, list(key), values) for kind, items in snap.items() for key, values in items.items()
    )
    return hashlib.sha256(json.dumps(rows, ensure_ascii=False, default=str).encode()).hexdigest()


def _label(kind: str, values: dict[str, Any]) -> str:
    if kind == "clusters":
        return f"{values['code']}: {values['name']}"
    if kind == "admins":
        return f"{values['name']} ({values['zalo_user_id']})"
    return str(values["name"])


def _shown(value: Any) -> str:
    return "(trống)" if value in (None, "") else f"«{value}»"


def _diff(before: Snapshot, after: Snapshot) -> dict[str, list[ChangeLine]]:
    changes: dict[str, list[ChangeLine]] = {}
    for kind, labels in FIELDS.items():
        old, new = before[kind], after[kind]
        lines = [
            ChangeLine(kind, "remove", v["cluster"], _label(kind, v))
            for k, v in old.items()
            if k not in new
        ]
        for key, values in new.items():
            was = old.get(key)
            if was is None:
                lines.append(ChangeLine(kind, "add", values["cluster"], _label(kind, values)))
                continue
            details = tuple(
                f"{label}: {_shown(was[name])} → {_shown(values[name])}"
                for name, label in labels
                if was[name] != values[name]
            )
            if details:
                lines.append(
                    ChangeLine(kind, "change", values["cluster"], _label(kind, values), details)
                )
        order = {"add": 0, "change": 1, "remove": 2}
        changes[kind] = sorted(lines, key=lambda c: (order[c.action], c.cluster, c.label))
    return changes


async def _preview(bot: App, files: list[Path]) -> Preview:
    """Run the import in a transaction that is rolled back; compare before and after."""
    from bot.directory import import_directory, list_clusters

    async with bot.sessions() as session:
        before = _snapshot(await list_clusters(session))
        try:
            report = await import_directory(session, files)
            after = _snapshot(await list_clusters(session))
        finally:
            await session.rollback()
    return Preview(report, _diff(before, after), _digest(before))


def _safe_name(raw: str, taken: set[str], number: int) -> str:
    """A file name to keep on disk and quote in messages: no folders, no control characters."""
    name = unicodedata.normalize("NFC", raw.replace("\\", "/").rsplit("/", 1)[-1])
    name = "".join(ch for ch in name if ch.isprintable()).strip().lstrip(".")[-120:]
    suffix = Path(name).suffix.lower()
    if not Path(name).stem:
        name = f"tep-{number}{suffix}"
    base, n = name, 2
    while name.casefold() in taken:
        name = f"{Path(base).stem}-{n}{suffix}"
        n += 1
    taken.add(name.casefold())
    return name


def _prune_imports() -> None:
    """Forget previews nobody confirmed."""
    if not IMPORT_ROOT.is_dir():
        return
    cutoff = time.time() - IMPORT_TTL
    for folder in IMPORT_ROOT.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


async def _stage(uploads: list[UploadFile]) -> tuple[str, list[Path]]:
    """Keep the uploaded files in a private folder named by a random id."""
    if not uploads:
        raise InputError("Chưa chọn tệp nào để nhập.", field="files")
    if len(uploads) > MAX_IMPORT_FILES:
        raise InputError(
            "Chọn một tệp XLSX hoặc tối đa ba tệp CSV (cụm, công đoàn cơ sở, quản trị viên).",
            field="files",
        )
    _prune_imports()
    IMPORT_ROOT.mkdir(mode=0o700, parents=True, exist_ok=True)
    import_id = secrets.token_urlsafe(24)
    folder = IMPORT_ROOT / import_id
    folder.mkdir(mode=0o700)
    taken: set[str] = set()
    paths = []
    for number, upload in enumerate(uploads, start=1):
        data = await upload.read(MAX_IMPORT_BYTES + 1)
        await upload.close()
        name = _safe_name(upload.filename or "", taken, number)
        if len(data) > MAX_IMPORT_BYTES:
            shutil.rmtree(folder, ignore_errors=True)
            raise InputError(f"Tệp «{name}» lớn hơn 5 MB.", field="files")
        path = folder / name
        path.write_bytes(data)
        paths.append(path)
    return import_id, paths


def _staged(request: Request, sent_id: str) -> tuple[dict[str, Any], list[Path]]:
    """The preview this session is confirming, with its files; InputError when gone."""
    pending = request.session.get(IMPORT_KEY)
    gone = InputError("Bản xem trước đã hết hạn hoặc đã được dùng; hãy tải tệp lên lại.")
    if not isinstance(pending, dict) or not secrets.compare_digest(
        str(pending.get("id", "")), sent_id
    ):
        raise gone
    import_id = str(pending["id"])
    folder = IMPORT_ROOT / import_id
    fresh = time.time() - float(pending.get("at", 0)) < IMPORT_TTL
    if not IMPORT_ID.fullmatch(import_id) or not folder.is_dir() or not fresh:
        raise gone
    return pending, [folder / str(name) for name in pending.get("files", [])]


def _drop_import(request: Request) -> None:
    pending = request.session.pop(IMPORT_KEY, None)
    if isinstance(pending, dict) and IMPORT_ID.fullmatch(str(pending.get("id", ""))):
        shutil.rmtree(IMPORT_ROOT / str(pending["id"]), ignore_errors=True)


def _import_form(request: Request, error: str | None = None, status: int = 200) -> Response:
    context = {"stage": "form", "error": error, "max_files": MAX_IMPORT_FILES}
    return render(request, "cluster_import.html", context, status)


def _show_preview(
    request: Request, preview: Preview, import_id: str, names: list[str], note: str | None = None
) -> Response:
    return render(
        request,
        "cluster_import.html",
        {
            "stage": "preview",
            "report": preview.report,
            "changes": preview.changes,
            "kind_titles": KIND_TITLES,
            "shown": SHOWN_CHANGES,
            "import_id": import_id,
            "files": names,
            "note": note,
        },
    )


@page(ADMINISTER)
async def import_page(request: Request) -> Response:
    _drop_import(request)
    return _import_form(request)


@page(ADMINISTER)
async def import_upload(request: Request) -> Response:
    _drop_import(request)
    form = await request.form()
    uploads = [f for f in form.getlist("files") if isinstance(f, UploadFile) and f.filename]
    try:
        import_id, paths = await _stage(uploads)
    except InputError as exc:
        return _import_form(request, exc.message, 422)
    try:
        preview = await _preview(bot_of(request), paths)
    except InputError as exc:
        shutil.rmtree(paths[0].parent, ignore_errors=True)
        return _import_form(request, exc.message, 422)
    names = [p.name for p in paths]
    request.session[IMPORT_KEY] = {
        "id": import_id,
        "files": names,
        "digest": preview.digest,
        "at": time.time(),
    }
    return _show_preview(request, preview, import_id, names)


@page(ADMINISTER)
async def import_confirm(request: Request) -> Response:
    """Apply the previewed import in one transaction, if the directory is as it was."""
    from bot.directory import import_directory, list_clusters

    fields = await _form_text(request)
    if fields.get("action") == "cancel":
        _drop_import(request)
        flash(request, "Đã huỷ lần nhập; danh bạ giữ nguyên.")
        return RedirectResponse("/clusters", status_code=303)
    try:
        pending, paths = _staged(request, fields.get("import_id", ""))
    except InputError as exc:
        return _import_form(request, exc.message, 409)
    bot = bot_of(request)
    async with bot.sessions() as session:
        if _digest(_snapshot(await list_clusters(session))) != pending["digest"]:
            await session.rollback()
            preview = await _preview(bot, paths)
            request.session[IMPORT_KEY] = pending | {"digest": preview.digest, "at": time.time()}
            note = (
                "Danh bạ vừa được người khác sửa; đây là thay đổi tính lại, hãy xem rồi xác nhận."
            )
            return _show_preview(request, preview, str(pending["id"]), pending["files"], note)
        report = await import_directory(session, paths)
        session.add(
            AuditEntry(
                actor=_person(request).actor,
                action="clusters.import",
                detail={"files": pending["files"], "changes": _counts(report)},
            )
        )
        await session.commit()
    _drop_import(request)
    flash(request, "Đã nhập danh bạ cụm thi đua. " + " ".join(report.lines()))
    return RedirectResponse("/clusters", status_code=303)


def _counts(report: ImportReport) -> dict[str, dict[str, int]]:
    return {
        kind: {
            "added": c.added,
            "updated": c.updated,
            "removed": c.removed,
            "unchanged": c.unchanged,
        }
        for kind in KIND_TITLES
        for c in [getattr(report, kind)]
    }


# ==== Tài khoản ===================================================================================

FACEBOOK, ZALO = "facebook", "zalo"
ZALO_FLOW = "zalo_oauth"
CALLBACK_PATH = "/accounts/zalo/callback"
CONSENT_TTL = 600.0  # Zalo's code lives 10 minutes
PAGE_TOKEN = re.compile(r"[A-Za-z0-9_\-.|]{20,1000}")


def _cipher(bot: App, *, sandbox_ok: bool) -> Cipher:
    """The token cipher; without CDBOT_SECRET_KEY only sandbox tokens may be stored."""
    from bot.secrets import SANDBOX_KEY, Cipher

    key = reveal(bot.settings.secret_key)
    if key:
        return Cipher(key)
    if sandbox_ok:
        return Cipher(SANDBOX_KEY)  # sandbox tokens are not secret (bot.secrets)
    raise ConfigError("Cần đặt CDBOT_SECRET_KEY để mã được mã hoá trước khi lưu.")


async def _stored_tail(bot: App, key: str, *, sandbox_ok: bool) -> str | None:
    """The last characters of a stored token, when it can be decrypted here."""
    async with bot.sessions() as session:
        row = await session.get(Credential, key)
    if row is None:
        return None
    try:
        return _tail(_cipher(bot, sandbox_ok=sandbox_ok).decrypt(row.access_token))
    except ConfigError:
        return None


async def save_page_token(bot: App, token: str, *, actor: str) -> int:
    """Store the Facebook Page token encrypted (credentials row `facebook`); its version.

    Page tokens do not expire on a schedule and have no refresh token.
    """
    sealed = _cipher(bot, sandbox_ok=False).encrypt(token)
    async with bot.sessions.begin() as session:
        row = await session.get(Credential, FACEBOOK, with_for_update=True)
        if row is None:
            row = Credential(key=FACEBOOK, access_token=sealed, version=1)
            session.add(row)
        else:
            row.access_token = sealed
            row.refresh_token = None
            row.access_expires_at = row.refresh_expires_at = None
            row.version += 1
        session.add(
            AuditEntry(
                actor=actor,
                action="facebook.token",
                detail={"version": row.version, "token": _tail(token)},
            )
        )
    return row.version


def _zalo_sandboxed(bot: App) -> bool:
    """Whether Zalo consent goes to the built-in sandbox (sandbox mode, no Zalo app set)."""
    return bot.settings.sandbox and not bot.settings.zalo_configured


async def _accounts_context(request: Request) -> dict[str, Any]:
    from bot.credentials import credential_status

    bot = bot_of(request)
    s = bot.settings
    accounts = await bot.queue.accounts()
    env_token = reveal(s.facebook_page_token)
    return {
        "facebook": {
            "state": accounts.get(FACEBOOK),
            "stored": await credential_status(bot.sessions, FACEBOOK),
            "stored_tail": await _stored_tail(bot, FACEBOOK, sandbox_ok=False),
            "env_tail": _tail(env_token) if env_token else None,
            "page_id": s.facebook_page_id,
            "live": s.facebook_configured,
            "has_key": reveal(s.secret_key) is not None,
        },
        "zalo": {
            "state": accounts.get(ZALO),
            "stored": await credential_status(bot.sessions, ZALO),
            "tail": await _stored_tail(bot, ZALO, sandbox_ok=_zalo_sandboxed(bot)),
            "sandboxed": _zalo_sandboxed(bot),
            "callback": _redirect_uri(request),
            "app_id": s.zalo_app_id,
        },
        "now": datetime.now(UTC),
        "errors": {},
    }


@page(ADMINISTER)
async def accounts_page(request: Request) -> Response:
    return render(request, "accounts.html", await _accounts_context(request))


@page(ADMINISTER)
async def replace_page_token(request: Request) -> Response:
    token = (await _form_text(request)).get("page_token", "")
    bot = bot_of(request)
    try:
        if not token:
            raise InputError("Hãy dán mã truy cập Trang (Page access token).")
        if not PAGE_TOKEN.fullmatch(token):
            raise InputError(
                "Mã truy cập Trang không đúng dạng: chỉ gồm chữ, số và các dấu - _ . |, "
                "không có khoảng trắng, dài từ 20 ký tự."
            )
        version = await save_page_token(bot, token, actor=_person(request).actor)
    except (InputError, ConfigError) as exc:
        context = await _accounts_context(request)
        context["errors"] = {"page_token": exc.message}
        return render(request, "accounts.html", context, 422)
    await bot.queue.resume_account(FACEBOOK)
    flash(request, f"Đã lưu mã truy cập Trang mới ({_tail(token)}, phiên bản {version}).")
    return RedirectResponse("/accounts", status_code=303)


def _redirect_uri(request: Request) -> str:
    """Where Zalo sends the browser back: CDBOT_ZALO_REDIRECT_URI when it names this page."""
    configured = bot_of(request).settings.zalo_redirect_uri
    if configured and configured.rstrip("/").endswith(CALLBACK_PATH):
        return configured
    return str(request.base_url).rstrip("/") + CALLBACK_PATH


async def _oauth_url(request: Request) -> str:
    """Zalo's OAuth host, or the sandbox's (started here when none runs in this process)."""
    bot = bot_of(request)
    if not _zalo_sandboxed(bot):
        return bot.settings.zalo_oauth_url
    if bot.sandbox_url is not None:
        return bot.sandbox_url
    server = _console_sandbox(request)  # for the consent rehearsal; stopped by the callback
    return server.url if server.url else await asyncio.to_thread(server.start)


def _console_sandbox(request: Request) -> SandboxServer:
    from connectors.sandbox.server import SandboxServer

    server: SandboxServer | None = getattr(request.app.state, "org_sandbox", None)
    if server is None:
        server = SandboxServer()
        request.app.state.org_sandbox = server
    return server


async def _stop_console_sandbox(request: Request) -> None:
    server: SandboxServer | None = getattr(request.app.state, "org_sandbox", None)
    if server is not None and server.url is not None:
        await asyncio.to_thread(server.stop)


@page(ADMINISTER)
async def zalo_connect(request: Request) -> Response:
    """Start the consent flow: PKCE verifier and state in the session, then Zalo's page."""
    from connectors.tokens import new_pkce, permission_url

    bot = bot_of(request)
    _cipher(bot, sandbox_ok=_zalo_sandboxed(bot))  # no consent that could not be stored
    app_id, _ = _app_of(bot)
    oauth_url = await _oauth_url(request)
    verifier, challenge = new_pkce()
    state = secrets.token_urlsafe(16)
    redirect_uri = _redirect_uri(request)
    request.session[ZALO_FLOW] = {
        "state": state,
        "verifier": verifier,
        "redirect_uri": redirect_uri,
        "oauth_url": oauth_url,
        "at": time.time(),
    }
    url = permission_url(oauth_url, app_id, redirect_uri, challenge, state)
    return RedirectResponse(url, status_code=303)


@page(ADMINISTER)
async def zalo_callback(request: Request) -> Response:
    """Zalo sent the browser back: check the state, exchange the code, store the pair."""
    try:
        version, tail = await _finish_consent(request)
    except BotError as exc:
        flash(request, f"Chưa kết nối được Zalo OA: {exc.message}", "error")
        return RedirectResponse("/accounts", status_code=303)
    finally:
        request.session.pop(ZALO_FLOW, None)
        await _stop_console_sandbox(request)
    flash(request, f"Đã kết nối Zalo OA và lưu cặp mã đã mã hoá ({tail}, phiên bản {version}).")
    return RedirectResponse("/accounts", status_code=303)


async def _finish_consent(request: Request) -> tuple[int, str]:
    from bot.credentials import DbTokenStore
    from connectors.tokens import ZaloOAuthClient

    flow = request.session.get(ZALO_FLOW)
    params = request.query_params
    if not isinstance(flow, dict) or time.time() - float(flow.get("at", 0)) > CONSENT_TTL:
        raise InputError("lần kết nối này đã hết hạn, hãy bấm «Kết nối Zalo» lại.")
    if not secrets.compare_digest(params.get("state", ""), str(flow["state"])):
        raise InputError("địa chỉ trả về không thuộc lần kết nối này (state không khớp).")
    code = params.get("code", "").strip()
    if not code or any(ch.isspace() for ch in code):
        raise InputError("Zalo không trả mã cấp quyền (có thể người quản trị đã từ chối).")
    bot = bot_of(request)
    s = bot.settings
    cipher = _cipher(bot, sandbox_ok=_zalo_sandboxed(bot))
    app_id, app_secret = _app_of(bot)

    async def consent_needed(note: str) -> None:
        await bot.queue.pause_account(ZALO, seconds=None, needs_reauth=True, note=note)

    async with ZaloOAuthClient(
        oauth_url=str(flow["oauth_url"]),
        app_id=app_id,
        app_secret=app_secret,
        timeout=s.http_timeout_seconds,
    ) as oauth:
        pair = await oauth.exchange_code(code, str(flow["verifier"]), str(flow["redirect_uri"]))
        store = DbTokenStore(bot.sessions, cipher, oauth, on_consent_needed=consent_needed)
        version = await store.save(pair)
    await bot.queue.resume_account(ZALO)
    async with bot.sessions.begin() as session:
        session.add(
            AuditEntry(
                actor=_person(request).actor,
                action="zalo.connect",
                detail={
                    "version": version,
                    "token": _tail(pair.access_token),
                    "sandbox": _zalo_sandboxed(bot),
                },
            )
        )
    return version, _tail(pair.access_token)


def _app_of(bot: App) -> tuple[str, str]:
    from connectors.sandbox import SANDBOX_ZALO_APP_ID, SANDBOX_ZALO_APP_SECRET

    s = bot.settings
    if s.zalo_configured:
        return str(s.zalo_app_id), reveal(s.zalo_app_secret) or ""
    if _zalo_sandboxed(bot):
        return SANDBOX_ZALO_APP_ID, SANDBOX_ZALO_APP_SECRET
    raise ConfigError("Cần đặt CDBOT_ZALO_APP_ID và CDBOT_ZALO_APP_SECRET trước khi kết nối.")


# ==== Báo cáo ===================================================================================

MONTH = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")
MAX_MONTHS = 36
DEFAULT_MONTHS = 6
REPORTED = ("approved", "done")  # drafts and cancelled posts are not in a report
SENT = {"sent"}
FAILED = {"failed", "needs_human"}
HEADERS = ("Số bài", "Lượt gửi", "Đã gửi", "Không gửi được", "Đang chờ")
CHART_COLOURS = 4


@dataclass(frozen=True)
class Period:
    """Whole months, from the first of `first` to the end of `last` (local time)."""

    first: date
    last: date

    def months(self) -> list[date]:
        found, month = [], self.first
        while month <= self.last:
            found.append(month)
            month = _next_month(month)
        return found

    def bounds(self, tz: Any) -> tuple[datetime, datetime]:
        start = datetime.combine(self.first, datetime.min.time(), tz)
        return start, datetime.combine(_next_month(self.last), datetime.min.time(), tz)

    @property
    def label(self) -> str:
        return f"{self.first:%m/%Y} – {self.last:%m/%Y}"

    @property
    def slug(self) -> str:
        return f"{self.first:%Y-%m}_{self.last:%Y-%m}"


def _next_month(month: date) -> date:
    return _shift(month, 1)


def _shift(month: date, months: int) -> date:
    """The first of the month `months` after (or before, when negative) `month`."""
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _parse_period(raw_from: str, raw_to: str, today: date) -> tuple[Period, dict[str, str]]:
    """The asked period (six months when one end is left empty), or errors by field."""
    this_month = today.replace(day=1)
    errors: dict[str, str] = {}
    picked: dict[str, date] = {}
    for name, raw, label in (("from", raw_from, "Từ tháng"), ("to", raw_to, "Đến tháng")):
        found = MONTH.fullmatch(raw) if raw else None
        if raw and (found is None or not 2000 <= int(found[1]) <= 2100):
            errors[name] = f"{label} cần dạng năm-tháng, ví dụ {today:%Y-%m}."
        elif found is not None:
            picked[name] = date(int(found[1]), int(found[2]), 1)
    span = DEFAULT_MONTHS - 1
    if "from" in picked:
        last = picked.get("to", max(picked["from"], min(_shift(picked["from"], span), this_month)))
        period = Period(picked["from"], last)
    else:
        last = picked.get("to", this_month)
        period = Period(_shift(last, -span), last)
    if not errors and period.first > period.last:
        errors["to"] = "Đến tháng phải sau hoặc bằng Từ tháng."
    elif not errors and len(period.months()) > MAX_MONTHS:
        errors["to"] = f"Mỗi báo cáo tối đa {MAX_MONTHS} tháng."
    return period, errors


@dataclass
class Line:
    """One row of a breakdown: posts (distinct) and their deliveries by outcome."""

    label: str
    post_ids: set[int] = field(default_factory=set)
    deliveries: int = 0
    sent: int = 0
    failed: int = 0
    waiting: int = 0

    @property
    def posts(self) -> int:
        return len(self.post_ids)

    def count(self, post_id: int, status: str) -> None:
        """One delivery of `post_id`; a cancelled one counts for nothing."""
        if status == "cancelled":
            return
        self.post_ids.add(post_id)
        self.deliveries += 1
        if status in SENT:
            self.sent += 1
        elif status in FAILED:
            self.failed += 1
        else:
            self.waiting += 1

    def values(self) -> tuple[int, int, int, int, int]:
        return self.posts, self.deliveries, self.sent, self.failed, self.waiting


@dataclass(frozen=True)
class Reach:
    """How many of the clusters a post was sent to received it."""

    post_id: int
    when: datetime
    title: str
    kind: str
    category: str
    targeted: int
    reached: int

    @property
    def share(self) -> float:
        return self.reached / self.targeted if self.targeted else 0.0


@dataclass(frozen=True)
class Table:
    """A breakdown: its title, the name of its first column, its rows."""

    key: str
    title: str
    column: str
    lines: list[Line]


@dataclass
class Report:
    """Everything the reports page and its exports show for one period."""

    period: Period
    total: Line
    tables: list[Table]
    reach: list[Reach]
    months: list[tuple[date, dict[str, int]]]  # posts per category, for the chart
    per_post: dict[int, Line]

    @property
    def reached(self) -> tuple[int, int]:
        """(cluster deliveries that arrived, clusters targeted), over every post."""
        return sum(r.reached for r in self.reach), sum(r.targeted for r in self.reach)


async def build_report(bot: App, period: Period) -> Report:
    """Read the period's posts and deliveries and count them every way the office reports."""
    from bot.directory import list_clusters
    from bot.texts import CHANNEL
    from content.kinds import CATEGORIES, KINDS

    tz = bot.settings.tz
    start, end = period.bounds(tz)
    in_period = (Post.scheduled_at >= start, Post.scheduled_at < end, Post.status.in_(REPORTED))
    async with bot.sessions() as session:
        posts = list(
            (
                await session.execute(
                    select(Post.id, Post.scheduled_at, Post.title, Post.kind, Post.category)
                    .where(*in_period)
                    .order_by(Post.scheduled_at, Post.id)
                )
            ).all()
        )
        deliveries = list(
            (
                await session.execute(
                    select(
                        Delivery.post_id, Delivery.channel, Delivery.cluster_code, Delivery.status
                    )
                    .join(Post, Post.id == Delivery.post_id)
                    .where(*in_period)
                )
            ).all()
        )
        names = {c.code: c.name for c in await list_clusters(session)}
    month_of = {p.id: p.scheduled_at.astimezone(tz).date().replace(day=1) for p in posts}
    by_post: dict[int, list[Any]] = {p.id: [] for p in posts}
    for d in deliveries:
        by_post[d.post_id].append(d)

    total = Line("Tổng")
    months = {m: Line(f"{m:%m/%Y}") for m in period.months()}
    categories = {k: Line(v) for k, v in CATEGORIES.items()}
    kinds = {k: Line(v) for k, v in KINDS.items()}
    channels = {k: Line(v) for k, v in CHANNEL.items()}
    clusters = {code: Line(f"{name} ({code})") for code, name in sorted(names.items())}
    per_month: dict[date, dict[str, int]] = {m: dict.fromkeys(CATEGORIES, 0) for m in months}
    reach: list[Reach] = []
    per_post: dict[int, Line] = {}
    for p in posts:
        per_post[p.id] = Line(p.title)
        rows = [months[month_of[p.id]], per_post[p.id]]
        rows.append(categories.setdefault(p.category, Line(p.category)))
        rows.append(kinds.setdefault(p.kind, Line(p.kind)))
        per_month[month_of[p.id]][p.category] = per_month[month_of[p.id]].get(p.category, 0) + 1
        for line in (total, *rows):
            line.post_ids.add(p.id)
        for d in by_post[p.id]:
            for line in (total, *rows):
                line.count(p.id, d.status)
            channels.setdefault(d.channel, Line(d.channel)).count(p.id, d.status)
            if d.cluster_code:
                clusters.setdefault(d.cluster_code, Line(d.cluster_code)).count(p.id, d.status)
        reach += _reach(p, by_post[p.id])
    tables = [
        Table("months", "Theo tháng", "Tháng", list(months.values())),
        Table("categories", "Theo nhóm nội dung", "Nhóm nội dung", list(categories.values())),
        Table("kinds", "Theo loại bài", "Loại bài", list(kinds.values())),
        Table("channels", "Theo kênh", "Kênh", [c for c in channels.values() if c.posts]),
        Table("clusters", "Theo cụm thi đua", "Cụm thi đua", list(clusters.values())),
    ]
    return Report(period, total, tables, reach, sorted(per_month.items()), per_post)


def _reach(post: Any, deliveries: list[Any]) -> list[Reach]:
    live = [d for d in deliveries if d.cluster_code and d.status != "cancelled"]
    targeted = {d.cluster_code for d in live}
    if not targeted:
        return []
    reached = {d.cluster_code for d in live if d.status in SENT}
    return [
        Reach(
            post.id,
            post.scheduled_at,
            post.title,
            post.kind,
            post.category,
            len(targeted),
            len(reached),
        )
    ]


@dataclass(frozen=True)
class Bar:
    """A rectangle of the chart: x and width in % of the chart's width, y and height in px."""

    x: float
    y: float
    width: float
    height: float
    colour: int
    title: str


CHART_HEIGHT, CHART_TOP, CHART_BOTTOM, CHART_LEFT = 240.0, 14.0, 26.0, 6.0  # px, px, px, %


def _chart(report: Report) -> dict[str, Any]:
    """Stacked bars of posts per month by plan category, as SVG geometry.

    Horizontal positions are percentages, so the chart fills any width while its text
    keeps its size (a scaled viewBox would shrink the labels on a phone).
    """
    from content.kinds import CATEGORIES

    order = list(CATEGORIES)
    most = max((sum(counts.values()) for _, counts in report.months), default=0)
    scale_top = max(4, -(-most // 4) * 4)  # a multiple of 4, so the ticks are whole
    baseline = CHART_HEIGHT - CHART_BOTTOM
    plot_h = baseline - CHART_TOP
    slot = (100 - CHART_LEFT) / max(1, len(report.months))
    bar_w = slot * 0.6
    step = -(-len(report.months) // 12)  # at most 12 month labels; half of them on a phone
    bars, labels = [], []
    for i, (month, counts) in enumerate(report.months):
        x = CHART_LEFT + i * slot + (slot - bar_w) / 2
        y = baseline
        for n, category in enumerate(order + [k for k in counts if k not in order]):
            count = counts.get(category, 0)
            if count:
                h = plot_h * count / scale_top
                y -= h
                name = CATEGORIES.get(category, category)
                title = f"{month:%m/%Y}, {name}: {count} bài"
                bars.append(Bar(x, y, bar_w, h, n % CHART_COLOURS, title))
        if i % step == 0:
            labels.append((x + bar_w / 2, f"{month:%m/%y}", (i // step) % 2 == 1))
    summary = "; ".join(
        f"{month:%m/%Y}: {sum(counts.values())} bài" for month, counts in report.months
    )
    return {
        "height": CHART_HEIGHT,
        "left": CHART_LEFT,
        "baseline": baseline,
        "bars": bars,
        "labels": labels,
        "ticks": [(baseline - plot_h * t / 4, scale_top * t // 4) for t in range(5)],
        "legend": [(i % CHART_COLOURS, name) for i, name in enumerate(CATEGORIES.values())],
        "desc": f"Số bài đã duyệt mỗi tháng, chia theo nhóm nội dung. {summary}.",
    }


def _period_of(request: Request) -> tuple[Period, dict[str, str], dict[str, str]]:
    bot = bot_of(request)
    raw = {k: request.query_params.get(k, "").strip() for k in ("from", "to")}
    today = datetime.now(bot.settings.tz).date()
    period, errors = _parse_period(raw["from"], raw["to"], today)
    return period, errors, raw


@page(VIEW)
async def reports_page(request: Request) -> Response:
    period, errors, raw = _period_of(request)
    context: dict[str, Any] = {"errors": errors, "values": raw, "period": period}
    if errors:
        return render(request, "reports.html", context, 422)
    report = await build_report(bot_of(request), period)
    query = f"from={period.first:%Y-%m}&to={period.last:%Y-%m}"
    context |= {
        "values": {"from": f"{period.first:%Y-%m}", "to": f"{period.last:%Y-%m}"},
        "report": report,
        "chart": _chart(report),
        "headers": HEADERS,
        "query": query,
        "kind_names": _names()[0],
        "category_names": _names()[1],
    }
    return render(request, "reports.html", context)


def _names() -> tuple[dict[str, str], dict[str, str]]:
    from content.kinds import CATEGORIES, KINDS

    return KINDS, CATEGORIES


async def _report_for_export(request: Request) -> Report:
    period, errors, _ = _period_of(request)
    if errors:
        raise InputError(" ".join(errors.values()))
    return await build_report(bot_of(request), period)


def _download(body: bytes, media_type: str, filename: str) -> Response:
    disposition = f"attachment; filename=\"{filename}\"; filename*=UTF-8''{quote(filename)}"
    return Response(body, media_type=media_type, headers={"content-disposition": disposition})


def _cell(value: Any) -> Any:
    """A CSV value: text that Excel would run as a formula is quoted."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _append(sheet: Any, values: Iterable[Any]) -> None:
    """Add a row; text stays text even when it starts with «=» (never a formula)."""
    sheet.append(list(values))
    for cell in sheet[sheet.max_row]:
        if isinstance(cell.value, str):
            cell.data_type = "s"


def _reach_rows(report: Report, tz: Any) -> Iterator[list[Any]]:
    kinds, categories = _names()
    for r in report.reach:
        yield [
            r.when.astimezone(tz).strftime("%d/%m/%Y"),
            r.title,
            kinds.get(r.kind, r.kind),
            categories.get(r.category, r.category),
            r.targeted,
            r.reached,
            round(r.share, 4),
        ]


REACH_HEADERS = (
    "Ngày",
    "Tiêu đề",
    "Loại bài",
    "Nhóm nội dung",
    "Số cụm được gửi",
    "Số cụm đã nhận",
    "Tỉ lệ cụm nhận được",
)


@page(VIEW)
async def export_xlsx(request: Request) -> Response:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    bot = bot_of(request)
    report = await _report_for_export(request)
    book = Workbook()
    summary = book.active
    summary.title = "Tổng hợp"
    reached, targeted = report.reached
    rows: list[list[Any]] = [
        ["Báo cáo truyền thông", bot.org.name],
        ["Kỳ báo cáo", report.period.label],
        ["Lập lúc", datetime.now(bot.settings.tz).strftime("%d/%m/%Y %H:%M")],
        [],
        ["Chỉ số", "Giá trị"],
        *[[h, v] for h, v in zip(HEADERS, report.total.values(), strict=True)],
        ["Lượt cụm được gửi", targeted],
        ["Lượt cụm đã nhận", reached],
        ["Tỉ lệ cụm nhận được", round(reached / targeted, 4) if targeted else None],
    ]
    for row in rows:
        _append(summary, row)
    summary["A1"].font = summary["A5"].font = summary["B5"].font = Font(bold=True)
    summary.cell(row=summary.max_row, column=2).number_format = "0.0%"
    _widths(summary, (28, 48))
    for table in report.tables:
        sheet = book.create_sheet(table.title)
        _append(sheet, [table.column, *HEADERS])
        for line in table.lines:
            _append(sheet, [line.label, *line.values()])
        _header_row(sheet, Font(bold=True))
        _widths(sheet, (44, 10, 11, 10, 16, 11))
    sheet = book.create_sheet("Từng bài")
    _append(sheet, REACH_HEADERS)
    for row in _reach_rows(report, bot.settings.tz):
        _append(sheet, row)
        sheet.cell(row=sheet.max_row, column=7).number_format = "0.0%"
    _header_row(sheet, Font(bold=True))
    _widths(sheet, (12, 60, 24, 20, 16, 16, 20))
    buffer = io.BytesIO()
    book.save(buffer)
    media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return _download(buffer.getvalue(), media, f"bao-cao-truyen-thong_{report.period.slug}.xlsx")


def _header_row(sheet: Any, font: Any) -> None:
    for cell in sheet[1]:
        cell.font = font
    sheet.freeze_panes = "A2"


def _widths(sheet: Any, widths: Iterable[int]) -> None:
    from openpyxl.utils import get_column_letter

    for n, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(n)].width = width


CSV_HEADERS = ("Bảng", "Mục", *HEADERS, *REACH_HEADERS[4:])


@page(VIEW)
async def export_csv(request: Request) -> Response:
    bot = bot_of(request)
    report = await _report_for_export(request)
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(CSV_HEADERS)
    reached, targeted = report.reached
    share = f"{100 * reached / targeted:.1f}" if targeted else ""
    writer.writerow(["Tổng", report.period.label, *report.total.values(), targeted, reached, share])
    for table in report.tables:
        for line in table.lines:
            writer.writerow([table.title, _cell(line.label), *line.values(), "", "", ""])
    for r, row in zip(report.reach, _reach_rows(report, bot.settings.tz), strict=True):
        label = _cell(f"{row[0]} {r.title}")
        counts = report.per_post[r.post_id].values()
        writer.writerow(["Từng bài", label, *counts, r.targeted, r.reached, f"{100 * r.share:.1f}"])
    body = "\ufeff" + text.getvalue()  # the BOM tells Excel the file is UTF-8
    filename = f"bao-cao-truyen-thong_{report.period.slug}.csv"
    return _download(body.encode("utf-8"), "text/csv; charset=utf-8", filename)


# ==== Người dùng ==================================================================================

USER_FIELDS = {"Tên đăng nhập": "username", "Mật khẩu": "password", "Vai trò": "role"}
MAX_NAME = 255


async def _users_context(request: Request) -> dict[str, Any]:
    users = await users_of(request).all()
    async with bot_of(request).sessions() as session:
        logins = {
            row.username: row.last_login_at
            for row in await session.execute(select(User.username, User.last_login_at))
        }
        counted = await session.execute(
            select(User.username, func.count(ApiToken.id))
            .join(ApiToken, ApiToken.user_id == User.id)
            .where(ApiToken.revoked_at.is_(None))
            .group_by(User.username)
        )
        tokens = {name: int(n) for name, n in counted}
    rows = [
        {
            "person": p,
            "disabled": disabled,
            "last_login": logins.get(p.username),
            "tokens": tokens.get(p.username, 0),
        }
        for p, disabled in users
    ]
    return {
        "rows": rows,
        "me": _person(request).username,
        "add": {"data": {"role": "editor"}, "errors": {}},
        "row_errors": {},
        "new_token": None,
    }


@page(ADMINISTER)
async def users_page(request: Request) -> Response:
    return render(request, "users.html", await _users_context(request))


@page(ADMINISTER)
async def add_user(request: Request) -> Response:
    fields = await _form_text(request)
    try:
        name = fields.get("display_name", "")
        if len(name) > MAX_NAME:
            raise InputError(f"Họ tên dài quá {MAX_NAME} ký tự.", field="display_name")
        person = await users_of(request).add(
            fields.get("username", ""),
            fields.get("password", ""),
            fields.get("role", ""),
            display_name=name,
            actor=_person(request).actor,
        )
    except InputError as exc:
        context = await _users_context(request)
        values = {k: v for k, v in fields.items() if k in ("username", "display_name", "role")}
        context["add"] = {"data": values, "errors": {_field(exc): exc.message}}
        return render(request, "users.html", context, 422)
    flash(request, f"Đã thêm người dùng «{person.username}».")
    return RedirectResponse("/users", status_code=303)


def _field(exc: InputError) -> str:
    return USER_FIELDS.get(exc.field or "", exc.field or "form")


async def _row_refused(request: Request, username: str, name: str, message: str) -> Response:
    context = await _users_context(request)
    context["row_errors"] = {username: {name: message}}
    return render(request, "users.html", context, 422)


@page(ADMINISTER)
async def change_role(request: Request) -> Response:
    username = request.path_params["username"]
    role = (await _form_text(request)).get("role", "")
    if username == _person(request).username and role != "admin":
        message = "Bạn không thể tự hạ vai trò của mình; nhờ một quản trị khác làm việc này."
        return await _row_refused(request, username, "role", message)
    try:
        await users_of(request).update(username, role=role, actor=_person(request).actor)
    except InputError as exc:
        return await _row_refused(request, username, "role", exc.message)
    flash(request, f"Đã đổi vai trò của «{username}».")
    return RedirectResponse("/users", status_code=303)


@page(ADMINISTER)
async def change_state(request: Request) -> Response:
    username = request.path_params["username"]
    action = (await _form_text(request)).get("action", "")
    if action not in ("disable", "enable"):
        return await _row_refused(request, username, "state", "Chọn khoá hoặc mở khoá.")
    if username == _person(request).username:
        message = "Bạn không thể tự khoá tài khoản của mình."
        return await _row_refused(request, username, "state", message)
    try:
        await users_of(request).update(
            username, disabled=action == "disable", actor=_person(request).actor
        )
    except InputError as exc:
        return await _row_refused(request, username, "state", exc.message)
    done = "Đã khoá" if action == "disable" else "Đã mở khoá"
    flash(request, f"{done} tài khoản «{username}».")
    return RedirectResponse("/users", status_code=303)


@page(ADMINISTER)
async def change_password(request: Request) -> Response:
    username = request.path_params["username"]
    password = (await _form_text(request)).get("password", "")
    try:
        await users_of(request).update(username, password=password, actor=_person(request).actor)
    except InputError as exc:
        return await _row_refused(request, username, "password", exc.message)
    flash(request, f"Đã đặt mật khẩu mới cho «{username}».")
    return RedirectResponse("/users", status_code=303)


@page(ADMINISTER)
async def new_token(request: Request) -> Response:
    """Make an API token and show it once, in this answer only (never in the session)."""
    username = request.path_params["username"]
    label = (await _form_text(request)).get("name", "") or "API"
    if len(label) > MAX_NAME:
        return await _row_refused(request, username, "token", "Tên mã dài quá 255 ký tự.")
    try:
        token = await users_of(request).new_token(username, label, actor=_person(request).actor)
    except InputError as exc:
        return await _row_refused(request, username, "token", exc.message)
    context = await _users_context(request)
    context["new_token"] = {"username": username, "name": label, "token": token}
    response = render(request, "users.html", context)
    response.headers["cache-control"] = "no-store"
    return response


routes: list[BaseRoute] = [
    Route("/clusters", clusters_page),
    Route("/clusters/groups", check_groups, methods=["POST"]),
    Route("/clusters/import", import_page, methods=["GET"]),
    Route("/clusters/import", import_upload, methods=["POST"]),
    Route("/clusters/import/confirm", import_confirm, methods=["POST"]),
    Route("/accounts", accounts_page),
    Route("/accounts/facebook", replace_page_token, methods=["POST"]),
    Route("/accounts/zalo/connect", zalo_connect, methods=["POST"]),
    Route(CALLBACK_PATH, zalo_callback),
    Route("/reports", reports_page),
    Route("/reports/export.xlsx", export_xlsx),
    Route("/reports/export.csv", export_csv),
    Route("/users", users_page, methods=["GET"]),
    Route("/users", add_user, methods=["POST"]),
    Route("/users/{username}/role", change_role, methods=["POST"]),
    Route("/users/{username}/state", change_state, methods=["POST"]),
    Route("/users/{username}/password", change_password, methods=["POST"]),
    Route("/users/{username}/token", new_token, methods=["POST"]),
]

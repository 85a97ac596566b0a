"""The media officer's web console: server-rendered pages over the same queue as the CLI.

`create_app` builds a Starlette application for one `App`. Every route is wrapped by
`page` (HTML, session cookie, CSRF on every form) or `api` (JSON, bearer token), which
names the one permission it needs; the security tests walk the routing table with it.
Pages live in the `bot.web.pages_*` modules, each exporting `routes`.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from bot.errors import BotError, ConfigError
from bot.web.auth import ADMINISTER, APPROVE, ROLE_NAMES, VIEW, WRITE, LoginThrottle, Person, Users

if TYPE_CHECKING:
    from bot.app import App
    from bot.settings import Settings

HERE = Path(__file__).resolve().parent
SESSION_COOKIE = "cdbot_session"
SESSION_MAX_AGE = 12 * 3600  # a working day; then sign in again
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
Handler = Callable[[Request], Awaitable[Response]]

# The menu: (path, label, permission). A person sees the entries their role allows.
MENU = [
    ("/", "Tổng quan", VIEW),
    ("/calendar", "Lịch", VIEW),
    ("/compose", "Soạn bài", WRITE),
    ("/approvals", "Chờ duyệt", APPROVE),
    ("/posts", "Bài viết", VIEW),
    ("/clusters", "Cụm thi đua", VIEW),
    ("/accounts", "Tài khoản", ADMINISTER),
    ("/reports", "Báo cáo", VIEW),
    ("/users", "Người dùng", ADMINISTER),
]


def session_key(secret: str) -> str:
    """The cookie-signing key, derived from CDBOT_SECRET_KEY (never the key itself)."""
    return hashlib.sha256(b"congdoan-bot web session v1\0" + secret.encode("utf-8")).hexdigest()


_PROCESS_KEY = secrets.token_urlsafe(32)


def console_secret(settings: Settings) -> str:
    """What signs the session cookies: CDBOT_SECRET_KEY, or in the sandbox a per-process key."""
    from bot.settings import reveal

    key = reveal(settings.secret_key)
    if key:
        return key
    if settings.sandbox:
        return _PROCESS_KEY  # sessions end when the process does: fine for a rehearsal
    raise ConfigError("Cần đặt CDBOT_SECRET_KEY để chạy bảng điều khiển web.")


templates = Jinja2Templates(directory=str(HERE / "templates"))


def _local(moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
    return moment.astimezone(_tz()).strftime(fmt) if moment else "—"


def _tz() -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Ho_Chi_Minh")


def _texts() -> dict[str, Any]:
    from bot.texts import CHANNEL, DELIVERY_STATUS, POST_STATUS
    from content.kinds import KINDS

    return {
        "ROLE_NAMES": {r.value: name for r, name in ROLE_NAMES.items()},
        "STATUS_NAMES": POST_STATUS,
        "DELIVERY_NAMES": DELIVERY_STATUS,
        "CHANNEL_NAMES": CHANNEL,
        "KIND_NAMES": KINDS,
    }


templates.env.filters["local"] = _local
templates.env.globals.update(_texts())


def bot_of(request: Request) -> App:
    app: App = request.app.state.bot
    return app


def users_of(request: Request) -> Users:
    users: Users = request.app.state.users
    return users


def csrf_token(request: Request) -> str:
    """This session's CSRF token (made on first use)."""
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def flash(request: Request, message: str, kind: str = "ok") -> None:
    """A one-time message shown on the next page."""
    request.session.setdefault("flash", []).append([kind, message])


def render(
    request: Request, template: str, context: dict[str, Any] | None = None, status: int = 200
) -> HTMLResponse:
    """A page in the console's layout, with the person, the menu and the CSRF token."""
    person: Person | None = getattr(request.state, "person", None)
    bot = bot_of(request)
    base = {
        "person": person,
        "menu": [(p, label) for p, label, need in MENU if person and person.may(need)],
        "csrf": csrf_token(request),
        "flashes": request.session.pop("flash", []),
        "org_name": bot.org.short_name,
        "sandbox": bot.settings.sandbox and not bot.settings.facebook_configured,
        "path": request.url.path,
    }
    return templates.TemplateResponse(request, template, base | (context or {}), status_code=status)


async def _form(request: Request) -> FormData:
    return await request.form(max_files=10, max_fields=200)


def page(permission: str) -> Callable[[Handler], Handler]:
    """A console page: signed in, allowed, and with a valid CSRF token on every form."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request) -> Response:
            person = await _signed_in(request)
            if person is None:
                if request.method in UNSAFE:
                    return _forbidden(request, "Phiên đăng nhập đã hết; hãy đăng nhập lại.")
                target = quote(
                    request.url.path + (f"?{request.url.query}" if request.url.query else "")
                )
                return RedirectResponse(f"/login?next={target}", status_code=303)
            request.state.person = person
            if not person.may(permission):
                return _forbidden(request, "Vai trò của bạn không được làm việc này.")
            if request.method in UNSAFE and not await _csrf_ok(request):
                return _forbidden(request, "Biểu mẫu đã cũ hoặc không hợp lệ; hãy tải lại trang.")
            try:
                return await handler(request)
            except BotError as exc:
                flash(request, exc.message, "error")
                return RedirectResponse(_back(request), status_code=303)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return wrap


def api(permission: str) -> Callable[[Handler], Handler]:
    """A JSON API route: a bearer token (or the console's session with its CSRF header)."""

    def wrap(handler: Handler) -> Handler:
        @wraps(handler)
        async def guarded(request: Request) -> Response:
            header = request.headers.get("authorization", "")
            person: Person | None
            if header.lower().startswith("bearer "):
                person = await users_of(request).by_token(header[7:].strip())
            else:
                person = await _signed_in(request)
                if person is not None and request.method in UNSAFE:
                    sent = request.headers.get("x-csrf-token", "")
                    if not secrets.compare_digest(sent, str(request.session.get("csrf", ""))):
                        person = None
            if person is None:
                return JSONResponse({"error": "Cần đăng nhập hoặc mã API hợp lệ."}, status_code=401)
            request.state.person = person
            if not person.may(permission):
                return JSONResponse({"error": "Vai trò không được làm việc này."}, status_code=403)
            try:
                return await handler(request)
            except BotError as exc:
                body = {"error": exc.message, "field": getattr(exc, "field", None)}
                return JSONResponse(body, status_code=422)

        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return wrap


async def _signed_in(request: Request) -> Person | None:
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    return await users_of(request).get(uid)


async def _csrf_ok(request: Request) -> bool:
    expected = str(request.session.get("csrf", ""))
    sent = request.headers.get("x-csrf-token") or str((await _form(request)).get("csrf_token", ""))
    return bool(expected) and secrets.compare_digest(sent, expected)


def _forbidden(request: Request, message: str) -> Response:
    return render(request, "error.html", {"message": message}, status=403)


def _back(request: Request) -> str:
    """Where to go after a refused action: the page it came from, on this site only."""
    referer = urlsplit(request.headers.get("referer", ""))
    return referer.path if referer.path.startswith("/") and not referer.netloc.strip() else "/"


def safe_next(target: str | None) -> str:
    """A local path to return to after sign-in (never another site)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


# ---- sign in and out -------------------------------------------------------------------------


async def login(request: Request) -> Response:
    if request.method == "GET":
        return render(request, "login.html", {"next": safe_next(request.query_params.get("next"))})
    form = await _form(request)
    expected = str(request.session.get("csrf", ""))
    if not expected or not secrets.compare_digest(str(form.get("csrf_token", "")), expected):
        return _forbidden(request, "Biểu mẫu đã cũ; hãy tải lại trang đăng nhập.")
    username, password = str(form.get("username", "")), str(form.get("password", ""))
    address = request.client.host if request.client else "?"
    throttle: LoginThrottle = request.app.state.throttle
    context = {"next": safe_next(str(form.get("next", ""))), "username": username}
    if throttle.blocked(username, address):
        message = "Đăng nhập sai quá nhiều lần; hãy thử lại sau 15 phút."
        return render(request, "login.html", context | {"error": message}, status=429)
    person = await users_of(request).authenticate(username, password)
    if person is None:
        throttle.failed(username, address)
        message = "Tên đăng nhập hoặc mật khẩu không đúng."
        return render(request, "login.html", context | {"error": message}, status=401)
    throttle.succeeded(username)
    request.session.clear()  # a new session on sign-in: no fixation
    request.session["uid"] = person.id
    csrf_token(request)
    return RedirectResponse(context["next"], status_code=303)


async def logout(request: Request) -> Response:
    form = await _form(request)
    expected = str(request.session.get("csrf", ""))
    if expected and secrets.compare_digest(str(form.get("csrf_token", "")), expected):
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


async def health(request: Request) -> Response:
    return JSONResponse({"ok": True})


# ---- the application ---------------------------------------------------------------------------


def create_app(bot: App, *, secret: str, https_only: bool = False) -> Starlette:
    """The console for `bot`; `secret` signs the session cookies."""
    from bot.web import pages_api, pages_main, pages_org, pages_posts

    routes: list[BaseRoute] = [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/healthz", health),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    for module in (pages_main, pages_posts, pages_org, pages_api):
        routes += module.routes
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(
                SessionMiddleware,
                secret_key=session_key(secret),
                session_cookie=SESSION_COOKIE,
                max_age=SESSION_MAX_AGE,
                same_site="lax",
                https_only=https_only,
            )
        ],
    )
    app.state.bot = bot
    app.state.users = Users(bot.sessions)
    app.state.throttle = LoginThrottle()
    return app

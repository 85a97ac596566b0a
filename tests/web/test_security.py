"""Who may do what: every route against every role, CSRF, forged sessions, throttling.

The routing table is walked, not listed here, so a page added later is checked too.
"""

from __future__ import annotations

import re

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from bot.db.models import Post, Role
from bot.web.app import SESSION_COOKIE
from bot.web.auth import PERMISSIONS
from tests.web.conftest import PASSWORD, ROLES, Client, csrf_of, sign_in

OPEN = {"/login", "/logout", "/healthz", "/api/v1/openapi.json"}  # reachable without signing in


def guarded_routes(console: Starlette) -> list[tuple[str, str, str]]:
    """(path, method, permission) for every route that names a permission."""
    found = []
    for route in console.routes:
        if not isinstance(route, Route) or route.path in OPEN:
            continue
        permission = getattr(route.endpoint, "permission", None)
        assert permission, f"{route.path} names no permission"
        methods = sorted((route.methods or {"GET"}) - {"HEAD"})
        found += [(route.path, method, permission) for method in methods]
    return found


def concrete(path: str, post: Post) -> str:
    """A route's path with real values in its parameters."""
    values = {"post_id": str(post.id), "code": "HCSN", "delivery_id": "1", "username": "viewer"}
    return re.sub(r"\{(\w+)(:\w+)?\}", lambda m: values.get(m.group(1), "1"), path)


async def test_every_route_allows_exactly_the_roles_it_should(
    console: Starlette, client: Client, draft_post: Post
) -> None:
    routes = guarded_routes(console)
    assert routes
    for role in ROLES:
        http = await client(role)
        token = await csrf_of(http, "/")
        allowed = PERMISSIONS[Role(role)]
        for path, method, permission in routes:
            url = concrete(path, draft_post)
            headers = {"x-csrf-token": token}
            response = await http.request(method, url, headers=headers, data={"csrf_token": token})
            if permission in allowed:
                assert response.status_code not in (401, 403), (role, method, url)
            else:
                assert response.status_code in (401, 403), (role, method, url, response.status_code)


async def test_signed_out_visitors_are_sent_to_sign_in(
    console: Starlette, client: Client, draft_post: Post
) -> None:
    http = await client("anonymous")
    for path, method, _ in guarded_routes(console):
        url = concrete(path, draft_post)
        response = await http.request(method, url)
        if path.startswith("/api/"):
            assert response.status_code == 401, url
        elif method == "GET":
            assert response.status_code == 303, url
            assert response.headers["location"].startswith("/login?next=")
        else:
            assert response.status_code == 403, url


async def test_a_form_without_its_csrf_token_is_refused(
    console: Starlette, client: Client, draft_post: Post
) -> None:
    http = await client("admin")
    for path, method, _ in guarded_routes(console):
        if method == "GET" or path.startswith("/api/"):
            continue
        response = await http.request(method, concrete(path, draft_post), data={"x": "1"})
        assert response.status_code == 403, path
    bad = await http.post("/logout", data={"csrf_token": "forged"})
    assert bad.status_code == 303
    assert (await http.get("/")).status_code == 200  # a forged logout did not sign anyone out


async def test_a_forged_or_tampered_session_cookie_is_refused(client: Client) -> None:
    http = await client("admin")
    cookie = http.cookies[SESSION_COOKIE]
    for forged in (cookie[:-4] + "AAAA", "eyJ1aWQiOiAxfQ==.forged.signature", ""):
        stranger = httpx.AsyncClient(transport=http._transport, base_url="http://console.test")
        stranger.cookies.set(SESSION_COOKIE, forged)
        response = await stranger.get("/")
        assert response.status_code == 303, forged
        await stranger.aclose()


async def test_wrong_passwords_are_throttled(client: Client) -> None:
    http = await client("anonymous")
    for _ in range(5):
        response = await sign_in(http, "editor", "sai-mat-khau-roi")
        assert response.status_code == 401
        assert "không đúng" in response.text
    blocked = await sign_in(http, "editor", PASSWORD)  # even the right one, for a while
    assert blocked.status_code == 429
    assert "quá nhiều lần" in blocked.text


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
async def test_sign_in_never_sends_a_person_to_another_site(client: Client, target: str) -> None:
    http = await client("anonymous")
    token = await csrf_of(http)
    data = {"csrf_token": token, "username": "viewer", "password": PASSWORD, "next": target}
    response = await http.post("/login", data=data)
    assert response.status_code == 303
    assert response.headers["location"] == "/"

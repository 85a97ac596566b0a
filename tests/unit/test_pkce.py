"""Zalo OA consent: PKCE (RFC 7636 S256), the permission URL, the pasted code, and how
the token client reads the token endpoint's answers.

The exchange runs against the sandbox app in-process (httpx's ASGI transport); the
integration tests cover the same endpoint over real HTTP.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from bot.cli.zalo import code_from
from bot.errors import InputError
from connectors.base import AuthExpired, Unavailable
from connectors.sandbox import (
    SANDBOX_ZALO_APP_ID,
    SANDBOX_ZALO_APP_SECRET,
    SandboxState,
    create_app,
)
from connectors.tokens import ZaloOAuthClient, new_pkce, permission_url, pkce_challenge

# RFC 7636 appendix B.
RFC_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")
ISSUED = datetime(2026, 11, 30, 5, 0, tzinfo=UTC)


def test_challenge_matches_rfc_7636_appendix_b() -> None:
    assert pkce_challenge(RFC_VERIFIER) == RFC_CHALLENGE


def test_new_pair_is_a_43_character_verifier_and_its_s256_challenge() -> None:
    verifier, challenge = new_pkce()
    assert len(verifier) == 43
    assert UNRESERVED.fullmatch(verifier)
    assert challenge == pkce_challenge(verifier)
    assert len(challenge) == 43
    assert "=" not in challenge


def test_each_pair_is_new() -> None:
    assert len({new_pkce()[0] for _ in range(20)}) == 20


def test_permission_url_carries_the_four_parameters_encoded() -> None:
    redirect = "https://congdoan.example.vn/zalo/callback?from=bot&x=1"
    url = permission_url(
        "https://oauth.zaloapp.com/", "2000000000000000001", redirect, RFC_CHALLENGE, "st-1"
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "oauth.zaloapp.com",
        "/v4/oa/permission",
    )
    assert parse_qs(parts.query, strict_parsing=True) == {
        "app_id": ["2000000000000000001"],
        "redirect_uri": [redirect],
        "code_challenge": [RFC_CHALLENGE],
        "state": ["st-1"],
    }
    assert "redirect_uri=https%3A%2F%2Fcongdoan.example.vn%2Fzalo%2Fcallback%3Ffrom%3Dbot" in url


def test_code_is_read_from_the_pasted_code_or_the_whole_redirect() -> None:
    assert code_from("  abc123 ", "st-1") == "abc123"
    assert code_from("https://cd.example.vn/cb?code=abc123&oa_id=9&state=st-1", "st-1") == "abc123"
    assert code_from("https://cd.example.vn/cb?code=abc123", "st-1") == "abc123"
    with pytest.raises(InputError, match="state"):
        code_from("https://cd.example.vn/cb?code=abc123&state=other", "st-1")
    for empty in ("", "https://cd.example.vn/cb?code=&state=st-1"):
        with pytest.raises(InputError):
            code_from(empty, "st-1")


async def test_exchange_with_the_verifier_of_the_registered_challenge() -> None:
    state = SandboxState()
    oauth = ZaloOAuthClient(
        oauth_url="http://sandbox",
        app_id=SANDBOX_ZALO_APP_ID,
        app_secret=SANDBOX_ZALO_APP_SECRET,
        transport=httpx.ASGITransport(app=create_app(state)),
        clock=lambda: ISSUED,
    )
    verifier, challenge = new_pkce()
    state.register_auth_code("code-1", challenge)
    pair = await oauth.exchange_code("code-1", verifier, "https://cd.example.vn/cb")
    assert state.zalo_access_tokens[pair.access_token] is not None
    assert state.zalo_refresh_tokens[pair.refresh_token] == "unused"
    # "expires_in": "90000" is a string of seconds; no refresh lifetime given: 90 days.
    assert pair.access_expires_at == ISSUED + timedelta(seconds=90000)
    assert pair.refresh_expires_at == ISSUED + timedelta(days=90)
    assert pair.access_token not in repr(pair)
    with pytest.raises(AuthExpired) as reused:
        await oauth.exchange_code("code-1", verifier)
    assert reused.value.code == "-14015"
    assert "code-1" not in reused.value.message
    state.register_auth_code("code-2", challenge)
    with pytest.raises(AuthExpired, match="-14019"):
        await oauth.exchange_code("code-2", new_pkce()[0])
    await oauth.aclose()


def answering(status: int, body: object) -> ZaloOAuthClient:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    return ZaloOAuthClient(
        oauth_url="http://oauth",
        app_id="1",
        app_secret="app-secret",
        transport=httpx.MockTransport(handler),
        clock=lambda: ISSUED,
    )


async def test_refresh_lifetime_is_taken_when_zalo_gives_it() -> None:
    body = {
        "access_token": "a",
        "refresh_token": "r",
        "expires_in": "3600",
        "refresh_token_expires_in": "7776000",
    }
    pair = await answering(200, body).refresh("old")
    assert pair.access_expires_at == ISSUED + timedelta(hours=1)
    assert pair.refresh_expires_at == ISSUED + timedelta(seconds=7776000)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, {"error": -14014, "error_name": "Invalid refresh token rt-secret"}, AuthExpired),
        (400, {"error": -14002, "message": "Invalid appId"}, AuthExpired),
        (200, {"access_token": "a", "expires_in": "90000"}, AuthExpired),
        (200, {"access_token": "a", "refresh_token": "r", "expires_in": "soon"}, AuthExpired),
        (502, "<html>Bad gateway</html>", Unavailable),
        (200, "<html>captive portal</html>", Unavailable),
        (429, {"error": -32}, Unavailable),
    ],
)
async def test_token_endpoint_answers_are_classified(
    status: int, body: object, expected: type[Exception]
) -> None:
    with pytest.raises(expected) as raised:
        await answering(status, body).refresh("rt-secret")
    assert "rt-secret" not in str(raised.value) and "app-secret" not in str(raised.value)

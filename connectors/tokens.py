"""Zalo OA tokens: what the connector is given, the OAuth v4 token endpoint, and PKCE.

The connector never touches the database: it gets a `TokenStore` (in production
`bot.credentials.DbTokenStore`, which refreshes single-flight across processes).
`ZaloOAuthClient` speaks to `{oauth_url}/v4/oa/access_token`
(reference zalo-oa-api.md §2.3). A refresh token works ONCE: a successful refresh
invalidates the old one, so callers must store the new pair before anything else.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlencode

import httpx

from connectors._http import mapped_errors, new_client
from connectors.base import AuthExpired, OutcomeUnknown, Unavailable

TOKEN_PATH = "/v4/oa/access_token"
PERMISSION_PATH = "/v4/oa/permission"
# Zalo states three months for a refresh token; used when the answer does not say.
DEFAULT_REFRESH_LIFETIME = timedelta(days=90)
VERIFIER_BYTES = 32  # base64url of 32 bytes: 43 characters, RFC 7636's minimum length
CONNECT_ADVICE = "hãy chạy «cdbot zalo connect» để cấp quyền lại cho bot"


@dataclass(frozen=True)
class TokenPair:
    """An access token and the refresh token issued with it, with their expiries (UTC)."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_expires_at: datetime
    refresh_expires_at: datetime


@runtime_checkable
class TokenStore(Protocol):
    """Where the Zalo connector gets its access token."""

    async def current(self) -> str:
        """A valid access token, refreshed ahead of its expiry when needed."""
        ...

    async def refresh_after_rejection(self, rejected: str) -> str:
        """A token to retry with after Zalo answered -216/-220 for `rejected`.

        Refreshes once, unless another process already rotated the token (the stored
        token differs from `rejected`), in which case the stored one is returned.
        Raises `AuthExpired` when no new token can be had.
        """
        ...


# ---- PKCE and the consent URL ----------------------------------------------------------------


def pkce_challenge(verifier: str) -> str:
    """RFC 7636 S256: base64url, without padding, of the SHA-256 of the ASCII verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def new_pkce() -> tuple[str, str]:
    """A fresh (code_verifier, code_challenge): 43 unreserved characters and their S256."""
    verifier = secrets.token_urlsafe(VERIFIER_BYTES)
    return verifier, pkce_challenge(verifier)


def permission_url(
    oauth_url: str, app_id: str, redirect_uri: str, challenge: str, state: str
) -> str:
    """The page where an OA admin grants the app access (reference §2.1)."""
    query = urlencode(
        {
            "app_id": app_id,
            "redirect_uri": redirect_uri,
            "code_challenge": challenge,
            "state": state,
        }
    )
    return f"{oauth_url.rstrip('/')}{PERMISSION_PATH}?{query}"


# ---- the token endpoint ----------------------------------------------------------------------


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _seconds(value: Any) -> int | None:
    """Zalo's lifetimes come as strings of seconds ("90000"); ints are accepted too."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip()) or None
    return None


class ZaloOAuthClient:
    """Exchanges consent codes and refresh tokens for token pairs (httpx, async)."""

    def __init__(
        self,
        *,
        oauth_url: str,
        app_id: str,
        app_secret: str,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._app_id = app_id
        self._app_secret = app_secret
        self._clock = clock
        self._client = new_client(oauth_url.rstrip("/"), timeout, transport)

    async def refresh(self, refresh_token: str) -> TokenPair:
        """A new pair for `refresh_token`, which Zalo then invalidates.

        `AuthExpired` when Zalo refuses the grant (used, expired or revoked token, wrong
        app): do not try the same token again. `Unavailable` when Zalo could not be asked.
        """
        form = {"refresh_token": refresh_token, "grant_type": "refresh_token"}
        return await self._token(form, secret=refresh_token, what="mã làm mới")

    async def exchange_code(
        self, code: str, code_verifier: str, redirect_uri: str | None = None
    ) -> TokenPair:
        """The first pair, for the code the OA admin's browser was redirected with."""
        form = {"code": code, "grant_type": "authorization_code", "code_verifier": code_verifier}
        if redirect_uri:
            # Not in Zalo's SDKs, but RFC 6749 §4.1.3 asks for it; servers ignore extra fields.
            form["redirect_uri"] = redirect_uri
        return await self._token(form, secret=code, what="mã cấp quyền")

    async def _token(self, form: dict[str, str], *, secret: str, what: str) -> TokenPair:
        issued = self._clock()  # before the call, so expiries are never overestimated
        try:
            async with mapped_errors("POST"):
                response = await self._client.post(
                    TOKEN_PATH,
                    data={**form, "app_id": self._app_id},
                    headers={"secret_key": self._app_secret},
                )
        except OutcomeUnknown as exc:
            # Nothing was published; whether Zalo consumed the grant shows on the next try.
            raise Unavailable(f"Máy chủ cấp mã của Zalo không trả lời ({exc.message}).") from exc
        except Unavailable as exc:
            raise Unavailable(
                f"Không kết nối được máy chủ cấp mã của Zalo ({exc.message})."
            ) from exc
        return self._parse(response, issued, secret=secret, what=what)

    def _parse(
        self, response: httpx.Response, issued: datetime, *, secret: str, what: str
    ) -> TokenPair:
        status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        if status >= 500 or status == 429 or not isinstance(body, dict):
            # Ambiguous answers retry: a consumed grant is refused plainly on the next try.
            raise Unavailable(
                f"Máy chủ cấp mã của Zalo trả HTTP {status} không đúng định dạng.",
                code=f"http_{status}",
            )
        error = body.get("error")
        if error not in (None, 0, "0"):
            detail = self._detail(body, secret)
            raise AuthExpired(f"Zalo từ chối {what} (mã {error}{detail}).", code=str(error))
        access = body.get("access_token")
        refresh = body.get("refresh_token")
        lifetime = _seconds(body.get("expires_in"))
        if status >= 400 or not (isinstance(access, str) and access) or lifetime is None:
            raise AuthExpired(f"Zalo không cấp mã mới cho {what} (HTTP {status}).", code="no_token")
        if not (isinstance(refresh, str) and refresh):
            raise AuthExpired(f"Zalo không trả mã làm mới cho {what}.", code="no_refresh_token")
        refresh_seconds = _seconds(body.get("refresh_token_expires_in"))
        refresh_lifetime = (
            timedelta(seconds=refresh_seconds) if refresh_seconds else DEFAULT_REFRESH_LIFETIME
        )
        return TokenPair(
            access_token=access,
            refresh_token=refresh,
            access_expires_at=issued + timedelta(seconds=lifetime),
            refresh_expires_at=issued + refresh_lifetime,
        )

    def _detail(self, body: Mapping[str, Any], secret: str) -> str:
        """Zalo's own short explanation, with nothing we sent echoed back."""
        text = ""
        for key in ("error_description", "error_reason", "message", "error_name"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                text = value.strip()
                break
        for sent in (secret, self._app_secret):
            if sent:
                text = text.replace(sent, "***")
        return f": {text[:120]}" if text else ""

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def __aenter__(self) -> ZaloOAuthClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

"""The Zalo OA token pair in the database, refreshed once across every process.

Zalo's refresh token works once (reference zalo-oa-api.md §2.3), so two workers
refreshing together would lock the office out. A refresh therefore happens inside one
transaction holding the credential row (PostgreSQL: `SELECT … FOR UPDATE`; SQLite, which
has one writer: an `UPDATE` that takes the write lock before the row is read). Whoever
gets the row second sees a fresh token and uses it. The new pair is committed before it
is returned, so a crash after Zalo rotated cannot lose it unless the commit itself fails.

Tokens are stored encrypted (`bot.secrets.Cipher`) and never logged or put in messages.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import Credential
from bot.db.types import db_now
from bot.errors import ConfigError
from bot.secrets import Cipher
from connectors.base import AuthExpired, Unavailable
from connectors.tokens import CONNECT_ADVICE, TokenPair, ZaloOAuthClient

log = logging.getLogger(__name__)

# After the token endpoint failed for want of network, a still-valid token is used without
# asking again for this long, so each send does not wait on a dead endpoint.
QUIET_AFTER_FAILURE = timedelta(minutes=1)
NOT_CONNECTED = f"Bot chưa được kết nối với Zalo OA; {CONNECT_ADVICE}."
CANNOT_REFRESH = f"Không còn mã làm mới Zalo hợp lệ; {CONNECT_ADVICE}."
UNREADABLE = f"Không giải mã được mã Zalo đã lưu (CDBOT_SECRET_KEY đã đổi?); {CONNECT_ADVICE}."


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CredentialStatus:
    """What may be shown about a stored credential: never the tokens themselves."""

    key: str
    version: int
    access_expires_at: datetime | None
    refresh_expires_at: datetime | None
    can_refresh: bool
    updated_at: datetime


@dataclass(frozen=True)
class _Entry:
    """The decrypted access token this process uses, with what the row said about it."""

    token: str = field(repr=False)
    expires_at: datetime | None
    version: int


class DbTokenStore:
    """`connectors.tokens.TokenStore` over the `credentials` row of one account."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        cipher: Cipher,
        oauth: ZaloOAuthClient,
        *,
        key: str = "zalo",
        refresh_ahead: timedelta = timedelta(hours=1),
        on_consent_needed: Callable[[str], Awaitable[None]],
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._sessions = sessions
        self._cipher = cipher
        self._oauth = oauth
        self._key = key
        self._ahead = refresh_ahead
        self._consent_needed = on_consent_needed
        self._clock = clock
        self._cached: _Entry | None = None
        self._quiet_until: datetime | None = None
        # Tasks of this process wait here rather than queue on the database.
        self._lock = asyncio.Lock()

    # ---- TokenStore ---------------------------------------------------------------------------

    async def current(self) -> str:
        """A valid access token; refreshes (once across processes) when it is about to expire."""
        cached = self._cached
        if cached is not None and self._usable(cached):
            return cached.token
        async with self._lock:
            cached = self._cached
            if cached is not None and self._usable(cached):
                return cached.token
            stored = await self._read()
            if stored is None or self._due(stored):
                stored = await self._refresh(rejected=None)
            self._cached = stored
            return stored.token

    async def refresh_after_rejection(self, rejected: str) -> str:
        """A token to retry with after Zalo refused `rejected` (-216/-220)."""
        async with self._lock:
            cached = self._cached
            if cached is not None and not _same(cached.token, rejected) and self._alive(cached):
                return cached.token  # another task of this process already rotated it
            self._cached = None
            entry = await self._refresh(rejected=rejected)
            self._cached = entry
            return entry.token

    # ---- connect and status -----------------------------------------------------------------

    async def save(self, pair: TokenPair) -> int:
        """Store a pair from `cdbot zalo connect`, replacing any other; returns its version."""
        values: dict[str, Any] = {
            "access_token": self._cipher.encrypt(pair.access_token),
            "refresh_token": self._cipher.encrypt(pair.refresh_token),
            "access_expires_at": pair.access_expires_at,
            "refresh_expires_at": pair.refresh_expires_at,
        }
        async with self._lock, self._sessions.begin() as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            insert = dialect.insert(Credential).values(key=self._key, version=1, **values)
            upsert = insert.on_conflict_do_update(
                index_elements=[Credential.key],
                set_={**values, "version": Credential.version + 1, "updated_at": db_now()},
            ).returning(Credential.version)
            version = int((await session.execute(upsert)).scalar_one())
        self._cached = _Entry(pair.access_token, pair.access_expires_at, version)
        self._quiet_until = None
        log.debug("Đã lưu mã Zalo mới (phiên bản %d).", version)
        return version

    async def status(self) -> CredentialStatus | None:
        """Expiries and version of the stored credential, or None when there is none."""
        return await credential_status(self._sessions, self._key)

    # ---- inside -----------------------------------------------------------------------------

    def _due(self, entry: _Entry) -> bool:
        """True when the token should be refreshed now."""
        if entry.expires_at is None:
            return False  # no known expiry: only a rejection refreshes it
        return entry.expires_at - self._ahead <= self._clock()

    def _alive(self, entry: _Entry) -> bool:
        return entry.expires_at is None or entry.expires_at > self._clock()

    def _usable(self, entry: _Entry) -> bool:
        if not self._due(entry):
            return True
        quiet = self._quiet_until is not None and self._clock() < self._quiet_until
        return quiet and self._alive(entry)

    async def _read(self) -> _Entry | None:
        """The stored token without any lock: most calls end here."""
        async with self._sessions() as session:
            row = await session.get(Credential, self._key, populate_existing=True)
            return None if row is None else self._entry(row)

    def _entry(self, row: Credential) -> _Entry:
        return _Entry(self._decrypt(row.access_token), row.access_expires_at, row.version)

    def _decrypt(self, sealed: str) -> str:
        try:
            return self._cipher.decrypt(sealed)
        except ConfigError as exc:
            raise AuthExpired(UNREADABLE, code="undecryptable") from exc

    async def _refresh(self, *, rejected: str | None) -> _Entry:
        """Refresh under the row lock unless someone else already did; commit, then return."""
        outcome = await self._refresh_locked(rejected)
        if isinstance(outcome, _Entry):
            return outcome
        note = f"Zalo không cấp lại mã truy cập (mã {outcome.code}); {CONNECT_ADVICE}."
        log.warning("Làm mới mã Zalo bị từ chối (mã %s).", outcome.code)
        # After the commit: on SQLite the pause could not write while we held the lock.
        try:
            await self._consent_needed(note)
        except Exception:  # the dispatcher pauses the account on AuthExpired all the same
            log.warning("Không ghi được việc tạm dừng tài khoản Zalo.", exc_info=True)
        raise AuthExpired(note, code=outcome.code) from outcome

    async def _refresh_locked(self, rejected: str | None) -> _Entry | AuthExpired:
        """The new entry, or Zalo's refusal once the dead grant is forgotten (committed)."""
        async with self._sessions.begin() as session:
            row = await self._lock_row(session)
            if row is None:
                raise AuthExpired(NOT_CONNECTED, code="not_connected")
            stored = self._entry(row)
            if rejected is None and not self._due(stored):
                return stored  # another process refreshed while we waited for the row
            if rejected is not None and not _same(stored.token, rejected):
                return stored  # another process rotated the token Zalo refused
            if row.refresh_token is None:
                raise AuthExpired(CANNOT_REFRESH, code="no_refresh_token")
            try:
                pair = await self._oauth.refresh(self._decrypt(row.refresh_token))
            except AuthExpired as refused:
                # A refused grant must never be presented again, by any process.
                await session.execute(
                    update(Credential)
                    .where(Credential.key == self._key)
                    .values(refresh_token=None, version=row.version + 1)
                )
                return refused
            except Unavailable:
                if rejected is None and self._alive(stored):
                    self._quiet_until = self._clock() + QUIET_AFTER_FAILURE
                    log.warning("Chưa làm mới được mã Zalo; tạm dùng mã cũ còn hạn.")
                    return stored
                raise
            version = row.version + 1
            await session.execute(
                update(Credential)
                .where(Credential.key == self._key)
                .values(
                    access_token=self._cipher.encrypt(pair.access_token),
                    refresh_token=self._cipher.encrypt(pair.refresh_token),
                    access_expires_at=pair.access_expires_at,
                    refresh_expires_at=pair.refresh_expires_at,
                    version=version,
                )
            )
        # Committed: only now may the new token be used.
        self._quiet_until = None
        log.info(
            "Đã làm mới mã truy cập Zalo (phiên bản %d, hết hạn %s).",
            version,
            pair.access_expires_at.isoformat(timespec="minutes"),
        )
        return _Entry(pair.access_token, pair.access_expires_at, version)

    async def _lock_row(self, session: AsyncSession) -> Credential | None:
        """The credential row, locked against every other process until commit."""
        query = select(Credential).where(Credential.key == self._key)
        if session.get_bind().dialect.name == "sqlite":
            # Take SQLite's single write lock before reading, so the read sees the last
            # refresh and no one else can refresh until this transaction ends.
            await session.execute(
                text("UPDATE credentials SET version = version WHERE key = :k"), {"k": self._key}
            )
        else:
            query = query.with_for_update()
        result = await session.scalars(query.execution_options(populate_existing=True))
        return result.one_or_none()


async def credential_status(
    sessions: async_sessionmaker[AsyncSession], key: str = "zalo"
) -> CredentialStatus | None:
    """What may be shown about the stored credential of `key` (no key or cipher needed)."""
    async with sessions() as session:
        row = await session.get(Credential, key, populate_existing=True)
        if row is None:
            return None
        return CredentialStatus(
            key=row.key,
            version=row.version,
            access_expires_at=row.access_expires_at,
            refresh_expires_at=row.refresh_expires_at,
            can_refresh=row.refresh_token is not None,
            updated_at=row.updated_at,
        )


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))

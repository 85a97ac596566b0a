"""Console users: roles and what each may do, passwords (argon2), API tokens, throttling.

A role is a set of permissions; every route names the one permission it needs, so the
security tests can check each route against each role from one table (`PERMISSIONS`).
"""

from __future__ import annotations

import hashlib
import secrets
import time
import unicodedata
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db.models import ApiToken, AuditEntry, Role, User
from bot.db.types import db_now
from bot.errors import InputError

ROLE_NAMES = {
    Role.VIEWER: "Người xem",
    Role.EDITOR: "Biên tập viên",
    Role.APPROVER: "Người duyệt",
    Role.ADMIN: "Quản trị",
}
# What each permission allows; a role has its own and every lower role's.
VIEW, WRITE, APPROVE, ADMINISTER = "view", "write", "approve", "administer"
PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.VIEWER: frozenset({VIEW}),
    Role.EDITOR: frozenset({VIEW, WRITE}),
    Role.APPROVER: frozenset({VIEW, WRITE, APPROVE}),
    Role.ADMIN: frozenset({VIEW, WRITE, APPROVE, ADMINISTER}),
}
MIN_PASSWORD = 10
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789._-")
TOKEN_PREFIX = "cdb_"

_hasher = PasswordHasher()


@dataclass(frozen=True)
class Person:
    """The signed-in user, as a request sees it."""

    id: int
    username: str
    display_name: str
    role: Role

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS[self.role]

    @property
    def actor(self) -> str:
        """How the audit log names this person."""
        return f"web:{self.username}"


def _person(user: User) -> Person:
    return Person(user.id, user.username, user.display_name, Role(user.role))


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not name or len(name) > 64 or not set(name) <= USERNAME_CHARS:
        raise InputError(
            "Tên đăng nhập chỉ gồm chữ thường không dấu, số, dấu chấm, gạch dưới, gạch ngang.",
            field="Tên đăng nhập",
        )
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InputError(f"Mật khẩu cần ít nhất {MIN_PASSWORD} ký tự.", field="Mật khẩu")
    return password


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InputError(f"Vai trò «{role}» không có; chọn: {names}.", field="Vai trò") from None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Users:
    """Console users and their API tokens, in the bot's database."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def add(
        self, username: str, password: str, role: str, *, display_name: str = "", actor: str
    ) -> Person:
        name = check_username(username)
        user = User(
            username=name,
            display_name=unicodedata.normalize("NFC", display_name.strip()) or name,
            role=check_role(role).value,
            password_hash=_hasher.hash(check_password(password)),
        )
        async with self._sessions.begin() as session:
            if await session.scalar(select(User.id).where(User.username == name)):
                raise InputError(f"Đã có người dùng «{name}».", field="Tên đăng nhập")
            session.add(user)
            await session.flush()
            session.add(
                AuditEntry(actor=actor, action="user.add", detail={"user": name, "role": user.role})
            )
        return _person(user)

    async def all(self) -> list[tuple[Person, bool]]:
        """Every user with whether they are disabled."""
        async with self._sessions() as session:
            rows = await session.scalars(select(User).order_by(User.username))
            return [(_person(u), u.disabled) for u in rows]

    async def count(self) -> int:
        async with self._sessions() as session:
            return int(await session.scalar(select(func.count(User.id))) or 0)

    async def get(self, user_id: int) -> Person | None:
        """The user, unless unknown or disabled (read on every request: a change is at once)."""
        async with self._sessions() as session:
            user = await session.get(User, user_id)
            return _person(user) if user is not None and not user.disabled else None

    async def authenticate(self, username: str, password: str) -> Person | None:
        """The user when the password is right; None otherwise (same cost either way)."""
        name = username.strip().lower()
        async with self._sessions.begin() as session:
            user = await session.scalar(select(User).where(User.username == name))
            try:
                _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
            except (VerificationError, InvalidHashError):
                return None
            if user is None or user.disabled:
                return None
            user.last_login_at = db_now()
            if _hasher.check_needs_rehash(user.password_hash):
                user.password_hash = _hasher.hash(password)
            return _person(user)

    async def update(
        self,
        username: str,
        *,
        actor: str,
        role: str | None = None,
        disabled: bool | None = None,
        password: str | None = None,
    ) -> None:
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = check_role(role).value
        if disabled is not None:
            values["disabled"] = disabled
        if password is not None:
            values["password_hash"] = _hasher.hash(check_password(password))
        async with self._sessions.begin() as session:
            changed = await session.execute(
                update(User).where(User.username == username).values(**values)
            )
            if not changed.rowcount:  # type: ignore[attr-defined]
                raise InputError(f"Không có người dùng «{username}».", field="Tên đăng nhập")
            detail = {k: v for k, v in values.items() if k != "password_hash"}
            session.add(
                AuditEntry(actor=actor, action="user.update", detail={"user": username, **detail})
            )

    async def new_token(self, username: str, name: str, *, actor: str) -> str:
        """A new API token for `username`; shown once, only its hash is kept."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._sessions.begin() as session:
            user_id = await session.scalar(select(User.id).where(User.username == username))
            if user_id is None:
                raise InputError(f"Không có người dùng «{username}».", field="Tên đăng nhập")
            session.add(ApiToken(user_id=user_id, name=name, token_hash=token_digest(token)))
            session.add(
                AuditEntry(actor=actor, action="token.add", detail={"user": username, "name": name})
            )
        return token

    async def by_token(self, token: str) -> Person | None:
        """The user an API token belongs to, unless revoked or the user is disabled."""
        async with self._sessions.begin() as session:
            row = await session.scalar(
                select(ApiToken).where(
                    ApiToken.token_hash == token_digest(token), ApiToken.revoked_at.is_(None)
                )
            )
            if row is None:
                return None
            user = await session.get(User, row.user_id)
            if user is None or user.disabled:
                return None
            row.last_used_at = db_now()
            return _person(user)


_DUMMY_HASH = _hasher.hash("a password nobody has, so unknown users cost as much")


class LoginThrottle:
    """Refuses sign-in after repeated failures for a name or from an address.

    In memory, per process: enough to stop guessing through one console; the argon2
    cost makes each guess slow anyway.
    """

    def __init__(self, *, failures: int = 5, window: float = 900.0) -> None:
        self.failures = failures
        self.window = window
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._seen[key]
        while times and now - times[0] > self.window:
            times.popleft()
        return times

    def blocked(self, username: str, address: str) -> bool:
        now = time.monotonic()
        keys = (f"u:{username.strip().lower()}", f"a:{address}")
        return any(
            len(self._recent(k, now)) >= self.failures * (1 if k[0] == "u" else 4) for k in keys
        )

    def failed(self, username: str, address: str) -> None:
        now = time.monotonic()
        for key in (f"u:{username.strip().lower()}", f"a:{address}"):
            self._recent(key, now).append(now)

    def succeeded(self, username: str) -> None:
        self._seen.pop(f"u:{username.strip().lower()}", None)

"""What every platform connector offers, and the errors it may raise.

The dispatcher talks to platforms only through `Connector`. A connector turns an
`OutboundMessage` (already rendered for its channel) into a platform call and
returns a `Receipt`, or raises one of the `PlatformError` classes below, which
are the only outcomes the dispatcher needs to understand:

    PlatformError (bot.errors.BotError)
    ├── Throttled(retry_after)   the account pauses; the delivery keeps its attempts
    ├── AuthExpired              the account pauses until a person fixes the token
    ├── Rejected                 bad content: the delivery fails with the reason shown
    ├── Unavailable              transient and surely not sent: retry with backoff
    └── OutcomeUnknown           maybe sent: the delivery goes in_doubt and is reconciled
"""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict

from bot.errors import BotError


class PlatformError(BotError):
    """Nền tảng trả lỗi."""

    def __init__(self, message: str | None = None, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


class Throttled(PlatformError):
    """Nền tảng yêu cầu giảm tốc độ gửi."""

    def __init__(
        self, message: str | None = None, *, code: str | None = None, retry_after: float = 60.0
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class AuthExpired(PlatformError):
    """Mã truy cập hết hạn hoặc bị thu hồi, cần cấp lại quyền."""


class Rejected(PlatformError):
    """Nền tảng từ chối nội dung này."""


class Unavailable(PlatformError):
    """Nền tảng tạm thời không trả lời; chắc chắn chưa gửi."""

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after
        """When set, the platform said when to try again; the try does not count."""


class OutcomeUnknown(PlatformError):
    """Không rõ bài đã được đăng hay chưa."""


class CannotTell(PlatformError):
    """Nền tảng không cho đọc lại để đối soát."""


class OutboundMessage(BaseModel):
    """One rendered message for one target, ready for a connector."""

    model_config = ConfigDict(frozen=True)

    channel: str
    target_id: str
    title: str
    text: str
    link: str | None = None
    images: tuple[Path, ...] = ()
    video: Path | None = None
    documents: tuple[Path, ...] = ()
    """PDF/DOC/DOCX files sent after the text, each as a file message of its own (Zalo)."""
    resume_since: datetime | None = None
    """On a later attempt of a message in several parts: when the first attempt began.
    Parts already on the platform since then are not sent again."""
    sent_fingerprint: str | None = None
    """When reconciling: the fingerprint recorded at send time (the text may render
    differently now, after an edit of the organisation's signature or a template)."""

    @property
    def fingerprint(self) -> str:
        """A hash of what the audience sees, to recognise this message when read back."""
        return self.sent_fingerprint or fingerprint(self.text)


class Receipt(BaseModel):
    """What the platform gave back for a message it accepted."""

    model_config = ConfigDict(frozen=True)

    remote_id: str
    permalink: str | None = None
    cooldown: float = 0.0
    """Seconds the account should rest before its next publish (rate limits, minimum gap)."""


def normalise_text(text: str) -> str:
    """Text as compared on read-back: NFC, whitespace collapsed."""
    return " ".join(unicodedata.normalize("NFC", text).split())


def fingerprint(text: str) -> str:
    """sha256 of the normalised text, hex."""
    return hashlib.sha256(normalise_text(text).encode("utf-8")).hexdigest()


@runtime_checkable
class Connector(Protocol):
    """A platform account the dispatcher can publish through."""

    account: str
    """'facebook' or 'zalo': deliveries name the account they use."""

    channels: frozenset[str]
    """The delivery channels this connector serves."""

    sandbox: bool
    """True when this connector talks to the built-in sandbox, not the real platform."""

    async def send(self, message: OutboundMessage) -> Receipt:
        """Publish one message; raise a `PlatformError` subclass on failure."""
        ...

    async def find_sent(self, message: OutboundMessage, since: datetime) -> Receipt | None:
        """Look for `message` published since `since`: its receipt, or None if surely absent.

        Raise `CannotTell` where the platform offers no way to read it back.
        """
        ...

    async def check(self) -> None:
        """Verify the credentials with a cheap read; raise `AuthExpired` if they no longer work."""
        ...

    async def aclose(self) -> None:
        """Release network resources."""
        ...

"""Attachments uploaded once per content and reused while the platform still keeps them.

Zalo keeps an uploaded image or file 7 days (reference zalo-oa-api.md §6); an upload is
reused for `UPLOAD_REUSE` (six days), so it never runs out between lookup and send. The
`UploadStore` (the `uploads` table, bot/uploads.py) is the truth every process shares; a
dict in front of it saves a database read per message. Ages are read on the clock the
connector is given: the platform's, not the database's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol, TypeVar

from connectors.base import Rejected

log = logging.getLogger(__name__)
T = TypeVar("T")

UPLOAD_REUSE = timedelta(days=6)
MIME_BY_MAGIC = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"%PDF-", "application/pdf"),
    (b"\xd0\xcf\x11\xe0", "application/msword"),
    (b"PK\x03\x04", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
)

Upload = Callable[[str, str, bytes, str], Awaitable[str]]
"""(kind, file name, bytes, MIME type) → the platform's id for the upload."""


class UploadStore(Protocol):
    """Where uploads are remembered across processes."""

    async def find(
        self, account: str, sha256: str, kind: str, *, newer_than: datetime
    ) -> tuple[str, datetime] | None:
        """The remote id and upload time of this content, if uploaded after `newer_than`."""
        ...

    async def save(
        self, account: str, sha256: str, kind: str, remote_id: str, *, uploaded_at: datetime
    ) -> None:
        """Remember an upload (replacing an older one of the same content)."""
        ...

    async def forget(self, account: str, sha256: str, kind: str, remote_id: str) -> None:
        """Drop an upload the platform no longer knows (only if it is still `remote_id`)."""
        ...


@dataclass(frozen=True)
class Attachment:
    """An uploaded file as a message refers to it."""

    remote_id: str
    kind: str
    sha256: str
    reused: bool
    """Uploaded earlier (maybe by another process): the platform may have dropped it."""


def mime_type(data: bytes) -> str:
    """The MIME type the upload declares, from the file's first bytes."""
    return next((mime for magic, mime in MIME_BY_MAGIC if data.startswith(magic)), "")


class Attachments:
    """Finds or makes the attachment for a file of one account."""

    def __init__(
        self,
        account: str,
        upload: Upload,
        store: UploadStore | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._account = account
        self._upload = upload
        self._store = store
        self._clock = clock
        self._recent: dict[tuple[str, str], tuple[str, datetime]] = {}
        # One upload at a time per content: a post's deliveries run side by side.
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        # (path, mtime, size) → sha256: a post fans out to many targets; read its files once.
        self._hashes: dict[tuple[str, int, int], str] = {}

    async def get(self, path: Path, kind: str, *, refused: str | None = None) -> Attachment:
        """The attachment for `path` as `kind` ("image" or "file").

        `refused` is an id the platform no longer knows: it is not reused (but an upload
        another task made meanwhile is).
        """
        data: bytes | None = None
        try:
            stat = await asyncio.to_thread(path.stat)
            key = (str(path), stat.st_mtime_ns, stat.st_size)
            sha256 = self._hashes.get(key)
            if sha256 is None:
                data = await asyncio.to_thread(path.read_bytes)
                sha256 = self._hashes[key] = hashlib.sha256(data).hexdigest()
        except OSError as exc:
            raise _unreadable(path) from exc
        async with self._locks.setdefault((sha256, kind), asyncio.Lock()):
            known = await self._known(sha256, kind)
            if known is not None and known != refused:
                return Attachment(known, kind, sha256, reused=True)
            return await self._upload_new(path, kind, sha256, data)

    async def _upload_new(
        self, path: Path, kind: str, sha256: str, data: bytes | None
    ) -> Attachment:
        if data is None:
            try:
                data = await asyncio.to_thread(path.read_bytes)
            except OSError as exc:
                raise _unreadable(path) from exc
        remote_id = await self._upload(kind, path.name, data, mime_type(data))
        uploaded_at = self._clock()
        self._recent[(sha256, kind)] = (remote_id, uploaded_at)
        if self._store is not None:
            saving = self._store.save(
                self._account, sha256, kind, remote_id, uploaded_at=uploaded_at
            )
            await _quietly("ghi", saving)
        return Attachment(remote_id, kind, sha256, reused=False)

    async def forget(self, attachment: Attachment) -> None:
        """The platform refused `attachment`: never reuse it again, here or elsewhere."""
        key = (attachment.sha256, attachment.kind)
        if self._recent.get(key, ("",))[0] == attachment.remote_id:
            del self._recent[key]
        if self._store is not None:
            await _quietly(
                "xoá",
                self._store.forget(
                    self._account, attachment.sha256, attachment.kind, attachment.remote_id
                ),
            )

    async def _known(self, sha256: str, kind: str) -> str | None:
        """An upload young enough to reuse: this process's first, then the shared store's."""
        newer_than = self._clock() - UPLOAD_REUSE
        recent = self._recent.get((sha256, kind))
        if recent is not None and recent[1] > newer_than:
            return recent[0]
        if self._store is None:
            return None
        found = await _quietly(
            "đọc", self._store.find(self._account, sha256, kind, newer_than=newer_than)
        )
        if found is None:
            return None
        self._recent[(sha256, kind)] = found
        return found[0]


def _unreadable(path: Path) -> Rejected:
    return Rejected(f"Không đọc được tệp «{path.name}» để tải lên.", code="media")


async def _quietly(action: str, work: Awaitable[T]) -> T | None:
    """The store only saves uploads: when it fails, upload again rather than not send."""
    try:
        return await work
    except Exception:
        log.warning("không %s được bảng tệp đã tải lên; tải lại khi cần", action, exc_info=True)
        return None

"""Zalo uploads in the sandbox: `/v2.0/oa/upload/image|gif|file`, with limits and expiry.

Images are JPEG or PNG up to 1 MB, GIFs up to 5 MB, files PDF/DOC/DOCX up to 5 MB. An
attachment lives `state.zalo_upload_ttl` (7 days); using it later answers -100. Zalo's
code for a file over the limit is not documented; the sandbox answers -210.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from connectors.sandbox.state import SandboxState
from connectors.sandbox.zalo_oa import ZaloError, invalid, ok

MB = 1024 * 1024
LIMITS = {"image": 1 * MB, "gif": 5 * MB, "file": 5 * MB}
MAGIC = {
    "image": (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"),
    "gif": (b"GIF87a", b"GIF89a"),
    "file": (b"%PDF", b"\xd0\xcf\x11\xe0", b"PK\x03\x04"),
}


@dataclass
class ZaloUpload:
    """An uploaded attachment."""

    remote_id: str
    kind: str
    size: int
    uploaded_at: datetime


class UploadOperations:
    """The three upload routes, bound to one state."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def image(self, request: Request) -> dict[str, Any]:
        """`POST /v2.0/oa/upload/image`."""
        return await self._upload(request, "image")

    async def gif(self, request: Request) -> dict[str, Any]:
        """`POST /v2.0/oa/upload/gif`."""
        return await self._upload(request, "gif")

    async def file(self, request: Request) -> dict[str, Any]:
        """`POST /v2.0/oa/upload/file`: answers a `token`, not an `attachment_id`."""
        return await self._upload(request, "file")

    async def _upload(self, request: Request, kind: str) -> dict[str, Any]:
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise invalid("file")
            head = await upload.read(16)
            size = upload.size if upload.size is not None else len(head + await upload.read())
        if not head.startswith(MAGIC[kind]):
            raise ZaloError(-201, "file is invalid!")
        if size > LIMITS[kind]:
            raise ZaloError(-210, "Parameter exceeds allowable limit")
        remote_id = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.zalo_uploads[remote_id] = ZaloUpload(remote_id, kind, size, self.state.now())
        return ok({"token" if kind == "file" else "attachment_id": remote_id})

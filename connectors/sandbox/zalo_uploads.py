"""Zalo uploads in the sandbox: `/v2.0/oa/upload/image|gif|file`, with limits and expiry.

Images are JPEG or PNG up to 1 MB, GIFs up to 5 MB, files PDF/DOC/DOCX up to 5 MB (a
DOCX is a ZIP holding `word/document.xml`; any other ZIP is refused). An attachment lives
`state.zalo_upload_ttl` (7 days on the sandbox clock); using it later answers -100.
Zalo's codes for a file over the limit or of the wrong type are not documented; the
sandbox answers -210 and -201.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from connectors.sandbox.records import iso
from connectors.sandbox.state import SandboxState
from connectors.sandbox.zalo_oa import ZaloError, invalid, ok
from content.media import sniff_document  # the same test of a document the bot applies

MB = 1024 * 1024
LIMITS = {"image": 1 * MB, "gif": 5 * MB, "file": 5 * MB}
MAGIC = {
    "image": (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"),
    "gif": (b"GIF87a", b"GIF89a"),
}


@dataclass
class ZaloUpload:
    """An uploaded attachment."""

    remote_id: str
    kind: str
    size: int
    uploaded_at: datetime
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "remote_id": self.remote_id,
            "kind": self.kind,
            "size": self.size,
            "uploaded_at": iso(self.uploaded_at),
            "name": self.name,
        }


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
            # Past the limit nothing more is read; a file within it is read whole.
            data = await upload.read(LIMITS[kind] + 1)
            size = max(upload.size or 0, len(data))
            name = upload.filename or ""
        if size > LIMITS[kind]:
            raise ZaloError(-210, "Parameter exceeds allowable limit")
        if kind == "file" and sniff_document(data) is None:
            raise ZaloError(-201, "file is invalid!")
        if kind != "file" and not data.startswith(MAGIC[kind]):
            raise ZaloError(-201, "file is invalid!")
        remote_id = secrets.token_urlsafe(24)
        with self.state.lock:
            self.state.zalo_uploads[remote_id] = ZaloUpload(
                remote_id, kind, size, self.state.now(), name
            )
        return ok({"token" if kind == "file" else "attachment_id": remote_id})

"""A Zalo delivery as the messages it is made of, and how read-back recognises each.

Zalo takes one attachment per message, so a group or admin delivery with documents is
several messages: the text (with the first image), then one file message per document.
It stays one delivery: `ZaloOAConnector.send` uploads everything first, then sends the
parts in order; a later attempt reads the conversation back and sends only the parts
missing (see docs/ARCHITECTURE.md, "Messages in several parts").
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from connectors.base import OutboundMessage, fingerprint
from connectors.uploads import Attachment

PartKey = tuple[str, str]


@dataclasses.dataclass(frozen=True)
class Part:
    """One Zalo message of an outbound message: the text with its image, or one document."""

    key: PartKey
    """How read-back recognises it: ("text", fingerprint) or ("file", file name)."""
    text: str = ""
    image: Path | None = None
    document: Path | None = None

    @property
    def path(self) -> Path | None:
        """The file to upload for this part, if any."""
        return self.document or self.image


def file_key(name: str) -> PartKey:
    """A file part's key: its name, NFC and case-folded."""
    return ("file", unicodedata.normalize("NFC", name).strip().casefold())


def parts_of(message: OutboundMessage) -> list[Part]:
    """The text first (Zalo takes one image per message), then each document."""
    image = message.images[0] if message.images else None
    first = Part(("text", message.fingerprint), text=message.text, image=image)
    return [first, *(Part(file_key(d.name), document=d) for d in message.documents)]


def message_content(part: Part, attachment: Attachment | None) -> dict[str, Any]:
    """The `message` object of a CS or group message for one part."""
    if attachment is None:
        return {"text": part.text}
    if part.document is not None:
        return {"attachment": {"type": "file", "payload": {"token": attachment.remote_id}}}
    element = {"media_type": "image", "attachment_id": attachment.remote_id}
    payload = {"template_type": "media", "elements": [element]}
    return {"text": part.text, "attachment": {"type": "template", "payload": payload}}


def history_key(item: Mapping[str, Any]) -> PartKey:
    """A conversation entry as a part key.

    How Zalo lists a file there is not documented: its name is read from `name`, else
    from `message`.
    """
    if str(item.get("type") or "") == "file":
        return file_key(str(item.get("name") or item.get("message") or ""))
    return ("text", fingerprint(str(item.get("message", ""))))

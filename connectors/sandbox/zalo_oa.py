"""Zalo OA writes: group and 1:1 messages, quota, articles and broadcast."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from starlette.requests import Request

from connectors.sandbox.records import ZaloArticle, ZaloBroadcast, ZaloMessage, older_than
from connectors.sandbox.state import (
    SandboxState,
)

VN = ZoneInfo("Asia/Ho_Chi_Minh")
MAX_TEXT = 2000
TARGET_KEYS = frozenset({"ages", "gender", "locations", "cities", "platform"})
ERROR_MESSAGES = {
    -32: "Your application reached limit call api",
    -200: "Send message failed",
    -210: "Parameter exceeds allowable limit",
    -214: "Article is being processed",
    -216: "Access token is invalid",
    -220: "access_token is expired or removed",
    -100: "attachment_id was expired",
    -230: "User has not interacted with the OA in the past 7 days",
    -233: "message type is invalid or not support",
    -234: "This message cannot be sent at night (10:00PM - 6:00AM)",
    -237: "The group is disabled",
    -240: "MessageV2 API has been shut down, please switch to MessageV3",
    -403: "OA is not in group",
}


class ZaloError(Exception):
    """A Zalo error answer (HTTP 200, negative `error`), raised from inside a handler."""

    def __init__(self, code: int, message: str | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, "Send message failed")
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The error envelope."""
        return {**self.extra, "error": self.code, "message": self.message}


def invalid(name: str) -> ZaloError:
    """Zalo's -201 "<field> is invalid!"."""
    return ZaloError(-201, f"{name} is invalid!")


def ok(data: Any) -> dict[str, Any]:
    """Zalo's success envelope."""
    return {"data": data, "error": 0, "message": "Success"}


async def json_body(request: Request) -> dict[str, Any]:
    """The JSON object a POST carries, or -201."""
    try:
        data = json.loads(await request.body() or b"null")
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise invalid("body")
    return data


def count_param(raw: Any, default: int, limit: int) -> int:
    """A non-negative `offset`/`count`; above `limit` is -210."""
    try:
        value = default if raw in (None, "") else int(raw)
    except (TypeError, ValueError) as exc:
        raise invalid("count") from exc
    if value < 0:
        raise invalid("count")
    if value > limit:
        raise ZaloError(-210)
    return value


def epoch_ms(moment: datetime) -> int:
    """Zalo's timestamps: milliseconds since the epoch."""
    return int(moment.timestamp() * 1000)


def check_attachment(state: SandboxState, media: dict[str, str | None]) -> tuple[str, int] | None:
    """A file's name and size, as the message shows them (None for other messages).

    -100 for an upload that expired, -201 for one never uploaded here or of the wrong
    kind (a file token where an image goes, or the other way round).
    """
    remote_id = media.get("attachment_id")
    if not remote_id or media.get("media_type") == "sticker":
        return None
    with state.lock:
        upload = state.zalo_uploads.get(remote_id)
        is_file = media.get("media_type") == "file"
        if upload is None or (upload.kind == "file") != is_file:
            raise invalid("token" if is_file else "attachment_id")
        if state.now() - upload.uploaded_at > state.zalo_upload_ttl:
            raise ZaloError(-100)
        return (str(upload.name), int(upload.size)) if is_file else None


def parse_message(message: Any) -> tuple[str, dict[str, str | None]]:
    """Text and media of a CS or group `message`, validated as Zalo does."""
    if not isinstance(message, dict):
        raise invalid("message")
    text = message.get("text", "")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise invalid("text")
    attachment = message.get("attachment")
    if attachment is None:
        if not text.strip():
            raise invalid("text")
        return text, {"media_type": None, "media_url": None, "attachment_id": None}
    if not isinstance(attachment, dict) or not isinstance(attachment.get("payload"), dict):
        raise invalid("attachment")
    payload = attachment["payload"]
    if attachment.get("type") == "file":
        if not payload.get("token"):
            raise invalid("token")
        return text, {"media_type": "file", "media_url": None, "attachment_id": payload["token"]}
    if attachment.get("type") != "template" or payload.get("template_type") != "media":
        raise ZaloError(-233)
    elements = payload.get("elements")
    if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
        raise invalid("elements")
    element = elements[0]
    media_type, url, attachment_id = (
        element.get("media_type"),
        element.get("url"),
        element.get("attachment_id"),
    )
    if media_type not in ("image", "gif", "sticker"):
        raise ZaloError(-233)
    if media_type == "sticker" and not attachment_id:
        raise invalid("attachment_id")
    if media_type != "sticker" and bool(url) == bool(attachment_id):
        raise invalid("url")
    if media_type == "gif" and not (element.get("width") and element.get("height")):
        raise invalid("width")
    return text, {"media_type": media_type, "media_url": url, "attachment_id": attachment_id}


class OaOperations:
    """The OA API handlers; each returns the full JSON body or raises `ZaloError`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def _message(
        self, text: str, media: dict[str, str | None], file: tuple[str, int] | None
    ) -> ZaloMessage:
        return ZaloMessage(
            secrets.token_hex(10),
            text,
            self.state.now(),
            media_type=media["media_type"],
            media_url=media["media_url"],
            attachment_id=media["attachment_id"],
            file_name=file[0] if file else None,
            file_size=file[1] if file else None,
        )

    async def group_message(self, request: Request) -> dict[str, Any]:
        """`POST /v3.0/oa/group/message`."""
        body = await json_body(request)
        recipient = body.get("recipient")
        group_id = str(recipient.get("group_id") or "") if isinstance(recipient, dict) else ""
        if not group_id:
            raise invalid("group_id")
        text, media = parse_message(body.get("message"))
        upload = check_attachment(self.state, media)
        with self.state.lock:
            group = self.state.known_group(group_id)
            if group is None:
                raise ZaloError(-403)
            if group.status != "enabled":
                raise ZaloError(-237)
            message = self._message(text, media, upload)
            group.messages.append(message)
            self.state.record_message(
                "zalo",
                "zalo_group",
                group_id,
                text,
                message.message_id,
                file_name=message.file_name,
            )
        return ok({"message_id": message.message_id, "group_id": group_id})

    async def cs_message(self, request: Request) -> dict[str, Any]:
        """`POST /v3.0/oa/message/cs`: only within 7 days of the user's last interaction."""
        body = await json_body(request)
        recipient = body.get("recipient")
        user_id = str(recipient.get("user_id") or "") if isinstance(recipient, dict) else ""
        if not user_id:
            raise invalid("user_id")
        text, media = parse_message(body.get("message"))
        upload = check_attachment(self.state, media)
        with self.state.lock:
            user = self.state.known_user(user_id)
            if user is None or older_than(user.last_interaction, self.state.now(), 7):
                raise ZaloError(-230)
            message = self._message(text, media, upload)
            user.messages.append(message)
            self.state.record_message(
                "zalo", "zalo_user", user_id, text, message.message_id, file_name=message.file_name
            )
        quota = {"quota_type": "reply", "remain": "7", "total": "8"}
        return ok({"message_id": message.message_id, "user_id": user_id, "quota": quota})

    async def quota(self, request: Request) -> dict[str, Any]:
        """`POST /v3.0/oa/quota/message` for one user."""
        body = await json_body(request)
        user = (
            self.state.known_user(str(body.get("user_id") or "")) if body.get("user_id") else None
        )
        if user is None:
            raise invalid("user_id")
        open_window = not older_than(user.last_interaction, self.state.now(), 7)
        return ok(
            {
                "last_interaction": str(epoch_ms(user.last_interaction)),
                "cs_reply": {"remain": 8 if open_window else 0, "total": 8},
                "promotion": {
                    "daily_remain": 0,
                    "daily_total": 0,
                    "monthly_remain": 0,
                    "monthly_total": 0,
                },
            }
        )

    async def article_create(self, request: Request) -> dict[str, Any]:
        """`POST /v2.0/article/create` for a normal article."""
        body = await json_body(request)
        if body.get("type") != "normal":
            raise invalid("type")
        title, description = body.get("title"), body.get("description")
        if not isinstance(title, str) or not 0 < len(title.strip()) <= 150:
            raise invalid("title")
        if not isinstance(description, str) or not 0 < len(description.strip()) <= 300:
            raise invalid("description")
        if len(str(body.get("author") or "")) > 50:
            raise invalid("author")
        cover = body.get("cover")
        if not isinstance(cover, dict) or not _cover_ok(cover):
            raise invalid("cover")
        items = body.get("body")
        if not isinstance(items, list) or not items or not all(_item_ok(i) for i in items):
            raise invalid("body")
        if body.get("status", "hide") not in ("show", "hide"):
            raise invalid("status")
        article = ZaloArticle(
            token=secrets.token_urlsafe(24),
            title=title,
            description=description,
            cover_url=str(cover.get("photo_url") or ""),
            body=items,
            status=str(body.get("status", "hide")),
            created_at=self.state.now(),
            polls_left=self.state.article_verify_polls,
        )
        with self.state.lock:
            self.state.zalo_articles[article.token] = article
        return ok({"token": article.token})

    async def article_verify(self, request: Request) -> dict[str, Any]:
        """`POST /v2.0/article/verify`: -214 while processing, then the article id."""
        body = await json_body(request)
        with self.state.lock:
            article = self.state.zalo_articles.get(str(body.get("token") or ""))
            if article is None:
                raise invalid("token")
            if article.id is None:
                if article.polls_left > 0:
                    article.polls_left -= 1
                    raise ZaloError(-214)
                article.id = secrets.token_hex(10)
            return ok({"id": article.id})

    async def broadcast(self, request: Request) -> dict[str, Any]:
        """`POST /v2.0/oa/message` with `recipient.target`: one verified article to followers."""
        body = await json_body(request)
        recipient = body.get("recipient")
        if not isinstance(recipient, dict):
            raise invalid("recipient")
        if "user_id" in recipient:
            raise ZaloError(-240)
        target = recipient.get("target", {})
        if not isinstance(target, dict) or not all(_target_ok(k, v) for k, v in target.items()):
            raise invalid("target")
        article_id = _article_element(body.get("message"))
        with self.state.lock:
            article = next(
                (a for a in self.state.zalo_articles.values() if a.id and a.id == article_id),
                None,
            )
            if article is None:
                raise invalid("attachment_id")
            local_hour = self.state.now().astimezone(VN).hour
            if self.state.enforce_night_hours and (local_hour >= 22 or local_hour < 6):
                raise ZaloError(-234)
            sent = ZaloBroadcast(
                secrets.token_hex(10), article_id, article.title, target, self.state.now()
            )
            self.state.zalo_broadcasts.append(sent)
            self.state.record_message(
                "zalo", "zalo_broadcast", "followers", article.title, sent.message_id
            )
        return ok({"message_id": sent.message_id})


def _cover_ok(cover: dict[str, Any]) -> bool:
    if cover.get("cover_type") == "photo":
        return str(cover.get("photo_url") or "").startswith(("http://", "https://"))
    return cover.get("cover_type") == "video" and bool(cover.get("video_id"))


def _item_ok(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    kind = item.get("type")
    if kind == "text":
        return isinstance(item.get("content"), str) and bool(item["content"].strip())
    if kind in ("image", "video"):
        return str(item.get("url") or "").startswith(("http://", "https://"))
    return kind == "product" and bool(item.get("id"))


def _target_ok(key: str, value: Any) -> bool:
    if key not in TARGET_KEYS:
        return False
    if isinstance(value, list):
        return all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    return isinstance(value, str | int) and not isinstance(value, bool)


def _article_element(message: Any) -> str:
    attachment = message.get("attachment") if isinstance(message, dict) else None
    payload = attachment.get("payload") if isinstance(attachment, dict) else None
    elements = payload.get("elements") if isinstance(payload, dict) else None
    if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
        raise invalid("elements")
    if elements[0].get("media_type") != "article":
        raise invalid("media_type")
    return str(elements[0].get("attachment_id") or "")

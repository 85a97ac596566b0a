"""Zalo Official Account connector: cluster groups (GMF), admins (CS), follower broadcast.

Zalo answers application errors with HTTP 200 and a negative `error`; `check_response`
maps them to the dispatcher's classes (table in tests/unit/test_zalo_errors.py). Zalo
allows 4,000 requests a minute per app; we stay at 3,000 and stop for a minute when its
X-RateLimit-Remain header runs low. A group or admin delivery with documents is sent as
several messages and resumed part by part (connectors/zalo_parts.py); images and files
are uploaded once per content and reused across processes (connectors/uploads.py).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx

from connectors._http import MinuteLimiter, mapped_errors, new_client
from connectors.base import (
    AuthExpired,
    CannotTell,
    OutboundMessage,
    OutcomeUnknown,
    PlatformError,
    Receipt,
    Rejected,
    Throttled,
    Unavailable,
)
from connectors.tokens import TokenStore
from connectors.uploads import Attachment, Attachments, UploadStore
from connectors.zalo_parts import Part, PartKey, history_key, message_content, parts_of

VIETNAM = ZoneInfo("Asia/Ho_Chi_Minh")
ARTICLE_PROCESSING = -214
AUTH_CODES = frozenset({-216, -220})
TOKEN_REFUSED = frozenset(str(code) for code in AUTH_CODES)
# Account-level problems a person must fix in Zalo's consoles; the account pauses.
ACCOUNT_CODES = frozenset(
    {-204, -205, -209, -212, -219, -221, -223, -224, -235, -240, -242, -320, -321}
)
REJECTION_REASONS: Mapping[int, str] = {
    -201: "Zalo báo dữ liệu không hợp lệ.",
    -210: "Nội dung vượt giới hạn Zalo cho phép.",
    -213: "Người nhận chưa quan tâm Official Account.",
    -217: "Người nhận đã chặn lời mời từ Official Account.",
    -227: "Tài khoản người nhận bị khoá hoặc không hoạt động quá 45 ngày.",
    -230: "Người nhận chưa tương tác với Official Account trong 7 ngày qua.",
    -232: "Người nhận chưa tương tác với Official Account hoặc tương tác đã hết hạn.",
    -233: "Loại tin nhắn không được hỗ trợ.",
    -237: "Nhóm Zalo của cụm đã bị vô hiệu hoá (gói nhóm hết hạn).",
    -244: "Người nhận đã chặn loại tin này từ Official Account.",
    -248: "Nội dung vi phạm tiêu chuẩn của Zalo.",
    -403: "Official Account không ở trong nhóm Zalo này.",
}
QUOTA_CODES = frozenset({-211, -218})
NIGHT = -234
CS_WINDOW = timedelta(days=7)
# A reused upload Zalo answers with these was dropped (expired, or another sandbox's):
# both are answered before anything is sent, so upload afresh and send once more.
STALE_UPLOAD_CODES = frozenset({"-100", "-201"})
QUOTA_RETRY_SECONDS = 6 * 3600
# Zalo sends promotions and broadcasts from 06:00 to 21:59, Vietnam time.
BROADCAST_FROM, BROADCAST_UNTIL = time(6, 0), time(22, 0)
# The user conversation API returns at most 10 messages a request; the group one is read alike.
HISTORY_PAGE_SIZE = 10
HISTORY_PAGES = 20


def _seconds_until_morning(now: datetime) -> float:
    """Seconds from `now` to the next 06:00 in Vietnam."""
    local = now.astimezone(VIETNAM)
    morning = datetime.combine(local.date(), time(6, 0), VIETNAM)
    if local >= morning:
        morning += timedelta(days=1)
    return (morning - local).total_seconds()


def check_response(status: int, body: Any, *, write: bool) -> Any:
    """Return the envelope's `data`, or raise the error class the envelope stands for."""
    if status >= 500 or not isinstance(body, dict) or "error" not in body:
        # A 4xx was refused before anything happened; anything else after a write may have landed.
        cls = OutcomeUnknown if write and not 400 <= status < 500 else Unavailable
        raise cls(f"Zalo trả HTTP {status} không đúng định dạng", code=f"http_{status}")
    code = int(body["error"])
    if code == 0:
        return body.get("data")
    label = str(code)
    detail = str(body.get("message") or "")
    if code == -32:
        raise Throttled(f"Zalo yêu cầu giảm tốc: {detail}", code=label, retry_after=60)
    if code in AUTH_CODES:
        raise AuthExpired(f"Mã truy cập Zalo không còn hiệu lực: {detail}", code=label)
    if code in ACCOUNT_CODES:
        raise AuthExpired(f"Official Account cần được cấu hình lại ({label}): {detail}", code=label)
    if code == NIGHT:
        raise Unavailable(
            "Zalo không gửi tin này vào ban đêm; sẽ gửi lúc 06:00.",
            code=label,
            retry_after=_seconds_until_morning(datetime.now(UTC)),
        )
    if code in QUOTA_CODES:
        raise Unavailable(f"Hết hạn mức gửi của Zalo: {detail}", code=label, retry_after=6 * 3600)
    if code in (-200, -100, ARTICLE_PROCESSING):
        raise Unavailable(f"Zalo chưa gửi được ({label}): {detail}", code=label)
    reason = REJECTION_REASONS.get(code, "Zalo từ chối tin nhắn.")
    raise Rejected(f"{reason} ({label}: {detail})", code=label)


TokenSource = Callable[[], Awaitable[str]]
GROUP_PAGE = 50


@dataclasses.dataclass(frozen=True)
class GroupInfo:
    """A GMF group as Zalo reports it."""

    group_id: str
    name: str
    status: str
    members: int | None
    asset_valid_through: date | None = None

    @classmethod
    def from_summary(cls, raw: Mapping[str, Any]) -> GroupInfo:
        """From a getgroupsofoa entry or getgroup's group_info."""
        members = str(raw.get("total_member") or "")
        return cls(
            group_id=str(raw.get("group_id") or ""),
            name=str(raw.get("name") or ""),
            status=str(raw.get("status") or "unknown"),
            members=int(members) if members.isdigit() else None,
        )


def _json(response: httpx.Response) -> Any:
    """The body as JSON, or None (Zalo may say `text/json`, or send an HTML error page)."""
    try:
        return response.json()
    except ValueError:
        return None


class ZaloOAConnector:
    """Sends through one Zalo Official Account."""

    account = "zalo"
    channels = frozenset({"zalo_group", "zalo_user", "zalo_broadcast", "zalo_mention"})

    def __init__(
        self,
        *,
        openapi_url: str,
        access_token: TokenSource | TokenStore,
        article_cover_url: str,
        timeout: float = 30.0,
        sandbox: bool = False,
        verify_poll_seconds: float = 1.0,
        verify_polls: int = 30,
        broadcast_target: Mapping[str, str] | None = None,
        requests_per_minute: int = 3000,
        public_media_url: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        uploads: UploadStore | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sandbox = sandbox
        self._target = dict(broadcast_target or {})
        self._media_url = public_media_url
        self._clock = clock
        # Sandbox uploads are remembered apart: the real Zalo never knows their ids.
        upload_account = "zalo-sandbox" if sandbox else self.account
        self._attachments = Attachments(upload_account, self._upload, uploads, clock)
        # A TokenStore can be asked for a new token when Zalo refuses one; a bare source cannot.
        self._store: TokenStore | None = None
        self._token: TokenSource
        if isinstance(access_token, TokenStore):
            self._store, self._token = access_token, access_token.current
        else:
            self._token = access_token
        self._cover_url = article_cover_url
        self._verify_poll_seconds = verify_poll_seconds
        self._verify_polls = verify_polls
        self.limiter = MinuteLimiter(requests_per_minute, remain_header="X-RateLimit-Remain")
        self._client = new_client(openapi_url, timeout, transport, self.limiter)

    async def _authorised(self, attempt: Callable[[str], Awaitable[Any]]) -> Any:
        """`attempt(token)`; after -216/-220, once more with the token store's new token."""
        token = await self._token()
        try:
            return await attempt(token)
        except AuthExpired as exc:
            if self._store is None or exc.code not in TOKEN_REFUSED:
                raise
        # -216/-220 are answered before anything runs, so even a write is safe to send again.
        return await attempt(await self._store.refresh_after_rejection(token))

    async def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, str] | None = None,
        read: bool = False,
    ) -> Any:
        """One OA API call; `read` marks a POST that changes nothing (a timeout is not a doubt)."""
        write = method != "GET" and not read

        async def attempt(token: str) -> Any:
            headers = {"access_token": token}
            async with mapped_errors("POST" if write else "GET"):
                if method == "GET":
                    response = await self._client.get(path, params=params, headers=headers)
                else:
                    response = await self._client.post(path, json=json_body, headers=headers)
            return check_response(response.status_code, _json(response), write=write)

        return await self._authorised(attempt)

    async def send(self, message: OutboundMessage) -> Receipt:
        """Send to a cluster's group, to one admin, or as an article to all followers."""
        if message.channel in ("zalo_group", "zalo_user"):
            if message.channel == "zalo_user":
                await self._check_window(message.target_id)
            return await self._send_parts(message)
        if message.channel == "zalo_mention":  # the text already begins with "[@user_id] "
            group_id = message.target_id.split("/", 1)[0]
            body = {"recipient": {"group_id": group_id}, "message": {"text": message.text}}
            data = await self._call("POST", "/v3.0/oa/group/message", json_body=body)
        elif message.channel == "zalo_broadcast":
            data = await self._broadcast(message)
        else:
            raise Rejected(f"Kênh {message.channel} không thuộc Zalo.")
        return Receipt(remote_id=str(data["message_id"]))

    async def _send_parts(self, message: OutboundMessage) -> Receipt:
        """The text (with the first image), then each document as a file message.

        Everything is uploaded before the first message, so a file Zalo refuses stops the
        delivery with nothing sent. A failure after a part landed keeps its class (the
        dispatcher retries, pauses or fails as usual); the next attempt carries
        `resume_since`, reads the conversation back and sends only the missing parts.
        """
        parts = parts_of(message)
        sent: dict[PartKey, str] = {}
        if message.resume_since is not None and len(parts) > 1:
            try:
                sent = await self._find_parts(message, parts, message.resume_since)
            except CannotTell as exc:
                raise OutcomeUnknown(
                    f"Không đọc lại được hội thoại để gửi tiếp phần còn thiếu: {exc.message}",
                    code="resume",
                ) from exc
        todo = [part for part in parts if part.key not in sent]
        write = self._writer(message)
        try:
            attachments = {p.key: await self._attach(p) for p in todo if p.path is not None}
            for part in todo:
                sent[part.key] = await self._write_part(part, attachments.get(part.key), write)
        except PlatformError as exc:
            if sent:
                exc.args = (
                    f"Đã gửi {len(sent)}/{len(parts)} phần (nội dung, tệp đính kèm); phần "
                    f"còn thiếu chưa gửi, lần gửi sau chỉ gửi phần đó. {exc.message}",
                )
            raise
        return Receipt(remote_id=sent[parts[0].key])

    def _writer(self, message: OutboundMessage) -> Callable[[dict[str, Any]], Awaitable[Any]]:
        """Posts one `message` body to the group or, as a CS message, to the user."""
        if message.channel == "zalo_group":
            path, recipient = "/v3.0/oa/group/message", {"group_id": message.target_id}
        else:
            path, recipient = "/v3.0/oa/message/cs", {"user_id": message.target_id}

        async def write(content: dict[str, Any]) -> Any:
            body = {"recipient": recipient, "message": content}
            return await self._call("POST", path, json_body=body)

        return write

    async def _attach(self, part: Part, *, refused: str | None = None) -> Attachment:
        assert part.path is not None
        kind = "file" if part.document is not None else "image"
        return await self._attachments.get(part.path, kind, refused=refused)

    async def _write_part(
        self,
        part: Part,
        attachment: Attachment | None,
        write: Callable[[dict[str, Any]], Awaitable[Any]],
    ) -> str:
        """Send one part; a reused upload Zalo no longer knows is uploaded again, once."""
        try:
            data = await write(message_content(part, attachment))
        except (Unavailable, Rejected) as exc:
            if attachment is None or not attachment.reused or exc.code not in STALE_UPLOAD_CODES:
                raise
            await self._attachments.forget(attachment)
            fresh = await self._attach(part, refused=attachment.remote_id)
            data = await write(message_content(part, fresh))
        return str(data["message_id"])

    async def _upload(self, kind: str, name: str, data: bytes, mime: str) -> str:
        """Upload an image (→ attachment_id) or a document (→ token) to Zalo."""

        async def attempt(token: str) -> Any:
            async with mapped_errors("POST"):
                response = await self._client.post(
                    f"/v2.0/oa/upload/{kind}",
                    files={"file": (name, data, mime or "application/octet-stream")},
                    headers={"access_token": token},
                )
            return check_response(response.status_code, _json(response), write=True)

        try:
            result = await self._authorised(attempt)
        except OutcomeUnknown as exc:  # an unused upload harms nobody: upload again
            raise Unavailable(exc.message, code=exc.code) from exc
        except Rejected as exc:
            raise Rejected(f"Zalo không nhận tệp «{name}»: {exc.message}", code=exc.code) from exc
        return str(result["token" if kind == "file" else "attachment_id"])

    async def _check_window(self, user_id: str) -> None:
        """Ask Zalo before writing: outside the 7-day window the message would be refused."""
        data = await self._call(
            "POST", "/v3.0/oa/quota/message", json_body={"user_id": user_id}, read=True
        )
        last = int((data or {}).get("last_interaction") or 0) / 1000
        if not last or self._clock() - datetime.fromtimestamp(last, UTC) > CS_WINDOW:
            raise Rejected(REJECTION_REASONS[-230], code="-230")
        reply = (data or {}).get("cs_reply") or {}
        if isinstance(reply, dict) and str(reply.get("remain", "1")) == "0":
            raise Unavailable(
                "Hết lượt nhắn tư vấn cho người này; sẽ thử lại sau.",
                code="-211",
                retry_after=QUOTA_RETRY_SECONDS,
            )

    def _night_wait(self) -> float | None:
        """Seconds until 06:00 if Zalo would refuse a broadcast now (22:00-05:59 in Vietnam)."""
        local = self._clock().astimezone(VIETNAM).time()
        if BROADCAST_FROM <= local < BROADCAST_UNTIL:
            return None
        return _seconds_until_morning(self._clock())

    async def _broadcast(self, message: OutboundMessage) -> Any:
        wait = self._night_wait()
        if wait is not None:
            raise Unavailable(
                "Zalo không phát tin vào ban đêm; sẽ phát lúc 06:00.",
                code=str(NIGHT),
                retry_after=wait,
            )
        article_id = await self._publish_article(message)
        attachment = {
            "type": "template",
            "payload": {
                "template_type": "media",
                "elements": [{"media_type": "article", "attachment_id": article_id}],
            },
        }
        body = {"recipient": {"target": dict(self._target)}, "message": {"attachment": attachment}}
        return await self._call("POST", "/v2.0/oa/message", json_body=body)

    async def _publish_article(self, message: OutboundMessage) -> str:
        """Create and verify the article. Nothing reaches followers yet, so failures retry."""
        paragraphs = [p.strip() for p in message.text.split("\n\n") if p.strip()]
        images = [self._public_url(path) for path in message.images]
        body: list[dict[str, str]] = [{"type": "image", "url": url} for url in images]
        body += [{"type": "text", "content": p} for p in paragraphs]
        article = {
            "type": "normal",
            "title": message.title[:150],
            "description": (paragraphs[0] if paragraphs else message.title)[:300],
            "cover": {
                "cover_type": "photo",
                "photo_url": images[0] if images else self._cover_url,
                "status": "show",
            },
            "body": body,
            "status": "show",
            "comment": "show",
        }
        try:
            token = (await self._call("POST", "/v2.0/article/create", json_body=article))["token"]
            for _ in range(self._verify_polls):
                try:
                    verified = await self._call(
                        "POST", "/v2.0/article/verify", json_body={"token": token}
                    )
                    return str(verified["id"])
                except Unavailable as exc:
                    if exc.code != str(ARTICLE_PROCESSING):
                        raise
                    await asyncio.sleep(self._verify_poll_seconds)
        except OutcomeUnknown as exc:
            # Followers get nothing until the broadcast call, so retrying is safe for them;
            # a retry may leave an extra article on the OA's page (reused in a later change).
            raise Unavailable(exc.message, code=exc.code) from exc
        raise Unavailable("Zalo xử lý bài viết quá lâu.", code=str(ARTICLE_PROCESSING))

    def _public_url(self, path: Path) -> str:
        """Where followers' phones fetch an article image (the office serves its media)."""
        if not self._media_url:
            raise Rejected(
                "Bài viết Zalo có ảnh cần CDBOT_PUBLIC_MEDIA_URL (địa chỉ công khai của ảnh).",
                code="media_url",
            )
        return f"{self._media_url.rstrip('/')}/{quote(path.name)}"

    async def find_sent(self, message: OutboundMessage, since: datetime) -> Receipt | None:
        """Page back through the group's or the user's conversation to `since`.

        A message in several parts counts as sent only when every part is there; a partial
        one is reported absent, and the resend (with `resume_since`) sends only the rest.
        A broadcast cannot be read back; nor can a conversation deeper than
        `HISTORY_PAGES` pages: both raise CannotTell rather than guess "absent".
        """
        if message.channel not in ("zalo_group", "zalo_user", "zalo_mention"):
            raise CannotTell(
                "Zalo không cho đọc lại tin phát đến người quan tâm.", code="unreadable"
            )
        if message.channel == "zalo_mention":
            group_id = message.target_id.split("/", 1)[0]
            message = message.model_copy(update={"channel": "zalo_group", "target_id": group_id})
        parts = parts_of(message)
        found = await self._find_parts(message, parts, since)
        if all(part.key in found for part in parts):
            return Receipt(remote_id=found[parts[0].key])
        return None

    async def _find_parts(
        self, message: OutboundMessage, parts: Sequence[Part], since: datetime
    ) -> dict[PartKey, str]:
        """The message id of each part the OA sent since `since` (5 minutes' slack)."""
        wanted = {part.key for part in parts}
        found: dict[PartKey, str] = {}
        cutoff = (since - timedelta(minutes=5)).timestamp() * 1000
        for page in range(HISTORY_PAGES):
            history = await self._history(message, offset=page * HISTORY_PAGE_SIZE)
            for item in history:
                sent_by_oa = item.get("src") in (0, "0")
                recent = int(item.get("time") or cutoff) >= cutoff
                key = history_key(item)
                if sent_by_oa and recent and key in wanted:
                    found.setdefault(key, str(item.get("message_id")))
            if wanted <= found.keys():
                return found
            oldest = min((int(item.get("time") or 0) for item in history), default=0)
            if len(history) < HISTORY_PAGE_SIZE or oldest < cutoff:
                return found
        raise CannotTell(
            "Hội thoại quá dài, không đọc lại được tới lúc gửi.", code="history_too_deep"
        )

    async def _history(self, message: OutboundMessage, *, offset: int) -> list[dict[str, Any]]:
        if message.channel == "zalo_group":
            params = {
                "group_id": message.target_id,
                "offset": str(offset),
                "count": str(HISTORY_PAGE_SIZE),
            }
            history = await self._call("GET", "/v3.0/oa/group/conversation", params=params)
        else:
            query = {"user_id": message.target_id, "offset": offset, "count": HISTORY_PAGE_SIZE}
            params = {"data": json.dumps(query)}
            history = await self._call("GET", "/v2.0/oa/conversation", params=params)
        return [item for item in history or [] if isinstance(item, dict)]

    async def groups(self) -> list[GroupInfo]:
        """Every GMF group the OA manages (paged through getgroupsofoa)."""
        found: list[GroupInfo] = []
        for offset in range(0, 10_000, GROUP_PAGE):
            params = {"offset": str(offset), "count": str(GROUP_PAGE)}
            data = await self._call("GET", "/v3.0/oa/group/getgroupsofoa", params=params) or {}
            page = [g for g in data.get("groups") or [] if isinstance(g, dict)]
            found += [GroupInfo.from_summary(g) for g in page]
            if len(page) < GROUP_PAGE:
                break
        return found

    async def group(self, group_id: str) -> GroupInfo:
        """One group with its status and when its GMF asset runs out."""
        data = await self._call("GET", "/v3.0/oa/group/getgroup", params={"group_id": group_id})
        info = GroupInfo.from_summary((data or {}).get("group_info") or {"group_id": group_id})
        valid = str(((data or {}).get("asset_info") or {}).get("valid_through") or "")
        try:
            expires = datetime.strptime(valid, "%d/%m/%Y").replace(tzinfo=VIETNAM).date()
        except ValueError:
            expires = None
        return dataclasses.replace(info, asset_valid_through=expires)

    async def check(self) -> None:
        """Read the OA's profile; AuthExpired if the token or the OA no longer works."""
        await self._call("GET", "/v2.0/oa/getoa")

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

"""Facebook Page connector over the Graph API (`POST /{page-id}/feed`, `/photos`).

Errors are classified from the JSON body, never from the HTTP status alone: see
`check_response` and its table in tests/unit/test_facebook_errors.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from connectors._http import mapped_errors, new_client
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
    fingerprint,
)

THROTTLE_CODES = frozenset({4, 17, 32, 341, 613, *range(80001, 80015)})
AUTH_CODES = frozenset({102, 190, 10, *range(200, 300)})
AMBIGUOUS_CODES = frozenset({1, 2})
# Reasons the officer reads when Facebook refuses the content itself.
REJECTION_REASONS: Mapping[int, str] = {
    100: "Facebook báo tham số không hợp lệ (ảnh hoặc liên kết bị từ chối).",
    197: "Bài viết trống: cần có nội dung hoặc liên kết.",
    506: "Facebook từ chối vì bài trùng với bài vừa đăng; hãy sửa nội dung.",
    1500: "Liên kết không hợp lệ.",
    1609005: "Facebook không đọc được liên kết; hãy kiểm tra trang đích.",
    5101: "Tệp tải lên quá lớn.",
}
POLICY_BLOCK_SECONDS = 6 * 3600
DEFAULT_THROTTLE_SECONDS = 300
# Usage headers: slow down above 80 %, stop above 95 % (Meta: "stop making API calls").
SLOW_AT, SLOW_SECONDS = 80.0, 120.0
PAUSE_AT, PAUSE_SECONDS = 95.0, 900.0
# Read-back: 100 posts a page, at most 20 pages (far more than a Page posts between a send
# and its look, at the minimum gap between posts).
HISTORY_PAGE_SIZE = 100
HISTORY_PAGES = 20
VIDEO_READY = "ready"
VIDEO_FAILED = frozenset({"error", "failed", "expired"})


def _usage_entries(headers: Mapping[str, str]) -> list[dict[str, Any]]:
    """Every usage object in the rate-limit headers (app, page, business use case)."""
    entries: list[dict[str, Any]] = []
    for key in ("x-app-usage", "x-page-usage", "x-business-use-case-usage"):
        raw = headers.get(key)
        if not raw:
            continue
        try:
            value = json.loads(raw)
        except ValueError:
            continue
        if key != "x-business-use-case-usage":
            value = {"": [value]}
        if isinstance(value, dict):
            entries += [e for group in value.values() if isinstance(group, list) for e in group]
    return [e for e in entries if isinstance(e, dict)]


def _regain_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest `estimated_time_to_regain_access` (minutes) in the usage headers, in seconds."""
    minutes = [
        float(e["estimated_time_to_regain_access"])
        for e in _usage_entries(headers)
        if isinstance(e.get("estimated_time_to_regain_access"), int | float)
    ]
    longest = max(minutes, default=0.0)
    return longest * 60 if longest > 0 else None


def usage_percent(headers: Mapping[str, str]) -> float:
    """The highest call, time or CPU percentage any usage header reports."""
    fields = ("call_count", "total_time", "total_cputime")
    values = [
        float(e[f])
        for e in _usage_entries(headers)
        for f in fields
        if isinstance(e.get(f), int | float)
    ]
    return max(values, default=0.0)


def cooldown_for(headers: Mapping[str, str], min_gap: float) -> float:
    """How long the Page should rest after a publish: the gap, longer when usage is high."""
    usage = usage_percent(headers)
    if usage >= PAUSE_AT:
        return max(_regain_seconds(headers) or 0.0, PAUSE_SECONDS, min_gap)
    if usage >= SLOW_AT:
        return max(SLOW_SECONDS, min_gap)
    return min_gap


def check_response(
    status: int, headers: Mapping[str, str], body: Any, *, write: bool
) -> dict[str, Any]:
    """Return the Graph API's JSON body, or raise the error class it stands for."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        if status >= 500 or not isinstance(body, dict):
            cls = OutcomeUnknown if write else Unavailable
            raise cls(f"Facebook trả HTTP {status} không kèm nội dung lỗi", code=f"http_{status}")
        if status >= 400:
            raise Rejected(f"Facebook trả HTTP {status}", code=f"http_{status}")
        return body
    code = int(error.get("code") or 0)
    subcode = int(error.get("error_subcode") or 0)
    label = f"{code}/{subcode}" if subcode else str(code)
    detail = str(error.get("message") or "")
    if code in THROTTLE_CODES or (code == 368 and subcode == 1390008):
        wait = _regain_seconds(headers) or DEFAULT_THROTTLE_SECONDS
        raise Throttled(f"Facebook yêu cầu giảm tốc: {detail}", code=label, retry_after=wait)
    if code == 368:
        raise Throttled(
            f"Facebook tạm chặn đăng bài vì chính sách: {detail}",
            code=label,
            retry_after=POLICY_BLOCK_SECONDS,
        )
    if code in AUTH_CODES or "appsecret_proof" in detail:
        raise AuthExpired(
            f"Mã truy cập Trang Facebook không còn hiệu lực hoặc thiếu quyền ({label}): {detail}",
            code=label,
        )
    if code in AMBIGUOUS_CODES or error.get("is_transient") is True or status >= 500:
        cls = OutcomeUnknown if write else Unavailable
        raise cls(f"Facebook lỗi tạm thời ({label}): {detail}", code=label)
    reason = REJECTION_REASONS.get(code, "Facebook từ chối bài viết.")
    raise Rejected(f"{reason} ({label}: {detail})", code=label)


class FacebookPageConnector:
    """Publishes to one Facebook Page with a Page access token."""

    account = "facebook"
    channels = frozenset({"facebook_page"})

    def __init__(
        self,
        *,
        graph_url: str,
        api_version: str,
        page_id: str,
        page_token: str,
        app_secret: str | None = None,
        video_url: str | None = None,
        min_gap_seconds: float = 0.0,
        timeout: float = 30.0,
        video_poll_seconds: float = 5.0,
        video_polls: int = 40,  # 200 s: well inside the delivery's 300 s lease
        sandbox: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sandbox = sandbox
        self._version = api_version
        self._page_id = page_id
        self._token = page_token
        self._app_secret = app_secret
        self._min_gap = min_gap_seconds
        self._video_poll_seconds = video_poll_seconds
        self._video_polls = video_polls
        self._client = new_client(graph_url, timeout, transport)
        self._video_client = new_client(video_url or graph_url, timeout, transport)
        self.last_usage: dict[str, str] = {}

    def _auth(self) -> dict[str, str]:
        params = {"access_token": self._token}
        if self._app_secret:
            now = str(int(time.time()))
            message = f"{self._token}|{now}".encode()
            proof = hmac.new(self._app_secret.encode(), message, hashlib.sha256).hexdigest()
            params |= {"appsecret_proof": proof, "appsecret_time": now}
        return params

    async def _call(
        self,
        method: str,
        path: str,
        *,
        data: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        files: dict[str, tuple[str, Any, str]] | None = None,
        video_host: bool = False,
    ) -> dict[str, Any]:
        url = f"/{self._version}/{path}"
        client = self._video_client if video_host else self._client
        async with mapped_errors(method):
            if method == "GET":
                response = await client.get(url, params=(params or {}) | self._auth())
            else:
                body = (data or {}) | self._auth()
                response = await client.post(url, data=body, files=files)
        self.last_usage = {
            key: value
            for key, value in response.headers.items()
            if key in ("x-app-usage", "x-business-use-case-usage", "x-page-usage")
        }
        try:
            payload = response.json()
        except ValueError:
            payload = None
        return check_response(
            response.status_code, response.headers, payload, write=method != "GET"
        )

    def _receipt(self, remote_id: str, permalink: str | None) -> Receipt:
        return Receipt(
            remote_id=remote_id,
            permalink=permalink,
            cooldown=cooldown_for(self.last_usage, self._min_gap),
        )

    async def send(self, message: OutboundMessage) -> Receipt:
        """Publish text or a link on the feed; images as a photo post; a video."""
        if message.video is not None:
            return await self._send_video(message, message.video)
        if len(message.images) == 1:
            return await self._send_photo(message)
        if message.images:
            return await self._send_album(message)
        data = {"message": message.text, "fields": "id,permalink_url"}
        if message.link:
            data["link"] = message.link
        result = await self._call("POST", f"{self._page_id}/feed", data=data)
        return self._receipt(str(result["id"]), result.get("permalink_url"))

    async def _send_photo(self, message: OutboundMessage) -> Receipt:
        data = {"caption": message.text, "published": "true"}
        files = _upload(message.images[0])
        result = await self._call("POST", f"{self._page_id}/photos", data=data, files=files)
        post_id = str(result.get("post_id") or result["id"])
        usage = self.last_usage
        permalink = await self._permalink(post_id)
        self.last_usage = usage  # the publish's usage decides the rest, not the read's
        return self._receipt(post_id, permalink)

    async def _send_album(self, message: OutboundMessage) -> Receipt:
        media: list[str] = []
        for path in message.images[:10]:
            files = _upload(path)
            try:
                photo = await self._call(
                    "POST", f"{self._page_id}/photos", data={"published": "false"}, files=files
                )
            except OutcomeUnknown as exc:  # an unpublished photo is invisible: safe to redo
                raise Unavailable(exc.message, code=exc.code) from exc
            media.append(str(photo["id"]))
        data = {"message": message.text, "fields": "id,permalink_url"}
        data |= {f"attached_media[{i}]": json.dumps({"media_fbid": m}) for i, m in enumerate(media)}
        result = await self._call("POST", f"{self._page_id}/feed", data=data)
        return self._receipt(str(result["id"]), result.get("permalink_url"))

    async def _send_video(self, message: OutboundMessage, path: Path) -> Receipt:
        """Upload to the video host, then wait until Facebook has processed it."""
        data = {"description": message.text, "title": message.title[:255]}
        mime = "video/quicktime" if path.suffix.lower() == ".mov" else "video/mp4"
        try:
            stream = path.open("rb")  # streamed by httpx: a video may be near 1 GB
        except OSError as exc:
            raise Rejected(f"Không đọc được tệp «{path.name}» để tải lên.", code="media") from exc
        with stream:
            result = await self._call(
                "POST",
                f"{self._page_id}/videos",
                data=data,
                files={"source": (path.name, stream, mime)},
                video_host=True,
            )
        video_id = str(result["id"])
        usage = self.last_usage
        try:
            return await self._await_video(video_id, usage)
        except (Throttled, AuthExpired, Unavailable) as exc:
            # The video is uploaded and Facebook will publish it: never upload it again.
            raise OutcomeUnknown(exc.message, code=exc.code) from exc

    async def _await_video(self, video_id: str, usage: dict[str, str]) -> Receipt:
        for _ in range(self._video_polls):
            status = await self._video_status(video_id)
            if status == VIDEO_READY:
                post_id, permalink = await self._video_post(video_id)
                self.last_usage = usage
                return self._receipt(post_id, permalink)
            if status in VIDEO_FAILED:
                raise Rejected(
                    "Facebook không xử lý được video; hãy kiểm tra định dạng (MP4) và độ dài.",
                    code=f"video_{status}",
                )
            await asyncio.sleep(self._video_poll_seconds)
        raise OutcomeUnknown(
            "Video đã tải lên nhưng Facebook xử lý quá lâu; sẽ đối soát sau.", code="video_slow"
        )

    async def _video_status(self, video_id: str) -> str:
        try:
            result = await self._call("GET", video_id, params={"fields": "status"})
        except Unavailable:
            return "processing"  # ask again at the next poll
        status = result.get("status")
        return str(status.get("video_status", "")) if isinstance(status, dict) else ""

    async def _video_post(self, video_id: str) -> tuple[str, str | None]:
        """The Page post a ready video became (its id matches read-back), and its link."""
        try:
            result = await self._call("GET", video_id, params={"fields": "post_id,permalink_url"})
        except PlatformError:
            return video_id, None
        return str(result.get("post_id") or video_id), result.get("permalink_url")

    async def check(self) -> None:
        """Read the Page with its token; AuthExpired if the token no longer works."""
        await self._call("GET", self._page_id, params={"fields": "id,name"})

    async def _permalink(self, post_id: str) -> str | None:
        """Best effort: the post is already live, so no failure here may undo the send."""
        try:
            result = await self._call("GET", post_id, params={"fields": "permalink_url"})
        except PlatformError:
            return None
        return result.get("permalink_url")

    async def find_sent(self, message: OutboundMessage, since: datetime) -> Receipt | None:
        """Page back through the Page's posts to `since`; match the message by its fingerprint.

        Posts come newest first; more than `HISTORY_PAGES` pages of them raise CannotTell
        rather than guess "absent" (absent means sent again).
        """
        params = {
            "fields": "id,message,created_time,permalink_url",
            "since": str(int((since - timedelta(minutes=5)).timestamp())),
            "limit": str(HISTORY_PAGE_SIZE),
        }
        wanted = message.fingerprint
        for _ in range(HISTORY_PAGES):
            result = await self._call("GET", f"{self._page_id}/published_posts", params=params)
            for post in result.get("data", []):
                if fingerprint(str(post.get("message", ""))) == wanted:
                    return self._receipt(str(post["id"]), post.get("permalink_url"))
            paging = result.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                break
            params["after"] = str(after)
        else:
            raise CannotTell(
                "Trang có quá nhiều bài mới từ lúc gửi, không đọc lại được tới lúc đó.",
                code="history_too_deep",
            )
        if message.video is not None:
            # A video still being processed is not among the published posts yet.
            raise CannotTell(
                "Video có thể vẫn đang được Facebook xử lý; "
                "hãy xem trên Trang rồi gửi lại nếu thiếu.",
                code="video_processing",
            )
        return None

    async def aclose(self) -> None:
        """Close the HTTP clients."""
        await self._client.aclose()
        await self._video_client.aclose()


def _upload(path: Path, mime: str | None = None) -> dict[str, tuple[str, bytes, str]]:
    """The multipart `source` field for a file, or Rejected if the file is gone."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Rejected(f"Không đọc được tệp «{path.name}» để tải lên.", code="media") from exc
    mime = mime or ("image/png" if path.name.lower().endswith(".png") else "image/jpeg")
    return {"source": (path.name, data, mime)}

"""Facebook Page connector over the Graph API (`POST /{page-id}/feed`, `/photos`).

Errors are classified from the JSON body, never from the HTTP status alone: see
`check_response` and its table in tests/unit/test_facebook_errors.py.
"""

from __future__ import annotations

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


def _regain_seconds(headers: Mapping[str, str]) -> float | None:
    """The longest `estimated_time_to_regain_access` (minutes) in the usage header, in seconds."""
    raw = headers.get("x-business-use-case-usage")
    if not raw:
        return None
    try:
        usage = json.loads(raw)
        minutes = max(
            float(entry.get("estimated_time_to_regain_access", 0))
            for entries in usage.values()
            for entry in entries
        )
    except (ValueError, TypeError, AttributeError):
        return None
    return minutes * 60 if minutes > 0 else None


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
        timeout: float = 30.0,
        sandbox: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.sandbox = sandbox
        self._version = api_version
        self._page_id = page_id
        self._token = page_token
        self._app_secret = app_secret
        self._client = new_client(graph_url, timeout, transport)
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
        files: dict[str, tuple[str, bytes, str]] | None = None,
    ) -> dict[str, Any]:
        url = f"/{self._version}/{path}"
        async with mapped_errors(method):
            if method == "GET":
                response = await self._client.get(url, params=(params or {}) | self._auth())
            else:
                body = (data or {}) | self._auth()
                response = await self._client.post(url, data=body, files=files)
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

    async def send(self, message: OutboundMessage) -> Receipt:
        """Publish text or a link on the feed; one or several images as a photo post."""
        if len(message.images) == 1:
            return await self._send_photo(message)
        if message.images:
            return await self._send_album(message)
        data = {"message": message.text, "fields": "id,permalink_url"}
        if message.link:
            data["link"] = message.link
        result = await self._call("POST", f"{self._page_id}/feed", data=data)
        return Receipt(remote_id=str(result["id"]), permalink=result.get("permalink_url"))

    async def _send_photo(self, message: OutboundMessage) -> Receipt:
        data = {"caption": message.text, "published": "true"}
        files = _upload(message.images[0])
        result = await self._call("POST", f"{self._page_id}/photos", data=data, files=files)
        post_id = str(result.get("post_id") or result["id"])
        return Receipt(remote_id=post_id, permalink=await self._permalink(post_id))

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
        return Receipt(remote_id=str(result["id"]), permalink=result.get("permalink_url"))

    async def _permalink(self, post_id: str) -> str | None:
        """Best effort: the post is already live, so no failure here may undo the send."""
        try:
            result = await self._call("GET", post_id, params={"fields": "permalink_url"})
        except PlatformError:
            return None
        return result.get("permalink_url")

    async def find_sent(self, message: OutboundMessage, since: datetime) -> Receipt | None:
        """Read the Page's recent posts and match the message by its text fingerprint."""
        params = {
            "fields": "id,message,created_time,permalink_url",
            "since": str(int((since - timedelta(minutes=5)).timestamp())),
            "limit": "100",
        }
        result = await self._call("GET", f"{self._page_id}/published_posts", params=params)
        wanted = fingerprint(message.text)
        for post in result.get("data", []):
            if fingerprint(str(post.get("message", ""))) == wanted:
                return Receipt(remote_id=str(post["id"]), permalink=post.get("permalink_url"))
        return None

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


def _upload(path: Path) -> dict[str, tuple[str, bytes, str]]:
    """The multipart `source` field for an image, or Rejected if the file is gone."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise Rejected(f"Không đọc được ảnh «{path.name}» để tải lên.", code="media") from exc
    mime = "image/png" if path.name.lower().endswith(".png") else "image/jpeg"
    return {"source": (path.name, data, mime)}

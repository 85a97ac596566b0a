"""Fake Graph API for one Page: feed, photos, videos, read-back, usage headers and faults."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.facebook_posts import (
    MAX_PHOTO_BYTES,
    GraphError,
    PagePosts,
    Reply,
    graph_error,
    no_object,
)
from connectors.sandbox.facebook_videos import VIDEO_HEAD_BYTES, PageVideos, VideoSource
from connectors.sandbox.faults import (
    FB_RETRY_LATER,
    FB_REVOKED,
    FB_THROTTLED,
    CutConnection,
    Fault,
    apply_fault,
)
from connectors.sandbox.state import SandboxState

VERSION_RE = re.compile(r"v\d+\.\d+")
MEDIA_KEY_RE = re.compile(r"attached_media\[(\d+)\]")


@dataclass
class Call:
    """One Graph request with its parameters merged from query, form or JSON."""

    method: str
    parts: list[str]
    params: dict[str, Any]
    files: dict[str, bytes]
    request: Request
    sizes: dict[str, int] = field(default_factory=dict)


def bare_status(status: int) -> Response:
    """A status with a proxy-style HTML body and no JSON, as load balancers answer."""
    body = f"<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>"
    return HTMLResponse(body, status_code=status)


class GraphApi:
    """The Graph API routes, bound to one `SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.posts = PagePosts(state)
        self.videos = PageVideos(state, self.posts)

    def routes(self) -> list[BaseRoute]:
        """One catch-all route; Zalo's explicit routes must be mounted before it."""
        return [Route("/{version}/{path:path}", self.endpoint, methods=["GET", "POST", "DELETE"])]

    async def endpoint(self, request: Request) -> Response:
        """Log, count, read parameters, take a fault and dispatch."""
        parts = [p for p in str(request.path_params["path"]).split("/") if p]
        route = self._route_key(request.method, parts)
        if not VERSION_RE.fullmatch(request.path_params["version"]):
            route = None
        entry = self.state.log_request("facebook", request.method, request.url.path, route)
        percent, regain = self.state.fb_usage()
        fault: Fault | None = None
        response: Response
        try:
            if route is None:
                response = no_object(request.method, "/".join(parts)).response()
            elif regain:
                response = self._throttled(regain)
            else:
                call = await self._read_call(request, parts)
                duplicate = route in ("fb.feed", "fb.photos") and self._is_duplicate(call.params)
                fault = self.state.take_fault(route, duplicate=duplicate)
                response = await apply_fault(
                    fault, lambda: self._guarded(call), self._render, self.state.sleep
                )
        except GraphError as error:
            response = error.response()
        except BaseException:
            self.state.finish_request(entry, None, "cancelled")
            raise
        self._usage_headers(response, percent, request.path_params["version"])
        outcome = f"fault:{fault.kind}" if fault else _outcome(response)
        # A throttle answer says when the Page may call again; a test checks it waits.
        wait: float | None = regain * 60.0 if regain and route is not None else None
        if fault is not None and fault.kind == "throttle":
            wait = fault.minutes * 60.0
        status = None if isinstance(response, CutConnection) else response.status_code
        self.state.finish_request(entry, status, outcome, regain_seconds=wait)
        return response

    @staticmethod
    def _route_key(method: str, parts: list[str]) -> str | None:
        if len(parts) == 2 and method == "POST" and parts[1] in ("feed", "photos", "videos"):
            return f"fb.{parts[1]}"
        if len(parts) == 2 and method == "GET" and parts[1] in ("published_posts", "feed", "posts"):
            return "fb.published_posts"
        if len(parts) == 1:
            return {"GET": "fb.post_read", "POST": "fb.post_update", "DELETE": "fb.post_delete"}[
                method
            ]
        return None

    async def _read_call(self, request: Request, parts: list[str]) -> Call:
        call = Call(request.method, parts, dict(request.query_params), {}, request)
        content_type = request.headers.get("content-type", "")
        if request.method == "GET":
            return call
        if content_type.startswith("application/json"):
            raw = await request.body()
            try:
                data = json.loads(raw) if raw.strip() else {}
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise GraphError(100, "(#100) The request body is not a valid JSON object")
            call.params.update(data)
        elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            # Only a video's first bytes are read: uploads may be up to 1 GB.
            limit = VIDEO_HEAD_BYTES if parts[-1] == "videos" else MAX_PHOTO_BYTES + 1
            async with request.form(max_part_size=8 * 1024 * 1024) as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        call.files[key] = await value.read(limit)
                        call.sizes[key] = value.size or len(call.files[key])
                    else:
                        call.params[key] = value
        return call

    def _is_duplicate(self, params: dict[str, Any]) -> bool:
        text = str(params.get("message") or params.get("caption") or "")
        with self.state.lock:
            return bool(self.state.fb_posts) and self.state.fb_posts[-1].message == text

    async def _guarded(self, call: Call) -> Reply:
        try:
            self._check_auth(call)
            return self._dispatch(call)
        except GraphError as error:
            return error.response(), False

    def _dispatch(self, call: Call) -> Reply:
        method, parts, params = call.method, call.parts, call.params
        target = self.state.fb_page_id if parts[0] == "me" else parts[0]
        if len(parts) == 2:
            if target != self.state.fb_page_id:
                raise no_object(method, target)
            if method == "GET":
                return self.posts.list_posts(params, call.request.url), False
            if parts[1] == "feed":
                return self.posts.create_post(params, attached_media(params))
            if parts[1] == "videos":
                return self.videos.upload(params, _video_source(call))
            return self.posts.upload_photo(params, call.files)
        video = self.videos.find(target)
        if video is not None:
            if method == "GET":
                return self.videos.read(video, params), False
            if method == "DELETE":
                return self.videos.delete(video)
            raise no_object(method, target)
        if method == "GET":
            return self.posts.read_object(target, params), False
        if method == "POST":
            return self.posts.update_post(target, params)
        return self.posts.delete_object(target)

    def _check_auth(self, call: Call) -> None:
        params = call.params
        token = str(params.get("access_token") or "")
        if not token:
            auth = call.request.headers.get("authorization", "")
            scheme, _, value = auth.partition(" ")
            if scheme.lower() in ("bearer", "oauth"):
                token = value.strip()
        status = self.state.fb_tokens.get(token)
        if status is None:
            raise GraphError(
                190, "Invalid OAuth access token - Cannot parse access token", subcode=467
            )
        secret = self.state.fb_app_secret
        if secret and not _proof_ok(secret, token, params, self.state.now().timestamp()):
            raise GraphError(
                100,
                "Invalid appsecret_proof provided in the API argument",
                error_type="GraphMethodException",
            )
        if status == "revoked":
            raise GraphError(190, FB_REVOKED, subcode=460)
        if status == "expired":
            raise GraphError(
                190, "Error validating access token: Session has expired.", subcode=463
            )

    def _render(self, fault: Fault) -> Response:
        if fault.kind in ("drop", "commit_then_reset"):
            return CutConnection()
        if fault.kind in ("http_status", "hang_no_commit"):
            return bare_status(fault.http_status if fault.kind == "http_status" else 504)
        if fault.kind == "throttle":
            return self._throttled(fault.minutes, status=fault.http_status)
        if fault.kind == "commit_then_error":
            return graph_error(2, FB_RETRY_LATER, status=500, is_transient=True)
        return graph_error(
            fault.code if fault.code is not None else 1,
            fault.message or "An unknown error occurred",
            subcode=fault.subcode,
            status=fault.http_status,
            error_type=fault.error_type,
            user_title=fault.error_user_title,
            user_msg=fault.error_user_msg,
            is_transient=fault.is_transient,
        )

    def _throttled(self, minutes: float, status: int = 400) -> Response:
        response = graph_error(80001, FB_THROTTLED, status=status, is_transient=True)
        response.headers["x-business-use-case-usage"] = self._buc(100, minutes)
        return response

    def _buc(self, percent: int, minutes: float) -> str:
        usage = {
            "type": "pages",
            "call_count": percent,
            "total_cputime": percent,
            "total_time": percent,
            "estimated_time_to_regain_access": minutes,
        }
        return json.dumps({self.state.fb_page_id: [usage]}, separators=(",", ":"))

    def _usage_headers(self, response: Response, percent: int, version: str) -> None:
        app = {"call_count": percent, "total_cputime": percent, "total_time": percent}
        response.headers["x-app-usage"] = json.dumps(app, separators=(",", ":"))
        if "x-business-use-case-usage" not in response.headers:
            response.headers["x-business-use-case-usage"] = self._buc(percent, 0)
        if VERSION_RE.fullmatch(version):
            response.headers["facebook-api-version"] = version


def _proof_ok(secret: str, token: str, params: dict[str, Any], sandbox_now: float) -> bool:
    """Either the timed form (within 300 s of the real or sandbox clock) or the legacy form."""
    proof = str(params.get("appsecret_proof") or "")
    stamp = str(params.get("appsecret_time") or "")
    key = secret.encode()
    if stamp:
        expected = hmac.new(key, f"{token}|{stamp}".encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(proof, expected):
            return False
        try:
            moment = int(stamp)
        except ValueError:
            return False
        return abs(time.time() - moment) <= 300 or abs(sandbox_now - moment) <= 300
    expected = hmac.new(key, token.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(proof, expected)


def attached_media(params: dict[str, Any]) -> list[str]:
    """Photo ids from a JSON `attached_media` list or `attached_media[N]` form keys."""
    raw: Any = params.get("attached_media")
    items: list[Any] = []
    if isinstance(raw, str) and raw.strip():
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise GraphError(100, "(#100) param attached_media must be an array") from exc
    if isinstance(raw, list):
        items.extend(raw)
    elif raw not in (None, ""):
        raise GraphError(100, "(#100) param attached_media must be an array")
    indexed = sorted(
        (int(match.group(1)), value)
        for key, value in params.items()
        if (match := MEDIA_KEY_RE.fullmatch(key))
    )
    items.extend(value for _, value in indexed)
    ids: list[str] = []
    for index, item in enumerate(items):
        value = item
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                value = None
        if not isinstance(value, dict) or not value.get("media_fbid"):
            raise GraphError(
                100, f"(#100) param attached_media[{index}] must be an object with media_fbid"
            )
        ids.append(str(value["media_fbid"]))
    return ids


def _video_source(call: Call) -> VideoSource | None:
    head = call.files.get("source")
    if head is None:
        return None
    return VideoSource(head=head, size=call.sizes.get("source", len(head)))


def _outcome(response: Response) -> str:
    if response.status_code == 200:
        return "ok"
    try:
        error = json.loads(bytes(response.body))["error"]
    except (ValueError, KeyError, TypeError):
        return f"http:{response.status_code}"
    subcode = error.get("error_subcode")
    return f"error:{error['code']}" + (f"/{subcode}" if subcode else "")

"""Fake Zalo OA Open API and OAuth v4 token endpoint, served on one host.

Token endpoint errors are not documented by Zalo; the sandbox answers HTTP 200 with
`{"error", "error_name", "error_reason", "ref_doc", "error_description"}` and these codes:

| Code   | When                                                    |
|--------|---------------------------------------------------------|
| -14001 | missing parameter or unsupported `grant_type`           |
| -14002 | `app_id` is not the sandbox app (the documented code)   |
| -14008 | header `secret_key` is missing or wrong                 |
| -14014 | refresh token unknown or already used (single use)      |
| -14015 | authorization code unknown, used or older than 10 min   |
| -14019 | `code_verifier` does not match the registered challenge |
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from connectors.sandbox.facebook import bare_status
from connectors.sandbox.faults import CutConnection, Fault, apply_fault
from connectors.sandbox.records import ZaloGroup, ZaloMessage
from connectors.sandbox.state import (
    SANDBOX_ZALO_APP_ID,
    SANDBOX_ZALO_APP_SECRET,
    SANDBOX_ZALO_OA_ID,
    SANDBOX_ZALO_OA_NAME,
    SandboxState,
)
from connectors.sandbox.zalo_oa import (
    VN,
    OaOperations,
    ZaloError,
    count_param,
    epoch_ms,
    invalid,
    ok,
)
from connectors.sandbox.zalo_uploads import UploadOperations

Handler = Callable[[Request], Awaitable[dict[str, Any]]]
ACCESS_TOKEN_SECONDS = 90000
REF_DOC = "https://developers.zalo.me/docs/official-account/phu-luc/ma-loi"


def oauth_error(code: int, name: str, description: str) -> ZaloError:
    """A token endpoint error in the shape the OAuth host uses."""
    return ZaloError(
        code,
        description,
        error_name=name,
        error_reason=description,
        ref_doc=REF_DOC,
        error_description=description,
    )


def s256(verifier: str) -> str:
    """PKCE S256: base64url without padding of the SHA-256 of the verifier."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


class ZaloApi:
    """The Zalo routes, bound to one `SandboxState`."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.oa = OaOperations(state)
        self.reads = OaReads(state)

    def routes(self) -> list[BaseRoute]:
        """Explicit routes; mount them before the Graph catch-all."""
        oa, reads, uploads = self.oa, self.reads, UploadOperations(self.state)
        table: list[tuple[str, str, str, Handler]] = [
            ("POST", "/v3.0/oa/group/message", "zalo.group_message", oa.group_message),
            ("POST", "/v3.0/oa/message/cs", "zalo.cs_message", oa.cs_message),
            ("POST", "/v3.0/oa/quota/message", "zalo.quota", oa.quota),
            ("POST", "/v2.0/article/create", "zalo.article_create", oa.article_create),
            ("POST", "/v2.0/article/verify", "zalo.article_verify", oa.article_verify),
            ("POST", "/v2.0/oa/message", "zalo.broadcast", oa.broadcast),
            ("GET", "/v3.0/oa/group/conversation", "zalo.group_read", reads.group_conversation),
            ("GET", "/v3.0/oa/group/getgroupsofoa", "zalo.group_read", reads.groups_of_oa),
            ("GET", "/v3.0/oa/group/getgroup", "zalo.group_read", reads.group_info),
            ("GET", "/v2.0/oa/conversation", "zalo.user_conversation", reads.user_conversation),
            ("GET", "/v2.0/oa/getoa", "zalo.oa_info", reads.oa_info),
            ("POST", "/v2.0/oa/upload/image", "zalo.upload", uploads.image),
            ("POST", "/v2.0/oa/upload/gif", "zalo.upload", uploads.gif),
            ("POST", "/v2.0/oa/upload/file", "zalo.upload", uploads.file),
        ]
        routes: list[BaseRoute] = [
            Route(path, self._endpoint(key, handler, openapi=True), methods=[method])
            for method, path, key, handler in table
        ]
        token = self._endpoint("zalo.access_token", self.access_token, openapi=False)
        routes.append(Route("/v4/oa/access_token", token, methods=["POST"]))
        routes.append(Route("/v4/oa/permission", self.permission, methods=["GET"]))
        return routes

    async def permission(self, request: Request) -> Response:
        """The consent page: the OA admin 'agrees' at once and is sent back with a code."""
        params = request.query_params
        redirect, challenge = params.get("redirect_uri"), params.get("code_challenge")
        if params.get("app_id") != SANDBOX_ZALO_APP_ID or not redirect or not challenge:
            return PlainTextResponse("Ứng dụng hoặc địa chỉ chuyển hướng không hợp lệ.", 400)
        code = "code-" + secrets.token_hex(12)
        self.state.register_auth_code(code, challenge)
        query = urlencode(
            {"code": code, "oa_id": SANDBOX_ZALO_OA_ID, "state": params.get("state", "")}
        )
        return RedirectResponse(f"{redirect}?{query}", status_code=302)

    def _endpoint(
        self, route: str, handler: Handler, *, openapi: bool
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            platform = "zalo" if openapi else "zalo_oauth"
            entry = self.state.log_request(platform, request.method, request.url.path, route)
            used, limit = (
                self.state.zalo_usage() if openapi else (0, self.state.zalo_rate_per_minute)
            )
            fault: Fault | None = None
            response: Response
            try:
                if used > limit:
                    response = JSONResponse(ZaloError(-32).body())
                else:
                    fault = self.state.take_fault(route)
                    response = await apply_fault(
                        fault,
                        lambda: self._run(request, handler, openapi),
                        self._render,
                        self.state.sleep,
                    )
            except BaseException:
                self.state.finish_request(entry, None, "cancelled")
                raise
            response.headers["X-RateLimit-Limit"] = str(limit)
            response.headers["X-RateLimit-Remain"] = str(max(0, limit - used))
            outcome = f"fault:{fault.kind}" if fault else _outcome(response)
            status = None if isinstance(response, CutConnection) else response.status_code
            self.state.finish_request(entry, status, outcome)
            return response

        return endpoint

    async def _run(
        self, request: Request, handler: Handler, openapi: bool
    ) -> tuple[Response, bool]:
        try:
            if openapi:
                self._check_token(request)
            body = await handler(request)
        except ZaloError as error:
            return JSONResponse(error.body()), False
        return JSONResponse(body), True

    def _check_token(self, request: Request) -> None:
        token = request.headers.get("access_token", "")
        with self.state.lock:
            if token not in self.state.zalo_access_tokens:
                raise ZaloError(-216)
            expiry = self.state.zalo_access_tokens[token]
        if expiry is not None and expiry <= self.state.now():
            raise ZaloError(-220)

    def _render(self, fault: Fault) -> Response:
        if fault.kind in ("drop", "commit_then_reset"):
            return CutConnection()
        if fault.kind == "http_status":
            return bare_status(fault.http_status)
        if fault.kind == "hang_no_commit":
            return bare_status(504)
        if fault.kind == "commit_then_error":
            return PlainTextResponse("Internal Server Error", status_code=500)
        if fault.kind == "throttle":
            return JSONResponse(ZaloError(-32).body())
        if fault.code is not None and fault.code < 0:
            return JSONResponse(ZaloError(fault.code, fault.message).body())
        return JSONResponse(ZaloError(-200).body())

    async def access_token(self, request: Request) -> dict[str, Any]:
        """`POST /v4/oa/access_token`: exchange a code (PKCE) or rotate a refresh token."""
        async with request.form() as form:
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
        if fields.get("app_id") != SANDBOX_ZALO_APP_ID:
            raise oauth_error(-14002, "Invalid appId", "Invalid appId")
        secret = request.headers.get("secret_key", "")
        if not hmac.compare_digest(secret.encode(), SANDBOX_ZALO_APP_SECRET.encode()):
            raise oauth_error(-14008, "Invalid secret key", "Invalid secret key")
        grant = fields.get("grant_type")
        now = self.state.now()
        with self.state.lock:
            if grant == "refresh_token":
                refresh = fields.get("refresh_token", "")
                if self.state.zalo_refresh_tokens.get(refresh) != "unused":
                    raise oauth_error(-14014, "Invalid parameter", "Invalid refresh token")
                self.state.zalo_refresh_tokens[refresh] = "used"
            elif grant == "authorization_code" and fields.get("code"):
                registered = self.state.zalo_auth_codes.pop(fields["code"], None)
                if registered is None or now - registered[1] > timedelta(minutes=10):
                    raise oauth_error(-14015, "Invalid parameter", "Invalid authorization code")
                if s256(fields.get("code_verifier", "")) != registered[0]:
                    raise oauth_error(-14019, "Invalid parameter", "Invalid code verifier")
            else:
                raise oauth_error(-14001, "Invalid parameter", "Missing or invalid grant")
            access = "sbx-at-" + secrets.token_urlsafe(24)
            refresh_new = "sbx-rt-" + secrets.token_urlsafe(24)
            expiry = now + timedelta(seconds=ACCESS_TOKEN_SECONDS)
            self.state.zalo_access_tokens[access] = expiry
            self.state.zalo_refresh_tokens[refresh_new] = "unused"
        return {
            "access_token": access,
            "refresh_token": refresh_new,
            "expires_in": str(ACCESS_TOKEN_SECONDS),
        }


class OaReads:
    """The read-only OA handlers: conversations, groups and the OA profile."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def group_conversation(self, request: Request) -> dict[str, Any]:
        """`GET /v3.0/oa/group/conversation?group_id=&offset=&count=`, newest first."""
        query = request.query_params
        offset = count_param(query.get("offset"), 0, 10**6)
        count = count_param(query.get("count"), 10, 50)
        group = (
            self.state.known_group(query.get("group_id") or "") if query.get("group_id") else None
        )
        if group is None:
            raise ZaloError(-403)
        with self.state.lock:
            items = list(reversed(group.messages))[offset : offset + count]
            data = [{**self._history_item(m), "group_id": group.group_id} for m in items]
        return ok(data)

    async def user_conversation(self, request: Request) -> dict[str, Any]:
        """`GET /v2.0/oa/conversation?data={"user_id","offset","count"}`, at most 10."""
        try:
            query = json.loads(request.query_params.get("data") or "")
        except ValueError:
            query = None
        if not isinstance(query, dict) or not query.get("user_id"):
            raise invalid("data")
        offset = count_param(query.get("offset"), 0, 10**6)
        count = count_param(query.get("count"), 5, 10)
        user = self.state.known_user(str(query["user_id"]))
        if user is None:
            raise invalid("user_id")
        with self.state.lock:
            items = list(reversed(user.messages))[offset : offset + count]
            data = [
                {
                    **self._history_item(m),
                    "to_id": user.user_id,
                    "to_display_name": user.display_name,
                    "to_avatar": "",
                }
                for m in items
            ]
        return ok(data)

    def _history_item(self, message: ZaloMessage) -> dict[str, Any]:
        """One read-back entry; src 0 marks what the OA sent."""
        kind = {None: "text", "file": "file"}.get(message.media_type, "photo")
        item: dict[str, Any] = {
            "src": 0,
            "time": epoch_ms(message.at),
            "sent_time": message.at.astimezone(VN).strftime("%H:%M:%S %d/%m/%Y"),
            "type": kind,
            "message": message.text,
            "message_id": message.message_id,
            "from_id": SANDBOX_ZALO_OA_ID,
            "from_display_name": SANDBOX_ZALO_OA_NAME,
            "from_avatar": "",
        }
        if message.media_url:
            item["url"] = message.media_url
        if message.file_name is not None:
            # How Zalo lists a file here is not documented: the webhook's file fields.
            item |= {"name": message.file_name, "size": message.file_size}
        return item

    async def groups_of_oa(self, request: Request) -> dict[str, Any]:
        """`GET /v3.0/oa/group/getgroupsofoa?offset=&count=`."""
        offset = count_param(request.query_params.get("offset"), 0, 10**6)
        count = count_param(request.query_params.get("count"), 5, 50)
        with self.state.lock:
            groups = list(self.state.zalo_groups.values())
            page = [_group_summary(g) for g in groups[offset : offset + count]]
        return ok(
            {
                "offset": offset,
                "count": count,
                "total": len(groups),
                "group_count": len(page),
                "groups": page,
            }
        )

    async def group_info(self, request: Request) -> dict[str, Any]:
        """`GET /v3.0/oa/group/getgroup?group_id=`."""
        group_id = request.query_params.get("group_id") or ""
        group = self.state.known_group(group_id) if group_id else None
        if group is None:
            raise ZaloError(-403)
        info = {**_group_summary(group), "max_member": "100"}
        asset = {"asset_id": f"asset-{group.group_id}", "valid_through": group.asset_valid_through}
        settings = {
            "lock_send_msg": False,
            "join_appr": True,
            "enable_msg_history": True,
            "enable_link_join": True,
        }
        return ok(
            {
                "group_info": info,
                "asset_info": {**asset, "auto_renew": "true"},
                "group_setting": settings,
            }
        )

    async def oa_info(self, request: Request) -> dict[str, Any]:
        """`GET /v2.0/oa/getoa`: the OA's profile and package."""
        return ok(
            {
                "oa_id": SANDBOX_ZALO_OA_ID,
                "name": SANDBOX_ZALO_OA_NAME,
                "is_verified": True,
                "oa_type": 2,
                "num_follower": len(self.state.zalo_users),
                "package_name": "Nâng cao",
                "package_valid_through_date": "31/12/2027",
            }
        )


def _group_summary(group: ZaloGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "avatar": "",
        "group_id": group.group_id,
        "group_link": f"https://zalo.me/g/{group.group_id}",
        "group_description": "",
        "total_member": 10,
        "status": group.status,
    }


def _outcome(response: Response) -> str:
    try:
        code = json.loads(bytes(response.body)).get("error", 0)
    except (ValueError, AttributeError):
        return f"http:{response.status_code}"
    return "ok" if code == 0 else f"error:{code}"

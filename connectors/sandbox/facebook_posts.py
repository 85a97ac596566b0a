"""The Page's posts and photos: create, upload, list, read, update and delete."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import URL
from starlette.responses import JSONResponse, Response

from connectors.sandbox.faults import FB_PHOTO_USER_MSG
from connectors.sandbox.records import FbPhoto, FbPost, parse_moment
from connectors.sandbox.state import SANDBOX_PAGE_NAME, SandboxState

POST_FIELDS = frozenset(
    {
        "id",
        "message",
        "link",
        "created_time",
        "updated_time",
        "permalink_url",
        "is_published",
        "status_type",
        "full_picture",
        "attachments",
        "scheduled_publish_time",
        "from",
    }
)
PAGE_FIELDS = frozenset({"id", "name", "link"})
MAX_PHOTO_BYTES = 4 * 1024 * 1024
IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a")
FB_TIME = "%Y-%m-%dT%H:%M:%S+0000"
NO_OBJECT = (
    "Unsupported {method} request. Object with ID '{id}' does not exist, cannot be loaded due to"
    " missing permissions, or does not support this operation. Please read the Graph API"
    " documentation at https://developers.facebook.com/docs/graph-api"
)

Reply = tuple[Response, bool]


def no_object(method: str, object_id: str) -> GraphError:
    """Graph's answer for an id that does not exist or does not take this method."""
    message = NO_OBJECT.format(method=method.lower(), id=object_id)
    return GraphError(100, message, subcode=33, error_type="GraphMethodException")


class GraphError(Exception):
    """A Graph API error answer, raised from deep inside a handler."""

    def __init__(self, code: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra

    def response(self) -> JSONResponse:
        """The error as Facebook sends it."""
        return graph_error(self.code, self.message, **self.extra)


def graph_error(
    code: int,
    message: str,
    *,
    subcode: int | None = None,
    status: int = 400,
    error_type: str = "OAuthException",
    user_title: str | None = None,
    user_msg: str | None = None,
    is_transient: bool = False,
) -> JSONResponse:
    """Facebook's error envelope."""
    error: dict[str, Any] = {"message": message, "type": error_type, "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    if user_title is not None:
        error["error_user_title"] = user_title
    if user_msg is not None:
        error["error_user_msg"] = user_msg
    error["is_transient"] = is_transient
    error["fbtrace_id"] = base64.b64encode(secrets.token_bytes(8)).decode()[:11]
    return JSONResponse({"error": error}, status_code=status)


def fb_time(moment: datetime) -> str:
    """Graph's created_time format."""
    return moment.astimezone(UTC).strftime(FB_TIME)


def truthy(value: Any, default: bool) -> bool:
    """Graph's lenient booleans ("true", "1", true)."""
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


def parse_time_param(name: str, value: Any) -> datetime:
    """Unix seconds or ISO-8601, as `since`, `until` and `scheduled_publish_time` accept."""
    text = str(value).strip()
    try:
        if re.fullmatch(r"-?\d+(\.\d+)?", text):
            return datetime.fromtimestamp(float(text), UTC)
        return parse_moment(text)
    except (ValueError, OverflowError) as exc:
        raise GraphError(100, f"(#100) The parameter {name} is not a valid time") from exc


def parse_fields(
    params: dict[str, Any], allowed: frozenset[str], default: list[str], node: str = "PagePost"
) -> list[str]:
    """The requested `fields`, checked against the node type."""
    raw = params.get("fields")
    if not raw:
        return default
    wanted = [f.strip() for f in str(raw).split(",") if f.strip()]
    for name in wanted:
        if name not in allowed:
            raise GraphError(
                100, f"(#100) Tried accessing nonexisting field ({name}) on node type ({node})"
            )
    return wanted


class PagePosts:
    """Graph operations on the sandbox Page, raising `GraphError` on bad input."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    def create_post(self, params: dict[str, Any], media: list[str]) -> Reply:
        """`POST /{page}/feed`: text, link or attached unpublished photos (`media` ids)."""
        message = str(params.get("message") or "")
        link = str(params.get("link") or "") or None
        published = truthy(params.get("published"), True)
        fields = parse_fields(params, POST_FIELDS, [])
        if not message and not link and not media:
            raise GraphError(197, "(#197) The post is empty. Please enter a message to share.")
        if link is not None and not re.match(r"https?://[^\s/]+\.[^\s]+", link):
            raise GraphError(1500, "(#1500) The url you supplied is invalid")
        now = self.state.now()
        scheduled = self._schedule(params, published, now)
        with self.state.lock:
            for index, media_id in enumerate(media):
                photo = self.state.fb_photos.get(media_id)
                if photo is None or photo.published or photo.post_id or media_id in media[:index]:
                    raise GraphError(
                        100,
                        f"(#100) param attached_media[{index}] has invalid media_fbid",
                        user_msg=f"Photo {media_id} does not exist or is already attached.",
                    )
            post = self.new_post(message, link, media, published, now)
            post.scheduled_publish_time = scheduled
        body: dict[str, Any] = {"id": post.id, "post_supports_client_mutation_id": True}
        body.update(self._post_fields(post, fields))
        return JSONResponse(body), True

    def _schedule(self, params: dict[str, Any], published: bool, now: datetime) -> datetime | None:
        raw = params.get("scheduled_publish_time")
        if raw in (None, ""):
            return None
        moment = parse_time_param("scheduled_publish_time", raw)
        if published or not now + timedelta(minutes=10) <= moment <= now + timedelta(days=30):
            raise GraphError(100, "(#100) The specified scheduled publish time is invalid.")
        return moment

    def new_post(
        self,
        message: str,
        link: str | None,
        photos: list[str],
        published: bool,
        now: datetime,
        *,
        video_id: str | None = None,
    ) -> FbPost:
        """Add a post to the feed (and to `messages()` when published)."""
        number = 122000000000000000 + self.state.next_seq()
        page = self.state.fb_page_id
        post = FbPost(
            id=f"{page}_{number}",
            message=message,
            link=link,
            created_time=now,
            permalink_url=f"https://www.facebook.com/{page}/posts/{number}",
            photo_ids=list(photos),
            published=published,
            video_id=video_id,
        )
        with self.state.lock:
            self.state.fb_posts.append(post)
            for photo_id in photos:
                self.state.fb_photos[photo_id].post_id = post.id
            if published:
                self.state.record_message(
                    "facebook", "facebook_page", page, message, post.id, video_id=video_id
                )
        return post

    def upload_photo(self, params: dict[str, Any], files: dict[str, bytes]) -> Reply:
        """`POST /{page}/photos`: a photo post, or an unpublished photo to attach later."""
        data = files.get("source")
        url = str(params.get("url") or "") or None
        if data is None and url is None:
            raise GraphError(324, "(#324) Requires upload file")
        if data is not None and (len(data) > MAX_PHOTO_BYTES or not data.startswith(IMAGE_MAGIC)):
            raise GraphError(
                100,
                "(#100) Invalid parameter",
                subcode=1366046,
                user_title="Can't upload photos",
                user_msg=FB_PHOTO_USER_MSG,
            )
        if url is not None and not url.startswith(("http://", "https://")):
            raise GraphError(
                100,
                "(#100) url should represent a valid URL",
                subcode=1366046,
                user_msg=FB_PHOTO_USER_MSG,
            )
        caption = str(params.get("caption") or params.get("message") or "")
        published = truthy(params.get("published"), True)
        now = self.state.now()
        photo = FbPhoto(
            id=str(123000000000000000 + self.state.next_seq()),
            created_time=now,
            published=published,
            caption=caption,
            url=url,
            size=len(data) if data is not None else 0,
        )
        with self.state.lock:
            self.state.fb_photos[photo.id] = photo
            if not published:
                return JSONResponse({"id": photo.id}), True
            post = self.new_post(caption, None, [photo.id], True, now)
        return JSONResponse({"id": photo.id, "post_id": post.id}), True

    def list_posts(self, params: dict[str, Any], url: URL) -> Response:
        """`GET /{page}/published_posts` (and `/feed`, `/posts`): newest first, paged."""
        fields = parse_fields(params, POST_FIELDS, ["created_time", "message", "id"])
        try:
            limit = min(100, max(1, int(params.get("limit") or 25)))
        except ValueError as exc:
            raise GraphError(100, "(#100) The parameter limit must be an integer") from exc
        since = parse_time_param("since", params["since"]) if params.get("since") else None
        until = parse_time_param("until", params["until"]) if params.get("until") else None
        now = self.state.now()
        with self.state.lock:
            posts = [p for p in self.state.fb_posts if p.visible(now)]
        posts.sort(key=lambda p: (p.created_time, p.id), reverse=True)
        if since is not None:
            posts = [p for p in posts if p.created_time >= since]
        if until is not None:
            posts = [p for p in posts if p.created_time < until]
        ids = [p.id for p in posts]
        start = 0
        if params.get("after"):
            start = _cursor_index(ids, str(params["after"])) + 1
        page = posts[start : start + limit]
        body: dict[str, Any] = {"data": [self._post_fields(p, fields) for p in page]}
        if page:
            after = _cursor(page[-1].id)
            body["paging"] = {"cursors": {"before": _cursor(page[0].id), "after": after}}
            if start + limit < len(posts):
                query = {k: str(v) for k, v in params.items() if k != "after"}
                query["after"] = after
                body["paging"]["next"] = str(url.replace(query=urlencode(query)))
        return JSONResponse(body)

    def read_object(self, object_id: str, params: dict[str, Any]) -> Response:
        """`GET /{id}` for the Page or one of its posts."""
        if object_id == self.state.fb_page_id:
            fields = parse_fields(params, PAGE_FIELDS, ["name", "id"], "Page")
            page = {
                "id": object_id,
                "name": SANDBOX_PAGE_NAME,
                "link": f"https://www.facebook.com/{object_id}",
            }
            return JSONResponse({f: page[f] for f in fields})
        post = self._find_post(object_id)
        if post is None:
            raise no_object("get", object_id)
        fields = parse_fields(params, POST_FIELDS, ["created_time", "message", "id"])
        return JSONResponse(self._post_fields(post, fields))

    def update_post(self, post_id: str, params: dict[str, Any]) -> Reply:
        """`POST /{post}`: edit the message or publish; publishing twice is harmless."""
        post = self._find_post(post_id)
        if post is None:
            raise no_object("post", post_id)
        now = self.state.now()
        with self.state.lock:
            if "message" in params:
                post.message = str(params["message"])
                post.updated_time = now
            if "is_published" in params:
                wanted = truthy(params["is_published"], True)
                if wanted and not post.published:
                    post.published = True
                    post.created_time = now
                    page, text = self.state.fb_page_id, post.message
                    self.state.record_message(
                        "facebook", "facebook_page", page, text, post.id, video_id=post.video_id
                    )
                elif not wanted and post.published:
                    post.published = False
                    self.state.forget_message(post.id)
        return JSONResponse({"success": True}), True

    def delete_object(self, object_id: str) -> Reply:
        """`DELETE /{id}` of a post, or of a photo no post uses."""
        with self.state.lock:
            post = self._find_post(object_id)
            if post is not None:
                self.state.fb_posts.remove(post)
                self.state.forget_message(post.id)
                for photo_id in post.photo_ids:
                    self.state.fb_photos.pop(photo_id, None)
                if post.video_id is not None:
                    self.state.fb_videos.pop(post.video_id, None)
                return JSONResponse({"success": True}), True
            photo = self.state.fb_photos.get(object_id)
            if photo is None or photo.post_id:
                raise no_object("delete", object_id)
            del self.state.fb_photos[object_id]
        return JSONResponse({"success": True}), True

    def _find_post(self, post_id: str) -> FbPost | None:
        with self.state.lock:
            return next((p for p in self.state.fb_posts if p.id == post_id), None)

    def _post_fields(self, post: FbPost, fields: list[str]) -> dict[str, Any]:
        first_photo = post.photo_ids[0] if post.photo_ids else post.video_id
        if post.video_id:
            status_type = "added_video"
        elif post.photo_ids:
            status_type = "added_photos"
        elif post.link:
            status_type = "shared_story"
        else:
            status_type = "mobile_status_update"
        values: dict[str, Any] = {
            "id": post.id,
            "message": post.message or None,
            "link": post.link,
            "created_time": fb_time(post.created_time),
            "updated_time": fb_time(post.updated_time or post.created_time),
            "permalink_url": post.permalink_url,
            "is_published": post.visible(self.state.now()),
            "status_type": status_type,
            "full_picture": (
                f"https://scontent.sandbox.invalid/{first_photo}.jpg" if first_photo else None
            ),
            "attachments": _attachments(post),
            "scheduled_publish_time": (
                int(post.scheduled_publish_time.timestamp())
                if post.scheduled_publish_time
                else None
            ),
            "from": {"id": self.state.fb_page_id, "name": SANDBOX_PAGE_NAME},
        }
        return {f: values[f] for f in fields if values[f] is not None}


def _attachments(post: FbPost) -> dict[str, Any] | None:
    if post.video_id:
        video = {"type": "video_inline", "target": {"id": post.video_id}}
        return {"data": [video]}
    if not post.photo_ids and not post.link:
        return None
    if post.link and not post.photo_ids:
        return {"data": [{"type": "share", "url": post.link}]}
    subs = [
        {"type": "photo", "target": {"id": photo_id}, "media": {"image": {"src": photo_id}}}
        for photo_id in post.photo_ids
    ]
    if len(subs) == 1:
        return {"data": subs}
    return {"data": [{"type": "album", "subattachments": {"data": subs}}]}


def _cursor(post_id: str) -> str:
    return base64.urlsafe_b64encode(post_id.encode()).decode().rstrip("=")


def _cursor_index(ids: list[str], cursor: str) -> int:
    try:
        post_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise GraphError(100, "(#100) The after cursor is invalid") from exc
    if post_id not in ids:
        raise GraphError(100, "(#100) The after cursor is invalid")
    return ids.index(post_id)

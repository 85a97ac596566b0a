"""The JSON API (/api/v1): posts and deliveries for scripts, with the CLI's rules.

One table, `ENDPOINTS`, gives both the routes and the OpenAPI document, so the two cannot
drift. Drafts are checked by the same functions as `cdbot post add` (bot.cli.posts), and
the JSON shapes are those of `cdbot post list/show --json`. Request bodies are JSON only,
at most `MAX_BODY` bytes; every answer, errors included, is JSON.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from functools import cache, wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaMode, models_json_schema
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from bot.cli.posts import (
    build_draft,
    canonical_clusters,
    check_targets,
    delivery_dict,
    post_detail,
    post_dict,
)
from bot.db.models import Delivery, Post
from bot.errors import BotError, InputError
from bot.texts import CHANNEL, DELIVERY_STATUS, POST_STATUS
from bot.web.app import SESSION_COOKIE, Handler, api, bot_of
from bot.web.auth import APPROVE, VIEW, WRITE, Person
from content.kinds import CATEGORIES, CHANNELS, FIELD_LABELS, KINDS, TITLE_MAX

log = logging.getLogger(__name__)
PREFIX = "/api/v1"
OPENAPI_PATH = f"{PREFIX}/openapi.json"
MAX_BODY = 256 * 1024
MAX_PAGE = 500
M = TypeVar("M", bound=BaseModel)


def _vi(text: str) -> dict[str, Any]:
    """A model's description in the document (docstrings stay English, for the code)."""
    return {"description": text}


# ---- what goes in and out -----------------------------------------------------------------


class ApiError(BaseModel):
    """Every error answer."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_vi("Lỗi, kèm lời giải thích."))
    error: str = Field(description="Lời giải thích bằng tiếng Việt, đưa thẳng cho người dùng.")
    field: str | None = Field(
        default=None, description="Trường JSON hoặc tham số gây lỗi, khi xác định được."
    )


def _names(values: Sequence[str]) -> WithJsonSchema:
    """A string field's schema listing the values it takes (the checks speak Vietnamese)."""
    return WithJsonSchema({"type": "string", "enum": list(values)})


KindName = Annotated[str, _names(tuple(KINDS))]
ChannelName = Annotated[str, _names(tuple(CHANNELS))]
CategoryName = Annotated[str, _names(tuple(CATEGORIES))]
PostStatusName = Annotated[str, _names(tuple(POST_STATUS))]
DeliveryStatusName = Annotated[str, _names(tuple(DELIVERY_STATUS))]
DeliveryChannelName = Annotated[str, _names(tuple(CHANNEL))]


class PostCreate(BaseModel):
    """A new post, as a script sends it; checked again as a `PostDraft`."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra=_vi(
            "Bài mới. Kiểm tra như lệnh «cdbot post add». Ảnh là đường dẫn tuyệt đối tới tệp "
            "đã có trên máy chủ: phiên bản API này chưa nhận tải ảnh lên."
        ),
    )
    kind: KindName = Field(description="Loại bài.")
    title: str = Field(description=f"Tiêu đề, tối đa {TITLE_MAX} ký tự.")
    body: str = Field(description="Nội dung bài.")
    link: str | None = Field(default=None, description="Liên kết http(s) chia sẻ hoặc nguồn.")
    hashtags: list[str] = Field(default_factory=list, description="Hashtag thêm, không dấu cách.")
    images: list[str] = Field(
        default_factory=list,
        description="Đường dẫn tuyệt đối tới ảnh JPEG/PNG đã tải lên qua bảng điều khiển "
        "(thư mục uploads của bot; tối đa 10).",
    )
    scheduled_at: datetime | None = Field(
        default=None,
        description="Giờ đăng, ISO 8601 kèm múi giờ (ví dụ 2026-12-01T07:30:00+07:00); "
        "bỏ trống là ngay.",
    )
    channels: list[ChannelName] | None = Field(
        default=None, description="Kênh; bỏ trống là các kênh mặc định."
    )
    clusters: list[str] | None = Field(
        default=None, description="Mã cụm thi đua; bỏ trống là mọi cụm.", min_length=1
    )
    category: CategoryName | None = Field(default=None, description="Nhóm nội dung.")
    citation: str | None = Field(default=None, description="Bài «law»: căn cứ pháp lý.")
    as_of: date | None = Field(
        default=None, description="Bài «law»: thông tin cập nhật đến ngày; mặc định hôm nay."
    )
    event_date: date | None = Field(default=None, description="Bài «event»: ngày diễn ra.")
    place: str | None = Field(default=None, description="Bài «event»: địa điểm.")
    approve: StrictBool = Field(
        default=False, description="Duyệt luôn (chỉ vai trò người duyệt trở lên)."
    )


class PostQuery(BaseModel):
    """Query parameters of the post list."""

    model_config = ConfigDict(extra="forbid")
    status: PostStatusName | None = Field(default=None, description="Chỉ bài ở trạng thái này.")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE, description="Số bài tối đa.")
    offset: int = Field(default=0, ge=0, description="Bỏ qua bấy nhiêu bài đầu.")

    @field_validator("status")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in POST_STATUS:
            raise ValueError(f"trạng thái «{value}» không có; chọn: {', '.join(POST_STATUS)}")
        return value


class DeliveryQuery(BaseModel):
    """Query parameters of the delivery list."""

    model_config = ConfigDict(extra="forbid")
    status: DeliveryStatusName | None = Field(
        default=None, description="Chỉ lượt gửi ở trạng thái này."
    )
    post_id: int | None = Field(default=None, ge=1, description="Chỉ lượt gửi của bài này.")
    limit: int = Field(default=100, ge=1, le=MAX_PAGE, description="Số lượt gửi tối đa.")
    offset: int = Field(default=0, ge=0, description="Bỏ qua bấy nhiêu lượt đầu.")

    @field_validator("status")
    @classmethod
    def _known(cls, value: str | None) -> str | None:
        if value is not None and value not in DELIVERY_STATUS:
            names = ", ".join(DELIVERY_STATUS)
            raise ValueError(f"trạng thái «{value}» không có; chọn: {names}")
        return value


class Counts(BaseModel):
    """How many deliveries a post has, and how many went out."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_vi("Số lượt gửi."))
    total: int
    sent: int


class PostSummary(BaseModel):
    """One post in a list (`cdbot post list --json`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_vi("Một bài trong danh sách."))
    id: int
    kind: KindName
    category: str = Field(description="Nhóm nội dung.")
    title: str
    status: PostStatusName
    scheduled_at: datetime = Field(description="Giờ đăng, theo giờ Việt Nam.")
    channels: list[ChannelName]
    clusters: list[str] | None = Field(description="Mã cụm; null là mọi cụm.")
    link: str | None
    media: list[str] = Field(description="Tên các tệp kèm theo: ảnh, video, tài liệu.")
    deliveries: Counts


class DeliveryOut(BaseModel):
    """One delivery of a post (`cdbot post show --json`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_vi("Một lượt gửi."))
    id: int
    channel: DeliveryChannelName
    target: str = Field(description="Nơi nhận.")
    cluster: str | None = Field(description="Mã cụm, nếu có.")
    status: DeliveryStatusName
    attempts: int = Field(description="Số lần đã thử gửi.")
    remote_id: str | None = Field(description="Mã bài trên nền tảng.")
    permalink: str | None
    error: str | None = Field(description="Lỗi gần nhất.")
    sent_at: datetime | None


class DeliveryRow(DeliveryOut):
    """A delivery in the delivery list, with its post."""

    model_config = ConfigDict(json_schema_extra=_vi("Một lượt gửi, kèm số bài."))
    post_id: int


class PostDetail(PostSummary):
    """A post with its body and each delivery (`cdbot post show --json`)."""

    model_config = ConfigDict(json_schema_extra=_vi("Một bài, kèm nội dung và từng lượt gửi."))
    body: str
    delivery_list: list[DeliveryOut]


class Approved(BaseModel):
    """The answer to an approval."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_vi("Kết quả duyệt bài."))
    created: int = Field(description="Số lượt gửi vừa tạo (duyệt lại không tạo thêm).")
    post: PostDetail


class Cancelled(BaseModel):
    """The answer to a cancellation."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_vi("Kết quả huỷ bài."))
    cancelled: int = Field(description="Số lượt gửi đã dừng.")
    in_flight: int = Field(description="Số lượt đang gửi dở, không thu hồi được.")
    post: PostDetail


class NoBody(BaseModel):
    """An action takes no fields: no body, or `{}`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_vi("Không cần trường nào."))


# ---- reading requests ---------------------------------------------------------------------


class ApiProblem(Exception):
    """An answer other than 422: bad JSON, wrong content type, too large, not found."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


PARAM_LABELS = {**FIELD_LABELS, "status": "trạng thái", "post_id": "số bài"}
FIELD_KEYS = {label.casefold(): key for key, label in FIELD_LABELS.items()}


def _explain(exc: ValidationError) -> InputError:
    """The first problem pydantic found, in Vietnamese, naming the JSON key or parameter."""
    first = exc.errors()[0]
    key = str(first["loc"][0]) if first["loc"] else None
    label = PARAM_LABELS.get(key or "", f"«{key}»")
    kind, ctx = first["type"], first.get("ctx") or {}
    if kind == "value_error":
        text = str(first["msg"]).removeprefix("Value error, ")
    elif kind == "missing":
        text = f"thiếu {label}"
    elif kind == "extra_forbidden":
        text = f"không có trường hay tham số «{key}»; xem {OPENAPI_PATH}"
    elif kind.startswith("datetime"):
        text = f"{label} phải là thời điểm ISO 8601 kèm múi giờ, như 2026-12-01T07:30:00+07:00"
    elif kind.startswith("date"):
        text = f"{label} phải là ngày dạng YYYY-MM-DD"
    elif kind.startswith("int"):
        text = f"{label} phải là số nguyên"
    elif kind in ("greater_than_equal", "less_than_equal"):
        bound = ctx.get("ge", ctx.get("le"))
        side = "lớn hơn" if kind == "greater_than_equal" else "nhỏ hơn"
        text = f"{label} phải {side} hoặc bằng {bound}"
    elif kind == "too_short":
        text = f"{label} không được là danh sách trống; bỏ hẳn trường để chọn tất cả"
    else:
        text = f"{label} không hợp lệ"
    return InputError(text[:1].upper() + text[1:] + ".", field=key)


def _parsed(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _explain(exc) from exc


def _query(request: Request, model: type[M]) -> M:
    params = request.query_params
    return _parsed(model, {key: params[key] for key in params})


async def _json_object(request: Request, *, optional: bool = False) -> dict[str, Any]:
    """The request's JSON object; `optional`: an empty body reads as `{}`."""
    length = request.headers.get("content-length")
    if length is not None and not length.isdigit():
        raise ApiProblem(400, "Tiêu đề Content-Length không hợp lệ.")
    if length is not None and int(length) > MAX_BODY:
        raise ApiProblem(413, f"Nội dung yêu cầu lớn hơn {MAX_BODY // 1024} KB.")
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise ApiProblem(413, f"Nội dung yêu cầu lớn hơn {MAX_BODY // 1024} KB.")
    if optional and not raw.strip():
        return {}
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiProblem(415, "Nội dung yêu cầu phải là JSON (Content-Type: application/json).")
    try:
        data = json.loads(bytes(raw), parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        where = f" (dòng {exc.lineno}, cột {exc.colno})"
        raise ApiProblem(400, f"Nội dung yêu cầu không phải JSON hợp lệ{where}.") from exc
    except (ValueError, RecursionError) as exc:
        raise ApiProblem(400, "Nội dung yêu cầu không phải JSON UTF-8 hợp lệ.") from exc
    if not isinstance(data, dict):
        raise ApiProblem(400, "Nội dung yêu cầu phải là một đối tượng JSON ({…}).")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON


def _keyed(exc: InputError, default: str | None) -> InputError:
    """The CLI's error, with its field named by the JSON key instead of the officer's label."""
    key = exc.field if exc.field in FIELD_LABELS else None
    key = key or FIELD_KEYS.get((exc.field or "").casefold(), default)
    return InputError(exc.message, field=key)


# ---- answers ------------------------------------------------------------------------------


def _error(status: int, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "field": field}, status_code=status)


async def _existing(request: Request) -> Post:
    """The post the path names, with its deliveries, or a 404."""
    post_id = int(request.path_params["post_id"])
    try:
        return await bot_of(request).queue.get(post_id)
    except InputError as exc:
        raise ApiProblem(404, exc.message) from exc


# ---- handlers -----------------------------------------------------------------------------


async def list_posts(request: Request) -> Response:
    query = _query(request, PostQuery)
    bot = bot_of(request)
    statement = (
        select(Post)
        .options(selectinload(Post.deliveries))
        .order_by(Post.scheduled_at, Post.id)
        .limit(query.limit)
        .offset(query.offset)
    )
    if query.status:
        statement = statement.where(Post.status == query.status)
    async with bot.sessions() as session:
        posts = list(await session.scalars(statement))
    return JSONResponse([post_dict(p, bot.settings.tz) for p in posts])


async def create_post(request: Request) -> Response:
    payload = _parsed(PostCreate, await _json_object(request))
    person: Person = request.state.person
    if payload.approve and not person.may(APPROVE):
        message = "Vai trò của bạn không được duyệt bài; bỏ «approve» để lưu bản nháp."
        raise ApiProblem(403, message, "approve")
    bot = bot_of(request)
    now = await bot.queue.now()
    fields = _draft_fields(request, payload, now)
    try:
        draft = build_draft(fields, now)
    except InputError as exc:
        raise _keyed(exc, None) from exc
    try:
        draft = await canonical_clusters(bot, draft)
    except InputError as exc:
        raise _keyed(exc, "clusters") from exc
    try:
        targets = await check_targets(bot, draft)
    except InputError as exc:
        raise _keyed(exc, "body") from exc
    approve_for = targets if payload.approve else None
    post = await bot.queue.add(draft, actor=person.actor, approve_for=approve_for)
    post = await bot.queue.get(post.id)
    location = {"location": f"{PREFIX}/posts/{post.id}"}
    return JSONResponse(post_detail(post, bot.settings.tz), status_code=201, headers=location)


def _draft_fields(request: Request, payload: PostCreate, now: datetime) -> dict[str, Any]:
    """`cdbot post add`'s fields from a request, with the same defaults."""
    from bot.web.pages_posts import uploads_dir

    bot = bot_of(request)
    allowed = (uploads_dir(bot).resolve(), bot.settings.cards_dir.resolve())
    for image in payload.images:
        path = Path(image)
        # Only files the console itself stored: no other file on the server can be named.
        if not path.is_absolute() or not any(path.resolve().is_relative_to(a) for a in allowed):
            raise InputError(
                f"Ảnh «{image[:80]}» phải là ảnh đã tải lên qua bảng điều khiển "
                "(API chưa nhận tải ảnh lên).",
                field="images",
            )
    fields = payload.model_dump(exclude={"approve"})
    today = now.astimezone(bot.settings.tz).date()
    clusters = [c.strip() for c in payload.clusters or () if c.strip()]
    if payload.clusters is not None and not clusters:
        raise InputError("Mã cụm thi đua không được để trống.", field="clusters")
    return fields | {
        "images": tuple(Path(image) for image in payload.images),
        "hashtags": tuple(payload.hashtags),
        "scheduled_at": payload.scheduled_at or now,
        "channels": tuple(
            payload.channels if payload.channels is not None else bot.org.default_channels
        ),
        "clusters": tuple(clusters) if payload.clusters is not None else None,
        "as_of": payload.as_of or (today if payload.kind == "law" else None),
    }


async def show_post(request: Request) -> Response:
    post = await _existing(request)
    return JSONResponse(post_detail(post, bot_of(request).settings.tz))


async def approve_post(request: Request) -> Response:
    _parsed(NoBody, await _json_object(request, optional=True))
    post = await _existing(request)
    bot = bot_of(request)
    person: Person = request.state.person
    _, created = await bot.approve(post.id, actor=person.actor)
    post = await bot.queue.get(post.id)
    return JSONResponse({"created": created, "post": post_detail(post, bot.settings.tz)})


async def cancel_post(request: Request) -> Response:
    _parsed(NoBody, await _json_object(request, optional=True))
    post = await _existing(request)
    bot = bot_of(request)
    person: Person = request.state.person
    cancelled, in_flight = await bot.queue.cancel(post.id, actor=person.actor)
    post = await bot.queue.get(post.id)
    detail = post_detail(post, bot.settings.tz)
    return JSONResponse({"cancelled": cancelled, "in_flight": in_flight, "post": detail})


async def list_deliveries(request: Request) -> Response:
    query = _query(request, DeliveryQuery)
    bot = bot_of(request)
    statement = select(Delivery).order_by(Delivery.id.desc()).limit(query.limit)
    statement = statement.offset(query.offset)
    if query.status:
        statement = statement.where(Delivery.status == query.status)
    if query.post_id is not None:
        statement = statement.where(Delivery.post_id == query.post_id)
    async with bot.sessions() as session:
        rows = list(await session.scalars(statement))
    tz = bot.settings.tz
    return JSONResponse([delivery_dict(d, tz) | {"post_id": d.post_id} for d in rows])


async def openapi(request: Request) -> Response:
    return JSONResponse(openapi_document())


# ---- the table: routes and document from one place ---------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One API operation: its route, who may call it and how the document describes it."""

    method: str
    path: str
    handler: Handler
    permission: str
    summary: str
    answer: str  # what a success returns
    status: int = 200
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None
    body_required: bool = True
    response: type[BaseModel] | None = None
    many: bool = False
    errors: tuple[int, ...] = ()


POST_PATH = f"{PREFIX}/posts/{{post_id:int}}"
ENDPOINTS = (
    Endpoint(
        method="GET",
        path=f"{PREFIX}/posts",
        handler=list_posts,
        permission=VIEW,
        summary="Liệt kê bài đăng theo giờ đăng.",
        answer="Danh sách bài.",
        query=PostQuery,
        response=PostSummary,
        many=True,
        errors=(422,),
    ),
    Endpoint(
        method="POST",
        path=f"{PREFIX}/posts",
        handler=create_post,
        permission=WRITE,
        summary="Soạn bài mới: bản nháp, hoặc duyệt luôn với «approve».",
        answer="Bài vừa tạo.",
        status=201,
        body=PostCreate,
        response=PostDetail,
        errors=(400, 413, 415, 422),
    ),
    Endpoint(
        method="GET",
        path=POST_PATH,
        handler=show_post,
        permission=VIEW,
        summary="Xem một bài và từng lượt gửi của nó.",
        answer="Bài.",
        response=PostDetail,
        errors=(404,),
    ),
    Endpoint(
        method="POST",
        path=f"{POST_PATH}/approve",
        handler=approve_post,
        permission=APPROVE,
        summary="Duyệt bài: tạo lượt gửi tới từng kênh và cụm đã chọn. Duyệt lại không tạo thêm.",
        answer="Đã duyệt.",
        body=NoBody,
        body_required=False,
        response=Approved,
        errors=(400, 404, 413, 415, 422),
    ),
    Endpoint(
        method="POST",
        path=f"{POST_PATH}/cancel",
        handler=cancel_post,
        permission=APPROVE,
        summary="Huỷ bài: mọi lượt gửi chưa đi sẽ không đi nữa.",
        answer="Đã huỷ.",
        body=NoBody,
        body_required=False,
        response=Cancelled,
        errors=(400, 404, 413, 415, 422),
    ),
    Endpoint(
        method="GET",
        path=f"{PREFIX}/deliveries",
        handler=list_deliveries,
        permission=VIEW,
        summary="Liệt kê lượt gửi, mới nhất trước.",
        answer="Danh sách lượt gửi.",
        query=DeliveryQuery,
        response=DeliveryRow,
        many=True,
        errors=(422,),
    ),
)


def _guarded(endpoint: Endpoint) -> Handler:
    """The handler behind `api(...)`, with every failure answered as JSON."""
    handler = endpoint.handler

    @wraps(handler)
    async def answer(request: Request) -> Response:
        try:
            return await handler(request)
        except BotError:
            raise  # `api` answers 422 with the message and field
        except ApiProblem as exc:
            return _error(exc.status, exc.message, exc.field)
        except Exception:
            log.exception("API %s %s failed", request.method, request.url.path)
            return _error(500, "Lỗi máy chủ; việc này có thể chưa xong, hãy xem lại rồi thử lại.")

    return api(endpoint.permission)(answer)


routes: list[BaseRoute] = [
    *(Route(e.path, _guarded(e), methods=[e.method]) for e in ENDPOINTS),
    Route(OPENAPI_PATH, openapi, methods=["GET"]),
]

# ---- the OpenAPI document ------------------------------------------------------------------

ERRORS = {
    400: "Nội dung không phải JSON hợp lệ, hoặc không phải một đối tượng JSON.",
    401: "Thiếu mã API hợp lệ hoặc phiên đăng nhập (khi dùng phiên: thiếu X-CSRF-Token).",
    403: "Vai trò không được làm việc này.",
    404: "Không có bài với số này.",
    413: f"Nội dung lớn hơn {MAX_BODY // 1024} KB.",
    415: "Nội dung không phải application/json.",
    422: "Dữ liệu không hợp lệ; «field» chỉ trường hoặc tham số gây lỗi.",
    500: "Lỗi máy chủ.",
}
PATH_PARAMS = {"post_id": "Số bài."}
DESCRIPTION = (
    "API JSON của bot đăng bài công đoàn: soạn, duyệt, huỷ bài và theo dõi lượt gửi, "
    "với đúng các quy tắc của lệnh «cdbot post». Xác thực: «Authorization: Bearer <mã>», "
    "mã tạo bằng «cdbot user token TÊN»; hoặc phiên của bảng điều khiển, kèm tiêu đề "
    "X-CSRF-Token cho mọi yêu cầu POST. Nội dung gửi lên là JSON, tối đa "
    f"{MAX_BODY // 1024} KB. Thời điểm trả về theo ISO 8601, giờ Việt Nam. Ảnh là đường dẫn "
    "tuyệt đối tới tệp đã có trên máy chủ: phiên bản này chưa nhận tải ảnh lên."
)
SECURITY_SCHEMES = {
    "bearerAuth": {
        "type": "http",
        "scheme": "bearer",
        "description": "Mã API tạo bằng «cdbot user token TÊN».",
    },
    "consoleSession": {
        "type": "apiKey",
        "in": "cookie",
        "name": SESSION_COOKIE,
        "description": "Phiên bảng điều khiển; mọi yêu cầu POST cần thêm tiêu đề X-CSRF-Token.",
    },
}
Refs = dict[Any, dict[str, Any]]  # (model, mode) → {"$ref": …}


def openapi_path(path: str) -> str:
    """A Starlette path as OpenAPI writes it: `{post_id:int}` → `{post_id}`."""
    return re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path)


@cache
def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 document for `ENDPOINTS` (built once, on first request)."""
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(ApiError, "serialization"): None}
    for e in ENDPOINTS:
        if e.body is not None:
            wanted[(e.body, "validation")] = None
        if e.response is not None:
            wanted[(e.response, "serialization")] = None
    refs, top = models_json_schema(list(wanted), ref_template="#/components/schemas/{model}")
    paths: dict[str, dict[str, Any]] = {}
    for e in ENDPOINTS:
        paths.setdefault(openapi_path(e.path), {})[e.method.lower()] = _operation(e, refs)
    error = {"application/json": {"schema": refs[(ApiError, "serialization")]}}
    responses = {
        f"Error{code}": {"description": text, "content": error} for code, text in ERRORS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "congdoan-bot API", "version": "1.0.0", "description": DESCRIPTION},
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "responses": responses,
            "securitySchemes": SECURITY_SCHEMES,
        },
        "security": [{name: []} for name in SECURITY_SCHEMES],
    }


def _operation(e: Endpoint, refs: Refs) -> dict[str, Any]:
    success: dict[str, Any] = {"description": e.answer}
    if e.response is not None:
        ref = refs[(e.response, "serialization")]
        schema = {"type": "array", "items": ref} if e.many else ref
        success["content"] = {"application/json": {"schema": schema}}
    responses = {str(e.status): success} | {
        str(code): {"$ref": f"#/components/responses/Error{code}"}
        for code in sorted({401, 403, 500, *e.errors})
    }
    operation: dict[str, Any] = {
        "operationId": e.handler.__name__,
        "summary": e.summary,
        "x-permission": e.permission,
        "parameters": _parameters(e),
        "responses": responses,
    }
    if e.body is not None:
        operation["requestBody"] = {
            "required": e.body_required,
            "content": {"application/json": {"schema": refs[(e.body, "validation")]}},
        }
    return operation


def _parameters(e: Endpoint) -> list[dict[str, Any]]:
    found = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "description": PATH_PARAMS[name],
            "schema": {"type": "integer", "minimum": 1},
        }
        for name in re.findall(r"\{(\w+)", e.path)
    ]
    if e.query is None:
        return found
    schema = e.query.model_json_schema()
    for name, prop in schema["properties"].items():
        # An absent parameter is the default; a query string never carries null.
        value = {k: v for k, v in prop.items() if k not in ("title", "description", "anyOf")}
        value |= next((s for s in prop.get("anyOf", ()) if s.get("type") != "null"), {})
        if value.get("default", 0) is None:
            del value["default"]
        found.append(
            {
                "name": name,
                "in": "query",
                "required": name in schema.get("required", ()),
                "description": prop.get("description", ""),
                "schema": value,
            }
        )
    return found

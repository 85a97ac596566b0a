"""Posts in the console: compose with a live preview, approvals, the list, one post, the calendar.

Pages read the tables directly; every write goes through `PostQueue` (including editing
and rejecting a draft and moving a post to another day). The draft rules are the CLI's
(`bot.cli.posts`), so both doors refuse the same posts.
"""

from __future__ import annotations

import calendar as monthly
import os
import re
import secrets
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from PIL import Image
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.cli.posts import ARTICLE_TITLE_MAX, PAST_GRACE, canonical_clusters, check_targets
from bot.db.models import AuditEntry, Post, PostStatus, User
from bot.db.models import DeliveryStatus as S
from bot.errors import BotError, InputError
from bot.texts import POST_STATUS
from bot.web.app import bot_of, flash, page, render, safe_next
from bot.web.auth import APPROVE, VIEW, WRITE, Person
from content.kinds import (
    CATEGORIES,
    CHANNELS,
    FIELD_LABELS,
    KINDS,
    MAX_IMAGE_BYTES,
    PostDraft,
    check_image,
    nfc,
)
from content.render import SHORTENED, PostContent, Rendering
from content.render import render as render_channel

if TYPE_CHECKING:
    from bot.app import App
    from content.calendar import Occurrence

PER_PAGE = 25
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov"})
DOCUMENT_SUFFIXES = frozenset({".pdf", ".doc", ".docx"})
ARTICLE_DESCRIPTION_MAX = 300
REASON_MAX = 1000
# The fields only some kinds have; the others are dropped so a story never keeps a citation.
KIND_FIELDS = {"law": ("citation", "as_of"), "event": ("event_date", "place")}
TEXT_FIELDS = (
    "kind", "category", "title", "body", "link", "hashtags",
    "citation", "as_of", "event_date", "place", "date", "time",
)  # fmt: skip
# PostDraft's field → the form field its error is shown beside.
FORM_FIELD = {"scheduled_at": "date", "video": "images", "documents": "images"}
SOURCES = {
    "manual": "Cán bộ soạn",
    "calendar": "Lịch sự kiện (tự động)",
    "law-library": "Thư viện pháp luật (tự động)",
    "feed": "Nguồn tin văn bản mới (tự động)",
}
ACTIONS = {
    "post.add": "Tạo bài",
    "post.edit": "Sửa bản nháp",
    "post.approve": "Duyệt",
    "post.reject": "Từ chối",
    "post.cancel": "Huỷ",
    "post.retry": "Gửi lại",
    "post.reschedule": "Dời lịch",
}
MOVABLE = (PostStatus.DRAFT, PostStatus.APPROVED)
STUCK = (S.FAILED, S.NEEDS_HUMAN)


def _person(request: Request) -> Person:
    person: Person = request.state.person
    return person


def _local_media(paths: Sequence[str], suffixes: frozenset[str]) -> list[tuple[int, Path]]:
    """(index in Post.media, path) of the stored files with one of `suffixes`."""
    return [(i, Path(p)) for i, p in enumerate(paths) if Path(p).suffix.lower() in suffixes]


# ---- the compose form --------------------------------------------------------------------


@dataclass
class Entry:
    """The compose form as the officer filled it, and what is wrong with it (by field)."""

    values: dict[str, str]
    channels: list[str]
    clusters: list[str]
    keep: list[int] = field(default_factory=list)  # indices of an edited post's images kept
    errors: dict[str, str] = field(default_factory=dict)


def _blank(bot: App, now: datetime) -> Entry:
    """A new post: the usual kind, tomorrow at the kind's usual time, the usual channels."""
    kind = "story"
    tomorrow = now.astimezone(bot.settings.tz).date() + timedelta(days=1)
    values = dict.fromkeys(TEXT_FIELDS, "")
    values |= {
        "kind": kind,
        "date": tomorrow.isoformat(),
        "time": bot.org.time_for(kind).strftime("%H:%M"),
        "as_of": now.astimezone(bot.settings.tz).date().isoformat(),
    }
    return Entry(values, [str(c) for c in bot.org.default_channels], [])


def _entry_of(post: Post, tz: ZoneInfo) -> Entry:
    """An existing draft, as the form shows it."""
    local = post.scheduled_at.astimezone(tz)
    values = dict.fromkeys(TEXT_FIELDS, "")
    values |= {
        "kind": post.kind,
        "category": post.category,
        "title": post.title,
        "body": post.body,
        "link": post.link or "",
        "hashtags": " ".join(post.hashtags),
        "date": local.date().isoformat(),
        "time": local.strftime("%H:%M"),
    }
    values |= {k: str(v) for k, v in post.details.items() if k in values}
    keep = [i for i, _ in _local_media(post.media, IMAGE_SUFFIXES)]
    return Entry(values, list(post.channels), list(post.clusters or []), keep)


def _entry_from(form: FormData) -> Entry:
    values = {name: str(form.get(name) or "") for name in TEXT_FIELDS}
    keep = [int(v) for v in form.getlist("keep") if isinstance(v, str) and v.isdigit()]
    channels = [str(v) for v in form.getlist("channels")]
    clusters = [str(v) for v in form.getlist("clusters")]
    return Entry(values, channels, clusters, keep)


def _when(day: str, clock: str, tz: ZoneInfo) -> datetime:
    """The form's date and time in the office's zone, or an InputError."""
    try:
        return datetime.combine(date.fromisoformat(day), time.fromisoformat(clock), tzinfo=tz)
    except ValueError:
        raise InputError("Hãy chọn ngày và giờ đăng.") from None


def _split_tags(text: str) -> tuple[str, ...]:
    return tuple(part for part in re.split(r"[\s,;]+", text) if part)


def _draft_fields(entry: Entry, bot: App, media: Sequence[Path]) -> dict[str, Any]:
    """What `PostDraft` is built from; a date or time the form could not read is an error."""
    v = entry.values
    own = KIND_FIELDS.get(v["kind"], ())
    try:
        scheduled: datetime | None = _when(v["date"], v["time"], bot.settings.tz)
    except InputError as exc:
        entry.errors["date"] = exc.message
        scheduled = None
    fields: dict[str, Any] = {
        "kind": v["kind"],
        "category": v["category"] or None,
        "title": v["title"],
        "body": v["body"],
        "link": v["link"] or None,
        "hashtags": _split_tags(v["hashtags"]),
        "channels": tuple(entry.channels),
        "clusters": tuple(entry.clusters) or None,
        "scheduled_at": scheduled,
        "images": tuple(p for p in media if p.suffix.lower() in IMAGE_SUFFIXES),
        "video": next((p for p in media if p.suffix.lower() in VIDEO_SUFFIXES), None),
        "documents": tuple(p for p in media if p.suffix.lower() in DOCUMENT_SUFFIXES),
    }
    fields |= {name: (v[name] or None) if name in own else None for name in KIND_FIELDS["law"]}
    fields |= {name: (v[name] or None) if name in own else None for name in KIND_FIELDS["event"]}
    return fields


def _kind_rule_field(fields: dict[str, Any]) -> str:
    """The form field a kind's rule (a model-level error, with no field) is about."""
    kind = fields["kind"]
    if kind == "infographic" and not fields["images"]:
        return "images"
    wanted = {"law": ("citation", "link", "as_of"), "event": ("event_date",)}
    wanted |= {"news": ("link",), "video": ("link",)}
    return next((name for name in wanted.get(kind, ()) if not fields.get(name)), "_form")


def _field_errors(exc: ValidationError, fields: dict[str, Any]) -> dict[str, str]:
    """Every problem pydantic found, as `content.kinds.explain` words the first one."""
    found: dict[str, str] = {}
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else _kind_rule_field(fields)
        label = FIELD_LABELS.get(name, name)
        if error["type"] == "value_error":
            text = str(error["msg"]).removeprefix("Value error, ")
        elif error["type"] == "missing" or error.get("input") is None:
            text = f"thiếu {label}"
        else:
            text = f"{label} không hợp lệ"
        key = FORM_FIELD.get(name, name if name in TEXT_FIELDS or name in _LISTS else "_form")
        found.setdefault(key, text[:1].upper() + text[1:] + ".")
    return found


_LISTS = ("channels", "clusters", "images")


def _length_errors(bot: App, draft: PostDraft) -> dict[str, str]:
    """The CLI's `check_targets` refusals, worded for the form and placed by field."""
    errors: dict[str, str] = {}
    if "zalo_broadcast" in draft.channels and draft.images and not bot.public_media_url:
        errors["channels"] = (
            "Bài có ảnh chưa phát được tới người quan tâm Zalo: máy chủ chưa đặt địa chỉ "
            "ảnh công khai (CDBOT_PUBLIC_MEDIA_URL). Bỏ chọn kênh «Zalo: phát đến người "
            "quan tâm» hoặc nhờ quản trị đặt địa chỉ đó."
        )
    content = PostContent(
        draft.kind, draft.title, draft.body, draft.link, draft.hashtags, draft.details
    )
    for channel in draft.channels:
        rendering = render_channel(content, channel, bot.identity)
        if rendering.too_long:
            hint = (
                ", hoặc thêm liên kết tới toàn văn để Zalo nhận bản tóm lược kèm liên kết"
                if channel in SHORTENED and not draft.link
                else ""
            )
            errors.setdefault(
                "body",
                f"Bài dài {rendering.length:,} ký tự khi gửi qua «{CHANNELS[channel]}», vượt "
                f"giới hạn {rendering.limit:,} ký tự; hãy rút gọn{hint}.".replace(",", "."),
            )
    return errors


async def _checked_draft(
    bot: App, entry: Entry, media: Sequence[Path], source: str
) -> tuple[PostDraft | None, list[Any]]:
    """The draft and its targets, or None with `entry.errors` saying what to fix."""
    fields = _draft_fields(entry, bot, media) | {"source": source}
    now = await bot.queue.now()
    try:
        draft = PostDraft.model_validate(fields)
    except ValidationError as exc:
        for key, message in _field_errors(exc, fields).items():
            entry.errors.setdefault(key, message)
        return None, []
    if draft.scheduled_at < now - PAST_GRACE:
        entry.errors.setdefault(
            "date", "Thời điểm đăng đã qua; hãy chọn một thời điểm trong tương lai."
        )
    try:
        draft = await canonical_clusters(bot, draft)
    except InputError as exc:
        entry.errors.setdefault("clusters", exc.message)
    for key, message in _length_errors(bot, draft).items():
        entry.errors.setdefault(key, message)
    if entry.errors:
        return None, []
    try:
        targets = await check_targets(bot, draft)
    except InputError as exc:
        entry.errors["_form"] = exc.message
        return None, []
    return draft, targets


# ---- uploads -------------------------------------------------------------------------------


def uploads_dir(bot: App) -> Path:
    """Where the console keeps the images officers upload (beside the media cache)."""
    return bot.settings.media_cache_dir.parent / "uploads"


def _safe_name(filename: str) -> str:
    """The upload's own name, reduced to characters safe in a path (messages show it)."""
    name = unicodedata.normalize("NFC", Path(filename.replace("\\", "/")).name)
    stem, suffix = Path(name).stem, Path(name).suffix.lower()
    stem = "".join(c if c.isalnum() or c in " ._-()" else "_" for c in stem).strip(" .")[:80]
    return (stem or "anh") + suffix


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _check_upload(path: Path) -> None:
    try:
        check_image(path)
    except Image.DecompressionBombError as exc:
        raise ValueError(f"ảnh «{path.name}» có quá nhiều điểm ảnh") from exc


async def _received_images(form: FormData, folder: Path) -> tuple[list[Path], str | None]:
    """The uploads written to `folder` and checked; any refusal means none is kept."""
    files = [f for f in form.getlist("images") if isinstance(f, UploadFile) and f.filename]
    paths: list[Path] = []
    problems: list[str] = []
    for index, upload in enumerate(files):
        name = _safe_name(upload.filename or "")
        if Path(name).suffix not in IMAGE_SUFFIXES:
            problems.append(f"tệp «{name}» không phải ảnh JPEG hoặc PNG")
            continue
        data = await upload.read(MAX_IMAGE_BYTES + 1)
        if len(data) > MAX_IMAGE_BYTES:
            problems.append(f"ảnh «{name}» lớn hơn 10 MB")
            continue
        path = folder / str(index) / name
        await run_in_threadpool(_write_private, path, data)
        try:
            await run_in_threadpool(_check_upload, path)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        paths.append(path)
    if not problems:
        return paths, None
    text = "; ".join(problems)
    return paths, f"{text[:1].upper()}{text[1:]}. Chưa lưu ảnh nào; hãy chọn lại ảnh."


def _store(paths: Sequence[Path], folder: Path) -> list[Path]:
    """Move checked uploads into `folder` under random names (0600), all or none."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    stored: list[Path] = []
    try:
        for path in paths:
            target = folder / f"{secrets.token_hex(16)}{path.suffix.lower()}"
            os.replace(path, target)  # same file system: the temporary folder is beside it
            stored.append(target.resolve())
    except OSError:
        _remove(stored, folder)
        raise
    return stored


def _remove(paths: Sequence[Path | str], folder: Path) -> None:
    """Delete files the console stored in `folder` (never anything else)."""
    root = folder.resolve()
    for item in paths:
        path = Path(item)
        if path.parent == root:
            path.unlink(missing_ok=True)


# ---- previews and warnings -------------------------------------------------------------------


def channel_warnings(
    bot: App, rendering: Rendering, title: str, images: int, link: str | None
) -> list[str]:
    """What the officer should know about one channel before the post goes out."""
    notes: list[str] = []
    limit = f"{rendering.limit:,}".replace(",", ".")
    if rendering.too_long and rendering.channel in SHORTENED and not link:
        notes.append(
            f"Dài hơn {limit} ký tự mà không có liên kết: Zalo sẽ từ chối. "
            "Hãy rút gọn hoặc thêm liên kết tới toàn văn."
        )
    elif rendering.too_long:
        notes.append(f"Dài hơn giới hạn {limit} ký tự của kênh này: hãy rút gọn.")
    elif rendering.shortened:
        notes.append(f"Bài dài: Zalo nhận bản rút gọn {limit} ký tự kèm liên kết tới toàn văn.")
    if rendering.channel == "zalo_broadcast":
        if len(title) > ARTICLE_TITLE_MAX:
            notes.append(
                f"Tiêu đề bài viết Zalo chỉ giữ {ARTICLE_TITLE_MAX} ký tự đầu "
                f"(đang có {len(title)})."
            )
        if images and not bot.public_media_url:
            notes.append(
                "Bài có ảnh chưa phát được tới người quan tâm: chưa đặt địa chỉ ảnh công khai "
                "(CDBOT_PUBLIC_MEDIA_URL)."
            )
    return notes


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return nfc(value) if isinstance(value, str) else ""


def build_preview(bot: App, data: dict[str, Any]) -> dict[str, Any]:
    """Every channel's rendering of the form as it stands (nothing is checked or stored)."""
    kind = _text(data, "kind") if _text(data, "kind") in KINDS else "story"
    details: dict[str, str] = {}
    for name in KIND_FIELDS.get(kind, ()):
        value = _text(data, name)
        if name in ("as_of", "event_date"):
            try:
                value = date.fromisoformat(value).isoformat()
            except ValueError:
                value = ""
        if value:
            details[name] = value
    tags = tuple(
        t.lstrip("#")
        for t in _split_tags(_text(data, "hashtags"))
        if t.lstrip("#") and all(c.isalnum() or c == "_" for c in t.lstrip("#"))
    )
    title, link = _text(data, "title"), _text(data, "link") or None
    content = PostContent(kind, title, _text(data, "body"), link, tags, details)
    raw = data.get("channels")
    chosen = {c for c in raw if isinstance(c, str)} if isinstance(raw, list) else set()
    images = data.get("images")
    images = images if isinstance(images, int) and images > 0 else 0
    channels: dict[str, dict[str, Any]] = {}
    for channel, name in CHANNELS.items():
        rendering = render_channel(content, channel, bot.identity)
        channels[channel] = {
            "name": name,
            "chosen": channel in chosen,
            "text": rendering.text,
            "length": rendering.length,
            "limit": rendering.limit,
            "too_long": rendering.too_long,
            "shortened": rendering.shortened,
            "warnings": channel_warnings(bot, rendering, title, images, link),
        }
    paragraphs = [p.strip() for p in channels["zalo_broadcast"]["text"].split("\n\n")]
    article = {
        "title": title[:ARTICLE_TITLE_MAX],
        "title_length": len(title),
        "title_limit": ARTICLE_TITLE_MAX,
        "description": next((p for p in paragraphs if p), title)[:ARTICLE_DESCRIPTION_MAX],
        "cover": "image" if images else "default",
    }
    return {"channels": channels, "article": article}


def _post_warnings(bot: App, post: Post) -> list[str]:
    """The post's channel warnings, each naming its channel."""
    images = len(_local_media(post.media, IMAGE_SUFFIXES))
    return [
        f"{CHANNELS.get(channel, channel)}: {note}"
        for channel in post.channels
        for note in channel_warnings(bot, bot.render(post, channel), post.title, images, post.link)
    ]


def _blocking(bot: App, post: Post) -> str | None:
    """Why approving `post` now would only end in the platform refusing it."""
    images = _local_media(post.media, IMAGE_SUFFIXES)
    if "zalo_broadcast" in post.channels and images and not bot.public_media_url:
        return (
            "Bài có ảnh chưa phát được tới người quan tâm Zalo khi chưa đặt "
            "CDBOT_PUBLIC_MEDIA_URL; hãy sửa bài, bỏ kênh đó."
        )
    for channel in post.channels:
        rendering = bot.render(post, channel)
        if rendering.too_long:
            return (
                f"Bài dài {rendering.length} ký tự khi gửi qua «{CHANNELS.get(channel, channel)}»,"
                f" vượt giới hạn {rendering.limit}; hãy sửa bài trước khi duyệt."
            )
    return None


# ---- pages: compose and edit -------------------------------------------------------------------


async def _form_page(
    request: Request, entry: Entry, post: Post | None = None, status: int = 200
) -> Response:
    from bot.directory import list_clusters

    bot = bot_of(request)
    async with bot.sessions() as session:
        clusters = await list_clusters(session)
    org = bot.org
    return render(
        request,
        "compose.html",
        {
            "entry": entry,
            "post": post,
            "kept": _local_media(post.media, IMAGE_SUFFIXES) if post else [],
            "clusters": clusters,
            "channels": CHANNELS,
            "kinds": KINDS,
            "categories": CATEGORIES,
            "kind_fields": KIND_FIELDS,
            "default_times": {k: org.time_for(k).strftime("%H:%M") for k in KINDS},
            "page_name": org.facebook_page_name or org.short_name,
            "oa_name": org.zalo_oa_name or org.short_name,
            "may_approve": _person(request).may(APPROVE),
        },
        status=status,
    )


@page(WRITE)
async def compose(request: Request) -> Response:
    if request.method == "GET":
        bot = bot_of(request)
        return await _form_page(request, _blank(bot, await bot.queue.now()))
    return await _save(request, None)


@page(WRITE)
async def edit(request: Request) -> Response:
    bot = bot_of(request)
    post = await _post_or_none(bot, request)
    if post is None:
        return _not_found(request)
    if post.status != PostStatus.DRAFT:
        flash(request, f"Bài #{post.id} không còn là bản nháp nên không sửa được.", "error")
        return RedirectResponse(f"/posts/{post.id}", status_code=303)
    if request.method == "GET":
        return await _form_page(request, _entry_of(post, bot.settings.tz), post)
    return await _save(request, post)


async def _save(request: Request, post: Post | None) -> Response:
    """Check the form and store the post (a new draft, or the edited one), maybe approving."""
    form = await request.form()
    try:
        return await _save_form(request, form, post)
    finally:
        await form.close()  # the uploads' spooled files


async def _save_form(request: Request, form: FormData, post: Post | None) -> Response:
    bot, person = bot_of(request), _person(request)
    entry = _entry_from(form)
    approve = form.get("action") == "approve"
    if approve and not person.may(APPROVE):
        return render(request, "error.html", {"message": "Vai trò của bạn không duyệt bài."}, 403)
    shown = dict(_local_media(post.media, IMAGE_SUFFIXES)) if post else {}
    kept = [path for i, path in shown.items() if i in entry.keep]
    if post is not None:  # files the form does not show (video, documents) stay with the post
        kept += [Path(p) for _, p in _local_media(post.media, VIDEO_SUFFIXES | DOCUMENT_SUFFIXES)]
    root = uploads_dir(bot).parent
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".upload-", dir=root) as tmp:
        received, problem = await _received_images(form, Path(tmp))
        if problem:
            entry.errors["images"] = problem
        source = post.source if post else "manual"
        draft, targets = await _checked_draft(bot, entry, [*kept, *received], source)
        if draft is None:
            return await _form_page(request, entry, post, status=400)
        stored = await run_in_threadpool(_store, received, uploads_dir(bot))
    fresh = {r.resolve() for r in received}
    draft = draft.model_copy(
        update={"images": (*(p for p in draft.images if p not in fresh), *stored)}
    )
    try:
        post_id = await _write(bot, person, draft, post, targets if approve else None)
    except BaseException:
        _remove(stored, uploads_dir(bot))
        raise
    when = _local(draft.scheduled_at, bot.settings.tz)
    if approve:
        flash(request, f"Đã duyệt bài #{post_id}: {len(targets)} lượt gửi, đăng lúc {when}.")
    elif post is None:
        flash(request, f"Đã lưu bản nháp #{post_id}, chờ người duyệt (đăng lúc {when}).")
    else:
        flash(request, f"Đã lưu thay đổi của bài #{post_id}.")
    return RedirectResponse(f"/posts/{post_id}", status_code=303)


async def _write(
    bot: App, person: Person, draft: PostDraft, post: Post | None, approve_for: list[Any] | None
) -> int:
    """Store the checked draft: a new post, or the edited draft (then approved if asked)."""
    if post is None:
        saved = await bot.queue.add(draft, actor=person.actor, approve_for=approve_for)
        return saved.id
    dropped = await bot.queue.update_draft(post.id, draft, actor=person.actor)
    _remove(dropped, uploads_dir(bot))
    if approve_for is not None:
        await bot.approve(post.id, actor=person.actor)
    return post.id


def _local(moment: datetime, tz: ZoneInfo) -> str:
    return moment.astimezone(tz).strftime("%d/%m/%Y %H:%M")


@page(WRITE)
async def preview(request: Request) -> Response:
    """JSON in (the form as it stands), each channel's rendering out; posts.js calls it."""
    try:
        data = await request.json()
    except ValueError:  # not JSON (a plain form post): an empty preview
        data = {}
    return JSONResponse(build_preview(bot_of(request), data if isinstance(data, dict) else {}))


# ---- pages: reading -------------------------------------------------------------------------


async def _post_or_none(bot: App, request: Request) -> Post | None:
    try:
        return await bot.queue.get(int(request.path_params["post_id"]))
    except InputError:
        return None


def _not_found(request: Request) -> Response:
    return render(request, "error.html", {"message": "Không có bài này."}, status=404)


def _started(post: Post) -> bool:
    """Whether any delivery has left the queue's first state (or been tried)."""
    return any(d.status != S.PENDING or d.attempts for d in post.deliveries)


async def _people(session: AsyncSession) -> dict[str, str]:
    """How the audit log names each console user ("web:lan") → their display name."""
    rows = await session.execute(select(User.username, User.display_name))
    return {f"web:{username}": name for username, name in rows.all()}


def _snippet(text: str, size: int = 280) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= size else flat[: size - 1].rsplit(" ", 1)[0] + "…"


@page(APPROVE)
async def approvals(request: Request) -> Response:
    bot = bot_of(request)
    now = await bot.queue.now()
    async with bot.sessions() as session:
        drafts = list(
            await session.scalars(
                select(Post)
                .where(Post.status == PostStatus.DRAFT)
                .order_by(Post.scheduled_at, Post.id)
                .limit(200)
            )
        )
        people = await _people(session)
    items = [
        {
            "post": post,
            "source": SOURCES.get(post.source, post.source),
            "snippet": _snippet(post.body),
            "image": next(iter(_local_media(post.media, IMAGE_SUFFIXES)), None),
            "warnings": _post_warnings(bot, post),
            "overdue": post.scheduled_at <= now,
        }
        for post in drafts
    ]
    context = {"items": items, "people": people, "title": "Chờ duyệt"}
    return render(request, "approvals.html", context)


@page(VIEW)
async def posts_list(request: Request) -> Response:
    bot = bot_of(request)
    status = request.query_params.get("status", "")
    status = status if status in POST_STATUS else ""
    number = request.query_params.get("page", "1")
    current = max(int(number), 1) if number.isdigit() else 1
    query = select(Post).options(selectinload(Post.deliveries))
    if status:
        query = query.where(Post.status == status)
    async with bot.sessions() as session:
        counts = dict(
            (await session.execute(select(Post.status, func.count()).group_by(Post.status))).all()
        )
        total = int(counts.get(status, 0)) if status else sum(int(n) for n in counts.values())
        pages = max((total + PER_PAGE - 1) // PER_PAGE, 1)
        current = min(current, pages)
        posts = list(
            await session.scalars(
                query.order_by(Post.scheduled_at.desc(), Post.id.desc())
                .offset((current - 1) * PER_PAGE)
                .limit(PER_PAGE)
            )
        )
    return render(
        request,
        "posts.html",
        {
            "posts": posts,
            "status": status,
            "counts": {str(k): int(v) for k, v in counts.items()},
            "total": total,
            "current": current,
            "pages": pages,
            "title": "Bài viết",
        },
    )


@page(VIEW)
async def post_page(request: Request) -> Response:
    bot = bot_of(request)
    post = await _post_or_none(bot, request)
    if post is None:
        return _not_found(request)
    person, tz = _person(request), bot.settings.tz
    async with bot.sessions() as session:
        audit = list(
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.post_id == post.id)
                .order_by(AuditEntry.at, AuditEntry.id)
            )
        )
        people = await _people(session)
    images = _local_media(post.media, IMAGE_SUFFIXES)
    started, status = _started(post), post.status
    renderings = [(c, bot.render(post, c)) for c in post.channels if c in CHANNELS]
    local = post.scheduled_at.astimezone(tz)
    return render(
        request,
        "post.html",
        {
            "post": post,
            "title": f"Bài #{post.id}",
            "source": SOURCES.get(post.source, post.source),
            "images": images,
            "files": [p.name for _, p in _local_media(post.media, DOCUMENT_SUFFIXES)],
            "video": [p.name for _, p in _local_media(post.media, VIDEO_SUFFIXES)],
            "renderings": renderings,
            "warnings": _post_warnings(bot, post),
            "audit": audit,
            "actions": ACTIONS,
            "people": people,
            "may": {
                "edit": person.may(WRITE) and status == PostStatus.DRAFT,
                "approve": person.may(APPROVE) and status == PostStatus.DRAFT,
                "cancel": person.may(APPROVE) and status == PostStatus.APPROVED,
                "retry": person.may(APPROVE)
                and status in (PostStatus.APPROVED, PostStatus.DONE)
                and any(d.status in STUCK for d in post.deliveries),
                "reschedule": person.may(APPROVE) and status in MOVABLE and not started,
            },
            "moved_date": local.date().isoformat(),
            "moved_time": local.strftime("%H:%M"),
            "today": datetime.now(tz).date().isoformat(),
        },
    )


@page(VIEW)
async def media(request: Request) -> Response:
    """One of a post's images, for the console's own thumbnails."""
    bot = bot_of(request)
    post = await _post_or_none(bot, request)
    index = int(request.path_params["index"])
    if post is None or index >= len(post.media):
        return _not_found(request)
    path = Path(post.media[index])
    if path.suffix.lower() not in IMAGE_SUFFIXES or not await run_in_threadpool(path.is_file):
        return _not_found(request)
    kind = "image/png" if path.suffix.lower() == ".png" else "image/jpeg"
    headers = {"Cache-Control": "private, max-age=3600", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=kind, headers=headers)


# ---- pages: actions ---------------------------------------------------------------------------


async def _next(request: Request, post_id: int) -> RedirectResponse:
    """Back to where the action came from (a local path), else to the post."""
    target = str((await request.form()).get("next") or "")
    return RedirectResponse(safe_next(target or f"/posts/{post_id}"), status_code=303)


@page(APPROVE)
async def approve(request: Request) -> Response:
    bot, person = bot_of(request), _person(request)
    post = await bot.queue.get(int(request.path_params["post_id"]))
    if post.status != PostStatus.DRAFT:
        state = POST_STATUS.get(post.status, post.status).lower()
        raise InputError(f"Bài #{post.id} {state}, không cần duyệt nữa.")
    problem = _blocking(bot, post)
    if problem:
        raise InputError(problem)
    _, created = await bot.approve(post.id, actor=person.actor)
    when = _local(post.scheduled_at, bot.settings.tz)
    if created:
        flash(request, f"Đã duyệt bài #{post.id}: {created} lượt gửi, đăng lúc {when}.")
    else:
        flash(request, f"Đã duyệt bài #{post.id} nhưng không có nơi nhận nào.", "error")
    return await _next(request, post.id)


@page(APPROVE)
async def reject(request: Request) -> Response:
    bot, person = bot_of(request), _person(request)
    post_id = int(request.path_params["post_id"])
    reason = nfc(str((await request.form()).get("reason") or ""))
    if not reason:
        raise InputError("Hãy ghi lý do từ chối để người soạn biết cần sửa gì.")
    if len(reason) > REASON_MAX:
        raise InputError(f"Lý do từ chối dài quá {REASON_MAX} ký tự.")
    await bot.queue.reject(post_id, reason, actor=person.actor)
    flash(request, f"Đã từ chối bài #{post_id}.")
    return await _next(request, post_id)


@page(APPROVE)
async def cancel(request: Request) -> Response:
    bot, person = bot_of(request), _person(request)
    post_id = int(request.path_params["post_id"])
    cancelled, in_flight = await bot.queue.cancel(post_id, actor=person.actor)
    message = f"Đã huỷ bài #{post_id}: dừng {cancelled} lượt gửi."
    if in_flight:
        message += f" {in_flight} lượt đang gửi dở, không thu hồi được."
    flash(request, message)
    return await _next(request, post_id)


@page(APPROVE)
async def retry(request: Request) -> Response:
    bot, person = bot_of(request), _person(request)
    post_id = int(request.path_params["post_id"])
    count = await bot.queue.retry(post_id, actor=person.actor)
    flash(request, f"Đã xếp lại {count} lượt gửi của bài #{post_id}.")
    return await _next(request, post_id)


@page(APPROVE)
async def reschedule(request: Request) -> Response:
    """Move a post to another day: the calendar's drag and drop (JSON) or the post's form."""
    bot, person = bot_of(request), _person(request)
    post_id = int(request.path_params["post_id"])
    form = await request.form()
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        try:
            day = date.fromisoformat(str(form.get("date") or ""))
            clock_text = str(form.get("time") or "")
            clock = time.fromisoformat(clock_text) if clock_text else None
        except ValueError:
            raise InputError("Hãy chọn ngày mới (và giờ, nếu muốn đổi).") from None
        before, after = await bot.queue.reschedule(
            post_id, day, clock, bot.settings.tz, actor=person.actor
        )
    except BotError as exc:
        if wants_json:
            return JSONResponse({"ok": False, "error": exc.message}, status_code=422)
        raise
    tz = bot.settings.tz
    message = f"Đã dời bài #{post_id} từ {_local(before, tz)} sang {_local(after, tz)}."
    if wants_json:
        return JSONResponse({"ok": True, "message": message, "date": after.date().isoformat()})
    flash(request, message)
    return await _next(request, post_id)


# ---- the calendar ------------------------------------------------------------------------------


@dataclass
class Day:
    """One square of the month grid."""

    date: date
    in_month: bool
    today: bool
    past: bool
    posts: list[Post] = field(default_factory=list)
    events: list[Occurrence] = field(default_factory=list)
    holiday: str | None = None

    @property
    def empty(self) -> bool:
        return not (self.posts or self.events or self.holiday)


def _month(text: str | None, today: date) -> date:
    """The first day of the month `text` names ("2026-07"), else of this month."""
    found = re.fullmatch(r"(\d{4})-(\d{1,2})", text or "")
    if found and 1 <= int(found.group(2)) <= 12 and 1900 <= int(found.group(1)) <= 2100:
        return date(int(found.group(1)), int(found.group(2)), 1)
    return today.replace(day=1)


def _calendar_notes(bot: App, first: date, last: date) -> tuple[list[Any], dict[date, str]]:
    """The calendar's events and the days off between `first` and `last` (a bad file: none)."""
    from content.calendar import load_events, occurrences, public_holidays

    try:
        events, _ = load_events(local_events=bot.org.local_events)
        found: list[Any] = occurrences(events, first, last)
    except BotError:  # a broken calendar file must not take the page down
        found = []
    days_off: dict[date, str] = {}
    for year in {first.year, last.year}:
        try:
            days_off |= public_holidays(year)
        except BotError:
            continue
    return found, days_off


@page(VIEW)
async def calendar_page(request: Request) -> Response:
    from content.calendar import WEEKDAYS

    bot, tz = bot_of(request), bot_of(request).settings.tz
    today = datetime.now(tz).date()
    month = _month(request.query_params.get("month"), today)
    weeks = monthly.Calendar(firstweekday=0).monthdatescalendar(month.year, month.month)
    first, last = weeks[0][0], weeks[-1][-1]
    start = datetime.combine(first, time(0), tzinfo=tz)
    async with bot.sessions() as session:
        posts = list(
            await session.scalars(
                select(Post)
                .options(selectinload(Post.deliveries))
                .where(Post.scheduled_at >= start)
                .where(Post.scheduled_at < start + timedelta(days=7 * len(weeks)))
                .where(Post.status != PostStatus.CANCELLED)
                .order_by(Post.scheduled_at, Post.id)
            )
        )
    events, days_off = _calendar_notes(bot, first, last)
    days = {
        d: Day(d, d.month == month.month, d == today, d < today, holiday=days_off.get(d))
        for week in weeks
        for d in week
    }
    for post in posts:
        days[post.scheduled_at.astimezone(tz).date()].posts.append(post)
    for occurrence in events:
        days[occurrence.date].events.append(occurrence)
    may_move = _person(request).may(APPROVE)
    movable = {p.id for p in posts if may_move and p.status in MOVABLE and not _started(p)}
    before = (month - timedelta(days=1)).replace(day=1)
    after = (month + timedelta(days=32)).replace(day=1)
    return render(
        request,
        "calendar.html",
        {
            "title": f"Lịch tháng {month.month}/{month.year}",
            "month": month,
            "weeks": [[days[d] for d in week] for week in weeks],
            "weekdays": WEEKDAYS,
            "previous": f"{before:%Y-%m}",
            "next": f"{after:%Y-%m}",
            "this_month": f"{today:%Y-%m}",
            "movable": movable,
            "may_move": may_move,
            "tz": tz,
            "nothing": not posts and not any(d.in_month for d in days.values() if not d.empty),
        },
    )


routes = [
    Route("/compose", compose, methods=["GET", "POST"]),
    Route("/compose/preview", preview, methods=["POST"]),
    Route("/approvals", approvals),
    Route("/posts", posts_list),
    Route("/posts/{post_id:int}", post_page),
    Route("/posts/{post_id:int}/edit", edit, methods=["GET", "POST"]),
    Route("/posts/{post_id:int}/media/{index:int}", media),
    Route("/posts/{post_id:int}/approve", approve, methods=["POST"]),
    Route("/posts/{post_id:int}/reject", reject, methods=["POST"]),
    Route("/posts/{post_id:int}/cancel", cancel, methods=["POST"]),
    Route("/posts/{post_id:int}/retry", retry, methods=["POST"]),
    Route("/posts/{post_id:int}/reschedule", reschedule, methods=["POST"]),
    Route("/calendar", calendar_page),
]

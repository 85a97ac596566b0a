"""`cdbot post …`: write, import, list, show, approve, cancel and retry posts."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from bot.cli.common import (
    iso,
    local,
    opened_app,
    out,
    parse_day,
    parse_when,
    plain,
    print_json,
    run,
    split_list,
)
from bot.errors import InputError

app = typer.Typer(help="Soạn, nhập, duyệt và theo dõi bài đăng.", no_args_is_help=True)

PAST_GRACE = timedelta(minutes=1)


def post_dict(post: Any, tz: Any) -> dict[str, Any]:
    return {
        "id": post.id,
        "kind": post.kind,
        "category": post.category,
        "title": post.title,
        "status": post.status,
        "scheduled_at": iso(post.scheduled_at, tz),
        "channels": post.channels,
        "clusters": post.clusters,
        "link": post.link,
        "media": [Path(m).name for m in post.media],
        "deliveries": {
            "total": len(post.deliveries),
            "sent": sum(1 for d in post.deliveries if d.status == "sent"),
        },
    }


def delivery_dict(delivery: Any, tz: Any) -> dict[str, Any]:
    """A delivery as `post show --json` and the API give it."""
    return {
        "id": delivery.id,
        "channel": delivery.channel,
        "target": delivery.target_label,
        "cluster": delivery.cluster_code,
        "status": delivery.status,
        "attempts": delivery.attempts,
        "remote_id": delivery.remote_id,
        "permalink": delivery.permalink,
        "error": delivery.last_error,
        "sent_at": iso(delivery.sent_at, tz),
    }


def post_detail(post: Any, tz: Any) -> dict[str, Any]:
    """A post with its body and every delivery (`post show --json`, the API)."""
    data = post_dict(post, tz)
    data["body"] = post.body
    data["delivery_list"] = [delivery_dict(d, tz) for d in post.deliveries]
    return data


def build_draft(fields: dict[str, Any], now: datetime) -> Any:
    """A checked `PostDraft` from an officer's fields, or an InputError in Vietnamese."""
    from pydantic import ValidationError

    from content.kinds import FIELD_LABELS, PostDraft, explain

    try:
        draft = PostDraft.model_validate(fields)
    except ValidationError as exc:
        field = str(exc.errors()[0]["loc"][0]) if exc.errors()[0]["loc"] else ""
        raise InputError(explain(exc), field=FIELD_LABELS.get(field)) from exc
    if draft.scheduled_at < now - PAST_GRACE:
        raise InputError(
            "Thời điểm đăng đã qua; hãy chọn một thời điểm trong tương lai.",
            field=FIELD_LABELS["scheduled_at"],
        )
    return draft


async def canonical_clusters(bot: Any, draft: Any) -> Any:
    """The draft with its cluster codes as stored ("hcsn" → "HCSN"); unknown codes refused."""
    from bot.directory import clusters_by_code

    if draft.clusters is None:
        return draft
    async with bot.sessions() as session:
        found = await clusters_by_code(session, draft.clusters)
    stored = {c.code.casefold(): c.code for c in found}
    codes = tuple(dict.fromkeys(stored[code.casefold()] for code in draft.clusters))
    return draft.model_copy(update={"clusters": codes})


async def check_targets(bot: Any, draft: Any) -> list[Any]:
    """The draft's targets, with each channel's rendering within its limit."""
    from content.render import PostContent, render

    if "zalo_broadcast" in draft.channels and draft.images and not bot.public_media_url:
        raise InputError(
            "Bài có ảnh không phát được đến người quan tâm Zalo khi chưa đặt "
            "CDBOT_PUBLIC_MEDIA_URL; bỏ kênh zalo_broadcast hoặc đặt địa chỉ đó.",
            field="Kênh",
        )
    content = PostContent(
        draft.kind, draft.title, draft.body, draft.link, draft.hashtags, draft.details
    )
    for channel in draft.channels:
        rendering = render(content, channel, bot.identity)
        if rendering.too_long:
            from content.kinds import CHANNELS

            raise InputError(
                f"Bài dài {rendering.length} ký tự khi gửi qua «{CHANNELS[channel]}», "
                f"vượt giới hạn {rendering.limit} ký tự; hãy rút gọn, hoặc thêm liên kết "
                "tới toàn văn (--link) để bot gửi bản tóm lược kèm liên kết."
            )
    return list(await bot.targets(draft.channels, draft.clusters))


@app.command("add")
def add(
    kind: Annotated[
        str, typer.Option(help="Loại bài: infographic, law, event, news, story, video.")
    ],
    title: Annotated[str, typer.Option(help="Tiêu đề bài.")],
    body: Annotated[str | None, typer.Option(help="Nội dung bài.")] = None,
    body_file: Annotated[
        Path | None, typer.Option(help="Đọc nội dung từ tệp văn bản UTF-8.")
    ] = None,
    image: Annotated[
        list[Path] | None, typer.Option(help="Ảnh JPEG/PNG đính kèm (lặp lại để thêm ảnh).")
    ] = None,
    video: Annotated[
        Path | None, typer.Option(help="Tệp video MP4/MOV (bài loại video; Facebook: ≤ 20 phút).")
    ] = None,
    document: Annotated[
        list[Path] | None,
        typer.Option(
            help="Tệp PDF/DOC/DOCX ≤ 5 MB gửi kèm vào nhóm Zalo và tới quản trị viên cụm "
            "(lặp lại được, tối đa 3)."
        ),
    ] = None,
    link: Annotated[str | None, typer.Option(help="Liên kết chia sẻ hoặc nguồn.")] = None,
    citation: Annotated[
        str | None,
        typer.Option(help='Bài «law»: căn cứ, ví dụ "Điều 107 Bộ luật Lao động 2019".'),
    ] = None,
    as_of: Annotated[
        str | None,
        typer.Option(help="Bài «law»: thông tin cập nhật đến ngày (dd/mm/yyyy); mặc định hôm nay."),
    ] = None,
    event_date: Annotated[
        str | None, typer.Option(help="Bài «event»: ngày diễn ra (dd/mm/yyyy).")
    ] = None,
    place: Annotated[str | None, typer.Option(help="Bài «event»: địa điểm.")] = None,
    at: Annotated[
        str | None,
        typer.Option(help='Giờ đăng, dạng "2026-12-01 07:30" (giờ Việt Nam); bỏ trống là ngay.'),
    ] = None,
    channels: Annotated[
        str | None,
        typer.Option(
            help="Kênh, cách nhau dấu phẩy: facebook_page, zalo_broadcast, zalo_group, zalo_user."
        ),
    ] = None,
    clusters: Annotated[
        str | None, typer.Option(help="Mã cụm thi đua, cách nhau dấu phẩy; bỏ trống là tất cả.")
    ] = None,
    category: Annotated[
        str | None, typer.Option(help="Nhóm nội dung: in_depth, regular, event, good_deeds.")
    ] = None,
    hashtag: Annotated[list[str] | None, typer.Option(help="Hashtag thêm (lặp lại được).")] = None,
    approve: Annotated[
        bool, typer.Option("--approve", help="Duyệt luôn để bài vào hàng đợi.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="In kết quả dạng JSON.")] = False,
) -> None:
    """Soạn một bài mới (bản nháp, hoặc duyệt luôn với --approve).

    Ví dụ: cdbot post add --kind law --title "Làm thêm giờ" --body-file bai.txt
    --citation "Điều 107 Bộ luật Lao động 2019" --link https://vbpl.vn/...
    --at "2026-12-01 07:30" --clusters HCSN,GD --approve
    """
    if (body is None) == (body_file is None):
        raise InputError("Cần đúng một trong hai: --body hoặc --body-file.")
    if body_file is not None:
        body = _read_text(body_file)
    with opened_app() as bot:
        tz = bot.settings.tz

        async def work() -> Any:
            now = await bot.queue.now()
            today = now.astimezone(tz).date()
            fields = {
                "kind": kind,
                "citation": citation,
                "as_of": parse_day(as_of, "--as-of") if as_of else today if kind == "law" else None,
                "event_date": parse_day(event_date, "--event-date") if event_date else None,
                "place": place,
                "title": title,
                "body": body,
                "link": link,
                "images": tuple(image or ()),
                "video": video,
                "documents": tuple(document or ()),
                "hashtags": tuple(hashtag or ()),
                "scheduled_at": parse_when(at, tz) if at else now,
                "channels": split_list(channels) or tuple(bot.org.default_channels),
                "clusters": split_list(clusters),
                "category": category,
            }
            draft = await canonical_clusters(bot, build_draft(fields, now))
            targets = await check_targets(bot, draft)
            post = await bot.queue.add(draft, actor="cli", approve_for=targets if approve else None)
            return await bot.queue.get(post.id)

        post = run(bot, work)
        if as_json:
            print_json(post_dict(post, tz))
            return
        state = "đã duyệt, vào hàng đợi" if approve else "lưu nháp"
        out.print(
            f"Đã tạo bài #{post.id} ({state}), đăng lúc {local(post.scheduled_at, tz)}, "
            f"{len(post.deliveries)} lượt gửi."
        )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise InputError(f"Không tìm thấy tệp nội dung «{path.name}».") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"Tệp «{path.name}» không phải văn bản UTF-8.") from exc
    except OSError as exc:
        raise InputError(f"Không đọc được tệp «{path.name}».") from exc


@app.command("import")
def import_posts(
    file: Annotated[
        Path, typer.Argument(help="Tệp CSV hoặc XLSX, mỗi dòng một bài.", metavar="TỆP")
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Chỉ kiểm tra, không ghi gì.")] = False,
) -> None:
    """Nhập nhiều bài từ bảng tính. Một dòng sai là bỏ cả tệp, không ghi gì.

    Cột: Loại, Tiêu đề, Nội dung, Liên kết, Ảnh và Tệp (PDF/DOC/DOCX; tên tệp cách nhau
    «;», tính từ thư mục của bảng tính), Thời điểm ("2026-12-01 07:30"), Kênh, Cụm, Nhóm,
    Hashtag, Duyệt («có»).
    """
    from bot.cli.imports import read_post_rows, row_fields

    rows = read_post_rows(file)
    with opened_app() as bot:

        async def work() -> list[Any]:
            now = await bot.queue.now()
            items = []
            for row in rows:
                fields = row_fields(row, file.parent, bot.settings.tz, now)
                approve = fields.pop("approve")
                fields["channels"] = fields["channels"] or tuple(bot.org.default_channels)
                try:
                    draft = build_draft(fields, now)
                except InputError as exc:
                    raise InputError(f"{row.where(exc.field)}: {exc.message}") from exc
                try:
                    draft = await canonical_clusters(bot, draft)
                except InputError as exc:
                    raise InputError(f"{row.where('Cụm')}: {exc.message}") from exc
                try:
                    targets = await check_targets(bot, draft)
                except InputError as exc:
                    raise InputError(f"{row.where('Nội dung')}: {exc.message}") from exc
                items.append((draft, targets if approve else None))
            if dry_run:
                return []
            return list(await bot.queue.add_many(items, actor="cli-import"))

        posts = run(bot, work)
        if dry_run:
            out.print(f"Tệp hợp lệ: {len(rows)} bài. Chưa ghi gì (--dry-run).")
        else:
            ids = ", ".join(f"#{p.id}" for p in posts)
            out.print(f"Đã nhập {len(posts)} bài: {ids}.")


@app.command("list")
def list_posts(
    status: Annotated[
        str | None, typer.Option(help="Chỉ bài ở trạng thái: draft, approved, done, cancelled.")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="In dạng JSON cho chương trình khác đọc.")
    ] = False,
) -> None:
    """Liệt kê bài đăng theo giờ đăng."""
    from rich.table import Table

    from bot.texts import POST_STATUS
    from content.kinds import KINDS

    if status is not None and status not in POST_STATUS:
        raise InputError(f"Trạng thái «{status}» không có; chọn: {', '.join(POST_STATUS)}.")
    with opened_app() as bot:
        posts = run(bot, lambda: bot.queue.list_posts(status))
        tz = bot.settings.tz
        if as_json:
            print_json([post_dict(p, tz) for p in posts])
            return
        table = Table(title=f"Bài đăng ({len(posts)})")
        for column in ("#", "Loại", "Tiêu đề", "Giờ đăng", "Trạng thái", "Đã gửi"):
            table.add_column(column)
        for p in posts:
            sent = sum(1 for d in p.deliveries if d.status == "sent")
            table.add_row(
                str(p.id),
                KINDS.get(p.kind, p.kind),
                plain(p.title[:60]),
                local(p.scheduled_at, tz),
                POST_STATUS.get(p.status, p.status),
                f"{sent}/{len(p.deliveries)}",
            )
        out.print(table)


@app.command("show")
def show(
    post_id: Annotated[int, typer.Argument(help="Số bài.", metavar="SỐ_BÀI")],
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Xem một bài và từng lượt gửi của nó."""
    from rich.table import Table

    from bot.texts import CHANNEL, DELIVERY_STATUS, POST_STATUS
    from content.kinds import KINDS

    with opened_app() as bot:
        post = run(bot, lambda: bot.queue.get(post_id))
        tz = bot.settings.tz
        if as_json:
            data = post_detail(post, tz)
            print_json(data)
            return
        out.print(plain(f"#{post.id} {post.title}"), style="bold")
        out.print(
            f"Loại: {KINDS.get(post.kind, post.kind)} · "
            f"Trạng thái: {POST_STATUS.get(post.status, post.status)} · "
            f"Giờ đăng: {local(post.scheduled_at, tz)}"
        )
        out.print(plain(post.body))
        table = Table(title="Lượt gửi")
        for column in ("Kênh", "Nơi nhận", "Cụm", "Trạng thái", "Lần thử", "Ghi chú"):
            table.add_column(column)
        for d in post.deliveries:
            note = d.permalink or d.remote_id or ""
            if d.last_error and d.status != "sent":
                note = d.last_error
            table.add_row(
                CHANNEL.get(d.channel, d.channel),
                plain(d.target_label),
                plain(d.cluster_code),
                DELIVERY_STATUS.get(d.status, d.status),
                str(d.attempts),
                plain(note[:80]),
            )
        out.print(table)


@app.command("preview")
def preview(
    post_id: Annotated[int, typer.Argument(help="Số bài.", metavar="SỐ_BÀI")],
    as_json: Annotated[bool, typer.Option("--json", help="In dạng JSON.")] = False,
) -> None:
    """Xem trước bài trên từng kênh, kèm số ký tự và giới hạn của kênh.

    Ví dụ: cdbot post preview 12
    """
    from content.kinds import CHANNELS

    with opened_app() as bot:
        post = run(bot, lambda: bot.queue.get(post_id))
        renderings = [bot.render(post, channel) for channel in post.channels]
        rows = [
            {
                "channel": r.channel,
                "length": r.length,
                "limit": r.limit,
                "shortened": r.shortened,
                "warnings": _warnings(r, post),
                "documents": _documents(r.channel, post),
                "text": r.text,
            }
            for r in renderings
        ]
        if as_json:
            print_json({"id": post.id, "title": post.title, "channels": rows})
            return
        out.print(plain(f"#{post.id} {post.title}"), style="bold")
        for row in rows:
            name = CHANNELS.get(row["channel"], row["channel"])
            heading = f"{name} · {row['length']}/{row['limit']} ký tự"
            out.rule(heading, align="left")
            out.print(plain(row["text"]))
            if row["documents"]:
                out.print(plain("📎 Kèm tệp: " + ", ".join(row["documents"])))
            for warning in row["warnings"]:
                out.print(f"  ⚠ {warning}", style="yellow")


def _documents(channel: str, post: Any) -> list[str]:
    """The names of the files `channel` carries (Zalo groups and admins only)."""
    from content.kinds import DOCUMENT_CHANNELS

    return _document_names(post) if channel in DOCUMENT_CHANNELS else []


def _document_names(post: Any) -> list[str]:
    from content.media import is_document

    return [Path(m).name for m in post.media if is_document(Path(m))]


def _warnings(rendering: Any, post: Any) -> list[str]:
    """What the officer should know before approving, for one channel."""
    notes = []
    if _document_names(post) and not _documents(rendering.channel, post):
        notes.append("Kênh này không kèm tệp; tệp chỉ gửi vào nhóm Zalo và tới quản trị viên cụm.")
    if rendering.too_long:
        notes.append(f"Dài hơn giới hạn {rendering.limit} ký tự: kênh này sẽ từ chối bài.")
    elif rendering.shortened:
        notes.append("Bài dài: Zalo nhận bản rút gọn kèm liên kết tới toàn văn.")
    if rendering.channel == "zalo_broadcast" and len(post.title) > ARTICLE_TITLE_MAX:
        notes.append(f"Tiêu đề bài viết Zalo chỉ giữ {ARTICLE_TITLE_MAX} ký tự đầu.")
    return notes


ARTICLE_TITLE_MAX = 150


@app.command("approve")
def approve(
    post_id: Annotated[int, typer.Argument(help="Số bài cần duyệt.", metavar="SỐ_BÀI")],
) -> None:
    """Duyệt bài: tạo lượt gửi tới từng kênh và cụm đã chọn. Duyệt lại không tạo thêm."""
    with opened_app() as bot:
        post, created = run(bot, lambda: bot.approve(post_id, actor="cli"))
        out.print(f"Đã duyệt bài #{post.id}: thêm {created} lượt gửi.")


@app.command("cancel")
def cancel(
    post_id: Annotated[int, typer.Argument(help="Số bài cần huỷ.", metavar="SỐ_BÀI")],
) -> None:
    """Huỷ bài: mọi lượt gửi chưa đi sẽ không đi nữa."""
    with opened_app() as bot:
        cancelled, in_flight = run(bot, lambda: bot.queue.cancel(post_id, actor="cli"))
        out.print(f"Đã huỷ bài #{post_id}: dừng {cancelled} lượt gửi.")
        if in_flight:
            out.print(
                f"{in_flight} lượt đang gửi dở, không thu hồi được; "
                f"xem «cdbot post show {post_id}»."
            )


@app.command("retry")
def retry(post_id: Annotated[int, typer.Argument(help="Số bài.", metavar="SỐ_BÀI")]) -> None:
    """Gửi lại các lượt thất bại hoặc đã được người kiểm tra xác nhận là chưa đi."""
    with opened_app() as bot:
        count = run(bot, lambda: bot.queue.retry(post_id, actor="cli"))
        out.print(f"Đã xếp lại {count} lượt gửi của bài #{post_id}.")

"""A phone-friendly HTML page showing what the sandbox received, in Vietnamese."""

from __future__ import annotations

from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import BaseRoute, Route

from connectors.sandbox.facebook_videos import status_label
from connectors.sandbox.records import FbPost, FbVideo, ZaloBroadcast, ZaloMessage
from connectors.sandbox.state import SANDBOX_PAGE_NAME, SANDBOX_ZALO_OA_NAME, SandboxState

VN = ZoneInfo("Asia/Ho_Chi_Minh")
STYLE = """
*{box-sizing:border-box}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
background:#f0f2f5;color:#1c1e21;font-size:16px;line-height:1.45}
header{background:#b71c1c;color:#fff;padding:12px 16px}
header h1{margin:0;font-size:1.25rem}
header p{margin:4px 0 0;font-size:.85rem;opacity:.9}
main{max-width:680px;margin:0 auto;padding:8px}
section{margin:16px 0}
h2{font-size:1.1rem;margin:8px 4px}
h3{font-size:1rem;margin:12px 4px 6px}
.card{background:#fff;border-radius:10px;padding:12px;margin:8px 0;
box-shadow:0 1px 2px rgba(0,0,0,.15);overflow-wrap:anywhere}
.meta{color:#65676b;font-size:.8rem}
.text{white-space:pre-wrap;margin:8px 0}
.badge{display:inline-block;background:#e4e6eb;border-radius:6px;padding:1px 6px;
font-size:.75rem;margin-right:4px}
.warn{background:#ffe0b2}
.chat{background:#e8f0fe;border-radius:10px;padding:8px}
.bubble{background:#0068ff;color:#fff;border-radius:16px 16px 4px 16px;padding:8px 12px;
margin:6px 0 6px auto;max-width:85%;width:fit-content;white-space:pre-wrap;overflow-wrap:anywhere}
.bubble .meta{color:#dce6ff;display:block;text-align:right}
.bubble .file{display:block;background:#fff;color:#1c1e21;border-radius:8px;padding:6px 10px}
.empty{color:#65676b;font-style:italic;margin:4px}
a{color:#1763cf}
"""


def _empty(text: str) -> str:
    return f'<p class="empty">{text}</p>'


NO_GROUPS = f"<section><h2>Nhóm Zalo</h2>{_empty('Chưa có nhóm nào.')}</section>"


def _time(moment: datetime) -> str:
    return moment.astimezone(VN).strftime("%H:%M %d/%m/%Y")


def _link(url: str) -> str:
    label = escape(url)
    if url.startswith(("http://", "https://")):
        return f'<a href="{escape(url, quote=True)}" rel="noopener">{label}</a>'
    return label


def _video_badge(status: str) -> str:
    warn = "" if status == "ready" else " warn"
    return f'<span class="badge{warn}">▶ Video · {escape(status_label(status))}</span>'


def _post(post: FbPost) -> str:
    badges = []
    if post.video_id:
        badges.append(_video_badge("ready"))
    if post.photo_ids:
        badges.append(f'<span class="badge">📷 {len(post.photo_ids)} ảnh</span>')
    if not post.published:
        badges.append('<span class="badge warn">Chưa đăng công khai</span>')
    link = f'<div class="meta">🔗 {_link(post.link)}</div>' if post.link else ""
    return (
        '<article class="card">'
        f'<div class="meta">{escape(SANDBOX_PAGE_NAME)} · {_time(post.created_time)}</div>'
        f'<div class="text">{escape(post.message)}</div>{link}<div>{"".join(badges)}</div>'
        "</article>"
    )


def _video(video: FbVideo) -> str:
    """A video that is not (yet) a post: still processing, failed or unpublished."""
    badges = [_video_badge(video.status)]
    if not video.published:
        badges.append('<span class="badge warn">Chưa đăng công khai</span>')
    title = f"<strong>{escape(video.title)}</strong>\n" if video.title else ""
    return (
        '<article class="card">'
        f'<div class="meta">{escape(SANDBOX_PAGE_NAME)} · {_time(video.created_time)}</div>'
        f'<div class="text">{title}{escape(video.description)}</div>'
        f"<div>{''.join(badges)}</div></article>"
    )


def _size(size: int | None) -> str:
    if size is None:
        return ""
    if size < 1024 * 1024:
        return f" · {max(1, round(size / 1024))} KB"
    return f" · {size / (1024 * 1024):.1f} MB".replace(".", ",")


def _bubble(message: ZaloMessage) -> str:
    media = ""
    if message.media_type == "file":
        name = escape(message.file_name or "tệp")
        media = f'<span class="file">📄 {name}{_size(message.file_size)}</span>'
    elif message.media_type:
        source = message.media_url or message.attachment_id or ""
        media = f'<span class="meta">🖼 {escape(message.media_type)}: {escape(source)}</span>'
    return (
        f'<div class="bubble">{escape(message.text)}{media}'
        f'<span class="meta">{_time(message.at)}</span></div>'
    )


def _chat(messages: list[ZaloMessage]) -> str:
    if not messages:
        return _empty("Chưa có tin nhắn.")
    return '<div class="chat">' + "".join(_bubble(m) for m in messages) + "</div>"


def _broadcast(sent: ZaloBroadcast) -> str:
    target = ", ".join(f"{escape(str(k))}={escape(str(v))}" for k, v in sent.target.items())
    return (
        '<article class="card">'
        f'<div class="meta">{escape(SANDBOX_ZALO_OA_NAME)} · {_time(sent.at)}</div>'
        f'<div class="text"><strong>{escape(sent.title)}</strong></div>'
        f'<div class="meta">Đối tượng: {target or "tất cả người quan tâm"}</div>'
        "</article>"
    )


def render_page(state: SandboxState) -> str:
    """The whole viewer page; every text from outside is escaped."""
    with state.lock:
        cards = [(p.created_time, _post(p)) for p in state.fb_posts]
        cards += [(v.created_time, _video(v)) for v in state.fb_videos.values() if not v.post_id]
        cards.sort(key=lambda card: card[0], reverse=True)
        feed = "".join(html for _, html in cards) or _empty("Chưa có bài đăng nào.")
        groups = "".join(
            f"<section><h2>Nhóm Zalo: {escape(g.name)}"
            + (' <span class="badge warn">đã tắt</span>' if g.status != "enabled" else "")
            + f"</h2>{_chat(g.messages)}</section>"
            for g in state.zalo_groups.values()
        )
        users = "".join(
            f"<h3>{escape(u.display_name)}</h3>{_chat(u.messages)}"
            for u in state.zalo_users.values()
            if u.messages
        )
        broadcasts = "".join(_broadcast(b) for b in reversed(state.zalo_broadcasts))
        request_count = len(state.requests)
        now = _time(state.now())
    return (
        '<!DOCTYPE html><html lang="vi"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="refresh" content="3">'
        f"<title>Hộp cát congdoan-bot</title><style>{STYLE}</style></head><body>"
        "<header><h1>Hộp cát congdoan-bot</h1>"
        f"<p>Mô phỏng Facebook và Zalo · cập nhật lúc {now} · "
        f"{request_count} yêu cầu API đã nhận</p></header><main>"
        f"<section><h2>Trang Facebook</h2>{feed}</section>"
        f"{groups or NO_GROUPS}"
        f"<section><h2>Tin nhắn Zalo cá nhân</h2>{users or _empty('Chưa có tin nhắn nào.')}"
        "</section><section><h2>Bài viết phát đến người quan tâm</h2>"
        f"{broadcasts or _empty('Chưa có bài viết nào được phát.')}</section>"
        "</main></body></html>"
    )


def routes(state: SandboxState) -> list[BaseRoute]:
    """`GET /`: the viewer page."""

    async def index(request: Request) -> HTMLResponse:
        return HTMLResponse(render_page(state))

    return [Route("/", index, methods=["GET"])]

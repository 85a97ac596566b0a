"""Reading a spreadsheet of posts (CSV or XLSX) into checked drafts, all or nothing."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from bot.cli.common import parse_day, parse_when, split_list
from bot.errors import InputError
from bot.sheets import SheetRow, normalise_header, optional, read_rows, require
from content.kinds import KINDS

# Column aliases after `normalise_header`: Vietnamese first, English accepted.
COLUMNS = {
    "kind": ("loai", "loai_bai", "kind"),
    "title": ("tieu_de", "title"),
    "body": ("noi_dung", "body"),
    "link": ("lien_ket", "link"),
    "images": ("anh", "hinh_anh", "images"),
    "documents": ("tep", "tep_dinh_kem", "documents"),
    "at": ("thoi_diem", "gio_dang", "thoi_diem_dang", "at"),
    "channels": ("kenh", "channels"),
    "clusters": ("cum", "cum_thi_dua", "clusters"),
    "category": ("nhom", "nhom_noi_dung", "category"),
    "hashtags": ("hashtag", "hashtags"),
    "approve": ("duyet", "approve"),
    "citation": ("can_cu", "citation"),
    "as_of": ("cap_nhat_den", "as_of"),
    "event_date": ("ngay_dien_ra", "event_date"),
    "place": ("dia_diem", "place"),
}
LABELS = {
    "kind": "Loại",
    "title": "Tiêu đề",
    "body": "Nội dung",
    "link": "Liên kết",
    "images": "Ảnh",
    "documents": "Tệp",
    "at": "Thời điểm",
    "channels": "Kênh",
    "clusters": "Cụm",
    "category": "Nhóm",
    "hashtags": "Hashtag",
    "approve": "Duyệt",
    "citation": "Căn cứ",
    "as_of": "Cập nhật đến",
    "event_date": "Ngày diễn ra",
    "place": "Địa điểm",
}
# The kind may be written as its code or its Vietnamese name.
KIND_NAMES = {normalise_header(name): code for code, name in KINDS.items()} | {
    code: code for code in KINDS
}
YES = {"co", "x", "yes", "y", "1", "true", "duyet"}
NO = {"", "khong", "no", "n", "0", "false"}


def _kind(row: SheetRow) -> str:
    raw = require(row, COLUMNS["kind"], LABELS["kind"])
    kind = KIND_NAMES.get(normalise_header(raw))
    if kind is None:
        raise InputError(f"{row.where(LABELS['kind'])}: không có loại bài «{raw}».")
    return kind


def _approve(row: SheetRow) -> bool:
    raw = normalise_header(optional(row, COLUMNS["approve"]) or "")
    if raw in YES:
        return True
    if raw in NO:
        return False
    raise InputError(f"{row.where(LABELS['approve'])}: hãy ghi «có» hoặc để trống.")


def _files(row: SheetRow, folder: Path, column: str) -> tuple[Path, ...]:
    """File names separated by «;» (or new lines), relative to the spreadsheet's folder."""
    raw = optional(row, COLUMNS[column]) or ""
    names = [part.strip() for part in raw.replace("\n", ";").split(";") if part.strip()]
    return tuple((folder / name) if not Path(name).is_absolute() else Path(name) for name in names)


def _day(row: SheetRow, column: str) -> date | None:
    raw = optional(row, COLUMNS[column])
    try:
        return parse_day(raw, f"cột «{LABELS[column]}»") if raw else None
    except InputError as exc:
        raise InputError(f"{row.where(LABELS[column])}: {exc.message}") from exc


def row_fields(row: SheetRow, folder: Path, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    """The draft fields one row gives (not yet validated as a post)."""
    at = optional(row, COLUMNS["at"])
    try:
        when = parse_when(at, tz) if at else now
    except InputError as exc:
        raise InputError(f"{row.where(LABELS['at'])}: {exc.message}") from exc
    kind = _kind(row)
    as_of = _day(row, "as_of") or (now.astimezone(tz).date() if kind == "law" else None)
    return {
        "kind": kind,
        "citation": optional(row, COLUMNS["citation"]),
        "as_of": as_of,
        "event_date": _day(row, "event_date"),
        "place": optional(row, COLUMNS["place"]),
        "title": require(row, COLUMNS["title"], LABELS["title"]),
        "body": require(row, COLUMNS["body"], LABELS["body"]),
        "link": optional(row, COLUMNS["link"]),
        "images": _files(row, folder, "images"),
        "documents": _files(row, folder, "documents"),
        "scheduled_at": when,
        "channels": split_list(optional(row, COLUMNS["channels"])),
        "clusters": split_list(optional(row, COLUMNS["clusters"])),
        "category": optional(row, COLUMNS["category"]),
        "hashtags": split_list(optional(row, COLUMNS["hashtags"])) or (),
        "approve": _approve(row),
    }


def read_post_rows(path: Path) -> list[SheetRow]:
    """The rows of a posts spreadsheet (first sheet of an XLSX)."""
    rows = read_rows(path)
    if not rows:
        raise InputError(f"Tệp «{path.name}» không có bài nào.")
    return rows

"""Post kinds and the rules an officer's draft must meet before it is stored.

`PostDraft` is what every entry point (CLI, spreadsheet import, later the web console
and the automatic jobs) builds; its validators speak Vietnamese because their
messages go straight to the officer.
"""

from __future__ import annotations

import math
import unicodedata
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import urlparse

from PIL import Image, UnidentifiedImageError
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from content.media import (
    DOCUMENT_SUFFIXES,
    MB,
    ZALO_DOCUMENT_MAX,
    check_video_for_facebook,
    probe_video,
    sniff_document,
)

KINDS: dict[str, str] = {
    "infographic": "Infographic",
    "law": "Giải đáp pháp luật",
    "event": "Thông báo sự kiện",
    "news": "Tin / chia sẻ liên kết",
    "story": "Gương người tốt, việc tốt",
    "video": "Video",
}
CATEGORIES: dict[str, str] = {
    "in_depth": "Chuyên sâu",
    "regular": "Thường xuyên",
    "event": "Sự kiện",
    "good_deeds": "Người tốt việc tốt",
}
DEFAULT_CATEGORY = {"event": "event", "story": "good_deeds"}
# The channels an officer chooses; a mention in the group is added by the bot when needed.
CHANNELS: dict[str, str] = {
    "facebook_page": "Trang Facebook",
    "zalo_broadcast": "Zalo: phát đến người quan tâm",
    "zalo_group": "Zalo: nhóm cụm thi đua",
    "zalo_user": "Zalo: quản trị viên cụm",
}
TITLE_MAX = 200
BODY_MAX = 20_000
MAX_IMAGES = 10
MAX_IMAGE_BYTES = 10 * 1024 * 1024
IMAGE_FORMATS = {"JPEG", "MPO", "PNG"}  # MPO: a phone's JPEG with extra pictures
CITATION_MAX = 300
MAX_DOCUMENTS = 3
# Only these channels carry a document (as a Zalo file message); the others leave it out.
DOCUMENT_CHANNELS = ("zalo_group", "zalo_user")
DOCUMENT_NAMES = {".pdf": "PDF", ".doc": "Word (.doc)", ".docx": "Word (.docx)"}


def nfc(text: str) -> str:
    """Unicode NFC, stripped: how every text is stored."""
    return unicodedata.normalize("NFC", text).strip()


def check_image(path: Path) -> Path:
    """A readable JPEG or PNG that decodes, or a Vietnamese ValueError."""
    if not path.is_file():
        raise ValueError(f"không tìm thấy tệp ảnh «{path.name or path}»")
    if path.stat().st_size > MAX_IMAGE_BYTES:
        raise ValueError(f"ảnh «{path.name}» lớn hơn 10 MB")
    try:
        with Image.open(path) as image:
            image_format = image.format
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise ValueError(f"tệp «{path.name}» không phải ảnh đọc được") from exc
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"ảnh «{path.name}» phải là JPEG hoặc PNG (đang là {image_format})")
    return path.resolve()


def check_document(path: Path) -> Path:
    """A PDF, DOC or DOCX up to 5 MB whose bytes match its suffix, or a Vietnamese ValueError."""
    if not path.is_file():
        raise ValueError(f"không tìm thấy tệp đính kèm «{path.name or path}»")
    suffix = path.suffix.lower()
    if suffix not in DOCUMENT_SUFFIXES:
        raise ValueError(f"tệp đính kèm «{path.name}» phải là PDF, DOC hoặc DOCX")
    size = path.stat().st_size
    if size > ZALO_DOCUMENT_MAX:
        megabytes = f"{math.ceil(size / MB * 10) / 10:.1f}".replace(".", ",")
        raise ValueError(
            f"tệp «{path.name}» nặng {megabytes} MB, Zalo chỉ nhận tệp đính kèm tới 5 MB"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"không đọc được tệp đính kèm «{path.name}»") from exc
    if sniff_document(data) != suffix.removeprefix("."):
        raise ValueError(
            f"tệp «{path.name}» không phải tệp {DOCUMENT_NAMES[suffix]} thật "
            "(nội dung không khớp với đuôi tệp, hoặc tệp bị hỏng)"
        )
    return path.resolve()


def _check_url(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    parsed = urlparse(value)
    if any(c.isspace() for c in value):
        raise ValueError(f"liên kết «{value[:80]}» có dấu cách; hãy dán lại liên kết đầy đủ")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"liên kết «{value[:80]}» phải bắt đầu bằng http:// hoặc https://")
    return value


class PostDraft(BaseModel):
    """A post as the officer wrote it, checked against its kind's rules."""

    model_config = ConfigDict(frozen=True)

    kind: str
    title: str
    body: str
    category: str | None = None
    link: Annotated[str | None, AfterValidator(_check_url)] = None
    images: tuple[Path, ...] = ()
    video: Path | None = None
    # PDF/DOC/DOCX sent after the text to cluster groups and admins (Zalo file messages).
    documents: tuple[Path, ...] = ()
    hashtags: tuple[str, ...] = ()
    scheduled_at: datetime
    channels: tuple[str, ...] = tuple(CHANNELS)
    clusters: tuple[str, ...] | None = None
    source: str = "manual"
    source_key: str | None = Field(default=None, max_length=255)
    # A law explainer cites the law and article, says how current it is and links the text.
    citation: str | None = None
    as_of: date | None = None
    # An event notice says when and where.
    event_date: date | None = None
    place: str | None = None

    @field_validator("citation", "place")
    @classmethod
    def _short_text(cls, value: str | None) -> str | None:
        value = nfc(value) if value is not None else None
        if not value:
            return None
        if len(value) > CITATION_MAX:
            raise ValueError(f"căn cứ hoặc địa điểm dài {len(value)} ký tự, tối đa {CITATION_MAX}")
        return value

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, value: str) -> str:
        if value not in KINDS:
            raise ValueError(f"loại bài «{value}» không có; chọn một trong: {', '.join(KINDS)}")
        return value

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = nfc(value)
        if not value:
            raise ValueError("tiêu đề không được để trống")
        if len(value) > TITLE_MAX:
            raise ValueError(f"tiêu đề dài {len(value)} ký tự, tối đa {TITLE_MAX}")
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: str) -> str:
        value = nfc(value)
        if not value:
            raise ValueError("nội dung không được để trống")
        if len(value) > BODY_MAX:
            raise ValueError(f"nội dung dài {len(value)} ký tự, tối đa {BODY_MAX}")
        return value

    @field_validator("category")
    @classmethod
    def _category(cls, value: str | None) -> str | None:
        if value is not None and value not in CATEGORIES:
            raise ValueError(f"nhóm nội dung «{value}» không có; chọn: {', '.join(CATEGORIES)}")
        return value

    @field_validator("images")
    @classmethod
    def _images(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        if len(value) > MAX_IMAGES:
            raise ValueError(f"tối đa {MAX_IMAGES} ảnh mỗi bài")
        return tuple(check_image(path) for path in value)

    @field_validator("documents")
    @classmethod
    def _documents(cls, value: tuple[Path, ...]) -> tuple[Path, ...]:
        if len(value) > MAX_DOCUMENTS:
            raise ValueError(f"tối đa {MAX_DOCUMENTS} tệp đính kèm mỗi bài")
        checked = tuple(check_document(path) for path in value)
        seen: set[str] = set()
        for path in checked:
            # The group shows files by name, and read-back tells them apart by it.
            if nfc(path.name).casefold() in seen:
                raise ValueError(f"hai tệp đính kèm cùng tên «{path.name}»; hãy đổi tên một tệp")
            seen.add(nfc(path.name).casefold())
        return checked

    @field_validator("video")
    @classmethod
    def _video(cls, value: Path | None) -> Path | None:
        if value is None:
            return None
        if not value.is_file():
            raise ValueError(f"không tìm thấy tệp video «{value.name}»")
        probe_video(value)  # a ValueError in Vietnamese for anything but MP4/MOV
        return value.resolve()

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        tags = tuple(nfc(tag).lstrip("#") for tag in value if nfc(tag).lstrip("#"))
        for tag in tags:
            if not all(c.isalnum() or c == "_" for c in tag):
                raise ValueError(
                    f"hashtag «{tag[:40]}» chỉ gồm chữ và số, viết liền (ví dụ: AnToanLaoDong)"
                )
        return tags

    @field_validator("channels")
    @classmethod
    def _channels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [c for c in value if c not in CHANNELS]
        if unknown:
            raise ValueError(f"kênh «{unknown[0]}» không có; chọn: {', '.join(CHANNELS)}")
        if not value:
            raise ValueError("cần chọn ít nhất một kênh")
        return tuple(dict.fromkeys(value))

    @field_validator("scheduled_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("thời điểm đăng phải kèm múi giờ")
        return value

    @model_validator(mode="after")
    def _kind_rules(self) -> Self:
        if self.kind == "infographic" and not self.images:
            raise ValueError("bài infographic cần ít nhất một ảnh (--image)")
        if self.kind == "law":
            if not self.citation:
                raise ValueError(
                    "bài giải đáp pháp luật cần căn cứ: luật và điều khoản "
                    "(ví dụ «Điều 107 Bộ luật Lao động 2019»)"
                )
            if not self.link:
                raise ValueError("bài giải đáp pháp luật cần liên kết tới văn bản gốc")
            if self.as_of is None:
                raise ValueError("bài giải đáp pháp luật cần ngày cập nhật thông tin")
        if self.kind == "event" and self.event_date is None:
            raise ValueError("bài thông báo sự kiện cần ngày diễn ra")
        if self.kind == "news" and not self.link:
            raise ValueError("bài loại «news» cần một liên kết (--link)")
        if self.kind == "video" and not (self.link or self.video):
            raise ValueError("bài video cần tệp video (--video) hoặc một liên kết (--link)")
        if self.video is not None and self.kind != "video":
            raise ValueError("chỉ bài loại «video» mới kèm tệp video")
        if self.video is not None and self.images:
            raise ValueError("bài video không kèm ảnh")
        if self.video is not None and "facebook_page" in self.channels:
            check_video_for_facebook(probe_video(self.video))
        if self.documents and not set(DOCUMENT_CHANNELS) & set(self.channels):
            raise ValueError(
                "tệp đính kèm chỉ gửi được vào nhóm Zalo của cụm hoặc tới quản trị viên cụm; "
                "hãy chọn thêm kênh zalo_group hoặc zalo_user"
            )
        return self

    @property
    def media(self) -> list[str]:
        """The files stored with the post: images or video, then documents (by suffix)."""
        video = (self.video,) if self.video else ()
        return [str(p) for p in (*self.images, *video, *self.documents)]

    @property
    def details(self) -> dict[str, str]:
        """The kind's own fields, as stored with the post (dates in ISO form)."""
        values = {
            "citation": self.citation,
            "as_of": self.as_of.isoformat() if self.as_of else None,
            "event_date": self.event_date.isoformat() if self.event_date else None,
            "place": self.place,
        }
        return {key: value for key, value in values.items() if value}

    @property
    def plan_category(self) -> str:
        """The category given, or the kind's usual one."""
        return self.category or DEFAULT_CATEGORY.get(self.kind, "regular")


FIELD_LABELS = {
    "video": "video",
    "kind": "loại bài",
    "title": "tiêu đề",
    "body": "nội dung",
    "category": "nhóm nội dung",
    "link": "liên kết",
    "images": "ảnh",
    "documents": "tệp đính kèm",
    "hashtags": "hashtag",
    "scheduled_at": "thời điểm đăng",
    "channels": "kênh",
    "clusters": "cụm thi đua",
    "citation": "căn cứ",
    "as_of": "ngày cập nhật",
    "event_date": "ngày diễn ra",
    "place": "địa điểm",
}


def explain(error: ValidationError) -> str:
    """One Vietnamese sentence for the first problem pydantic found."""
    first = error.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    label = FIELD_LABELS.get(field, field)
    if first["type"] == "value_error":
        text = str(first["msg"]).removeprefix("Value error, ")
    elif first["type"] == "missing":
        text = f"thiếu {label}"
    else:
        text = f"{label} không hợp lệ"
    return text[:1].upper() + text[1:] + "."

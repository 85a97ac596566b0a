"""Post drafts: each kind's rules, and per-channel rendering."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from content.kinds import PostDraft, explain
from content.render import Identity, PostContent, render

WHEN = datetime(2026, 12, 1, 0, 30, tzinfo=UTC)


def make(**overrides: Any) -> PostDraft:
    values: dict[str, Any] = {"kind": "story", "title": "T", "body": "B", "scheduled_at": WHEN}
    return PostDraft.model_validate(values | overrides)


def message(**overrides: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        make(**overrides)
    return explain(caught.value)


def png(path: Path) -> Path:
    Image.new("RGB", (20, 20), (200, 0, 0)).save(path, "PNG")
    return path


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"kind": "poem"}, "Loại bài «poem» không có"),
        ({"title": "   "}, "Tiêu đề không được để trống"),
        ({"title": "x" * 201}, "tối đa 200"),
        ({"body": ""}, "Nội dung không được để trống"),
        ({"kind": "news"}, "cần một liên kết"),
        ({"kind": "infographic"}, "cần ít nhất một ảnh"),
        ({"link": "ftp://x"}, "http:// hoặc https://"),
        ({"channels": ("telegram",)}, "Kênh «telegram» không có"),
        ({"images": (Path("/nowhere/a.png"),)}, "Không tìm thấy tệp ảnh «a.png»"),
        ({"scheduled_at": datetime(2026, 12, 1)}, "múi giờ"),  # noqa: DTZ001 - the point of the test
        ({"category": "misc"}, "Nhóm nội dung «misc» không có"),
    ],
)
def test_bad_drafts_get_a_vietnamese_sentence(overrides: dict[str, Any], fragment: str) -> None:
    text = message(**overrides)
    assert fragment in text
    assert text.endswith(".")


def test_broken_and_wrong_format_images_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    assert "không phải ảnh đọc được" in message(kind="infographic", images=(broken,))
    gif = tmp_path / "anim.gif"
    Image.new("P", (10, 10)).save(gif, "GIF")
    assert "JPEG hoặc PNG" in message(kind="infographic", images=(gif,))


def test_good_infographic(tmp_path: Path) -> None:
    draft = make(kind="infographic", images=(png(tmp_path / "a.png"),), hashtags=("#ATVSLD", ""))
    assert draft.hashtags == ("ATVSLD",)
    assert draft.plan_category == "regular"


def test_text_is_stored_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Công đoàn")
    assert make(title=decomposed).title == unicodedata.normalize("NFC", "Công đoàn")


def test_facebook_rendering_carries_identity() -> None:
    post = PostContent("law", "Nghỉ lễ", "Điều 112.", "https://x.vn", ("PhapLuatLaoDong",))
    identity = Identity(
        "Ban Tuyên giáo", "Đổi mới - Dân chủ", ("CongDoanVietNam", "PhapLuatLaoDong")
    )
    text = render(post, "facebook_page", identity).text
    assert text.startswith("📢 NGHỈ LỄ")
    assert "🔗 Xem chi tiết: https://x.vn" in text
    assert text.endswith("#PhapLuatLaoDong #CongDoanVietNam")
    assert "Ban Tuyên giáo\nĐổi mới - Dân chủ" in text


def test_zalo_text_limit_is_2000() -> None:
    long = render(PostContent("story", "T", "x" * 2100), "zalo_group", Identity())
    assert long.too_long and long.limit == 2000
    assert not render(PostContent("story", "T", "x" * 2100), "facebook_page", Identity()).too_long


def test_mentions_from_people_are_defused_in_zalo_only() -> None:
    post = PostContent("story", "Chào [@123]", "Gọi [@456] và [@789]")
    zalo = render(post, "zalo_group", Identity()).text
    assert "[@" not in zalo and "[\u200b@456]" in zalo
    assert "[@456]" in render(post, "facebook_page", Identity()).text

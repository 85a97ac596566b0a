"""Infographic cards: size, stable bytes, every Vietnamese glyph, text kept inside its box."""

from __future__ import annotations

import dataclasses
import io
import re
import stat
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fontTools.ttLib import TTFont  # type: ignore[import-untyped]  # fontTools ships no stubs
from PIL import Image, ImageChops
from PIL.ImageFont import truetype

from content.cards import (
    ADVICE,
    AS_OF,
    CITATION_LABEL,
    FONT_BOLD,
    FONT_REGULAR,
    FOOTER_HEIGHT,
    GAP,
    HEIGHT,
    MARGIN,
    NOTE,
    PAPER,
    SAMPLE,
    TITLE_SIZES,
    WIDTH,
    Card,
    line_height,
    main,
    missing_glyphs,
    render_card,
    write_card,
)
from content.media import ZALO_IMAGE_MAX

TONES = ("", "\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
LOWER = "".join(
    unicodedata.normalize("NFC", vowel + tone) for vowel in "aăâeêioôơuưy" for tone in TONES
)
# The 134 letters that carry a mark: every vowel with a tone or a hat, and đ, in both cases.
MARKED = "".join(c for c in LOWER + "đ" if not c.isascii())
ALPHABET = MARKED + MARKED.upper()
LONG = "Người lao động được nghỉ việc riêng mà vẫn hưởng nguyên lương khi kết hôn. " * 8
URL = "https://vbpl.vn/" + "boluatlaodong" * 20


def card(**changes: Any) -> Card:
    return dataclasses.replace(SAMPLE, **changes)


def picture(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image


def long_card() -> Card:
    return card(title="Quy định mới về thời giờ làm việc, nghỉ ngơi " * 6, points=(LONG, URL) * 2)


def lowest_change(a: Card, b: Card) -> int:
    """The last row where the two cards' pictures differ."""
    box = ImageChops.difference(picture(render_card(a)), picture(render_card(b))).getbbox()
    assert box is not None
    return box[3]


def test_card_is_a_1080_by_1350_rgb_png() -> None:
    image = picture(render_card(SAMPLE))

    assert image.format == "PNG"
    assert (image.size, image.mode) == ((WIDTH, HEIGHT), "RGB")


def test_the_same_card_gives_the_same_bytes() -> None:
    assert render_card(SAMPLE) == render_card(card())


def test_every_character_on_the_sample_has_a_glyph() -> None:
    texts = [SAMPLE.title, SAMPLE.kicker, SAMPLE.organisation, *SAMPLE.points]
    texts += [SAMPLE.citation or "", CITATION_LABEL, ADVICE, AS_OF.format(SAMPLE.as_of)]

    assert missing_glyphs("\n".join(texts)) == set()


@pytest.mark.parametrize("font_path", [FONT_REGULAR, FONT_BOLD], ids=lambda p: p.stem)
def test_regular_and_bold_cover_the_whole_vietnamese_alphabet(font_path: Path) -> None:
    with TTFont(font_path) as font:
        cmap = font.getBestCmap()

    assert len(set(ALPHABET)) == 134
    assert [c for c in ALPHABET if ord(c) not in cmap] == []
    assert missing_glyphs(ALPHABET) == set()


def test_stacked_marks_fit_between_lines_of_a_bold_title() -> None:
    font = truetype(FONT_BOLD, TITLE_SIZES[0])
    boxes = [font.getbbox(c, anchor="ls") for c in ALPHABET]
    above = -min(box[1] for box in boxes)  # Ậ, Ẳ: the highest marks over the baseline
    below = max(box[3] for box in boxes)  # ặ, ỵ: the lowest marks under it

    assert above + below <= line_height(font)


def test_emoji_are_reported_and_left_out_of_the_picture() -> None:
    assert missing_glyphs("📢 Thông báo 👉 ✅\n") == {"📢", "👉", "✅"}
    with_emoji = card(title="📢 " + SAMPLE.title, points=tuple("👉 " + p for p in SAMPLE.points))

    assert render_card(with_emoji) == render_card(SAMPLE)


def test_decomposed_text_draws_like_precomposed() -> None:
    def nfd(text: str) -> str:
        return unicodedata.normalize("NFD", text)

    decomposed = card(
        title=nfd(SAMPLE.title),
        points=tuple(map(nfd, SAMPLE.points)),
        organisation=nfd(SAMPLE.organisation),
    )

    assert decomposed.title != SAMPLE.title
    assert render_card(decomposed) == render_card(SAMPLE)


def test_long_text_stays_above_the_citation_and_the_footer() -> None:
    short = card(points=("Chỉ làm thêm giờ khi người lao động đồng ý.",))
    shown = picture(render_card(short))
    box_top = next(y for y in range(HEIGHT) if shown.getpixel((WIDTH - MARGIN - 2, y)) == NOTE)

    assert lowest_change(short, long_card()) <= box_top - GAP
    assert box_top < HEIGHT - FOOTER_HEIGHT


def test_long_text_without_citation_stays_above_the_footer() -> None:
    short = card(points=("Một ý ngắn.",), citation=None, as_of=None)
    long = dataclasses.replace(long_card(), citation=None, as_of=None)

    assert lowest_change(short, long) <= HEIGHT - FOOTER_HEIGHT - GAP


def test_long_text_stays_inside_the_side_margins() -> None:
    image = picture(render_card(long_card()))
    body = range(400, HEIGHT - FOOTER_HEIGHT)  # below the tallest header
    left = {image.getpixel((x, y)) for x in range(MARGIN - 2) for y in body}
    right = {image.getpixel((x, y)) for x in range(WIDTH - MARGIN + 2, WIDTH) for y in body}

    assert left == right == {PAPER}


def test_more_than_four_points_is_refused() -> None:
    with pytest.raises(ValueError, match="tối đa 4 ý, đang có 5 ý"):
        card(points=("Một ý.",) * 5)


def test_a_broken_logo_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    logo.write_text("không phải ảnh", encoding="utf-8")
    target = tmp_path / "out" / "card.png"

    with pytest.raises(ValueError, match=re.escape("Không đọc được logo «logo.png»")):
        write_card(card(logo=logo), target)

    assert not target.parent.exists()


def test_a_logo_is_drawn_top_right(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.new("RGB", (40, 30), (0, 90, 160)).save(logo)

    image = picture(render_card(card(logo=logo)))

    assert image.getpixel((WIDTH - MARGIN - 75, 64 + 75)) == (0, 90, 160)


def test_the_busiest_card_fits_zalo_upload_limit(tmp_path: Path) -> None:
    logo = tmp_path / "logo.png"
    Image.effect_noise((800, 800), 120).convert("RGB").save(logo)

    assert len(render_card(dataclasses.replace(long_card(), logo=logo))) <= ZALO_IMAGE_MAX


def test_write_card_writes_a_private_file(tmp_path: Path) -> None:
    path = write_card(SAMPLE, tmp_path / "card.png")

    assert path.read_bytes() == render_card(SAMPLE)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["card.png"]


def test_command_line_writes_the_sample(tmp_path: Path) -> None:
    main([str(tmp_path / "img" / "sample.png")])

    assert (tmp_path / "img" / "sample.png").read_bytes() == render_card(SAMPLE)
    assert SAMPLE.as_of == date(2026, 7, 23)

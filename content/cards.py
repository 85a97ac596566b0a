"""Infographic cards: a law explainer or an event notice drawn as a 1080×1350 PNG.

Text is NFC-normalised, stripped of characters the fonts cannot draw, wrapped by measured
pixel width and set smaller (then cut with "…") until it fits its box. Rendering is pure:
the same card always gives the same bytes, so a post's fingerprint stays stable.
"""

from __future__ import annotations

import argparse
import io
import os
import tempfile
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import cache
from importlib.resources import files
from pathlib import Path

from fontTools.ttLib import TTFont  # type: ignore[import-untyped]  # fontTools ships no stubs
from PIL import Image, ImageDraw, ImageOps
from PIL.ImageFont import FreeTypeFont, truetype

WIDTH, HEIGHT = 1080, 1350
MARGIN = 72
FOOTER_HEIGHT = 170
MAX_POINTS = 4
LOGO_BOX = 150
BADGE = 52  # the numbered circle beside each point
GAP = 48  # between the header, the points, the citation box and the footer

_FONT_DIR = files("font_source_sans_pro") / "files"
FONT_REGULAR = Path(str(_FONT_DIR / "SourceSansPro-Regular.ttf"))
FONT_SEMIBOLD = Path(str(_FONT_DIR / "SourceSansPro-Semibold.ttf"))
FONT_BOLD = Path(str(_FONT_DIR / "SourceSansPro-Bold.ttf"))
CARD_FONTS = (FONT_REGULAR, FONT_SEMIBOLD, FONT_BOLD)

# Sizes tried in turn, largest first; the last is the smallest still legible on a phone.
TITLE_SIZES = (68, 64, 60, 56, 52, 48)
BODY_SIZES = (42, 40, 38, 36, 34, 32, 30)
CITATION_SIZES = (36, 34, 32, 30)

RED = (150, 24, 32)
DEEP_RED = (112, 16, 24)
GOLD = (235, 186, 72)
PAPER = (250, 247, 242)
INK = (34, 34, 38)
MUTED = (92, 88, 84)
RULE = (224, 216, 204)
NOTE = (253, 241, 210)
WHITE = (255, 255, 255)
PALE = (244, 224, 214)

# Everything a reader or an officer sees, in one place.
ELLIPSIS = "…"
CITATION_LABEL = "CĂN CỨ PHÁP LÝ"
ADVICE = "Trường hợp cụ thể, hãy hỏi công đoàn cơ sở hoặc luật sư."
AS_OF = "Thông tin cập nhật đến {:%d/%m/%Y}"
NO_TITLE = "Thẻ infographic cần có tiêu đề."
TOO_MANY_POINTS = "Thẻ infographic có tối đa {limit} ý, đang có {count} ý."
BROKEN_LOGO = "Không đọc được logo «{name}»: tệp bị hỏng hoặc không phải ảnh."


@dataclass(frozen=True)
class Card:
    """What an infographic says: a kicker, a title, up to four points and the signature."""

    title: str
    points: tuple[str, ...]
    citation: str | None
    as_of: date | None
    organisation: str
    kicker: str
    logo: Path | None = None

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise ValueError(NO_TITLE)
        if len(self.points) > MAX_POINTS:
            raise ValueError(TOO_MANY_POINTS.format(limit=MAX_POINTS, count=len(self.points)))


# --- text ---------------------------------------------------------------------------------


@cache
def _covered() -> frozenset[int]:
    """Code points every card font has a glyph for."""
    cmaps = []
    for path in CARD_FONTS:
        with TTFont(path, lazy=True) as font:
            cmaps.append(set(font.getBestCmap()))
    return frozenset(set.intersection(*cmaps))


def missing_glyphs(text: str) -> set[str]:
    """Characters of `text` (NFC, whitespace aside) that the card's fonts cannot draw."""
    covered = _covered()
    nfc = unicodedata.normalize("NFC", text)
    return {c for c in nfc if not c.isspace() and ord(c) not in covered}


def _clean(text: str) -> str:
    """NFC text without undrawable characters, whitespace runs made single spaces."""
    covered = _covered()
    nfc = unicodedata.normalize("NFC", text)
    return " ".join("".join(c for c in nfc if c.isspace() or ord(c) in covered).split())


@cache
def _font(path: Path, size: int) -> FreeTypeFont:
    return truetype(path, size)


def line_height(font: FreeTypeFont) -> int:
    """Baseline-to-baseline distance: the font's ascent plus descent, so stacked marks
    (Ậ, ỗ, ặ) never touch the line above."""
    ascent, descent = font.getmetrics()
    return ascent + descent


def _wrap(text: str, font: FreeTypeFont, width: int) -> list[str]:
    """Lines no wider than `width` pixels; a word wider than a line is split."""
    lines: list[str] = []
    line = ""
    for word in text.split():
        for piece in _split_word(word, font, width):
            candidate = f"{line} {piece}" if line else piece
            if line and font.getlength(candidate) > width:
                lines.append(line)
                candidate = piece
            line = candidate
    return [*lines, line] if line else lines


def _split_word(word: str, font: FreeTypeFont, width: int) -> list[str]:
    pieces = [""]
    for char in word:
        if pieces[-1] and font.getlength(pieces[-1] + char) > width:
            pieces.append("")
        pieces[-1] += char
    return pieces


def _ellipsize(line: str, font: FreeTypeFont, width: int) -> str:
    """`line` ending in "…", cut at a word boundary when a whole word can go."""
    words = line.split(" ")
    while len(words) > 1 and font.getlength(" ".join(words) + ELLIPSIS) > width:
        words.pop()
    line = " ".join(words).rstrip(" ,;:.…")
    while line and font.getlength(line + ELLIPSIS) > width:
        line = line[:-1]
    return line + ELLIPSIS


def _fit(
    text: str, path: Path, sizes: Sequence[int], width: int, max_lines: int
) -> tuple[FreeTypeFont, list[str]]:
    """The largest size at which `text` takes at most `max_lines`; else cut at the smallest."""
    for size in sizes:
        font = _font(path, size)
        lines = _wrap(text, font, width)
        if len(lines) <= max_lines:
            return font, lines
    kept = lines[:max_lines]
    kept[-1] = _ellipsize(kept[-1], font, width)
    return font, kept


def _fit_points(
    points: Sequence[str], width: int, height: int
) -> tuple[FreeTypeFont, list[list[str]]]:
    """The points wrapped at the largest size whose blocks fit `height`, else cut with "…"."""
    for size in BODY_SIZES:
        font = _font(FONT_REGULAR, size)
        room = height - 2 * _overhang(font)
        blocks = [_wrap(point, font, width) for point in points]
        lines = sum(len(block) for block in blocks)
        if lines * line_height(font) + (len(blocks) - 1) * _point_gap(font) <= room:
            return font, blocks
    kept: list[list[str]] = []
    for block in blocks:
        fitting = room // line_height(font)
        if fitting <= 0:
            break
        kept.append(block[:fitting])
        room -= len(kept[-1]) * line_height(font) + _point_gap(font)
        if fitting < len(block):
            break
    if kept:
        kept[-1][-1] = _ellipsize(kept[-1][-1], font, width)
    return font, kept


def _overhang(font: FreeTypeFont) -> int:
    """How far a badge centred on a line of `font` reaches above or below that line."""
    return max(0, (BADGE - line_height(font) + 1) // 2)


def _point_gap(font: FreeTypeFont) -> int:
    return int(font.size * 0.9)


# --- drawing ------------------------------------------------------------------------------


def _draw_lines(
    draw: ImageDraw.ImageDraw,
    xy: tuple[int, int],
    lines: Sequence[str],
    font: FreeTypeFont,
    fill: tuple[int, int, int],
) -> int:
    """Draw lines from their ascender line down; return the y below the last one."""
    x, y = xy
    for line in lines:
        draw.text((x, y), line, font=font, fill=fill, anchor="la")
        y += line_height(font)
    return y


def _load_logo(path: Path) -> Image.Image:
    try:
        with Image.open(path) as opened:
            opened.load()
            logo = ImageOps.exif_transpose(opened).convert("RGBA")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise ValueError(BROKEN_LOGO.format(name=path.name)) from exc
    return ImageOps.contain(logo, (LOGO_BOX - 24, LOGO_BOX - 24), Image.Resampling.LANCZOS)


def _draw_header(image: Image.Image, card: Card, logo: Image.Image | None) -> int:
    """The red band with the kicker, the title and the logo; return its bottom."""
    draw = ImageDraw.Draw(image)
    text_width = WIDTH - 2 * MARGIN - (LOGO_BOX + 32 if logo else 0)
    kicker_font, kicker = _fit(_clean(card.kicker), FONT_BOLD, (30,), text_width, 1)
    title_font, title = _fit(_clean(card.title), FONT_BOLD, TITLE_SIZES, text_width, 3)
    top = 64
    title_top = top + line_height(kicker_font) + 20
    bottom = title_top + len(title) * line_height(title_font) + 40
    if logo:
        bottom = max(bottom, top + LOGO_BOX + 40)
    draw.rectangle((0, 0, WIDTH, bottom), fill=RED)
    draw.rectangle((0, bottom, WIDTH, bottom + 10), fill=GOLD)
    if kicker:
        draw.rectangle((MARGIN, top + 6, MARGIN + 8, top + line_height(kicker_font) - 6), fill=GOLD)
        _draw_lines(draw, (MARGIN + 24, top), kicker, kicker_font, WHITE)
    _draw_lines(draw, (MARGIN, title_top), title, title_font, WHITE)
    if logo:
        left = WIDTH - MARGIN - LOGO_BOX
        draw.rounded_rectangle((left, top, left + LOGO_BOX, top + LOGO_BOX), 20, fill=WHITE)
        offset = ((LOGO_BOX - logo.width) // 2, (LOGO_BOX - logo.height) // 2)
        image.paste(logo, (left + offset[0], top + offset[1]), logo)
    return bottom + 10


def _draw_footer(draw: ImageDraw.ImageDraw, card: Card) -> int:
    """The signature band: the organisation and the as-of date; return its top."""
    top = HEIGHT - FOOTER_HEIGHT
    draw.rectangle((0, top, WIDTH, HEIGHT), fill=DEEP_RED)
    draw.rectangle((0, top, WIDTH, top + 6), fill=GOLD)
    width = WIDTH - 2 * MARGIN
    name_font, name = _fit(_clean(card.organisation), FONT_BOLD, (38, 34, 30), width, 1)
    lines: list[tuple[FreeTypeFont, list[str], tuple[int, int, int]]] = [(name_font, name, WHITE)]
    if card.as_of:
        date_font, as_of = _fit(AS_OF.format(card.as_of), FONT_REGULAR, (30,), width, 1)
        lines.append((date_font, as_of, PALE))
    height = sum(line_height(font) * len(text) for font, text, _ in lines)
    y = top + 6 + (FOOTER_HEIGHT - 6 - height) // 2
    for font, text, colour in lines:
        y = _draw_lines(draw, (MARGIN, y), text, font, colour)
    return top


def _draw_citation(draw: ImageDraw.ImageDraw, citation: str, bottom: int) -> int:
    """The highlighted legal basis, with where to ask, set just above `bottom`; return its top."""
    pad = 28
    width = WIDTH - 2 * MARGIN - 2 * pad - 10
    label_font = _font(FONT_BOLD, 28)
    font, lines = _fit(_clean(citation), FONT_SEMIBOLD, CITATION_SIZES, width, 2)
    advice_font, advice = _fit(ADVICE, FONT_REGULAR, (30,), width, 2)
    inner = sum(line_height(f) * n for f, n in ((label_font, 1), (font, len(lines))))
    height = pad + inner + 12 + line_height(advice_font) * len(advice) + pad
    top = bottom - GAP - height
    draw.rectangle((MARGIN, top, WIDTH - MARGIN, top + height), fill=NOTE)
    draw.rectangle((MARGIN, top, MARGIN + 10, top + height), fill=RED)
    x, y = MARGIN + 10 + pad, top + pad
    y = _draw_lines(draw, (x, y), [CITATION_LABEL], label_font, RED)
    y = _draw_lines(draw, (x, y), lines, font, INK)
    _draw_lines(draw, (x, y + 12), advice, advice_font, MUTED)
    return top


def _draw_points(draw: ImageDraw.ImageDraw, points: Sequence[str], top: int, bottom: int) -> None:
    """Numbered blocks between `top` and `bottom`, as large as they fit."""
    texts = [text for text in map(_clean, points) if text]
    if not texts:
        return
    badge_left, text_left = MARGIN, MARGIN + 80
    font, blocks = _fit_points(texts, WIDTH - MARGIN - text_left, bottom - top)
    number_font = _font(FONT_BOLD, 28)
    y = top + _overhang(font)
    for number, block in enumerate(blocks, start=1):
        if number > 1:
            rule = y - _point_gap(font) // 2
            draw.line((text_left, rule, WIDTH - MARGIN, rule), fill=RULE, width=2)
        centre = (badge_left + BADGE // 2, y + line_height(font) // 2)
        draw.circle(centre, BADGE // 2, fill=RED)
        draw.text(centre, str(number), font=number_font, fill=WHITE, anchor="mm")
        y = _draw_lines(draw, (text_left, y), block, font, INK) + _point_gap(font)


def render_card(card: Card) -> bytes:
    """The card as a 1080×1350 RGB PNG; the same card always gives the same bytes.

    Raises a Vietnamese ValueError if the logo is not a readable image.
    """
    logo = _load_logo(card.logo) if card.logo else None
    image = Image.new("RGB", (WIDTH, HEIGHT), PAPER)
    draw = ImageDraw.Draw(image)
    top = _draw_header(image, card, logo) + GAP
    bottom = _draw_footer(draw, card)
    if card.citation and _clean(card.citation):
        bottom = _draw_citation(draw, card.citation, bottom)
    _draw_points(draw, card.points, top, bottom - GAP)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def write_card(card: Card, path: Path) -> Path:
    """Render `card` and write it to `path` atomically (temporary file, then rename; 0600)."""
    data = render_card(card)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


SAMPLE = Card(
    kicker="GIẢI ĐÁP PHÁP LUẬT",
    title="Làm thêm giờ: những giới hạn người lao động cần biết",
    points=(
        "Phải được người lao động đồng ý.",
        "Không quá 50% số giờ làm việc bình thường trong 01 ngày; nếu tính giờ làm theo "
        "tuần, tổng giờ làm và giờ làm thêm không quá 12 giờ/ngày.",
        "Không quá 40 giờ/tháng và không quá 200 giờ/năm.",
        "Một số ngành, nghề (dệt, may, da, giày, điện, điện tử, chế biến nông, lâm, "
        "thủy sản…) được làm thêm tới 300 giờ/năm, nhưng phải thông báo cho cơ quan "
        "lao động cấp tỉnh.",
    ),
    citation="Điều 107 Bộ luật Lao động 2019 (45/2019/QH14)",
    as_of=date(2026, 7, 23),
    organisation="Liên đoàn Lao động huyện Gia Lâm",
)


def write_sample(path: Path) -> Path:
    """Write the sample card (Điều 107, overtime limits) to `path`."""
    return write_card(SAMPLE, path)


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m content.cards PATH`: write the sample card."""
    parser = argparse.ArgumentParser(
        prog="python -m content.cards",
        description="Vẽ thẻ infographic mẫu (Điều 107 Bộ luật Lao động 2019) thành tệp PNG.",
        add_help=False,
    )
    parser.add_argument("-h", "--help", action="help", help="hiện hướng dẫn này rồi thoát")
    parser.add_argument("path", type=Path, help="đường dẫn tệp PNG sẽ ghi")
    write_sample(parser.parse_args(argv).path)


if __name__ == "__main__":
    main()

"""Media preparation before upload: images shrunk to the platforms' limits, videos probed,
documents recognised by their bytes.

Pure functions: no HTTP and no database. Re-encoded images land in a cache folder named
by the source's sha256 and the limits, so preparing the same post again costs nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from PIL import Image, ImageOps, UnidentifiedImageError

MB = 1024 * 1024
FACEBOOK_PNG_MAX = 1 * MB
FACEBOOK_IMAGE_MAX = 4 * MB
ZALO_IMAGE_MAX = 1 * MB
# Facebook's "1 GB" for non-resumable uploads, read the strict (decimal) way.
FACEBOOK_VIDEO_MAX_BYTES = 1_000_000_000
FACEBOOK_VIDEO_MAX_SECONDS = 20 * 60

MIN_LONG_SIDE = 1080
SMALLEST_LONG_SIDE = 64
SCALE_STEP = 0.85
JPEG_QUALITIES = (92, 85, 80)
# Full-resolution colour keeps coloured text crisp; only the last resort trades it for size.
FULL_CHROMA_FROM_QUALITY = 85
KEPT_INFO = ("icc_profile", "transparency")
# Phones write JPEGs with extra pictures (MPO); Pillow names them apart, platforms do not.
JPEG_FORMATS = frozenset({"JPEG", "MPO"})

MOV_BRAND = b"qt  "
VIDEO_BRANDS = frozenset(
    {
        b"isom",
        b"iso2",
        b"iso4",
        b"iso5",
        b"iso6",
        b"mp41",
        b"mp42",
        b"avc1",
        b"M4V ",
        b"dash",
        b"3gp4",
        b"3gp5",
        b"3gp6",
        b"3g2a",
        b"mmp4",
        b"f4v ",
        b"XAVC",
        b"MSNV",
    }
)
MAX_BOXES = 10_000

# Documents Zalo takes as file messages (upload/file): PDF, DOC, DOCX up to 5 MB.
ZALO_DOCUMENT_MAX = 5 * MB
DOCUMENT_SUFFIXES = frozenset({".pdf", ".doc", ".docx"})
PDF_MAGIC = b"%PDF-"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the compound file of a Word 97-2003 .doc
ZIP_MAGIC = b"PK\x03\x04"


# --- images -------------------------------------------------------------------------------


def fit_image(
    path: Path, *, max_bytes: int, cache_dir: Path, png_max_bytes: int | None = None
) -> Path:
    """A JPEG or PNG of `path` no larger than `max_bytes` (a PNG: `png_max_bytes`).

    A JPEG or PNG that already fits comes back unchanged (the same path). Otherwise a PNG
    (or another lossless format) is first re-saved as an optimised PNG, then as a JPEG at
    quality 92, 85 and 80, then scaled down by 0.85 per step, not below 1080 px on the
    longer side unless nothing at 1080 px fits. EXIF orientation is applied and metadata
    dropped. Results are cached in `cache_dir` (files 0600). Raises a Vietnamese
    ValueError for an unreadable image or one that cannot be made small enough.
    """
    png_limit = max_bytes if png_max_bytes is None else png_max_bytes
    data = _read(path)
    image_format = _identify(data, path)
    limit = png_limit if image_format == "PNG" else max_bytes
    if (image_format in JPEG_FORMATS or image_format == "PNG") and len(data) <= limit:
        return path
    key = hashlib.sha256(data).hexdigest() + f"-{max_bytes}"
    if png_limit != max_bytes:
        key += f"-{png_limit}"
    for suffix in (".png", ".jpg"):
        cached = cache_dir / f"{key}{suffix}"
        if cached.is_file():
            return cached
    encoded, suffix = _shrink(data, path, image_format, max_bytes, png_limit)
    return _store(cache_dir, f"{key}{suffix}", encoded)


def fit_for_facebook(path: Path, cache_dir: Path) -> Path:
    """The image as Facebook takes it best: a PNG up to 1 MB, or any JPEG/PNG up to 4 MB."""
    return fit_image(
        path, max_bytes=FACEBOOK_IMAGE_MAX, png_max_bytes=FACEBOOK_PNG_MAX, cache_dir=cache_dir
    )


def fit_for_zalo(path: Path, cache_dir: Path) -> Path:
    """The image as Zalo's upload takes it: JPEG or PNG up to 1 MB."""
    return fit_image(path, max_bytes=ZALO_IMAGE_MAX, cache_dir=cache_dir)


def _unreadable(path: Path) -> ValueError:
    return ValueError(f"Không đọc được ảnh «{path.name}»: tệp bị hỏng hoặc không phải ảnh.")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ValueError(f"Không mở được tệp ảnh «{path.name}».") from exc


def _identify(data: bytes, path: Path) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format
            image.verify()
    except (OSError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable(path) from exc
    return image_format or ""


def _load(data: bytes, path: Path) -> Image.Image:
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except (OSError, UnidentifiedImageError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _unreadable(path) from exc
    assert image is not None  # not in place, so a new image always comes back
    return image


def _shrink(
    data: bytes, path: Path, image_format: str, max_bytes: int, png_limit: int
) -> tuple[bytes, str]:
    image = _load(data, path)
    # Pillow re-writes some metadata (comments, profiles) from `info`: keep only what we want.
    image.info = {k: v for k, v in image.info.items() if k in KEPT_INFO}
    if image_format not in JPEG_FORMATS:
        png = _encode_png(image)
        if len(png) <= png_limit:
            return png, ".png"
    rgb = _flatten(image)
    for quality in JPEG_QUALITIES:
        jpeg = _encode_jpeg(rgb, quality)
        if len(jpeg) <= max_bytes:
            return jpeg, ".jpg"
    for size in _smaller_sizes(rgb.size):
        jpeg = _encode_jpeg(rgb.resize(size, Image.Resampling.LANCZOS), JPEG_QUALITIES[-1])
        if len(jpeg) <= max_bytes:
            return jpeg, ".jpg"
    raise ValueError(f"Không thu nhỏ được ảnh «{path.name}» xuống dưới {_megabytes(max_bytes)}.")


def _smaller_sizes(size: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """Sizes 0.85 apart; 1080 px on the longer side is tried before going below it."""
    width, height = size
    longest = max(width, height)
    target = float(longest)
    floor_tried = longest <= MIN_LONG_SIDE
    while True:
        target *= SCALE_STEP
        if not floor_tried and target < MIN_LONG_SIDE:
            target, floor_tried = float(MIN_LONG_SIDE), True
        if target < SMALLEST_LONG_SIDE:
            return
        scale = target / longest
        yield max(1, round(width * scale)), max(1, round(height * scale))


def _encode_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB for JPEG; transparent parts become white."""
    if image.mode == "RGB":
        return image
    if image.mode != "RGBA":
        # A CMYK or grey colour profile would be wrong once the pixels are RGB.
        image.info.pop("icc_profile", None)
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    if "icc_profile" in image.info:
        background.info["icc_profile"] = image.info["icc_profile"]
    return background


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    subsampling = 0 if quality >= FULL_CHROMA_FROM_QUALITY else 2
    # No optimize=True: Pillow then fails ("Suspension not allowed here") on detailed images.
    image.save(buffer, format="JPEG", quality=quality, subsampling=subsampling)
    return buffer.getvalue()


def _store(cache_dir: Path, name: str, data: bytes) -> Path:
    """Write atomically: a temporary file (0600) renamed over the final name."""
    cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=cache_dir, prefix=".", suffix=".part")
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
        os.replace(temporary, cache_dir / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return cache_dir / name


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f}".replace(".", ",").removesuffix(",0") + " MB"


# --- documents ----------------------------------------------------------------------------


def is_document(path: Path) -> bool:
    """True for a stored media path that is a document (told apart by its suffix)."""
    return path.suffix.lower() in DOCUMENT_SUFFIXES


def sniff_document(data: bytes) -> str | None:
    """The document type a file's bytes show: "pdf", "doc", "docx", or None.

    A .docx is a ZIP holding `word/document.xml`; any other ZIP (a spreadsheet, an
    archive) is not one.
    """
    if data.startswith(PDF_MAGIC):
        return "pdf"
    if data.startswith(OLE2_MAGIC):
        return "doc"
    if data.startswith(ZIP_MAGIC):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
        return "docx" if "word/document.xml" in names else None
    return None


def write_sample_pdf(path: Path, title: str = "congdoan-bot") -> Path:
    """A one-page PDF (ASCII `title` as its only text), for rehearsals and tests."""
    text = title.encode("ascii", "replace").replace(b"(", b"[").replace(b")", b"]")
    stream = b"BT /F1 24 Tf 72 720 Td (" + text + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    path.write_bytes(bytes(out))
    return path


# --- videos -------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoInfo:
    """What the box headers of an mp4/mov say about it."""

    size_bytes: int
    container: Literal["mp4", "mov"]
    duration_seconds: float | None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class _Box:
    kind: bytes
    start: int  # of the payload
    end: int


def probe_video(path: Path) -> VideoInfo:
    """Size, container, duration and picture size of an mp4/mov, from its box headers.

    Reads only headers and the small `ftyp`, `mvhd`, `mehd` and `tkhd` boxes, never the
    media data. Raises a Vietnamese ValueError for anything that is not an mp4 or mov.
    """
    not_video = ValueError(f"Tệp «{path.name}» không phải video MP4 hoặc MOV.")
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            boxes = _boxes(handle, 0, size)
            ftyp = next(boxes, None)
            if ftyp is None or ftyp.kind != b"ftyp":
                raise not_video
            container = _container(_payload(handle, ftyp, 256))
            if container is None:
                raise not_video
            moov = next((b for b in boxes if b.kind == b"moov"), None)
            if moov is None:
                return VideoInfo(size, container, None)
            duration = _duration(handle, moov)
            width, height = _picture_size(handle, moov)
    except OSError as exc:
        raise ValueError(f"Không đọc được tệp video «{path.name}».") from exc
    return VideoInfo(size, container, duration, width, height)


def check_video_for_facebook(info: VideoInfo) -> None:
    """Refuse, in Vietnamese, what a direct (non-resumable) upload cannot take: > 1 GB, > 20 min.

    An unknown duration is accepted; Facebook then decides.
    """
    if info.size_bytes > FACEBOOK_VIDEO_MAX_BYTES:
        size = f"{info.size_bytes / 1_000_000_000:.2f}".replace(".", ",")
        raise ValueError(f"Video nặng {size} GB, Facebook chỉ nhận tối đa 1 GB khi tải trực tiếp.")
    seconds = info.duration_seconds
    if seconds is not None and seconds > FACEBOOK_VIDEO_MAX_SECONDS:
        raise ValueError(
            f"Video dài {_minutes(seconds)}, Facebook chỉ nhận tối đa 20 phút khi tải trực tiếp."
        )


def _minutes(seconds: float) -> str:
    whole = int(seconds)
    minutes, rest = divmod(whole, 60)
    return f"{minutes} phút {rest} giây" if rest else f"{minutes} phút"


def _boxes(handle: BinaryIO, start: int, end: int) -> Iterator[_Box]:
    """The boxes between two offsets, from their headers alone."""
    offset = start
    for _ in range(MAX_BOXES):
        if offset + 8 > end:
            return
        handle.seek(offset)
        size, kind = struct.unpack(">I4s", handle.read(8))
        header = 8
        if size == 1:
            if offset + 16 > end:
                return
            (size,) = struct.unpack(">Q", handle.read(8))
            header = 16
        elif size == 0:
            size = end - offset
        if size < header:
            return
        box_end = min(offset + size, end)
        yield _Box(kind, offset + header, box_end)
        offset = box_end


def _payload(handle: BinaryIO, box: _Box, limit: int) -> bytes:
    handle.seek(box.start)
    return handle.read(min(limit, box.end - box.start))


def _children(handle: BinaryIO, box: _Box, kind: bytes) -> Iterator[_Box]:
    return (b for b in _boxes(handle, box.start, box.end) if b.kind == kind)


def _container(ftyp: bytes) -> Literal["mp4", "mov"] | None:
    if len(ftyp) < 4:
        return None
    major = ftyp[:4]
    brands = {major} | {ftyp[i : i + 4] for i in range(8, len(ftyp) - 3, 4)}
    if major == MOV_BRAND:
        return "mov"
    if brands & VIDEO_BRANDS:
        return "mp4"
    return "mov" if MOV_BRAND in brands else None


def _duration(handle: BinaryIO, moov: _Box) -> float | None:
    """mvhd duration over its timescale; for fragmented files, mvex/mehd's duration."""
    mvhd = next(_children(handle, moov, b"mvhd"), None)
    if mvhd is None:
        return None
    data = _payload(handle, mvhd, 32)
    if len(data) < (32 if data[:1] == b"\x01" else 20):
        return None
    if data[0] == 1:
        timescale, duration = struct.unpack(">IQ", data[20:32])
        unknown = 0xFFFF_FFFF_FFFF_FFFF
    else:
        timescale, duration = struct.unpack(">II", data[12:20])
        unknown = 0xFFFF_FFFF
    if duration in (0, unknown):
        duration = _fragment_duration(handle, moov) or 0
    if timescale == 0 or duration in (0, unknown):
        return None
    return float(duration / timescale)


def _fragment_duration(handle: BinaryIO, moov: _Box) -> int | None:
    for mvex in _children(handle, moov, b"mvex"):
        for mehd in _children(handle, mvex, b"mehd"):
            data = _payload(handle, mehd, 12)
            if len(data) < (12 if data[:1] == b"\x01" else 8):
                return None
            (duration,) = struct.unpack_from(">Q" if data[0] == 1 else ">I", data, 4)
            return int(duration)
    return None


def _picture_size(handle: BinaryIO, moov: _Box) -> tuple[int | None, int | None]:
    """Width and height of the first track with a picture, turned as the player shows it."""
    for trak in _children(handle, moov, b"trak"):
        tkhd = next(_children(handle, trak, b"tkhd"), None)
        if tkhd is None:
            continue
        data = _payload(handle, tkhd, 96)
        base = 36 if data[:1] == b"\x01" else 24  # after version/flags, times, id, duration
        if len(data) < base + 60:
            continue
        matrix = struct.unpack(">9i", data[base + 16 : base + 52])
        width, height = (v >> 16 for v in struct.unpack(">II", data[base + 52 : base + 60]))
        if width and height:
            quarter_turn = matrix[0] == 0 and matrix[4] == 0
            return (height, width) if quarter_turn else (width, height)
    return None, None


def write_sample_video(path: Path, seconds: int = 12) -> Path:
    """A minimal MP4 (boxes only, no pictures) that `probe_video` reads as `seconds` long.

    For rehearsals and tests: platforms that only check the container take it.
    """

    def box(kind: bytes, *parts: bytes) -> bytes:
        payload = b"".join(parts)
        return struct.pack(">I", 8 + len(payload)) + kind + payload

    mvhd = box(b"mvhd", bytes(4), struct.pack(">IIII", 0, 0, 1000, seconds * 1000), bytes(80))
    ftyp = box(b"ftyp", b"isom", struct.pack(">I", 0x200), b"isommp42")
    path.write_bytes(ftyp + box(b"moov", mvhd) + box(b"mdat", bytes(256)))
    return path

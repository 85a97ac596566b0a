"""Media preparation: images fitted to the platforms' limits, mp4/mov probed from box headers."""

from __future__ import annotations

import io
import os
import random
import stat
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from content import media
from content.media import (
    FACEBOOK_IMAGE_MAX,
    FACEBOOK_PNG_MAX,
    VideoInfo,
    check_video_for_facebook,
    fit_for_facebook,
    fit_for_zalo,
    fit_image,
    probe_video,
)

KB = 1024
MB = 1024 * KB
TEXT = "Công đoàn cơ sở: Đại hội nhiệm kỳ 2026-2031"


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def noisy(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Grain plus lines of text: a picture PNG cannot compress well."""
    seeded = random.Random(f"{size}{mode}")  # the same picture on every run
    pixels = size[0] * size[1]
    bands = [Image.frombytes("L", size, seeded.randbytes(pixels)) for _ in "RGB"]
    image = Image.merge("RGB", bands).convert(mode)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(12, size[1] // 30))
    for row in range(0, size[1], size[1] // 15):
        draw.text((20, row), TEXT, fill="black", font=font)
    return image


def save(image: Image.Image, path: Path, **options: Any) -> Path:
    if path.suffix == ".png":
        options.setdefault("compress_level", 0)  # fast; fit_image compresses anyway
    image.save(path, **options)
    return path


def opened(path: Path) -> Image.Image:
    with Image.open(path) as image:
        image.load()
        return image


# --- images -------------------------------------------------------------------------------


def test_large_noisy_png_fits_and_stays_legible(tmp_path: Path, cache: Path):
    source = save(noisy((1700, 1100)), tmp_path / "infographic.png")
    assert source.stat().st_size > MB
    result = fit_image(source, max_bytes=MB, cache_dir=cache)
    assert result.parent == cache
    assert result.stat().st_size <= MB
    image = opened(result)
    assert (image.format, image.mode) == ("JPEG", "RGB")
    assert 1080 <= max(image.size) < 1700  # scaled down, but not below 1080 px
    assert image.size[0] / image.size[1] == pytest.approx(1700 / 1100, abs=0.01)
    assert stat.S_IMODE(result.stat().st_mode) == 0o600
    assert [p.name for p in cache.iterdir()] == [result.name]


def test_goes_below_1080_only_when_nothing_larger_fits(tmp_path: Path, cache: Path):
    source = save(noisy((1100, 400)), tmp_path / "dense.png")
    result = fit_image(source, max_bytes=100 * KB, cache_dir=cache)
    assert result.stat().st_size <= 100 * KB
    assert max(opened(result).size) < 1080


def test_downscale_steps_try_1080_before_going_below() -> None:
    sizes = list(media._smaller_sizes((1200, 800)))
    assert sizes[:3] == [(1080, 720), (918, 612), (780, 520)]
    assert list(media._smaller_sizes((3000, 1000)))[:2] == [(2550, 850), (2168, 722)]
    assert min(max(s) for s in sizes) >= media.SMALLEST_LONG_SIDE


def test_png_that_compresses_stays_png(tmp_path: Path, cache: Path):
    image = Image.new("RGB", (1600, 1000), "white")
    ImageDraw.Draw(image).text((50, 50), TEXT, fill="black")
    source = save(image, tmp_path / "plain.png", compress_level=0)
    assert source.stat().st_size > MB
    result = fit_image(source, max_bytes=MB, cache_dir=cache)
    assert result.suffix == ".png"
    assert opened(result).size == (1600, 1000)
    assert result.stat().st_size <= MB


def test_small_png_is_returned_unchanged(tmp_path: Path, cache: Path):
    source = save(Image.new("RGB", (300, 200), "red"), tmp_path / "small.png")
    assert fit_image(source, max_bytes=MB, cache_dir=cache) == source
    assert fit_for_zalo(source, cache) == source
    assert fit_for_facebook(source, cache) == source
    assert not cache.exists()


def test_exif_orientation_applied_and_metadata_stripped(tmp_path: Path, cache: Path):
    image = noisy((400, 200))
    image.paste((255, 0, 0), (0, 0, 40, 40))  # top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90° clockwise
    exif[0x010F] = "Máy ảnh của cán bộ"
    source = save(image, tmp_path / "phone.jpg", quality=100, exif=exif, comment=b"secret")
    result = fit_image(source, max_bytes=source.stat().st_size - 1, cache_dir=cache)
    with Image.open(result) as fitted:
        assert fitted.size == (200, 400)
        assert not fitted.getexif()
        assert "comment" not in fitted.info
        assert "exif" not in fitted.info
        red, green, blue = fitted.convert("RGB").getpixel((195, 5))  # type: ignore[misc]
    assert red > 200 and green < 60 and blue < 60


def test_rgba_png_is_flattened_on_white(tmp_path: Path, cache: Path):
    image = noisy((600, 400), mode="RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 200, 200))  # fully transparent corner
    source = save(image, tmp_path / "logo.png")
    result = fit_image(source, max_bytes=150 * KB, cache_dir=cache)
    fitted = opened(result)
    assert (fitted.format, fitted.mode) == ("JPEG", "RGB")
    assert all(channel > 245 for channel in fitted.getpixel((100, 100)))  # type: ignore[union-attr]
    assert result.stat().st_size <= 150 * KB


def test_cache_is_reused(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch):
    source = save(noisy((600, 400)), tmp_path / "again.png")
    first = fit_image(source, max_bytes=150 * KB, cache_dir=cache)
    before = first.stat().st_mtime_ns

    def no_encoding(*args: object) -> tuple[bytes, str]:
        raise AssertionError("encoded again")

    monkeypatch.setattr(media, "_shrink", no_encoding)
    assert fit_image(source, max_bytes=150 * KB, cache_dir=cache) == first
    assert first.stat().st_mtime_ns == before
    copy = tmp_path / "copy-with-other-name.png"
    copy.write_bytes(source.read_bytes())
    assert fit_image(copy, max_bytes=150 * KB, cache_dir=cache) == first
    monkeypatch.undo()
    other = fit_image(source, max_bytes=150 * KB - 1, cache_dir=cache)
    assert other != first
    assert not [p for p in cache.iterdir() if p.name.startswith(".")]


def test_facebook_rules(tmp_path: Path, cache: Path):
    photo = noisy((1000, 800))
    jpeg = save(photo, tmp_path / "photo.jpg", quality=100, subsampling=0)
    assert MB < jpeg.stat().st_size <= FACEBOOK_IMAGE_MAX
    assert fit_for_facebook(jpeg, cache) == jpeg
    for_zalo = fit_for_zalo(jpeg, cache)
    assert for_zalo != jpeg
    assert for_zalo.stat().st_size <= MB
    png = save(photo, tmp_path / "photo.png")
    assert FACEBOOK_PNG_MAX < png.stat().st_size <= FACEBOOK_IMAGE_MAX
    for_facebook = fit_for_facebook(png, cache)
    fitted = opened(for_facebook)
    limit = FACEBOOK_PNG_MAX if fitted.format == "PNG" else FACEBOOK_IMAGE_MAX
    assert for_facebook.stat().st_size <= limit
    assert fitted.size == (1000, 800)


def test_phone_jpeg_with_extra_pictures_counts_as_jpeg(tmp_path: Path, cache: Path):
    source = tmp_path / "phone.jpg"
    first, depth = noisy((500, 300)), Image.new("RGB", (500, 300), "gray")
    first.save(source, format="MPO", save_all=True, append_images=[depth], quality=100)
    assert fit_image(source, max_bytes=MB, cache_dir=cache) == source
    smaller = fit_image(source, max_bytes=source.stat().st_size // 2, cache_dir=cache)
    assert opened(smaller).format == "JPEG"


def test_other_formats_become_png_or_jpeg(tmp_path: Path, cache: Path):
    source = save(Image.new("RGB", (120, 80), "blue"), tmp_path / "scan.bmp")
    result = fit_image(source, max_bytes=MB, cache_dir=cache)
    assert result.suffix == ".png"
    assert opened(result).format == "PNG"


@pytest.mark.parametrize(
    "content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40]
)
def test_broken_image_is_refused(tmp_path: Path, cache: Path, content: bytes):
    source = tmp_path / "broken.png"
    source.write_bytes(content)
    with pytest.raises(ValueError, match=r"^Không đọc được ảnh «broken\.png»"):
        fit_image(source, max_bytes=MB, cache_dir=cache)


def test_missing_image_is_refused(tmp_path: Path, cache: Path):
    with pytest.raises(ValueError, match=r"Không mở được tệp ảnh «gone\.png»"):
        fit_image(tmp_path / "gone.png", max_bytes=MB, cache_dir=cache)


# --- videos -------------------------------------------------------------------------------


def box(kind: bytes, *children: bytes) -> bytes:
    payload = b"".join(children)
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def full_box(kind: bytes, version: int, payload: bytes) -> bytes:
    return box(kind, bytes([version, 0, 0, 0]), payload)


def ftyp(major: bytes = b"isom", *compatible: bytes) -> bytes:
    return box(b"ftyp", major, struct.pack(">I", 0x200), *(compatible or (b"isom", b"mp42")))


def mvhd(timescale: int, duration: int, version: int = 0) -> bytes:
    if version == 1:
        times = struct.pack(">QQIQ", 0, 0, timescale, duration)
    else:
        times = struct.pack(">IIII", 0, 0, timescale, duration)
    return full_box(b"mvhd", version, times + b"\x00" * 80)


IDENTITY = (0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
QUARTER_TURN = (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)


def tkhd(width: int, height: int, version: int = 0, matrix: tuple[int, ...] = IDENTITY) -> bytes:
    if version == 1:
        head = struct.pack(">QQIIQ", 0, 0, 1, 0, 0)
    else:
        head = struct.pack(">IIIII", 0, 0, 1, 0, 0)
    rest = (
        b"\x00" * 16 + struct.pack(">9i", *matrix) + struct.pack(">II", width << 16, height << 16)
    )
    return full_box(b"tkhd", version, head + rest)


def write(path: Path, *boxes: bytes) -> Path:
    path.write_bytes(b"".join(boxes))
    return path


def test_probe_mp4_version_0(tmp_path: Path):
    moov = box(
        b"moov", mvhd(1000, 90_500), box(b"trak", tkhd(0, 0)), box(b"trak", tkhd(1920, 1080))
    )
    path = write(tmp_path / "clip.mp4", ftyp(), moov, box(b"mdat", b"\x00" * 100))
    assert probe_video(path) == VideoInfo(
        size_bytes=path.stat().st_size,
        container="mp4",
        duration_seconds=90.5,
        width=1920,
        height=1080,
    )


def test_probe_mov_version_1_moov_at_the_end(tmp_path: Path):
    long = 5_000 * 1_000_000  # does not fit 32 bits
    moov = box(b"moov", mvhd(1_000_000, long, version=1), box(b"trak", tkhd(720, 1280, 1)))
    path = write(tmp_path / "clip.mov", ftyp(b"qt  ", b"qt  "), box(b"mdat", b"\x00" * 64), moov)
    info = probe_video(path)
    assert (info.container, info.duration_seconds) == ("mov", 5000.0)
    assert (info.width, info.height) == (720, 1280)


def test_probe_turned_phone_video(tmp_path: Path):
    moov = box(b"moov", mvhd(600, 6000), box(b"trak", tkhd(1920, 1080, matrix=QUARTER_TURN)))
    info = probe_video(write(tmp_path / "phone.mp4", ftyp(), moov))
    assert (info.width, info.height, info.duration_seconds) == (1080, 1920, 10.0)


def test_probe_fragmented_and_largesize(tmp_path: Path):
    mehd = full_box(b"mehd", 0, struct.pack(">I", 48_000 * 30))
    moov = box(b"moov", mvhd(48_000, 0), box(b"mvex", mehd))
    big_mdat = struct.pack(">I4sQ", 1, b"mdat", 16 + 32) + b"\x00" * 32
    info = probe_video(
        write(tmp_path / "frag.mp4", ftyp(b"iso6", b"iso6", b"dash"), big_mdat, moov)
    )
    assert info.duration_seconds == 30.0
    assert (info.width, info.height) == (None, None)


def test_probe_without_moov_has_unknown_duration(tmp_path: Path):
    info = probe_video(write(tmp_path / "cut.mp4", ftyp(), box(b"mdat", b"\x00" * 10)))
    assert info == VideoInfo(size_bytes=info.size_bytes, container="mp4", duration_seconds=None)


def test_probe_reads_headers_only_of_a_huge_file(tmp_path: Path):
    path = tmp_path / "huge.mp4"
    moov = box(b"moov", mvhd(1000, 60_000))
    mdat_size = 2 * 1024**3
    with path.open("wb") as handle:
        handle.write(ftyp() + moov + struct.pack(">I4s", 0, b"mdat"))  # size 0: up to the end
        handle.truncate(len(ftyp() + moov) + mdat_size)  # sparse: nothing is written
    info = probe_video(path)
    assert info.size_bytes > mdat_size
    assert info.duration_seconds == 60.0
    with pytest.raises(ValueError, match=r"^Video nặng 2,\d\d GB, Facebook chỉ nhận tối đa 1 GB"):
        check_video_for_facebook(info)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 64,
        box(b"ftyp", b"heic", b"\x00\x00\x00\x00", b"mif1", b"heic"),
        box(b"moov", mvhd(1000, 1000)),
        b"\x00\x00\x00\x04ftyp",
    ],
    ids=["empty", "png", "heic", "no-ftyp", "bad-size"],
)
def test_probe_refuses_what_is_not_mp4(tmp_path: Path, content: bytes):
    path = tmp_path / "x.mp4"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"^Tệp «x\.mp4» không phải video MP4 hoặc MOV\.$"):
        probe_video(path)


def test_probe_missing_file(tmp_path: Path):
    with pytest.raises(ValueError, match=r"Không đọc được tệp video «gone\.mp4»"):
        probe_video(tmp_path / "gone.mp4")


def test_facebook_video_limits() -> None:
    def info(seconds: float | None, size: int = 50 * MB) -> VideoInfo:
        return VideoInfo(size_bytes=size, container="mp4", duration_seconds=seconds)

    check_video_for_facebook(info(20 * 60))
    check_video_for_facebook(info(None))
    check_video_for_facebook(info(60, size=1_000_000_000))
    with pytest.raises(ValueError) as too_long:
        check_video_for_facebook(info(25 * 60))
    assert str(too_long.value) == (
        "Video dài 25 phút, Facebook chỉ nhận tối đa 20 phút khi tải trực tiếp."
    )
    with pytest.raises(ValueError, match="Video dài 20 phút 1 giây,"):
        check_video_for_facebook(info(20 * 60 + 1.5))
    with pytest.raises(ValueError, match="tối đa 1 GB"):
        check_video_for_facebook(info(60, size=1_000_000_001))


def test_cache_files_are_private_even_with_a_loose_umask(tmp_path: Path, cache: Path):
    old = os.umask(0)
    try:
        source = save(noisy((300, 200)), tmp_path / "u.png")
        result = fit_image(source, max_bytes=source.stat().st_size - 1, cache_dir=cache)
    finally:
        os.umask(old)
    assert stat.S_IMODE(result.stat().st_mode) == 0o600


def test_png_limit_defaults_to_max_bytes(tmp_path: Path, cache: Path):
    buffer = io.BytesIO()
    noisy((600, 400)).save(buffer, format="PNG")
    source = tmp_path / "mid.png"
    source.write_bytes(buffer.getvalue())
    size = source.stat().st_size
    assert fit_image(source, max_bytes=size, cache_dir=cache) == source
    assert fit_image(source, max_bytes=size, png_max_bytes=size - 1, cache_dir=cache) != source


@settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(tail=st.binary(max_size=300), nested=st.binary(max_size=120))
def test_probe_never_fails_other_than_value_error(tmp_path: Path, tail: bytes, nested: bytes):
    path = tmp_path / "fuzz.mp4"
    path.write_bytes(ftyp() + box(b"moov", nested, box(b"trak", nested)) + tail)
    try:
        info = probe_video(path)
    except ValueError:
        return
    assert info.container == "mp4"

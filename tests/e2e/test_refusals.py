"""`cdbot post add` (and the other post commands) refuse an officer's mistakes cleanly.

Each case must exit with code 2, print one Vietnamese sentence on stderr and nothing on
stdout, write nothing to the database, and leave `post list --json` and
`cluster list --json` byte-for-byte as they were.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from PIL import Image

from tests.e2e.conftest import (
    Outcome,
    Refusal,
    Template,
    assert_refused,
    future,
    refusal_batch,
    typed,
)

WHEN = typed(future(days=30))


def add(*extra: str | Path) -> tuple[str | Path, ...]:
    """`post add` with everything right except what `extra` overrides or adds."""
    return ("post", "add", "--kind", "story", "--title", "Làm thêm giờ", *extra)


def add_with_body(*extra: str | Path) -> tuple[str | Path, ...]:
    return (*add("--body", "Người lao động làm thêm giờ được trả ít nhất 150% lương."), *extra)


CASES = [
    Refusal(
        "unknown-kind",
        lambda d: ("post", "add", "--kind", "phongsu", "--title", "T", "--body", "B"),
        expect=("«phongsu»",),
    ),
    Refusal("unknown-cluster", lambda d: add_with_body("--clusters", "XYZ"), expect=("«XYZ»",)),
    Refusal("date-in-the-past", lambda d: add_with_body("--at", "2020-01-01 07:30")),
    Refusal(
        "date-month-13", lambda d: add_with_body("--at", "2026-13-01 07:30"), expect=("2026-13-01",)
    ),
    Refusal("date-in-words", lambda d: add_with_body("--at", "ngày mai"), expect=("«ngày mai»",)),
    Refusal(
        "date-31-february",
        lambda d: add_with_body("--at", "31/02/2027 08:00"),
        expect=("«31/02/2027 08:00»",),
    ),
    Refusal("date-time-only", lambda d: add_with_body("--at", "07:30"), expect=("«07:30»",)),
    Refusal(
        "date-with-vietnamese-words",
        lambda d: add_with_body("--at", "ngày 1/12/2027 lúc 7:30"),
        expect=("«ngày 1/12/2027 lúc 7:30»",),
    ),
    Refusal(
        "date-pasted-with-a-line-break",
        lambda d: add_with_body("--at", "ngày mai\n"),
        expect=("ngày mai",),
    ),
    Refusal(
        "title-empty",
        lambda d: ("post", "add", "--kind", "law", "--title", "", "--body", "B"),
        expect=("Tiêu đề",),
    ),
    Refusal(
        "title-whitespace",
        lambda d: ("post", "add", "--kind", "law", "--title", " \t\n ", "--body", "B"),
        expect=("Tiêu đề",),
    ),
    Refusal(
        "body-over-zalo-text-limit",
        lambda d: ("post", "add", "--kind", "story", "--title", "T", "--body", "ạ" * 2500),
        expect=("Zalo", "2000"),
    ),
    Refusal(
        "body-file-of-5-megabytes",
        lambda d: ("post", "add", "--kind", "story", "--title", "T", "--body-file", d / "huge.txt"),
        expect=("20000",),
    ),
    Refusal("image-missing", lambda d: add_with_body("--image", d / "nope.png"), expect=("nope",)),
    Refusal(
        "image-random-bytes",
        lambda d: add_with_body("--image", d / "broken.png"),
        expect=("broken",),
    ),
    Refusal(
        "image-gif", lambda d: add_with_body("--image", d / "anh.gif"), expect=("anh.gif", "GIF")
    ),
    Refusal(
        "image-over-10-megabytes",
        lambda d: add_with_body("--image", d / "big.png"),
        expect=("10 MB",),
    ),
    Refusal(
        "image-is-a-folder",
        lambda d: add_with_body("--image", "."),
        forbid=("«»",),
    ),
    Refusal(
        "body-and-body-file",
        lambda d: add_with_body("--body-file", d / "body.txt"),
        expect=("--body", "--body-file"),
    ),
    Refusal("no-body", lambda d: add(), expect=("--body",)),
    Refusal(
        "body-file-missing", lambda d: add("--body-file", d / "khong-co.txt"), expect=("khong-co",)
    ),
    Refusal(
        "body-file-not-utf8",
        lambda d: add("--body-file", d / "cp1252.txt"),
        expect=("UTF-8",),
    ),
    Refusal("link-ftp", lambda d: add_with_body("--link", "ftp://example.com/a"), expect=("http",)),
    Refusal(
        "link-with-a-space",
        lambda d: add_with_body("--link", "https://congdoan .vn/bai"),
    ),
    Refusal(
        "news-without-link",
        lambda d: ("post", "add", "--kind", "news", "--title", "T", "--body", "B"),
        expect=("--link",),
    ),
    Refusal(
        "infographic-without-image",
        lambda d: ("post", "add", "--kind", "infographic", "--title", "T", "--body", "B"),
        expect=("--image",),
    ),
    Refusal("unknown-channel", lambda d: add_with_body("--channels", "tiktok"), expect=("tiktok",)),
    Refusal(
        "hashtag-with-a-space",
        lambda d: add_with_body("--hashtag", "an toàn lao động", "--at", WHEN),
    ),
    Refusal("unknown-option", lambda d: add_with_body("--ngay", WHEN), expect=("--ngay",)),
    Refusal(
        "missing-kind",
        lambda d: ("post", "add", "--title", "T", "--body", "B"),
        expect=("--kind",),
    ),
    Refusal("approve-unknown-post", lambda d: ("post", "approve", "999"), expect=("999",)),
    Refusal(
        "show-post-number-in-words",
        lambda d: ("post", "show", "một"),
        forbid=("post_id",),
    ),
]


def make_inputs(folder: Path) -> Path:
    """The files the cases point at."""
    (folder / "body.txt").write_text("Nội dung từ tệp.", encoding="utf-8")
    (folder / "cp1252.txt").write_bytes("Luât lao ðông, Windows-1252: café".encode("cp1252"))
    (folder / "huge.txt").write_text("Đoàn viên. " * 500_000, encoding="utf-8")
    (folder / "broken.png").write_bytes(random.Random(7).randbytes(4096))
    Image.new("RGB", (40, 30), (200, 30, 40)).save(folder / "anh.gif", "GIF")
    with (folder / "big.png").open("wb") as big:
        big.truncate(11 * 1024 * 1024)
    return folder


outcomes = refusal_batch(__name__, CASES, make_inputs)


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_mistake_is_refused_in_one_vietnamese_sentence(
    case: Refusal, outcomes: dict[str, Outcome], seeded: Template
) -> None:
    """The command exits 2 with one Vietnamese sentence naming the problem, writing nothing."""
    assert_refused(case, outcomes[case.id], seeded)

"""`cdbot post import` and `cdbot cluster import`: spreadsheets go in whole or not at all.

Files are built the way Excel writes them: CSV UTF-8 with a BOM and CRLF line ends, XLSX
with real date cells. A bad row 3 must reject the whole file, name "Dòng 3" (and the
column where there is one), and write nothing.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from tests.e2e.conftest import (
    Cdbot,
    Outcome,
    Refusal,
    Template,
    assert_refused,
    future,
    ok,
    refusal_batch,
    typed,
)

HEADER = ("Loại", "Tiêu đề", "Nội dung", "Thời điểm", "Cụm", "Duyệt", "Ngày diễn ra")
FIRST = future(days=40)
SECOND = future(days=41, hour=19, minute=45)
THIRD = future(days=42, hour=6, minute=5)

# Row 2 is always good; row 3 is replaced by each bad variant.
GOOD_ROWS: list[tuple[Any, ...]] = [
    ("story", "Làm thêm giờ", "Được trả ít nhất 150% lương.", typed(FIRST), "HCSN", "có"),
    (
        "Thông báo sự kiện",  # the kind's Vietnamese name is accepted too
        'Hội nghị "Người lao động", năm 2027',  # quotes and a comma, quoted by the CSV writer
        "Dòng một.\r\nDòng hai.",  # a line break inside a cell
        SECOND.strftime("%d/%m/%Y %H:%M"),
        "GD, DNNN",
        "",
        SECOND.strftime("%d/%m/%Y"),  # an event notice says when the event is
    ),
    ("story", "Gương sáng 🌟 [@123]", "Chị Hoa vận động hiến máu.", typed(THIRD), "", "x"),
]
BAD_ROW3 = {
    "kind": (("phóng sự", "T", "B", typed(FIRST), "", ""), ("Dòng 3", "cột «Loại»", "phóng sự")),
    "title": (("story", "", "B", typed(FIRST), "", ""), ("Dòng 3", "cột «Tiêu đề»")),
    "date": (("story", "T", "B", "31/02/2027 08:00", "", ""), ("Dòng 3", "cột «Thời điểm»")),
    "cluster": (("story", "T", "B", typed(FIRST), "XYZ", ""), ("Dòng 3", "«XYZ»")),
    "body": (("story", "T", "ạ" * 2500, typed(FIRST), "", ""), ("Dòng 3", "2000")),
}


def write_csv(path: Path, rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> Path:
    """A CSV as Excel's "CSV UTF-8" saves it: BOM, CRLF, quoted where needed."""
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)  # lineterminator is \r\n
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> Path:
    """An XLSX whose first sheet holds the header and `rows`."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(list(header))
    for row in rows:
        sheet.append(list(row))
    workbook.save(path)
    return path


# How Excel stores the times of GOOD_ROWS: date cells, without a zone.
EXCEL_TIMES = {
    typed(FIRST): FIRST,
    SECOND.strftime("%d/%m/%Y %H:%M"): SECOND,
    typed(THIRD): THIRD,
}


def excel_cells(rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
    """The same rows as Excel stores them: times as date cells, "có" as TRUE."""
    out = []
    for kind, title, body, when, clusters, approve, *event_day in rows:
        cell = EXCEL_TIMES[when].replace(tzinfo=None) if when in EXCEL_TIMES else when
        out.append([kind, title, body, cell, clusters or None, bool(approve) or None, *event_day])
    return out


def make_inputs(folder: Path) -> Path:
    for name, (row, _) in BAD_ROW3.items():
        write_csv(folder / f"bad-{name}.csv", [GOOD_ROWS[0], row, GOOD_ROWS[2]])
        write_xlsx(folder / f"bad-{name}.xlsx", excel_cells([GOOD_ROWS[0], row, GOOD_ROWS[2]]))
    (folder / "empty.csv").write_bytes(b"")
    write_csv(folder / "header-only.csv", [])
    Workbook().save(folder / "blank.xlsx")
    (folder / "posts.txt").write_text("law,T,B\n", encoding="utf-8")
    (folder / "posts.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    (folder / "broken.xlsx").write_bytes(random.Random(3).randbytes(2048))
    legacy = "Loai,Tieu de,Noi dung\nlaw,Café,Crème brûlée\n".encode("cp1252")
    (folder / "windows-1252.csv").write_bytes(legacy)
    write_csv(
        folder / "missing-image.csv",
        [("infographic", "T", "B", typed(FIRST), "", "khong-co.png")],
        header=("Loại", "Tiêu đề", "Nội dung", "Thời điểm", "Cụm", "Ảnh"),
    )
    write_csv(folder / "approve-maybe.csv", [("story", "T", "B", typed(FIRST), "", "chắc vậy")])
    write_csv(
        folder / "twice-title.csv", [("story", "T", "B")], header=("Loại", "Tiêu đề", "Tieu de")
    )
    # Cluster directory files: valid clusters renamed, and admins with one bad row.
    renamed = [
        ("HCSN", "Cụm Hành chính (đổi tên)", "5eefbd52e76d64fe35ff"),
        ("GD", "Cụm Giáo dục (đổi tên)", "1e1b6328409e79e71779"),
    ]
    header = ("Mã cụm", "Tên cụm", "Zalo group ID")
    write_csv(folder / "clusters-renamed.csv", renamed, header=header)
    write_csv(
        folder / "clusters-bad-row3.csv",
        [renamed[0], ("GD", "", "1e1b6328409e79e71779")],
        header=header,
    )
    write_csv(
        folder / "clusters-rounded-id.csv",
        [renamed[0], ("GD", "Cụm Giáo dục", "2.46846E+18")],
        header=header,
    )
    write_csv(
        folder / "admins-bad-row3.csv",
        [("HCSN", "Nguyễn Thị Hà", "5622596194339511095"), ("ZZZ", "Trần Văn B", "5622596194")],
        header=("Mã cụm", "Họ tên", "Zalo user ID"),
    )
    workbook = Workbook()
    clusters = workbook.active
    clusters.title = "Cụm thi đua"
    clusters.append(list(header))
    for renamed_row in renamed:
        clusters.append(list(renamed_row))
    admins = workbook.create_sheet("Quản trị viên")
    admins.append(["Mã cụm", "Họ tên", "Zalo user ID"])
    admins.append(["HCSN", "Nguyễn Thị Hà", "5622596194339511095"])
    admins.append(["GD", "Trần Văn Minh", 5.184343294437140455e18])  # typed as a number
    workbook.save(folder / "directory-number-id.xlsx")
    return folder


XLSX_TOO = ("kind", "date", "cluster")


def _import(name: str) -> Callable[[Path], tuple[str | Path, ...]]:
    return lambda d: ("post", "import", d / name)


def _bad_rows() -> list[Refusal]:
    return [
        Refusal(f"post-import-{suffix}-row3-{name}", _import(f"bad-{name}.{suffix}"), expect)
        for name, (_, expect) in BAD_ROW3.items()
        for suffix in (("csv", "xlsx") if name in XLSX_TOO else ("csv",))
    ]


def _file(case: str, name: str, *expect: str) -> Refusal:
    return Refusal(case, _import(name), expect=expect)


CASES = [
    *_bad_rows(),
    _file("post-import-empty-csv", "empty.csv", "empty.csv"),
    _file("post-import-header-only-csv", "header-only.csv", "header-only.csv"),
    _file("post-import-blank-xlsx", "blank.xlsx", "blank.xlsx"),
    _file("post-import-missing-file", "khong-co.csv", "khong-co.csv"),
    _file("post-import-txt-extension", "posts.txt", "posts.txt"),
    _file("post-import-legacy-xls", "posts.xls", ".xlsx"),
    _file("post-import-broken-xlsx", "broken.xlsx", "broken.xlsx"),
    _file("post-import-windows-1252-csv", "windows-1252.csv", "UTF-8"),
    _file("post-import-missing-image", "missing-image.csv", "Dòng 2", "khong-co.png"),
    _file("post-import-approve-maybe", "approve-maybe.csv", "Dòng 2", "cột «Duyệt»"),
    _file("post-import-title-twice", "twice-title.csv", "«Tiêu đề»", "«Tieu de»"),
    Refusal("post-import-without-file", lambda d: ("post", "import")),
    Refusal(
        "cluster-import-bad-row3",
        lambda d: ("cluster", "import", d / "clusters-bad-row3.csv"),
        expect=("Dòng 3", "cột «Tên cụm»"),
    ),
    Refusal(
        "cluster-import-rounded-zalo-id",
        lambda d: ("cluster", "import", d / "clusters-rounded-id.csv"),
        expect=("Dòng 3", "Zalo group ID", "2.46846E+18"),
    ),
    Refusal(
        "cluster-import-good-clusters-bad-admins",
        lambda d: ("cluster", "import", d / "clusters-renamed.csv", d / "admins-bad-row3.csv"),
        expect=("Dòng 3", "«ZZZ»"),
    ),
    Refusal(
        "cluster-import-xlsx-id-typed-as-number",
        lambda d: ("cluster", "import", d / "directory-number-id.xlsx"),
        expect=("Dòng 3", "Zalo user ID", "Text"),
    ),
]


outcomes = refusal_batch(__name__, CASES, make_inputs)


@pytest.mark.parametrize("case", [case.param() for case in CASES])
def test_bad_file_is_refused_whole(
    case: Refusal, outcomes: dict[str, Outcome], seeded: Template
) -> None:
    """The import exits 2 with one Vietnamese sentence saying what is wrong, writing nothing."""
    assert_refused(case, outcomes[case.id], seeded)


@pytest.mark.parametrize(
    ("name", "column"),
    [
        pytest.param("cluster", "cột «Cụm»", id="cluster"),
        pytest.param("body", "cột «Nội dung»", id="body"),
    ],
)
def test_bad_row_message_names_the_column(
    name: str, column: str, outcomes: dict[str, Outcome]
) -> None:
    """An unknown cluster or an over-long body names its column, as other bad cells do."""
    message = outcomes[f"post-import-csv-row3-{name}"].result.stderr
    assert column in message, message


def _expected_posts() -> list[dict[str, Any]]:
    return [
        {
            "title": "Làm thêm giờ",
            "kind": "story",
            "status": "approved",
            "scheduled_at": FIRST.isoformat(),
            "clusters": ["HCSN"],
            "deliveries": {"total": 4, "sent": 0},  # Page, followers, HCSN group, its admin
        },
        {
            "title": 'Hội nghị "Người lao động", năm 2027',
            "kind": "event",
            "status": "draft",
            "scheduled_at": SECOND.isoformat(),
            "clusters": ["GD", "DNNN"],
            "deliveries": {"total": 0, "sent": 0},
        },
        {
            "title": "Gương sáng 🌟 [@123]",
            "kind": "story",
            "status": "approved",
            "scheduled_at": THIRD.isoformat(),
            "clusters": None,
            "deliveries": {"total": 14, "sent": 0},
        },
    ]


def _summary(posts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    keys = ("title", "kind", "status", "scheduled_at", "clusters", "deliveries")
    return [{key: post[key] for key in keys} for post in posts]


def test_good_csv_imports_every_row(cdbot_clusters: Cdbot, tmp_path: Path) -> None:
    """A CSV saved by Excel (BOM, CRLF, quotes, a line break in a cell) imports all its rows."""
    path = write_csv(tmp_path / "bai-dang.csv", GOOD_ROWS)
    result = ok(cdbot_clusters("post", "import", path))
    assert "Đã nhập 3 bài" in result.stdout
    posts = cdbot_clusters.json("post", "list", "--json")
    assert _summary(posts) == _expected_posts()


def test_good_xlsx_imports_every_row(cdbot_clusters: Cdbot, tmp_path: Path) -> None:
    """An XLSX with date cells and TRUE for «Duyệt» imports all its rows, times in +07:00."""
    path = write_xlsx(tmp_path / "bai-dang.xlsx", excel_cells(GOOD_ROWS))
    ok(cdbot_clusters("post", "import", path))
    posts = cdbot_clusters.json("post", "list", "--json")
    assert _summary(posts) == _expected_posts()


def test_dry_run_checks_but_writes_nothing(cdbot_clusters: Cdbot, tmp_path: Path) -> None:
    """`post import --dry-run` of a good file reports its rows and leaves the list empty."""
    path = write_csv(tmp_path / "bai-dang.csv", GOOD_ROWS)
    result = ok(cdbot_clusters("post", "import", path, "--dry-run"))
    assert "3 bài" in result.stdout
    assert cdbot_clusters.json("post", "list", "--json") == []


def test_xlsx_midnight_date_cell_imports(cdbot_clusters: Cdbot, tmp_path: Path) -> None:
    """A post scheduled at midnight in an Excel date cell imports at 00:00 Vietnam time."""
    midnight = future(days=50, hour=0, minute=0)
    cells = [["story", "Nửa đêm", "B", midnight.replace(tzinfo=None), None, None]]
    path = write_xlsx(tmp_path / "nua-dem.xlsx", cells)
    result = cdbot_clusters("post", "import", path)
    assert result.returncode == 0, result.stderr
    [post] = cdbot_clusters.json("post", "list", "--json")
    assert post["scheduled_at"] == midnight.isoformat()

"""Reading officers' spreadsheets: CSV and XLSX, header names, cell values, errors."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from datetime import date, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl import Workbook

from bot.errors import InputError
from bot.sheets import SheetRow, normalise_header, optional, read_rows, require, sheet_names

# Excel cells carry no time zone, so a naive datetime is what an officer's file holds.
MEETING = datetime(2020, 5, 1, 8)  # noqa: DTZ001


def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    workbook = Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    workbook.save(path)
    return path


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Mã cụm", "ma_cum"),
        ("  Tên CĐCS ", "ten_cdcs"),
        ("Đơn vị", "don_vi"),
        ("\u00d0ơn vị", "don_vi"),
        ("Số đoàn viên (người)", "so_doan_vien_nguoi"),
        ("Zalo user ID", "zalo_user_id"),
        ("zalo_group_id", "zalo_group_id"),
        ("Họ và tên", "ho_va_ten"),
        ("Chức vụ", "chuc_vu"),
        ("Cụm thi đua", "cum_thi_dua"),
        ("Ngày---đăng//bài", "ngay_dang_bai"),
        ("__", ""),
    ],
)
def test_normalise_header_table(raw: str, expected: str) -> None:
    assert normalise_header(raw) == expected


@given(st.text())
def test_normalise_header_is_ascii_snake_case_and_idempotent(text: str) -> None:
    key = normalise_header(text)
    assert all(part and part.isascii() and part.isalnum() for part in key.split("_")) or not key
    assert key == key.lower()
    assert normalise_header(key) == key


@given(st.text(alphabet="aăâeêioôơuưyđAĂÂĐÊÔƠƯ áàảãạấầẩẫậếềểễệốồổỗộớờởỡợ-"))
def test_normalise_header_ignores_unicode_form_and_case(text: str) -> None:
    expected = normalise_header(text)
    assert normalise_header(unicodedata.normalize("NFD", text)) == expected
    assert normalise_header(text.upper()) == expected


def test_csv_with_bom_and_vietnamese_headers(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cum.csv", "\ufeffMã cụm,Tên cụm\r\nGD,Khối Giáo dục\r\n", "utf-8")
    rows = read_rows(path)
    assert rows == [SheetRow(2, {"ma_cum": "GD", "ten_cum": "Khối Giáo dục"}, "cum.csv")]


def test_csv_without_bom_semicolon_and_quotes(tmp_path: Path) -> None:
    text = 'Mã cụm;Tên cụm;Ghi chú\nDN;"Khối Doanh nghiệp; ngoài nhà nước";\n'
    rows = read_rows(write_csv(tmp_path / "cum.csv", text))
    assert rows[0].values == {
        "ma_cum": "DN",
        "ten_cum": "Khối Doanh nghiệp; ngoài nhà nước",
        "ghi_chu": "",
    }


def test_csv_values_are_stripped_and_nfc(tmp_path: Path) -> None:
    decomposed = unicodedata.normalize("NFD", "Giáo dục")
    rows = read_rows(write_csv(tmp_path / "a.csv", f"ten\n  {decomposed}  \n"))
    assert rows[0].values["ten"] == "Giáo dục"
    assert unicodedata.is_normalized("NFC", rows[0].values["ten"])


def test_empty_rows_are_skipped_and_numbers_kept(tmp_path: Path) -> None:
    text = "\nMã cụm,Tên\n\nA,x\n , \nB,y,extra\nC\n"
    rows = read_rows(write_csv(tmp_path / "a.csv", text))
    assert [(row.number, row.values) for row in rows] == [
        (4, {"ma_cum": "A", "ten": "x"}),
        (6, {"ma_cum": "B", "ten": "y"}),
        (7, {"ma_cum": "C", "ten": ""}),
    ]


def test_utf16_export_with_tabs(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "a.csv", "\ufeffMã cụm\tTên\nA\tKhối A\n", "utf-16-le")
    assert read_rows(path)[0].values == {"ma_cum": "A", "ten": "Khối A"}


def test_xlsx_first_sheet_numbers_and_dates(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "danh_ba.xlsx",
        {
            "Cụm thi đua": [
                [None],
                ["Mã cụm", "Zalo user ID", "Số đoàn viên", "Tỷ lệ", "Ngày", "Giờ họp", None],
                ["GD", 840123456789, 120.0, 0.5, date(2020, 5, 19), MEETING],
                [None, None, None],
                ["  XATT ", "5622596194339511095", 7, None, None, None, "bỏ qua"],
            ],
            "Khác": [["a"], ["b"]],
        },
    )
    rows = read_rows(path)
    assert [row.number for row in rows] == [3, 5]
    assert rows[0].values == {
        "ma_cum": "GD",
        "zalo_user_id": "840123456789",
        "so_doan_vien": "120",
        "ty_le": "0.5",
        "ngay": "2020-05-19 00:00",  # a date-time cell keeps its time
        "gio_hop": "2020-05-01 08:00",
    }
    assert rows[1].values["ma_cum"] == "XATT"
    assert rows[1].values["zalo_user_id"] == "5622596194339511095"
    assert rows[0].sheet == "Cụm thi đua"
    assert rows[0].file == "danh_ba.xlsx"


def test_xlsx_sheet_chooser(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Cụm thi đua": [["ma"], ["1"]], "Quản trị viên": [["ho_ten"], ["Nguyễn Văn A"]]},
    )
    assert sheet_names(path) == ["Cụm thi đua", "Quản trị viên"]
    assert read_rows(path, sheet="Quản trị viên")[0].values == {"ho_ten": "Nguyễn Văn A"}
    assert read_rows(path, sheet="quan tri vien")[0].values == {"ho_ten": "Nguyễn Văn A"}
    with pytest.raises(InputError, match="không có trang «Admins»; các trang hiện có"):
        read_rows(path, sheet="Admins")


def test_xlsx_long_number_that_lost_digits_is_refused(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "qtv.xlsx",
        {"Quản trị viên": [["Họ tên", "Zalo user ID"], ["A", "1"], ["B", 5622596194339511095]]},
    )
    with pytest.raises(InputError) as caught:
        read_rows(path)
    message = caught.value.message
    assert message.startswith("Dòng 3, cột «Zalo user ID» ở trang «Quản trị viên»")
    assert "qtv.xlsx" in message
    assert "Văn bản (Text)" in message


def test_sheet_names_of_csv_is_empty(tmp_path: Path) -> None:
    assert sheet_names(write_csv(tmp_path / "a.csv", "a\n1\n")) == []


def test_require_and_optional() -> None:
    row = SheetRow(7, {"ma_cum": "GD", "ten_cdcs": "", "ten_cong_doan_co_so": "CĐ A"}, "u.csv")
    assert require(row, ["code", "Mã cụm"], "Mã cụm") == "GD"
    assert require(row, ["ten_cdcs", "ten_cong_doan_co_so"], "Tên CĐCS") == "CĐ A"
    assert optional(row, ["so_doan_vien"]) is None
    assert optional(row, ["ten_cdcs"]) is None
    with pytest.raises(InputError, match=r"^Dòng 7, cột «Tên CĐCS» trong tệp «u\.csv»: ô này"):
        require(row, ["ten_cdcs"], "Tên CĐCS")
    with pytest.raises(InputError, match=r"^Dòng 7, cột «Số đoàn viên» .*không có cột này"):
        require(row, ["so_doan_vien"], "Số đoàn viên")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("thieu.csv", None, "Không tìm thấy tệp «thieu.csv»."),
        ("cu.xls", b"x", "Tệp «cu.xls» là định dạng Excel cũ"),
        ("anh.png", b"x", "Tệp «anh.png» không phải bảng tính CSV hoặc XLSX."),
        ("hong.xlsx", b"not a zip", "Không đọc được tệp «hong.xlsx»"),
        (
            "cp1258.csv",
            unicodedata.normalize("NFD", "Mã cụm\nGiáo dục\n").encode("cp1258"),
            "không được lưu bằng mã UTF-8",
        ),
        ("rong.csv", b"", "Tệp «rong.csv» không có dòng dữ liệu nào."),
        ("tieude.csv", b"ma_cum,ten\n,\n", "Tệp «tieude.csv» không có dòng dữ liệu nào."),
        ("dai.csv", b"a\n" + b"x" * 200_000 + b"\n", "nội dung CSV bị lỗi"),
        ("trung.csv", "Mã cụm,Ma cum\n1,2\n".encode(), "hai cột cùng tên «Mã cụm» và «Ma cum»"),
    ],
)
def test_errors_name_the_file_only(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as caught:
        read_rows(path)
    assert message in caught.value.message
    assert str(tmp_path) not in caught.value.message


def test_empty_xlsx_sheet(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "trong.xlsx", {"Cụm": []})
    with pytest.raises(InputError, match=r"Trang «Cụm» của tệp «trong\.xlsx» không có dòng"):
        read_rows(path)


def test_csv_has_no_sheets(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="là CSV nên không có trang «Cụm»"):
        read_rows(write_csv(tmp_path / "a.csv", "a\n1\n"), sheet="Cụm")


def _parts() -> dict[str, bytes]:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "Cụm"
    for row in (["Mã cụm", "Tên cụm", "Số đoàn viên"], ["GD", "Khối Giáo dục", 120.0]):
        sheet.append(row)
    data = io.BytesIO()
    workbook.save(data)
    with zipfile.ZipFile(data) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


PARTS = _parts()
DAMAGE = st.sampled_from([b"<", b"&", b'"', b"\xff", b'<c r="A1" t="s"><v>7</v></c>', b"<row>"])


@settings(max_examples=60, deadline=None)
@given(
    part=st.sampled_from(sorted(PARTS)),
    at=st.integers(0, 3000),
    cut=st.integers(0, 20),
    damage=DAMAGE | st.binary(max_size=12),
)
def test_damaged_xlsx_is_refused_with_a_sentence(
    tmp_path_factory: pytest.TempPathFactory, part: str, at: int, cut: int, damage: bytes
) -> None:
    """A part of the archive damaged (XML cut, bytes inserted): rows, or one InputError.

    openpyxl used to let its XML `ParseError` or a `TypeError` through.
    """
    data = PARTS[part]
    at = min(at, len(data))
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as out:
        for name, content in PARTS.items():
            out.writestr(name, data[:at] + damage + data[at + cut :] if name == part else content)
    path = tmp_path_factory.mktemp("hong") / "hong.xlsx"
    path.write_bytes(archive.getvalue())
    for read in (read_rows, sheet_names):
        try:
            read(path)
        except InputError as error:
            assert "hong.xlsx" in error.message

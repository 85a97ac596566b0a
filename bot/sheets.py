"""Reading the spreadsheets officers prepare in Excel: CSV and XLSX, one table per sheet.

Every row comes back as a `SheetRow` whose keys are normalised headers (`"Mã cụm"` →
``"ma_cum"``) and whose values are stripped, NFC-normalised strings. The module knows
nothing about what the columns mean; `require` and `optional` help callers read them and
phrase errors the officer can act on (row number as Excel shows it, column label).

Long identifiers (Zalo ids have 19 digits) must be typed into a column formatted as
Text: Excel keeps only 15 significant digits of a number, so a 19-digit id stored as a
number has already lost its last digits and cannot be recovered. Such cells are refused.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from bot.errors import InputError

CSV_SUFFIXES = frozenset({".csv"})
XLSX_SUFFIXES = frozenset({".xlsx", ".xlsm"})
CSV_DELIMITERS = (",", ";", "\t")
# Excel stores numbers as doubles shown with 15 significant digits; anything from 10**15
# up may already have lost digits, so such a cell cannot be trusted as an identifier.
EXACT_FLOAT_LIMIT = 10**15

_NON_ALNUM = re.compile(r"[^0-9a-z]+")
_D_LETTERS = str.maketrans("đĐðÐ", "dDdD")


@dataclass(frozen=True)
class SheetRow:
    """One non-empty row of a sheet: its Excel row number and its cells by column name."""

    number: int
    values: dict[str, str] = field(hash=False)
    file: str = ""
    sheet: str | None = None

    def where(self, label_vi: str | None = None) -> str:
        """Where this row (or one of its cells) is, in Vietnamese, for error messages."""
        text = f"Dòng {self.number}"
        if label_vi:
            text += f", cột «{label_vi}»"
        if self.sheet is not None:
            return f"{text} ở trang «{self.sheet}» của tệp «{self.file}»"
        return f"{text} trong tệp «{self.file}»" if self.file else text


def normalise_header(text: str) -> str:
    """A column or sheet name as a key: no diacritics, lower case, ``_`` between words."""
    # Legacy font conversions often write Đ as the look-alike Ð (U+00D0).
    decomposed = unicodedata.normalize("NFD", text.translate(_D_LETTERS))
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return _NON_ALNUM.sub("_", bare.lower()).strip("_")


def require(row: SheetRow, column_aliases: Sequence[str], label_vi: str) -> str:
    """The value of the first alias with a value; `InputError` when missing or empty."""
    keys = [normalise_header(alias) for alias in column_aliases]
    value = optional(row, keys)
    if value is not None:
        return value
    if any(key in row.values for key in keys):
        raise InputError(f"{row.where(label_vi)}: ô này đang để trống, hãy điền giá trị.")
    raise InputError(
        f"{row.where(label_vi)}: bảng không có cột này (tên cột được chấp nhận: {', '.join(keys)})."
    )


def optional(row: SheetRow, column_aliases: Sequence[str]) -> str | None:
    """The value of the first alias with a non-empty value, or None."""
    for alias in column_aliases:
        value = row.values.get(normalise_header(alias))
        if value:
            return value
    return None


def sheet_names(path: Path) -> list[str]:
    """The sheet names of an XLSX file, in order; a CSV file has none."""
    if _kind(path) == "csv":
        return []
    workbook = _open_workbook(path)
    try:
        return list(workbook.sheetnames)
    finally:
        workbook.close()


def read_rows(path: Path, sheet: str | None = None) -> list[SheetRow]:
    """The non-empty data rows of a CSV file or of one XLSX sheet (the first by default).

    The header is the first non-empty row. Whole numbers come back without ``.0``;
    dates as ``YYYY-MM-DD``, date-times as ``YYYY-MM-DD HH:MM``.
    """
    if _kind(path) == "csv":
        if sheet is not None:
            raise InputError(f"Tệp «{path.name}» là CSV nên không có trang «{sheet}».")
        return _table(_csv_records(path), path.name, None)
    workbook = _open_workbook(path)
    try:
        worksheet = workbook[_pick_sheet(path, list(workbook.sheetnames), sheet)]
        title = str(worksheet.title)
        # Closing the generator releases its handle on the archive even after an error.
        with _damaged_is_input_error(path), closing(worksheet.iter_rows(values_only=True)) as raw:
            cells = list(raw)  # read (and parsed) here, so a damaged sheet fails here
    finally:
        workbook.close()
    return _table(_excel_records(cells, path.name, title), path.name, title)


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".xls":
        raise InputError(
            f"Tệp «{path.name}» là định dạng Excel cũ (.xls), hãy lưu lại thành .xlsx "
            "hoặc CSV UTF-8."
        )
    if suffix not in CSV_SUFFIXES | XLSX_SUFFIXES:
        raise InputError(f"Tệp «{path.name}» không phải bảng tính CSV hoặc XLSX.")
    if not path.is_file():
        raise InputError(f"Không tìm thấy tệp «{path.name}».")
    return "csv" if suffix in CSV_SUFFIXES else "xlsx"


def _open_workbook(path: Path) -> Any:
    from openpyxl import load_workbook

    # Files saved by Excel often trigger harmless openpyxl warnings (styles, extensions).
    # Read from memory: a load that fails half-way leaves no file handle open behind it.
    data = io.BytesIO(path.read_bytes())
    with _damaged_is_input_error(path), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_workbook(data, read_only=True, data_only=True)


@contextmanager
def _damaged_is_input_error(path: Path) -> Iterator[None]:
    """openpyxl meets a damaged part of the file with whatever its parser raises.

    Not only its own exceptions and a bad zip: an XML `ParseError`, a `TypeError` from a
    mangled element, a `KeyError`… Any of them means the file cannot be read.
    """
    try:
        yield
    except Exception as exc:
        raise InputError(
            f"Không đọc được tệp «{path.name}», tệp bị hỏng hoặc không phải XLSX."
        ) from exc


def _pick_sheet(path: Path, names: list[str], wanted: str | None) -> str:
    if not names:
        raise InputError(f"Tệp «{path.name}» không có trang tính nào.")
    if wanted is None:
        return names[0]
    if wanted in names:
        return wanted
    for name in names:
        if normalise_header(name) == normalise_header(wanted):
            return name
    raise InputError(
        f"Tệp «{path.name}» không có trang «{wanted}»; các trang hiện có: {', '.join(names)}."
    )


def _csv_records(path: Path) -> list[list[str]]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"Không đọc được tệp «{path.name}».") from exc
    # Excel's "Unicode Text" export is UTF-16 with a BOM; everything else must be UTF-8.
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else None
    try:
        text = data.decode(encoding or "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"Tệp «{path.name}» không được lưu bằng mã UTF-8, hãy lưu lại từ Excel "
            "với kiểu «CSV UTF-8 (Comma delimited)»."
        ) from exc
    try:
        return list(csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text)))
    except csv.Error as exc:
        raise InputError(f"Không đọc được tệp «{path.name}», nội dung CSV bị lỗi.") from exc


def _delimiter(text: str) -> str:
    """The delimiter that splits the first non-empty line into the most columns."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    best, best_count = ",", 1
    for delimiter in CSV_DELIMITERS:
        try:
            count = len(next(csv.reader([first], delimiter=delimiter), []))
        except csv.Error:
            continue
        if count > best_count:
            best, best_count = delimiter, count
    return best


def _excel_records(
    raw: Iterable[tuple[Any, ...]], file: str, sheet: str
) -> Iterable[list[str | _Cell]]:
    for number, cells in enumerate(raw, start=1):
        yield [_Cell(value, number, column, file, sheet) for column, value in enumerate(cells)]


@dataclass(frozen=True)
class _Cell:
    """An Excel value whose conversion to text needs the header to explain a failure."""

    value: Any
    row: int
    column: int
    file: str
    sheet: str

    def text(self, header: str | None) -> str:
        value = self.value
        if value is None:
            return ""
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float):
            return self._float_text(value, header)
        if isinstance(value, datetime):  # a date-time cell keeps its time, midnight included
            return value.isoformat(sep=" ", timespec="minutes" if not value.second else "seconds")
        if isinstance(value, date | time):
            return value.isoformat()
        return str(value)

    def _float_text(self, value: float, header: str | None) -> str:
        if not value.is_integer():
            return repr(value)
        if abs(value) < EXACT_FLOAT_LIMIT:
            return str(int(value))
        from openpyxl.utils import get_column_letter

        label = header or get_column_letter(self.column + 1)
        where = SheetRow(self.row, {}, self.file, self.sheet).where(label)
        raise InputError(
            f"{where}: số quá dài nên Excel đã làm mất chữ số cuối, hãy định dạng cột này "
            "là Văn bản (Text) rồi nhập lại."
        )


def _clean(text: str) -> str:
    return unicodedata.normalize("NFC", text).strip()


def _table(
    records: Iterable[Sequence[str | _Cell]], file: str, sheet: str | None
) -> list[SheetRow]:
    headers: list[str] | None = None
    labels: list[str] = []
    rows: list[SheetRow] = []
    for number, record in enumerate(records, start=1):
        if headers is None:
            labels = [_clean(_plain(cell, None)) for cell in record]
            if any(labels):
                headers = _headers(labels, file, sheet)
            continue
        texts = [
            _clean(_plain(cell, labels[i] if i < len(labels) else None))
            for i, cell in enumerate(record[: len(headers)])
        ]
        if not any(texts):
            continue
        texts += [""] * (len(headers) - len(texts))
        values = {key: text for key, text in zip(headers, texts, strict=True) if key}
        rows.append(SheetRow(number, values, file, sheet))
    if not rows:
        place = f"Trang «{sheet}» của tệp «{file}»" if sheet is not None else f"Tệp «{file}»"
        raise InputError(f"{place} không có dòng dữ liệu nào.")
    return rows


def _plain(cell: str | _Cell, header: str | None) -> str:
    return cell.text(header) if isinstance(cell, _Cell) else cell


def _headers(labels: list[str], file: str, sheet: str | None) -> list[str]:
    """Normalised header keys; an empty key marks a column without a usable name."""
    keys = [normalise_header(label) for label in labels]
    seen: dict[str, str] = {}
    for key, label in zip(keys, labels, strict=True):
        if not key:
            continue
        if key in seen:
            place = f"trang «{sheet}» của tệp «{file}»" if sheet is not None else f"tệp «{file}»"
            raise InputError(
                f"Dòng tiêu đề của {place} có hai cột cùng tên «{seen[key]}» và «{label}»."
            )
        seen[key] = label
    return keys

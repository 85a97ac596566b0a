"""The cluster directory: competition clusters (cụm thi đua), their grassroots unions and admins.

Officers keep the directory in Excel and import it whole. Each kind present in an import
replaces that kind entirely; every row is checked before anything is written, so one bad
row rejects the whole import. Writes go to the caller's session, which commits (or rolls
back after showing the `ImportReport` as a preview).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from bot.db.models import Cluster, ClusterAdmin, Union
from bot.errors import InputError
from bot.sheets import SheetRow, normalise_header, optional, read_rows, require, sheet_names


@dataclass(frozen=True)
class Column:
    """A column an import reads: accepted (normalised) header names and its Vietnamese label."""

    aliases: tuple[str, ...]
    label: str


CODE = Column(("ma_cum", "ma_cum_thi_dua", "cluster_code", "code"), "Mã cụm")
CLUSTER_NAME = Column(("ten_cum", "ten_cum_thi_dua", "cluster_name", "name"), "Tên cụm")
GROUP_ID = Column(("zalo_group_id", "ma_nhom_zalo", "id_nhom_zalo", "group_id"), "Zalo group ID")
UNION_NAME = Column(("ten_cdcs", "ten_cong_doan_co_so", "union_name"), "Tên công đoàn cơ sở")
MEMBERS = Column(("so_doan_vien", "members", "member_count"), "Số đoàn viên")
FULL_NAME = Column(("ho_ten", "ho_va_ten", "full_name"), "Họ tên")
USER_ID = Column(("zalo_user_id", "ma_nguoi_dung_zalo", "id_zalo", "user_id"), "Zalo user ID")
POSITION = Column(("chuc_vu", "position"), "Chức vụ")

# Kind → the columns that identify its table (checked most specific first) and sheet names.
REQUIRED = {
    "admins": (CODE, FULL_NAME, USER_ID),
    "unions": (CODE, UNION_NAME),
    "clusters": (CODE, CLUSTER_NAME),
}
SHEET_NAMES = {
    "clusters": ("cum_thi_dua", "cum", "clusters"),
    "unions": ("cong_doan_co_so", "cdcs", "unions"),
    "admins": ("quan_tri_vien", "quan_tri", "admins"),
}
SHEETS = {name: kind for kind, names in SHEET_NAMES.items() for name in names}
KIND_VI = {"clusters": "cụm thi đua", "unions": "công đoàn cơ sở", "admins": "quản trị viên"}

CODE_PATTERN = re.compile(r"[\w.\-]{1,64}")
ZALO_ID = re.compile(r"[0-9A-Fa-f]{10,40}")
# How Excel shows a long number it has already rounded, e.g. 2.46846E+18.
SCIENTIFIC = re.compile(r"\d(?:[.,]\d+)?[eE]\+\d+")
WHOLE_NUMBER = re.compile(r"\d{1,3}(?:[., ]\d{3})+|\d+")
MAX_MEMBERS = 1_000_000
MAX_TEXT = 255


@dataclass
class Changes:
    """What an import does to one kind of record."""

    imported: bool = False
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0

    @property
    def changed(self) -> bool:
        """Whether anything of this kind is added, updated or removed."""
        return bool(self.added or self.updated or self.removed)


@dataclass
class ImportReport:
    """Counts per kind, for the officer to preview before the caller commits."""

    clusters: Changes = field(default_factory=Changes)
    unions: Changes = field(default_factory=Changes)
    admins: Changes = field(default_factory=Changes)

    @property
    def changed(self) -> bool:
        """Whether the import changes anything at all."""
        return self.clusters.changed or self.unions.changed or self.admins.changed

    def lines(self) -> list[str]:
        """One Vietnamese line per kind, e.g. «Cụm thi đua: thêm 5, sửa 0, xoá 0, …»."""
        lines = []
        for kind in ("clusters", "unions", "admins"):
            c: Changes = getattr(self, kind)
            label = _capital(KIND_VI[kind])
            lines.append(
                f"{label}: thêm {c.added}, sửa {c.updated}, xoá {c.removed}, "
                f"giữ nguyên {c.unchanged}."
                if c.imported or c.removed
                else f"{label}: không có trong tệp nhập, giữ nguyên."
            )
        return lines

    def __str__(self) -> str:
        return "\n".join(self.lines())


T = TypeVar("T")
# Parsed rows: natural key → the model attributes to set.
Fields = dict[str, str | int | None]


async def list_clusters(session: AsyncSession) -> list[Cluster]:
    """Every cluster with its unions and admins loaded, ordered by code."""
    stmt = select(Cluster).options(selectinload(Cluster.unions), selectinload(Cluster.admins))
    clusters = list((await session.scalars(stmt)).all())
    # Sorted here, not in SQL: PostgreSQL collations and SQLite order codes differently.
    return sorted(clusters, key=lambda cluster: cluster.code)


async def clusters_by_code(session: AsyncSession, codes: Sequence[str] | None) -> list[Cluster]:
    """The clusters with these codes (any letter case), ordered by code; None means all."""
    clusters = await list_clusters(session)
    if codes is None:
        return clusters
    known = {cluster.code.casefold() for cluster in clusters}
    for code in codes:
        if code.strip().casefold() not in known:
            listing = ", ".join(cluster.code for cluster in clusters)
            hint = f"các mã hiện có: {listing}" if listing else "danh bạ cụm thi đua đang trống"
            raise InputError(f"Không có cụm thi đua mã «{code.strip()}»; {hint}.")
    wanted = {code.strip().casefold() for code in codes}
    return [cluster for cluster in clusters if cluster.code.casefold() in wanted]


async def import_directory(session: AsyncSession, files: Sequence[Path]) -> ImportReport:
    """Replace the kinds of records found in `files` (one XLSX, or up to three CSVs).

    Nothing is written unless every row is valid; the caller commits or rolls back.
    """
    tables = _tables(files)
    existing = {cluster.code.casefold(): cluster for cluster in await list_clusters(session)}
    clusters = _parse_clusters(tables["clusters"]) if "clusters" in tables else None
    codes = {
        key: str(values["code"])
        for key, values in (clusters or {k: {"code": c.code} for k, c in existing.items()}).items()
    }
    unions = _parse_members(tables["unions"], codes, "unions") if "unions" in tables else None
    admins = _parse_members(tables["admins"], codes, "admins") if "admins" in tables else None

    report = ImportReport()
    final = existing
    if clusters is not None:
        report.clusters.imported = True
        gone: list[Cluster] = []

        def add_cluster(values: Fields) -> Cluster:
            cluster = Cluster(**values, unions=[], admins=[])
            session.add(cluster)
            return cluster

        final = _sync(existing, clusters, add_cluster, gone.append, report.clusters)
        for cluster in gone:
            report.unions.removed += len(cluster.unions)
            report.admins.removed += len(cluster.admins)
            await session.delete(cluster)
    report.unions.imported = unions is not None
    report.admins.imported = admins is not None
    for key, cluster in final.items():
        if unions is not None:
            _sync_children(cluster.unions, Union, "name", unions.get(key, {}), report.unions)
        if admins is not None:
            _sync_children(
                cluster.admins, ClusterAdmin, "zalo_user_id", admins.get(key, {}), report.admins
            )
    await session.flush()
    return report


def _tables(files: Sequence[Path]) -> dict[str, list[SheetRow]]:
    if not files:
        raise InputError("Chưa chọn tệp nào để nhập danh bạ cụm thi đua.")
    tables: dict[str, list[SheetRow]] = {}
    for path in files:
        found: list[tuple[str, list[SheetRow]]] = []
        if path.suffix.lower() == ".csv":
            rows = read_rows(path)
            found.append((_kind_by_header(rows, path.name), rows))
        else:
            for name in sheet_names(path):
                kind = SHEETS.get(normalise_header(name))
                if kind is not None:
                    found.append((kind, read_rows(path, sheet=name)))
            if not found:
                raise InputError(
                    f"Tệp «{path.name}» cần các trang tên «Cụm thi đua», «Công đoàn cơ sở» "
                    "hoặc «Quản trị viên»."
                )
        for kind, rows in found:
            if kind in tables:
                raise InputError(
                    f"Danh sách {KIND_VI[kind]} xuất hiện hai lần (lần sau ở "
                    f"{_place(rows[0])}), mỗi loại chỉ được nhập một lần."
                )
            for column in REQUIRED[kind]:
                if not set(column.aliases) & rows[0].values.keys():
                    raise InputError(
                        f"{_capital(_place(rows[0]))} thiếu cột «{column.label}» "
                        f"(tên cột được chấp nhận: {', '.join(column.aliases)})."
                    )
            tables[kind] = rows
    return tables


def _kind_by_header(rows: list[SheetRow], file: str) -> str:
    headers = rows[0].values.keys()
    for kind, columns in REQUIRED.items():
        if all(set(column.aliases) & headers for column in columns):
            return kind
    raise InputError(
        f"Không nhận ra tệp «{file}»: cần các cột «Mã cụm» và «Tên cụm» (cụm thi đua), "
        "«Mã cụm» và «Tên CĐCS» (công đoàn cơ sở), hoặc «Mã cụm», «Họ tên» và "
        "«Zalo user ID» (quản trị viên)."
    )


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _place(row: SheetRow) -> str:
    return f"trang «{row.sheet}» của tệp «{row.file}»" if row.sheet else f"tệp «{row.file}»"


def _text(row: SheetRow, column: Column, *, required: bool = True) -> str | None:
    value = (
        require(row, column.aliases, column.label) if required else optional(row, column.aliases)
    )
    if value is None:
        return None
    value = " ".join(value.split())
    if len(value) > MAX_TEXT:
        raise InputError(f"{row.where(column.label)}: dài quá {MAX_TEXT} ký tự.")
    return value


def _code(row: SheetRow, known: dict[str, str] | None = None) -> str:
    code = require(row, CODE.aliases, CODE.label)
    if not CODE_PATTERN.fullmatch(code):
        raise InputError(
            f"{row.where(CODE.label)}: mã «{code}» chỉ được gồm chữ, số, dấu gạch ngang, "
            "gạch dưới hoặc dấu chấm, tối đa 64 ký tự."
        )
    if known is not None and code.casefold() not in known:
        listing = ", ".join(sorted(known.values())) or "(chưa có cụm nào)"
        raise InputError(
            f"{row.where(CODE.label)}: không có cụm thi đua mã «{code}»; các mã đã có: {listing}."
        )
    return known[code.casefold()] if known is not None else code


def _zalo_id(row: SheetRow, column: Column, *, required: bool) -> str | None:
    value = _text(row, column, required=required)
    if value is None:
        return None
    if SCIENTIFIC.fullmatch(value):
        raise InputError(
            f"{row.where(column.label)}: Excel đã đổi mã «{value}» sang dạng số mũ và làm mất "
            "chữ số, hãy định dạng cột này là Văn bản (Text) rồi nhập lại mã đầy đủ."
        )
    if not ZALO_ID.fullmatch(value):
        raise InputError(
            f"{row.where(column.label)}: «{value}» không phải mã Zalo hợp lệ "
            "(cần từ 10 đến 40 chữ số hoặc chữ cái a–f)."
        )
    return value


def _members(row: SheetRow) -> int | None:
    value = optional(row, MEMBERS.aliases)
    if value is None:
        return None
    number = int(re.sub(r"\D", "", value)) if WHOLE_NUMBER.fullmatch(value) else None
    if number is None or number > MAX_MEMBERS:
        raise InputError(
            f"{row.where(MEMBERS.label)}: «{value}» không phải số đoàn viên hợp lệ "
            "(một số nguyên từ 0 đến 1.000.000)."
        )
    return number


def _parse_clusters(rows: list[SheetRow]) -> dict[str, Fields]:
    items: dict[str, Fields] = {}
    seen: dict[str, int] = {}
    for row in rows:
        code = _code(row)
        if code.casefold() in seen:
            raise InputError(
                f"{row.where(CODE.label)}: mã cụm «{code}» bị trùng với dòng "
                f"{seen[code.casefold()]}."
            )
        seen[code.casefold()] = row.number
        items[code.casefold()] = {
            "code": code,
            "name": _text(row, CLUSTER_NAME),
            "zalo_group_id": _zalo_id(row, GROUP_ID, required=False),
        }
    return items


def _parse_members(
    rows: list[SheetRow], codes: dict[str, str], kind: str
) -> dict[str, dict[str, Fields]]:
    """Unions or admins grouped by cluster key, then by their own key within the cluster."""
    groups: dict[str, dict[str, Fields]] = {}
    seen: dict[tuple[str, str], int] = {}
    for row in rows:
        code = _code(row, codes)
        values: Fields
        if kind == "unions":
            values = {"name": _text(row, UNION_NAME), "members": _members(row)}
            own = str(values["name"])
            column, what = UNION_NAME, f"công đoàn cơ sở «{own}»"
        else:
            own = _zalo_id(row, USER_ID, required=True) or ""
            values = {
                "name": _text(row, FULL_NAME),
                "zalo_user_id": own,
                "position": _text(row, POSITION, required=False),
            }
            column, what = USER_ID, f"quản trị viên có Zalo ID «{own}»"
        key = (code.casefold(), own.casefold())
        if key in seen:
            raise InputError(
                f"{row.where(column.label)}: {what} đã có ở dòng {seen[key]} "
                f"trong cùng cụm «{code}»."
            )
        seen[key] = row.number
        groups.setdefault(key[0], {})[key[1]] = values
    return groups


def _update(item: object, values: Fields) -> bool:
    """Set the attributes that differ; whether any did."""
    changed = False
    for name, value in values.items():
        if getattr(item, name) != value:
            setattr(item, name, value)
            changed = True
    return changed


def _sync(
    current: dict[str, T],
    wanted: dict[str, Fields],
    add: Callable[[Fields], T],
    remove: Callable[[T], object],
    changes: Changes,
) -> dict[str, T]:
    """Make `current` match `wanted` through `add`, `remove` and updates; count the changes."""
    for key, item in current.items():
        if key not in wanted:
            remove(item)
            changes.removed += 1
    final: dict[str, T] = {}
    for key, values in wanted.items():
        found = current.get(key)
        if found is None:
            found = add(values)
            changes.added += 1
        elif _update(found, values):
            changes.updated += 1
        else:
            changes.unchanged += 1
        final[key] = found
    return final


def _sync_children(
    collection: list[T],
    make: Callable[..., T],
    key_attr: str,
    wanted: dict[str, Fields],
    changes: Changes,
) -> None:
    """Make a cluster's unions or admins match `wanted`, matching on `key_attr`."""

    def key_of(item: T) -> str:
        return str(getattr(item, key_attr)).casefold()

    def add(values: Fields) -> T:
        item = make(**values)
        collection.append(item)
        return item

    _sync({key_of(item): item for item in collection}, wanted, add, collection.remove, changes)

"""Importing the cluster directory into SQLite and PostgreSQL: replace, preview, reject."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from bot.db.engine import make_sessionmaker
from bot.db.models import Cluster, ClusterAdmin, Union
from bot.directory import ImportReport, clusters_by_code, import_directory, list_clusters
from bot.errors import InputError
from bot.settings import EXAMPLE_ORG_DIR

EXAMPLE_FILES = [EXAMPLE_ORG_DIR / name for name in ("clusters.csv", "unions.csv", "admins.csv")]
Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def counts(report: ImportReport) -> dict[str, tuple[int, int, int, int]]:
    """(added, updated, removed, unchanged) per kind."""
    return {
        kind: (c.added, c.updated, c.removed, c.unchanged)
        for kind, c in (
            ("clusters", report.clusters),
            ("unions", report.unions),
            ("admins", report.admins),
        )
    }


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


async def run_import(engine: AsyncEngine, files: list[Path]) -> ImportReport:
    async with make_sessionmaker(engine)() as session:
        report = await import_directory(session, files)
        await session.commit()
    return report


async def snapshot(engine: AsyncEngine) -> Snapshot:
    async with make_sessionmaker(engine)() as session:
        clusters = await session.execute(select(Cluster.code, Cluster.name, Cluster.zalo_group_id))
        unions = await session.execute(
            select(Cluster.code, Union.name, Union.members).join(Union.cluster)
        )
        admins = await session.execute(
            select(
                Cluster.code, ClusterAdmin.name, ClusterAdmin.zalo_user_id, ClusterAdmin.position
            ).join(ClusterAdmin.cluster)
        )
        return (
            sorted(tuple(row) for row in clusters),
            sorted(tuple(row) for row in unions),
            sorted(tuple(row) for row in admins),
        )


async def test_import_example_csvs_then_reimport_is_unchanged(engine: AsyncEngine) -> None:
    report = await run_import(engine, EXAMPLE_FILES)
    assert counts(report) == {
        "clusters": (5, 0, 0, 0),
        "unions": (20, 0, 0, 0),
        "admins": (7, 0, 0, 0),
    }
    assert report.changed
    assert str(report) == (
        "Cụm thi đua: thêm 5, sửa 0, xoá 0, giữ nguyên 0.\n"
        "Công đoàn cơ sở: thêm 20, sửa 0, xoá 0, giữ nguyên 0.\n"
        "Quản trị viên: thêm 7, sửa 0, xoá 0, giữ nguyên 0."
    )

    async with make_sessionmaker(engine)() as session:
        clusters = await list_clusters(session)
    assert [c.code for c in clusters] == ["DNNGOAI", "DNNN", "GD", "HCSN", "XATT"]
    gd = clusters[2]
    assert gd.name == "Cụm thi đua khối Giáo dục"
    assert gd.zalo_group_id == "1e1b6328409e79e71779"
    assert len(gd.unions) == 4
    assert {a.zalo_user_id for a in gd.admins} == {"5184343294437140455", "8704245373819295582"}
    assert all(a.position for a in gd.admins)
    assert sum(len(c.unions) for c in clusters) == 20

    again = await run_import(engine, EXAMPLE_FILES)
    assert counts(again) == {
        "clusters": (0, 0, 0, 5),
        "unions": (0, 0, 0, 20),
        "admins": (0, 0, 0, 7),
    }
    assert not again.changed


async def test_import_xlsx_with_three_sheets(engine: AsyncEngine, tmp_path: Path) -> None:
    workbook = Workbook()
    workbook.remove(workbook.active)
    sheets: dict[str, list[list[object]]] = {
        "Hướng dẫn": [["Điền danh bạ vào ba trang bên cạnh."]],
        "Cụm thi đua": [
            ["Mã cụm", "Tên cụm", "Zalo group ID"],
            ["GD", "Khối Giáo dục", "f414c8f76fa586fbdfb4"],
            ["XATT", "Khối Xã – thị trấn", None],
        ],
        "CĐCS": [
            ["Mã cụm", "Tên CĐCS", "Số đoàn viên"],
            ["GD", "Công đoàn Trường Mầm non Hoa Sen", 48],
            ["gd", "Công đoàn Trường THCS Sông Đuống", "1.200"],
            ["XATT", "Công đoàn cơ quan xã Bát Tràng", None],
        ],
        "Quản trị viên": [
            ["Mã cụm", "Họ và tên", "Chức vụ", "Zalo user ID"],
            ["XATT", "Hoàng Văn Tuấn", None, "7427135698149525443"],
            ["XATT", "Lê Thị Hồng Nhung", "Phó Chủ tịch", 840123456789],
        ],
    }
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    path = tmp_path / "danh_ba.xlsx"
    workbook.save(path)

    report = await run_import(engine, [path])
    assert counts(report) == {
        "clusters": (2, 0, 0, 0),
        "unions": (3, 0, 0, 0),
        "admins": (2, 0, 0, 0),
    }
    clusters, unions, admins = await snapshot(engine)
    assert clusters == [
        ("GD", "Khối Giáo dục", "f414c8f76fa586fbdfb4"),
        ("XATT", "Khối Xã – thị trấn", None),
    ]
    assert ("GD", "Công đoàn Trường THCS Sông Đuống", 1200) in unions
    assert ("XATT", "Công đoàn cơ quan xã Bát Tràng", None) in unions
    assert admins == [
        ("XATT", "Hoàng Văn Tuấn", "7427135698149525443", None),
        ("XATT", "Lê Thị Hồng Nhung", "840123456789", "Phó Chủ tịch"),
    ]


async def test_each_kind_replaces_only_itself(engine: AsyncEngine, tmp_path: Path) -> None:
    await run_import(engine, EXAMPLE_FILES)
    clusters = write(
        tmp_path,
        "cum.csv",
        "Mã cụm,Tên cụm,Zalo group ID\n"
        "HCSN,Cụm thi đua khối Hành chính sự nghiệp,5eefbd52e76d64fe35ff\n"
        "GD,Cụm Giáo dục – Đào tạo,1e1b6328409e79e71779\n"
        "DNNN,Cụm thi đua khối Doanh nghiệp nhà nước,94dc95eb32771341b7e3\n"
        "DNNGOAI,Cụm thi đua khối Doanh nghiệp ngoài nhà nước,d7fae26ab0fcc82a3fcb\n"
        "YT,Cụm thi đua khối Y tế,\n",
    )
    report = await run_import(engine, [clusters])
    # XATT goes with its 4 unions and 1 admin; the other clusters keep theirs.
    assert counts(report) == {
        "clusters": (1, 1, 1, 3),
        "unions": (0, 0, 4, 0),
        "admins": (0, 0, 1, 0),
    }
    assert report.lines()[1] == "Công đoàn cơ sở: thêm 0, sửa 0, xoá 4, giữ nguyên 0."
    kept_clusters, kept_unions, kept_admins = await snapshot(engine)
    assert [c[0] for c in kept_clusters] == ["DNNGOAI", "DNNN", "GD", "HCSN", "YT"]
    assert len(kept_unions) == 16 and len(kept_admins) == 6

    unions = write(
        tmp_path,
        "cdcs.csv",
        "ma_cum;ten_cdcs;so_doan_vien\n"
        "GD;Công đoàn Trường Mầm non Hoa Sen;50\n"
        "GD;Công đoàn Trường Tiểu học Ánh Dương;52\n"
        "YT;Công đoàn Bệnh viện đa khoa huyện;310\n",
    )
    admins = write(
        tmp_path,
        "qtv.csv",
        "cluster_code,full_name,position,zalo_user_id\n"
        "GD,Trần Văn Minh,Chủ tịch Công đoàn Trường THCS Sông Đuống,5184343294437140455\n"
        "GD,Lê Thị Hồng Nhung,Chủ tịch Công đoàn Trường Mầm non Hoa Sen,8704245373819295582\n"
        "YT,Nguyễn Thị Mai,,1793968690923481989\n",
    )
    report = await run_import(engine, [admins, unions])
    assert counts(report) == {
        "clusters": (0, 0, 0, 0),
        "unions": (1, 1, 14, 1),
        "admins": (1, 1, 4, 1),
    }
    assert report.lines()[0] == "Cụm thi đua: không có trong tệp nhập, giữ nguyên."
    _, new_unions, new_admins = await snapshot(engine)
    assert new_unions == [
        ("GD", "Công đoàn Trường Mầm non Hoa Sen", 50),
        ("GD", "Công đoàn Trường Tiểu học Ánh Dương", 52),
        ("YT", "Công đoàn Bệnh viện đa khoa huyện", 310),
    ]
    assert ("YT", "Nguyễn Thị Mai", "1793968690923481989", None) in new_admins
    assert len(new_admins) == 3


async def test_clusters_by_code(engine: AsyncEngine) -> None:
    await run_import(engine, EXAMPLE_FILES)
    async with make_sessionmaker(engine)() as session:
        assert len(await clusters_by_code(session, None)) == 5
        chosen = await clusters_by_code(session, ["xatt", "GD", "GD"])
        assert [c.code for c in chosen] == ["GD", "XATT"]
        assert chosen[0].unions and chosen[0].admins
        with pytest.raises(InputError) as caught:
            await clusters_by_code(session, ["GD", "KCN"])
    assert caught.value.message == (
        "Không có cụm thi đua mã «KCN»; các mã hiện có: DNNGOAI, DNNN, GD, HCSN, XATT."
    )


async def test_clusters_by_code_on_empty_directory(engine: AsyncEngine) -> None:
    async with make_sessionmaker(engine)() as session:
        assert await clusters_by_code(session, []) == []
        with pytest.raises(InputError, match="danh bạ cụm thi đua đang trống"):
            await clusters_by_code(session, ["GD"])


CLUSTERS = "Mã cụm,Tên cụm,Zalo group ID\nGD,Khối Giáo dục,f414c8f76fa586fbdfb4\n"
UNIONS = "Mã cụm,Tên CĐCS,Số đoàn viên\nGD,CĐ Trường A,10\n"
ADMINS = "Mã cụm,Họ tên,Zalo user ID\nGD,Nguyễn Văn A,5622596194339511095\n"

BAD_IMPORTS = {
    "duplicate cluster code": (
        {"clusters.csv": CLUSTERS + "HCSN,Khối HCSN,\ngd,Trùng,\n"},
        "Dòng 4, cột «Mã cụm» trong tệp «clusters.csv»: mã cụm «gd» bị trùng với dòng 2.",
    ),
    "unknown cluster in unions": (
        {"clusters.csv": CLUSTERS, "unions.csv": UNIONS + "XATT,CĐ xã B,\n"},
        "Dòng 3, cột «Mã cụm» trong tệp «unions.csv»: không có cụm thi đua mã «XATT»; "
        "các mã đã có: GD.",
    ),
    "unknown cluster in admins against the database": (
        {"admins.csv": ADMINS + "KCN,Trần Văn B,5184343294437140455\n"},
        "Dòng 3, cột «Mã cụm» trong tệp «admins.csv»: không có cụm thi đua mã «KCN»; "
        "các mã đã có: DNNGOAI, DNNN, GD, HCSN, XATT.",
    ),
    "empty required cell": (
        {"unions.csv": UNIONS + "GD,,12\n"},
        "Dòng 3, cột «Tên công đoàn cơ sở» trong tệp «unions.csv»: ô này đang để trống, "
        "hãy điền giá trị.",
    ),
    "bad group id": (
        {"clusters.csv": CLUSTERS + "XATT,Khối xã,nhom-zalo-1\n"},
        "Dòng 3, cột «Zalo group ID» trong tệp «clusters.csv»: «nhom-zalo-1» không phải mã "
        "Zalo hợp lệ (cần từ 10 đến 40 chữ số hoặc chữ cái a–f).",
    ),
    "user id rounded by Excel": (
        {"admins.csv": ADMINS + "GD,Trần Văn B,5.18434E+18\n"},
        "Dòng 3, cột «Zalo user ID» trong tệp «admins.csv»: Excel đã đổi mã «5.18434E+18» "
        "sang dạng số mũ và làm mất chữ số, hãy định dạng cột này là Văn bản (Text) rồi "
        "nhập lại mã đầy đủ.",
    ),
    "duplicate admin in a cluster": (
        {"admins.csv": ADMINS + "GD,Nguyễn Văn A (trùng),5622596194339511095\n"},
        "Dòng 3, cột «Zalo user ID» trong tệp «admins.csv»: quản trị viên có Zalo ID "
        "«5622596194339511095» đã có ở dòng 2 trong cùng cụm «GD».",
    ),
    "duplicate union in a cluster": (
        {"unions.csv": UNIONS + "GD,cđ trường a,\n"},
        "Dòng 3, cột «Tên công đoàn cơ sở» trong tệp «unions.csv»: công đoàn cơ sở "
        "«cđ trường a» đã có ở dòng 2 trong cùng cụm «GD».",
    ),
    "bad member count": (
        {"unions.csv": UNIONS + "GD,CĐ Trường B,khoảng 30\n"},
        "Dòng 3, cột «Số đoàn viên» trong tệp «unions.csv»: «khoảng 30» không phải số "
        "đoàn viên hợp lệ (một số nguyên từ 0 đến 1.000.000).",
    ),
    "bad cluster code": (
        {"clusters.csv": CLUSTERS + "Khối xã,Khối xã,\n"},
        "Dòng 3, cột «Mã cụm» trong tệp «clusters.csv»: mã «Khối xã» chỉ được gồm chữ, số, "
        "dấu gạch ngang, gạch dưới hoặc dấu chấm, tối đa 64 ký tự.",
    ),
    "unrecognised file": (
        {"admins.csv": "Mã cụm,Họ tên\nGD,Nguyễn Văn A\n"},
        "Không nhận ra tệp «admins.csv»: cần các cột «Mã cụm» và «Tên cụm» (cụm thi đua), "
        "«Mã cụm» và «Tên CĐCS» (công đoàn cơ sở), hoặc «Mã cụm», «Họ tên» và "
        "«Zalo user ID» (quản trị viên).",
    ),
    "same kind twice": (
        {"a.csv": CLUSTERS, "b.csv": CLUSTERS},
        "Danh sách cụm thi đua xuất hiện hai lần (lần sau ở tệp «b.csv»), mỗi loại chỉ "
        "được nhập một lần.",
    ),
    "bad row in the last file": (
        {
            "clusters.csv": CLUSTERS,
            "unions.csv": UNIONS,
            "admins.csv": ADMINS + "GD,,5184343294437140455\n",
        },
        "Dòng 3, cột «Họ tên» trong tệp «admins.csv»: ô này đang để trống, hãy điền giá trị.",
    ),
}


@pytest.mark.parametrize(("files", "message"), BAD_IMPORTS.values(), ids=BAD_IMPORTS.keys())
async def test_bad_input_rejects_the_whole_import(
    engine: AsyncEngine, tmp_path: Path, files: dict[str, str], message: str
) -> None:
    await run_import(engine, EXAMPLE_FILES)
    before = await snapshot(engine)
    paths = [write(tmp_path, name, text) for name, text in files.items()]
    async with make_sessionmaker(engine)() as session:
        with pytest.raises(InputError) as caught:
            await import_directory(session, paths)
        assert not (session.new or session.dirty or session.deleted)
        # Even a caller that commits regardless writes nothing.
        await session.commit()
    assert caught.value.message == message
    assert await snapshot(engine) == before


async def test_rounded_number_in_xlsx_rejects_the_import(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    await run_import(engine, EXAMPLE_FILES)
    before = await snapshot(engine)
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Quản trị viên"
    sheet.append(["Mã cụm", "Họ tên", "Zalo user ID"])
    sheet.append(["GD", "Trần Văn Minh", "5184343294437140455"])
    sheet.append(["GD", "Lê Thị Hồng Nhung", 8704245373819295582])
    path = tmp_path / "qtv.xlsx"
    workbook.save(path)
    async with make_sessionmaker(engine)() as session:
        with pytest.raises(InputError, match=r"^Dòng 3, cột «Zalo user ID» ở trang"):
            await import_directory(session, [path])
    assert await snapshot(engine) == before


@pytest.mark.parametrize(
    ("sheet_title", "message"),
    [
        ("Trang tính 1", "Tệp «x.xlsx» cần các trang tên «Cụm thi đua», «Công đoàn cơ sở»"),
        ("Cụm", "Trang «Cụm» của tệp «x.xlsx» thiếu cột «Tên cụm» (tên cột được chấp nhận"),
    ],
)
async def test_xlsx_structure_errors(
    engine: AsyncEngine, tmp_path: Path, sheet_title: str, message: str
) -> None:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = sheet_title
    sheet.append(["Mã cụm", "Ghi chú"])
    sheet.append(["GD", "x"])
    workbook.save(tmp_path / "x.xlsx")
    async with make_sessionmaker(engine)() as session:
        with pytest.raises(InputError) as caught:
            await import_directory(session, [tmp_path / "x.xlsx"])
    assert caught.value.message.startswith(message)


async def test_no_files(engine: AsyncEngine) -> None:
    session: AsyncSession
    async with make_sessionmaker(engine)() as session:
        with pytest.raises(InputError, match="Chưa chọn tệp nào"):
            await import_directory(session, [])


async def test_preview_then_roll_back(engine: AsyncEngine, tmp_path: Path) -> None:
    await run_import(engine, EXAMPLE_FILES)
    before = await snapshot(engine)
    clusters = write(tmp_path, "cum.csv", "code,name\nGD,Khối Giáo dục\nYT,Khối Y tế\n")
    async with make_sessionmaker(engine)() as session:
        report = await import_directory(session, [clusters])
        assert counts(report)["clusters"] == (1, 1, 4, 0)
        # The same session already shows the result the officer is asked to confirm.
        preview = await list_clusters(session)
        assert [(c.code, len(c.unions), len(c.admins)) for c in preview] == [
            ("GD", 4, 2),
            ("YT", 0, 0),
        ]
        await session.rollback()
    assert await snapshot(engine) == before

"""Clusters and their import, accounts (Page token, Zalo consent), reports, users.

The bot here has a secret key and a sandbox on loopback, so tokens can be stored and
the Zalo consent flow runs against the sandbox's own consent page over real HTTP.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from bot.app import App
from bot.db.models import AuditEntry, Cluster, ClusterAdmin, Credential, Delivery, Post, Union
from bot.directory import list_clusters
from bot.secrets import Cipher
from bot.settings import Settings
from bot.web.auth import Users
from bot.web.pages_org import Period, _parse_period, build_report
from connectors.sandbox import SandboxState
from connectors.sandbox.server import SandboxServer
from tests.web.conftest import PASSWORD, ROLES, Client, csrf_of, sign_in

SECRET = "a secret key for the console tests, long enough"
ENV_PAGE_TOKEN = "EAAGenvTokenFromSettingsZZ9q"
GROUP = "5eefbd52e76d64fe35ff"


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(SandboxState(auto_register=False)) as server:
        yield server


@pytest.fixture
async def bot(
    database_url: str, sandbox: SandboxServer, request: pytest.FixtureRequest
) -> AsyncIterator[App]:
    """The console's bot; parametrize it indirectly with another secret key (or None)."""
    settings = Settings(
        _env_file=None,
        database_url=database_url,
        secret_key=getattr(request, "param", SECRET),
        sandbox_url=sandbox.url,
        facebook_page_token=ENV_PAGE_TOKEN,
    )
    app = App(settings)
    async with app.sessions.begin() as session:
        cluster = Cluster(code="HCSN", name="Cụm Hành chính", zalo_group_id=GROUP)
        session.add(cluster)
        await session.flush()
        session.add(ClusterAdmin(cluster_id=cluster.id, name="Chị Hoa", zalo_user_id="8812aa00ff"))
    users = Users(app.sessions)
    for role in ROLES:
        await users.add(role, PASSWORD, role, display_name=f"Người {role}", actor="test")
    yield app
    await app.aclose()


def csv_file(name: str, rows: list[list[str]]) -> tuple[str, bytes, str]:
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    return name, ("\ufeff" + text.getvalue()).encode("utf-8"), "text/csv"


CLUSTERS = [
    ["Mã cụm", "Tên cụm", "Zalo group ID"],
    ["HCSN", "Cụm thi đua khối Hành chính sự nghiệp", GROUP],
    ["GD", "Cụm thi đua khối Giáo dục", "1e1b6328409e79e71779"],
]
UNIONS = [
    ["Mã cụm", "Tên công đoàn cơ sở", "Số đoàn viên"],
    ["HCSN", "Công đoàn Trung tâm Y tế huyện", "142"],
    ["GD", "Công đoàn Trường THCS Sông Đuống", "38"],
]


async def upload(http: httpx.AsyncClient, *files: tuple[str, bytes, str]) -> httpx.Response:
    token = await csrf_of(http, "/clusters/import")
    return await http.post(
        "/clusters/import",
        data={"csrf_token": token},
        files=[("files", f) for f in files],
    )


async def directory(bot: App) -> dict[str, tuple[str, list[str]]]:
    async with bot.sessions() as session:
        return {c.code: (c.name, [u.name for u in c.unions]) for c in await list_clusters(session)}


# ---- clusters ----------------------------------------------------------------------------------


async def test_import_preview_shows_the_changes_and_confirming_applies_them(
    client: Client, bot: App
) -> None:
    http = await client("admin")
    before = await directory(bot)
    preview = await upload(http, csv_file("cum.csv", CLUSTERS), csv_file("cdcs.csv", UNIONS))
    assert preview.status_code == 200, preview.text
    text = preview.text
    assert "Xem trước thay đổi" in text
    assert "GD: Cụm thi đua khối Giáo dục" in text  # added
    assert "Tên cụm: «Cụm Hành chính» → «Cụm thi đua khối Hành chính sự nghiệp»" in text
    assert "Công đoàn Trường THCS Sông Đuống" in text
    assert "Quản trị viên" in text and "Không có trong tệp nhập" in text
    assert await directory(bot) == before  # a preview writes nothing

    import_id = re.search(r'name="import_id" value="([^"]+)"', text)
    assert import_id
    token = await csrf_of(http, "/clusters")
    forged = await http.post(
        "/clusters/import/confirm",
        data={"csrf_token": token, "import_id": "x" * 32, "action": "apply"},
    )
    assert forged.status_code == 409
    assert await directory(bot) == before
    done = await http.post(
        "/clusters/import/confirm",
        data={"csrf_token": token, "import_id": import_id.group(1), "action": "apply"},
    )
    assert done.status_code == 303
    after = await directory(bot)
    assert after["GD"] == ("Cụm thi đua khối Giáo dục", ["Công đoàn Trường THCS Sông Đuống"])
    assert after["HCSN"][0] == "Cụm thi đua khối Hành chính sự nghiệp"
    page = await http.get("/clusters")
    assert "Đã nhập danh bạ cụm thi đua" in page.text
    assert "Cụm thi đua khối Giáo dục" in page.text
    async with bot.sessions() as session:
        entry = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "clusters.import")
        )
    assert entry is not None and entry.actor == "web:admin"
    assert entry.detail and entry.detail["changes"]["clusters"]["added"] == 1
    again = await http.post(
        "/clusters/import/confirm",
        data={"csrf_token": token, "import_id": import_id.group(1), "action": "apply"},
    )
    assert again.status_code == 409  # a preview is applied once


async def test_a_bad_row_rejects_the_whole_import_and_says_where(client: Client, bot: App) -> None:
    http = await client("admin")
    before = await directory(bot)
    bad_unions = [*UNIONS, ["XYZ", "Công đoàn lạc cụm", "10"]]
    response = await upload(http, csv_file("cum.csv", CLUSTERS), csv_file("cdcs.csv", bad_unions))
    assert response.status_code == 422
    assert "Dòng 4, cột «Mã cụm» trong tệp «cdcs.csv»" in response.text
    assert "không có cụm thi đua mã «XYZ»" in response.text
    assert 'type="file"' in response.text  # the form again
    assert await directory(bot) == before
    token = await csrf_of(http, "/clusters")
    nothing = await http.post(
        "/clusters/import/confirm", data={"csrf_token": token, "import_id": "", "action": "apply"}
    )
    assert nothing.status_code == 409
    assert await directory(bot) == before


async def test_an_excel_workbook_is_imported_and_a_changed_directory_is_previewed_again(
    client: Client, bot: App
) -> None:
    book = Workbook()
    sheet = book.active
    sheet.title = "Cụm thi đua"
    for row in CLUSTERS:
        sheet.append(row)
    admins = book.create_sheet("Quản trị viên")
    for row in (["Mã cụm", "Họ tên", "Zalo user ID"], ["GD", "Anh Minh", "5184343294437140455"]):
        admins.append(row)
    data = io.BytesIO()
    book.save(data)
    http = await client("admin")
    xlsx = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    preview = await upload(http, ("danh-ba.xlsx", data.getvalue(), xlsx))
    assert preview.status_code == 200, preview.text
    assert "Anh Minh (5184343294437140455)" in preview.text
    assert "Chị Hoa (8812aa00ff)" in preview.text  # removed with the admins sheet
    import_id = re.search(r'name="import_id" value="([^"]+)"', preview.text)
    assert import_id
    async with bot.sessions.begin() as session:  # someone else edits meanwhile
        cluster = await session.scalar(select(Cluster).where(Cluster.code == "HCSN"))
        assert cluster is not None
        session.add(Union(cluster_id=cluster.id, name="Công đoàn mới thêm", members=5))
    token = await csrf_of(http, "/clusters")
    form = {"csrf_token": token, "import_id": import_id.group(1), "action": "apply"}
    stale = await http.post("/clusters/import/confirm", data=form)
    assert stale.status_code == 200
    assert "vừa được người khác sửa" in stale.text
    assert "GD" not in await directory(bot)
    applied = await http.post("/clusters/import/confirm", data=form)
    assert applied.status_code == 303
    async with bot.sessions() as session:
        found = {c.code: [a.name for a in c.admins] for c in await list_clusters(session)}
    assert found == {"HCSN": [], "GD": ["Anh Minh"]}


async def test_cluster_page_shows_unions_admins_and_the_zalo_group_check(
    client: Client, bot: App, sandbox: SandboxServer
) -> None:
    sandbox.state.add_group(GROUP, "Cụm Hành chính", enabled=False)
    viewer = await client("viewer")
    page = await viewer.get("/clusters")
    assert page.status_code == 200
    assert "Cụm Hành chính" in page.text and "Chị Hoa" in page.text
    assert "chưa kiểm tra" in page.text
    assert "/clusters/groups" not in page.text  # the check is for administrators
    admin = await client("admin")
    token = await csrf_of(admin, "/clusters")
    checked = await admin.post("/clusters/groups", data={"csrf_token": token})
    assert checked.status_code == 303
    page = await admin.get("/clusters")
    assert "1 cụm có nhóm Zalo cần xử lý" in page.text
    assert "nhóm đã bị vô hiệu hoá: cần gia hạn gói nhóm" in page.text
    sandbox.state.add_group(GROUP, "Cụm Hành chính", enabled=True)
    await admin.post("/clusters/groups", data={"csrf_token": token})
    page = await viewer.get("/clusters")
    assert "vô hiệu hoá" not in page.text
    assert "kiểm tra lúc" in page.text


# ---- accounts ----------------------------------------------------------------------------------


async def test_the_page_token_is_stored_encrypted_and_never_shown(client: Client, bot: App) -> None:
    http = await client("admin")
    page = await http.get("/accounts")
    assert page.status_code == 200
    assert ENV_PAGE_TOKEN not in page.text
    assert "…" + ENV_PAGE_TOKEN[-4:] in page.text
    new = "EAAB" + "x7Yq" * 12 + "Wz3k"
    token = await csrf_of(http, "/accounts")
    short = await http.post("/accounts/facebook", data={"csrf_token": token, "page_token": "abc"})
    assert short.status_code == 422
    assert "không đúng dạng" in short.text
    saved = await http.post("/accounts/facebook", data={"csrf_token": token, "page_token": new})
    assert saved.status_code == 303
    assert new not in str(http.cookies.jar)  # the flash holds the last four characters only
    page = await http.get("/accounts")
    assert new not in page.text and "…Wz3k" in page.text
    assert "phiên bản 1" in page.text
    async with bot.sessions() as session:
        row = await session.get(Credential, "facebook")
        audit = list(
            await session.scalars(select(AuditEntry).where(AuditEntry.action == "facebook.token"))
        )
    assert row is not None and row.access_token != new and new not in row.access_token
    assert Cipher(SECRET).decrypt(row.access_token) == new
    assert [a.detail for a in audit] == [{"version": 1, "token": "…Wz3k"}]


@pytest.mark.parametrize("bot", [None], indirect=True)
async def test_without_a_secret_key_no_page_token_is_stored(client: Client, bot: App) -> None:
    http = await client("admin")
    token = await csrf_of(http, "/accounts")
    refused = await http.post(
        "/accounts/facebook", data={"csrf_token": token, "page_token": "EAAB" + "q" * 40}
    )
    assert refused.status_code == 422
    assert "Cần đặt CDBOT_SECRET_KEY" in refused.text
    async with bot.sessions() as session:
        assert await session.get(Credential, "facebook") is None


async def test_zalo_consent_through_the_sandbox_ends_with_a_stored_credential(
    client: Client, bot: App
) -> None:
    http = await client("admin")
    await bot.queue.pause_account("zalo", seconds=None, needs_reauth=True, note="Cần cấp quyền")
    page = await http.get("/accounts")
    assert "Chưa kết nối" in page.text and "Cần cấp lại quyền" in page.text
    token = await csrf_of(http, "/accounts")
    start = await http.post("/accounts/zalo/connect", data={"csrf_token": token})
    assert start.status_code == 303
    consent_url = start.headers["location"]
    assert consent_url.startswith(f"{bot.sandbox_url}/v4/oa/permission?")
    assert "code_challenge=" in consent_url
    async with httpx.AsyncClient() as browser:  # the officer's browser on the consent page
        consent = await browser.get(consent_url)
    assert consent.status_code == 302
    back = httpx.URL(consent.headers["location"])
    assert back.path == "/accounts/zalo/callback"
    finished = await http.get(f"{back.path}?{back.query.decode()}")
    assert finished.status_code == 303
    page = await http.get("/accounts")
    assert "Đã kết nối Zalo OA" in page.text
    assert "Cần cấp lại quyền" not in page.text
    async with bot.sessions() as session:
        row = await session.get(Credential, "zalo")
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.action == "zalo.connect"))
    assert row is not None and row.refresh_token is not None
    access = Cipher(SECRET).decrypt(row.access_token)
    assert access.startswith("sbx-at-") and access not in row.access_token
    assert access not in page.text and "…" + access[-4:] in page.text
    assert entry is not None and entry.detail and entry.detail["token"] == "…" + access[-4:]
    replay = await http.get(f"{back.path}?{back.query.decode()}")  # the flow is spent
    assert replay.status_code == 303
    assert "hết hạn" in (await http.get("/accounts")).text


async def test_a_callback_from_another_flow_stores_nothing(client: Client, bot: App) -> None:
    http = await client("admin")
    token = await csrf_of(http, "/accounts")
    await http.post("/accounts/zalo/connect", data={"csrf_token": token})
    forged = await http.get("/accounts/zalo/callback?code=code-abc&state=not-this-one")
    assert forged.status_code == 303
    assert "state không khớp" in (await http.get("/accounts")).text
    async with bot.sessions() as session:
        assert await session.get(Credential, "zalo") is None


# ---- reports -----------------------------------------------------------------------------------


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


POSTS: list[dict[str, Any]] = [
    # kind, category, status, scheduled (UTC), deliveries (channel, cluster, status)
    {
        "kind": "law",
        "category": "regular",
        "status": "done",
        "title": "=Giải đáp: nghỉ phép năm",
        "at": "2026-01-10T02:00:00",
        "deliveries": [
            ("facebook_page", None, "sent"),
            ("zalo_group", "HCSN", "sent"),
            ("zalo_group", "GD", "failed"),
            ("zalo_user", "HCSN", "sent"),
        ],
    },
    {  # 31 January 20:00 UTC is 1 February in Hà Nội
        "kind": "event",
        "category": "event",
        "status": "approved",
        "title": "Ngày Tết Đoàn viên",
        "at": "2026-01-31T20:00:00",
        "deliveries": [
            ("zalo_group", "HCSN", "sent"),
            ("zalo_group", "GD", "sent"),
            ("zalo_broadcast", None, "pending"),
        ],
    },
    {
        "kind": "news",
        "category": "regular",
        "status": "approved",
        "title": "Tin mới",
        "at": "2026-02-15T02:00:00",
        "deliveries": [("facebook_page", None, "cancelled"), ("zalo_group", "GD", "retry_wait")],
    },
    {  # not in the report: a draft, and a post after the period
        "kind": "story",
        "category": "good_deeds",
        "status": "draft",
        "title": "Nháp",
        "at": "2026-02-20T02:00:00",
        "deliveries": [],
    },
    {
        "kind": "law",
        "category": "in_depth",
        "status": "done",
        "title": "Tháng tư",
        "at": "2026-04-02T02:00:00",
        "deliveries": [("zalo_group", "HCSN", "sent")],
    },
]


@pytest.fixture
async def reported(bot: App) -> None:
    async with bot.sessions.begin() as session:
        session.add(Cluster(code="GD", name="Cụm Giáo dục", zalo_group_id="1e1b6328409e79e71779"))
        for item in POSTS:
            post = Post(
                kind=item["kind"],
                category=item["category"],
                status=item["status"],
                title=item["title"],
                body="…",
                scheduled_at=at(item["at"]),
            )
            session.add(post)
            await session.flush()
            for n, (channel, cluster, status) in enumerate(item["deliveries"]):
                session.add(
                    Delivery(
                        post_id=post.id,
                        channel=channel,
                        target_id=f"t{n}",
                        target_label=f"Đích {n}",
                        cluster_code=cluster,
                        account="facebook" if channel == "facebook_page" else "zalo",
                        status=status,
                        next_attempt_at=at(item["at"]),
                    )
                )


def rows_of(report: Any, key: str) -> dict[str, tuple[int, ...]]:
    table = next(t for t in report.tables if t.key == key)
    return {line.label: line.values() for line in table.lines}


async def test_report_counts_posts_and_deliveries_every_way(bot: App, reported: None) -> None:
    from datetime import date

    report = await build_report(bot, Period(date(2026, 1, 1), date(2026, 3, 1)))
    assert report.total.values() == (3, 8, 5, 1, 2)
    assert rows_of(report, "months") == {
        "01/2026": (1, 4, 3, 1, 0),
        "02/2026": (2, 4, 2, 0, 2),
        "03/2026": (0, 0, 0, 0, 0),
    }
    categories = rows_of(report, "categories")
    assert categories["Thường xuyên"] == (2, 5, 3, 1, 1)
    assert categories["Sự kiện"] == (1, 3, 2, 0, 1)
    assert categories["Người tốt việc tốt"] == (0, 0, 0, 0, 0)
    assert rows_of(report, "kinds")["Giải đáp pháp luật"] == (1, 4, 3, 1, 0)
    assert rows_of(report, "channels") == {
        "Trang Facebook": (1, 1, 1, 0, 0),
        "Zalo: phát đến người quan tâm": (1, 1, 0, 0, 1),
        "Zalo: nhóm cụm thi đua": (3, 5, 3, 1, 1),
        "Zalo: quản trị viên cụm": (1, 1, 1, 0, 0),
    }
    assert rows_of(report, "clusters") == {
        "Cụm Giáo dục (GD)": (3, 3, 1, 1, 1),
        "Cụm Hành chính (HCSN)": (2, 3, 3, 0, 0),
    }
    assert [(r.title, r.reached, r.targeted) for r in report.reach] == [
        ("=Giải đáp: nghỉ phép năm", 1, 2),
        ("Ngày Tết Đoàn viên", 2, 2),
        ("Tin mới", 0, 1),
    ]
    assert report.reached == (3, 5)


async def test_reports_page_and_its_exports(client: Client, bot: App, reported: None) -> None:
    http = await client("viewer")
    page = await http.get("/reports?from=2026-01&to=2026-03")
    assert page.status_code == 200
    assert '<svg width="100%" height="240" role="img"' in page.text
    assert '<title id="chart-title">' in page.text and "02/2026: 2 bài" in page.text
    assert page.text.count("<rect ") == 3  # January: regular; February: regular and event
    assert "60%" in page.text and "(3/5)" in page.text

    bad = await http.get("/reports?from=2026-13&to=2026-01")
    assert bad.status_code == 422
    assert "Từ tháng cần dạng năm-tháng" in bad.text and 'value="2026-13"' in bad.text
    backwards = await http.get("/reports?from=2026-05&to=2026-01")
    assert "Đến tháng phải sau hoặc bằng Từ tháng" in backwards.text

    xlsx = await http.get("/reports/export.xlsx?from=2026-01&to=2026-03")
    assert xlsx.status_code == 200
    assert "bao-cao-truyen-thong_2026-01_2026-03.xlsx" in xlsx.headers["content-disposition"]
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == [
        "Tổng hợp",
        "Theo tháng",
        "Theo nhóm nội dung",
        "Theo loại bài",
        "Theo kênh",
        "Theo cụm thi đua",
        "Từng bài",
    ]
    months = [list(r) for r in book["Theo tháng"].iter_rows(values_only=True)]
    assert months[0] == ["Tháng", "Số bài", "Lượt gửi", "Đã gửi", "Không gửi được", "Đang chờ"]
    assert months[1:] == [
        ["01/2026", 1, 4, 3, 1, 0],
        ["02/2026", 2, 4, 2, 0, 2],
        ["03/2026", 0, 0, 0, 0, 0],
    ]
    posts = list(book["Từng bài"].iter_rows(values_only=True))
    assert posts[0][:2] == ("Ngày", "Tiêu đề")
    assert posts[1] == (
        "10/01/2026",
        "=Giải đáp: nghỉ phép năm",
        "Giải đáp pháp luật",
        "Thường xuyên",
        2,
        1,
        0.5,
    )
    assert book["Từng bài"]["B2"].data_type == "s"  # a title is never a formula
    summary = {r[0]: r[1] for r in book["Tổng hợp"].iter_rows(values_only=True) if r[0]}
    assert summary["Số bài"] == 3 and summary["Tỉ lệ cụm nhận được"] == 0.6

    raw = await http.get("/reports/export.csv?from=2026-01&to=2026-03")
    assert raw.status_code == 200
    assert raw.content.startswith(b"\xef\xbb\xbf")
    assert raw.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(raw.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Bảng", "Mục", "Số bài"]
    assert rows[1] == ["Tổng", "01/2026 – 03/2026", "3", "8", "5", "1", "2", "5", "3", "60.0"]
    assert ["Theo tháng", "02/2026", "2", "4", "2", "0", "2", "", "", ""] in rows
    first = next(r for r in rows if r[0] == "Từng bài")
    assert first[1] == "10/01/2026 =Giải đáp: nghỉ phép năm"
    assert first[2:] == ["1", "4", "3", "1", "0", "2", "1", "50.0"]


# ---- users -------------------------------------------------------------------------------------


async def test_admin_adds_changes_and_disables_users(client: Client, bot: App) -> None:
    http = await client("admin")
    token = await csrf_of(http, "/users")
    form = {"csrf_token": token, "username": "lan", "display_name": "Nguyễn Thị Lan"}
    weak = await http.post("/users", data=form | {"role": "editor", "password": "ngan"})
    assert weak.status_code == 422
    assert "Mật khẩu cần ít nhất 10 ký tự." in weak.text
    assert 'value="lan"' in weak.text and 'value="Nguyễn Thị Lan"' in weak.text
    added = await http.post(
        "/users", data=form | {"role": "editor", "password": "mat-khau-cua-lan"}
    )
    assert added.status_code == 303
    duplicate = await http.post("/users", data=form | {"role": "editor", "password": "x" * 12})
    assert duplicate.status_code == 422 and "Đã có người dùng «lan»" in duplicate.text

    role = await http.post("/users/lan/role", data={"csrf_token": token, "role": "approver"})
    assert role.status_code == 303
    users = {p.username: (p.role.value, off) for p, off in await Users(bot.sessions).all()}
    assert users["lan"] == ("approver", False)

    made = await http.post("/users/lan/token", data={"csrf_token": token, "name": "Bảng tính"})
    found = re.search(r'id="new-token" class="org-mono" value="(cdb_[^"]+)"', made.text)
    assert found and made.headers["cache-control"] == "no-store"
    person = await Users(bot.sessions).by_token(found.group(1))
    assert person is not None and person.username == "lan"
    assert found.group(1) not in (await http.get("/users")).text  # shown once

    lan = await client("anonymous")
    assert (await sign_in(lan, "lan", "mat-khau-cua-lan")).status_code == 303
    assert (await lan.get("/approvals")).status_code == 200
    locked = await http.post("/users/lan/state", data={"csrf_token": token, "action": "disable"})
    assert locked.status_code == 303
    assert (await lan.get("/")).status_code == 303  # signed out at once
    assert (await sign_in(lan, "lan", "mat-khau-cua-lan")).status_code == 401
    await http.post("/users/lan/state", data={"csrf_token": token, "action": "enable"})
    assert (await sign_in(lan, "lan", "mat-khau-cua-lan")).status_code == 303
    async with bot.sessions() as session:
        actions = await session.scalar(
            select(func.count(AuditEntry.id)).where(AuditEntry.actor == "web:admin")
        )
    assert actions == 5  # add, role, token, disable, enable


async def test_an_admin_cannot_lock_themselves_out(client: Client, bot: App) -> None:
    http = await client("admin")
    token = await csrf_of(http, "/users")
    demote = await http.post("/users/admin/role", data={"csrf_token": token, "role": "viewer"})
    assert demote.status_code == 422
    assert "không thể tự hạ vai trò" in demote.text
    disable = await http.post("/users/admin/state", data={"csrf_token": token, "action": "disable"})
    assert disable.status_code == 422
    assert "không thể tự khoá" in disable.text
    users = {p.username: (p.role.value, off) for p, off in await Users(bot.sessions).all()}
    assert users["admin"] == ("admin", False)
    assert (await http.get("/users")).status_code == 200
    approver = await client("approver")
    refused = await approver.post("/users", data={"csrf_token": await csrf_of(approver, "/")})
    assert refused.status_code == 403


async def test_report_period_defaults_to_the_last_six_months(client: Client) -> None:
    http = await client("viewer")
    page = await http.get("/reports")
    assert page.status_code == 200
    today = datetime.now(UTC) + timedelta(hours=7)
    assert f'name="to" value="{today:%Y-%m}"' in page.text


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        ("", "", ("2026-06", "2026-11")),
        ("2026-01", "", ("2026-01", "2026-06")),
        ("2026-10", "", ("2026-10", "2026-11")),
        ("2027-03", "", ("2027-03", "2027-03")),
        ("", "2025-03", ("2024-10", "2025-03")),
        ("2025-11", "2026-02", ("2025-11", "2026-02")),
    ],
)
def test_a_report_period_is_six_months_unless_both_ends_are_given(
    start: str, end: str, expected: tuple[str, str]
) -> None:
    from datetime import date

    period, errors = _parse_period(start, end, date(2026, 11, 29))
    assert errors == {}
    assert (f"{period.first:%Y-%m}", f"{period.last:%Y-%m}") == expected


@pytest.mark.parametrize(
    ("start", "end", "field", "words"),
    [
        ("2026-1", "", "from", "cần dạng năm-tháng"),
        ("", "tháng 3", "to", "cần dạng năm-tháng"),
        ("2026-05", "2026-01", "to", "phải sau hoặc bằng"),
        ("2020-01", "2026-01", "to", "tối đa 36 tháng"),
    ],
)
def test_a_wrong_report_period_is_named_by_field(
    start: str, end: str, field: str, words: str
) -> None:
    from datetime import date

    _, errors = _parse_period(start, end, date(2026, 11, 29))
    assert list(errors) == [field] and words in errors[field]

"""`cdbot` as the officer uses it: write, approve, list, send, and ask how things stand."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from tests.e2e.conftest import (
    ALL_DELIVERIES,
    CLUSTER_CODES,
    VIETNAMESE,
    Cdbot,
    assert_officer_error,
    cdbot_env,
    defect,
    future,
    ok,
    typed,
)

LAW = (
    "post",
    "add",
    "--kind",
    "law",
    "--title",
    "Làm thêm giờ",
    "--citation",
    "Điều 98 Bộ luật Lao động 2019",
    "--link",
    "https://vbpl.vn/blld",
)
BODY = ("--body", "Người lao động làm thêm giờ được trả ít nhất 150% lương (Điều 98).")


def add_post(bot: Cdbot, *extra: str) -> int:
    """Add a law post with `extra` options; its id."""
    return int(bot.json(*LAW, *BODY, *extra, "--json")["id"])


# ---- help ----------------------------------------------------------------------------------


def test_help_is_in_vietnamese(cdbot: Cdbot) -> None:
    """`cdbot --help` exits 0 and lists the commands in Vietnamese."""
    result = ok(cdbot("--help"))
    assert "Lệnh" in result.stdout
    assert "cụm thi đua" in result.stdout
    for command in ("post", "cluster", "run", "status", "demo"):
        assert command in result.stdout


def test_post_add_help_is_in_vietnamese(cdbot: Cdbot) -> None:
    """`cdbot post add --help` exits 0 and explains the options in Vietnamese."""
    result = ok(cdbot("post", "add", "--help"))
    for words in ("Soạn một bài mới", "Tiêu đề", "Loại bài", "bắt buộc", "Tuỳ chọn"):
        assert words in result.stdout


@defect("Click's own lines stay in English: «Usage:» and «Show this message and exit.»")
def test_help_has_no_english_left(cdbot: Cdbot) -> None:
    """Help output carries no English sentence from Click."""
    result = ok(cdbot("post", "add", "--help"))
    assert "Show this message and exit" not in result.stdout
    assert "Usage:" not in result.stdout


def test_python_dash_m_runs_the_cli(tmp_path: Path) -> None:
    """`python -m bot.cli --help` works like `cdbot --help`."""
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "--help"],
        cwd=tmp_path,
        env=cdbot_env(tmp_path),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "cụm thi đua" in result.stdout


def test_no_arguments_shows_help(cdbot: Cdbot) -> None:
    """`cdbot` alone prints the help and exits 0 (not a usage error)."""
    result = ok(cdbot())
    assert "Lệnh" in result.stdout + result.stderr


# ---- writing and approving -------------------------------------------------------------------


def test_add_with_approve_lists_post_with_its_deliveries(cdbot_clusters: Cdbot) -> None:
    """`post add --approve` queues one delivery per channel, group and admin, seen in the list."""
    when = future(days=30)
    result = ok(cdbot_clusters(*LAW, *BODY, "--at", typed(when), "--approve"))
    assert f"{ALL_DELIVERIES} lượt gửi" in result.stdout
    [post] = cdbot_clusters.json("post", "list", "--json")
    assert post["title"] == "Làm thêm giờ"
    assert post["status"] == "approved"
    assert post["scheduled_at"] == when.isoformat()
    assert post["clusters"] is None
    assert post["deliveries"] == {"total": ALL_DELIVERIES, "sent": 0}


def test_list_times_carry_the_vietnam_offset(cdbot_clusters: Cdbot) -> None:
    """A time typed as «1/12/YYYY 7:30» is listed as YYYY-12-01T07:30:00+07:00."""
    year = future(days=400).year
    add_post(cdbot_clusters, "--at", f"1/12/{year} 7:30")
    [post] = cdbot_clusters.json("post", "list", "--json")
    assert post["scheduled_at"] == f"{year}-12-01T07:30:00+07:00"


def test_show_json_lists_every_delivery(cdbot_clusters: Cdbot) -> None:
    """`post show ID --json` gives the body and one pending delivery per target."""
    post_id = add_post(cdbot_clusters, "--at", typed(future(days=30)), "--approve")
    shown = cdbot_clusters.json("post", "show", str(post_id), "--json")
    assert shown["id"] == post_id
    assert shown["body"] == BODY[1]
    channels = Counter(d["channel"] for d in shown["delivery_list"])
    assert channels == {"facebook_page": 1, "zalo_broadcast": 1, "zalo_group": 5, "zalo_user": 7}
    assert {d["status"] for d in shown["delivery_list"]} == {"pending"}
    groups = {d["cluster"] for d in shown["delivery_list"] if d["channel"] == "zalo_group"}
    assert groups == set(CLUSTER_CODES)


def test_approving_twice_adds_no_delivery(cdbot_clusters: Cdbot) -> None:
    """A second `post approve` says «thêm 0 lượt gửi» and the post keeps its deliveries."""
    post_id = add_post(cdbot_clusters, "--at", typed(future(days=30)), "--clusters", "HCSN")
    first = ok(cdbot_clusters("post", "approve", str(post_id)))
    assert f"Đã duyệt bài #{post_id}: thêm 4 lượt gửi." in first.stdout
    second = ok(cdbot_clusters("post", "approve", str(post_id)))
    assert f"Đã duyệt bài #{post_id}: thêm 0 lượt gửi." in second.stdout
    shown = cdbot_clusters.json("post", "show", str(post_id), "--json")
    assert shown["deliveries"]["total"] == 4


def test_cancel_stops_every_delivery(cdbot_clusters: Cdbot) -> None:
    """`post cancel` cancels every pending delivery and the post."""
    post_id = add_post(cdbot_clusters, "--at", typed(future(days=30)), "--approve")
    result = ok(cdbot_clusters("post", "cancel", str(post_id)))
    assert f"Đã huỷ bài #{post_id}: dừng {ALL_DELIVERIES} lượt gửi." in result.stdout
    shown = cdbot_clusters.json("post", "show", str(post_id), "--json")
    assert shown["status"] == "cancelled"
    assert {d["status"] for d in shown["delivery_list"]} == {"cancelled"}


def test_show_unknown_post_is_refused(cdbot_clusters: Cdbot) -> None:
    """`post show 4242` on an empty queue exits 2 with one Vietnamese sentence."""
    message = assert_officer_error(cdbot_clusters("post", "show", "4242"))
    assert "#4242" in message


# ---- cluster codes, markup and mentions ------------------------------------------------------


def test_cluster_code_in_lower_case_reaches_the_cluster(cdbot_clusters: Cdbot) -> None:
    """`--clusters hcsn` reaches the same group and admin as `--clusters HCSN`."""
    when = typed(future(days=30))
    post = cdbot_clusters.json(
        *LAW, *BODY, "--at", when, "--clusters", "hcsn", "--approve", "--json"
    )
    assert post["deliveries"]["total"] == 4  # Page, followers, HCSN group, HCSN admin


def test_blank_clusters_means_every_cluster(cdbot_clusters: Cdbot) -> None:
    """`--clusters ""` («bỏ trống là tất cả») reaches every cluster."""
    when = typed(future(days=30))
    post = cdbot_clusters.json(*LAW, *BODY, "--at", when, "--clusters", "", "--approve", "--json")
    assert post["deliveries"]["total"] == ALL_DELIVERIES


def test_square_brackets_in_a_post_do_not_break_list_or_show(cdbot_clusters: Cdbot) -> None:
    """A title with «[/b]» and a body with «[/]» are shown as typed by `post list` and `show`."""
    post = cdbot_clusters.json(
        *("post", "add", "--kind", "story", "--title", "Lương [/b] tối thiểu"),
        *("--body", "Xem [/] nhé", "--json"),
    )
    listed = cdbot_clusters("post", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Lương [/b] tối thiểu" in listed.stdout
    shown = cdbot_clusters("post", "show", str(post["id"]))
    assert shown.returncode == 0, shown.stderr
    assert "Xem [/] nhé" in shown.stdout


def test_square_brackets_in_a_cluster_name_do_not_break_the_list(
    cdbot: Cdbot, tmp_path: Path
) -> None:
    """A cluster named «Cụm [/b] Hành chính» is listed as typed by `cluster list`."""
    path = tmp_path / "cum.csv"
    path.write_text(
        "Mã cụm,Tên cụm,Zalo group ID\r\nHCSN,Cụm [/b] Hành chính,5eefbd52e76d64fe35ff\r\n",
        encoding="utf-8",
    )
    ok(cdbot("cluster", "import", path))
    listed = cdbot("cluster", "list")
    assert listed.returncode == 0, listed.stderr
    assert "Cụm [/b] Hành chính" in listed.stdout


def test_zalo_mention_in_title_is_shown(cdbot_clusters: Cdbot) -> None:
    """A title with the Zalo mention syntax «[@123]» and emoji shows as typed in `post list`."""
    post = cdbot_clusters.json(
        "post", "add", "--kind", "story", "--title", "🎉 Họp [@123]", *BODY, "--json"
    )
    assert post["title"] == "🎉 Họp [@123]"
    result = ok(cdbot_clusters("post", "list"))
    assert "🎉 Họp [@123]" in result.stdout


# ---- status, settings and running ------------------------------------------------------------


def test_status_reports_both_accounts_in_sandbox(cdbot_clusters: Cdbot) -> None:
    """Without credentials `status --json` shows Facebook and Zalo in sandbox mode."""
    status = cdbot_clusters.json("status", "--json")
    assert {key: value["mode"] for key, value in status["accounts"].items()} == {
        "facebook": "sandbox",
        "zalo": "sandbox",
    }
    assert status["deliveries"] == {}
    assert status["next_due"] is None


def test_config_check_without_sandbox_names_missing_keys(cdbot: Cdbot) -> None:
    """`config check` with CDBOT_SANDBOX=false and no credentials exits 2 naming each key."""
    message = assert_officer_error(cdbot("config", "check", env={"CDBOT_SANDBOX": "false"}))
    for key in (
        "CDBOT_FACEBOOK_PAGE_ID",
        "CDBOT_FACEBOOK_PAGE_TOKEN",
        "CDBOT_ZALO_APP_ID",
        "CDBOT_ZALO_APP_SECRET",
        "CDBOT_SECRET_KEY",
    ):
        assert key in message


def test_bad_setting_value_is_explained_in_vietnamese(cdbot: Cdbot) -> None:
    """CDBOT_SANDBOX=có (not a boolean) is refused in one Vietnamese sentence."""
    message = assert_officer_error(cdbot("status", env={"CDBOT_SANDBOX": "có"}))
    assert "CDBOT_SANDBOX" in message


def test_bad_database_url_is_one_sentence(cdbot: Cdbot) -> None:
    """A CDBOT_DATABASE_URL for another database engine is refused in one sentence."""
    message = assert_officer_error(cdbot("post", "list", env={"CDBOT_DATABASE_URL": "mysql://x"}))
    assert "CDBOT_DATABASE_URL" in message


def test_run_until_idle_sends_a_post_due_now(cdbot_clusters: Cdbot) -> None:
    """`run --until-idle` starts its own sandbox and sends every delivery of a post due now.

    Zalo broadcasts are left out: the sandbox, like Zalo, refuses them from 22:00 to 06:00.
    """
    post_id = add_post(
        cdbot_clusters,
        "--channels",
        "facebook_page,zalo_group,zalo_user",
        "--clusters",
        "HCSN,GD",
        "--approve",
    )
    # The day's law item goes to the Page too: no 60-second gap between the two posts here.
    result = ok(cdbot_clusters("run", "--until-idle", env={"CDBOT_FACEBOOK_MIN_GAP_SECONDS": "0"}))
    assert "Hộp cát: http://127.0.0.1:" in result.stdout
    assert "HỘP CÁT" in result.stderr
    shown = cdbot_clusters.json("post", "show", str(post_id), "--json")
    statuses = [d["status"] for d in shown["delivery_list"]]
    assert statuses == ["sent"] * 6  # Page, 2 groups, 3 admins
    assert shown["status"] == "done"
    assert all(d["sent_at"].endswith("+07:00") for d in shown["delivery_list"])


def test_demo_sends_everything(cdbot: Cdbot) -> None:
    """`cdbot demo` runs the whole pipeline and exits 0 with every delivery sent."""
    result = ok(cdbot("demo", timeout=180))
    assert "mọi lượt gửi đã tới nơi" in result.stdout
    assert VIETNAMESE.search(result.stdout)

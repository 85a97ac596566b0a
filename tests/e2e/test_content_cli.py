"""`cdbot plan` and `cdbot feeds check`, run as the officer runs them."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from tests.e2e.conftest import VN, Cdbot, assert_officer_error
from tests.integration.test_feeds_http import FeedSite
from tests.integration.test_feeds_http import site as site  # the loopback feed site

EXAMPLE_ORG = Path(__file__).resolve().parents[2] / "content/data/example/organisation.yaml"


def test_plan_queues_a_day_once(cdbot: Cdbot) -> None:
    day = (datetime.now(VN) + timedelta(days=3)).strftime("%d/%m/%Y")
    first = cdbot.json("plan", "--date", day, "--json")
    assert any(" law:" in line for line in first["queued"])
    again = cdbot.json("plan", "--date", day, "--json")
    assert again["planned_before"] is True
    posts = cdbot.json("post", "list", "--json")
    assert len([p for p in posts if p["kind"] == "law"]) == 1


def test_plan_refuses_a_past_or_wrong_date(cdbot: Cdbot) -> None:
    assert "đã qua" in assert_officer_error(cdbot("plan", "--date", "01/01/2020"))
    assert "không đúng" in assert_officer_error(cdbot("plan", "--date", "31/02/2027"))


def test_feeds_check_reports_health(cdbot: Cdbot, tmp_path: Path, site: FeedSite) -> None:
    org = tmp_path / "org.yaml"
    text = EXAMPLE_ORG.read_text(encoding="utf-8")
    good = f"{site.url}/feeds/congbao-van-ban-moi.rss"
    org.write_text(text.replace("https://congbao.chinhphu.vn/cac-van-ban-moi-ban-hanh.rss", good))
    result = cdbot("feeds", "check", "--json", env={"CDBOT_ORG_FILE": str(org)})
    [report] = json.loads(result.stdout)
    assert report["items"] > 0
    assert report["matches"] > 0
    # The saved feed is months old, so the feed is stale: reported, exit code 1.
    assert report["healthy"] is False
    assert "cũ" in report["problem"]
    assert result.returncode == 1
    assert "Traceback" not in result.stderr

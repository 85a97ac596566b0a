"""Feed layer without the network: date repair, parsing, scoring, dedupe, draft fields."""

from __future__ import annotations

import hashlib
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from content.feeds import (
    DEFAULT_FEEDS,
    Feed,
    FeedItem,
    Keywords,
    NotAFeed,
    Score,
    congbao_number,
    draft_fields,
    parse,
    plain_text,
    repair_dates,
    score,
    unique,
)

FEEDS = Path(__file__).resolve().parents[1] / "data" / "feeds"
CONGBAO = Feed(
    name="Công báo",
    url="https://congbao.chinhphu.vn/cac-van-ban-moi-ban-hanh.rss",
    adapter="congbao",
)
NEWS = Feed(name="Người Lao Động", url="https://tuoitre.vn/nld/rss/nld/lao-dong/chinh-sach.rss")


def rss(*items: str) -> str:
    body = "".join(f"<item>{item}</item>" for item in items)
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>{body}</channel></rss>'
    )


def item(title: str = "", summary: str = "", feed: Feed = NEWS, doc: str | None = None) -> FeedItem:
    return FeedItem(feed, "guid-1", title, summary, "https://example.vn/1", None, doc)


# --- repair_dates ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "fixed"),
    [
        ("Sun, 31 May 2026 16:30:00 +07", "Sun, 31 May 2026 16:30:00 +0700"),
        ("Sun, 31 May 2026 09:10:00 GMT+7", "Sun, 31 May 2026 09:10:00 +0700"),
        ("Thu, 28 May 2026 07:45:00 GMT+07:00", "Thu, 28 May 2026 07:45:00 +0700"),
        ("Thu, 28 May 2026 07:45:00", "Thu, 28 May 2026 07:45:00 +0700"),
        ("5/30/2026 10:52:00\u202fAM", "2026-05-30T10:52:00+07:00"),
        ("5/29/2026 3:05:00\u00a0PM", "2026-05-29T15:05:00+07:00"),
        ("5/29/2026 12:05:00 AM", "2026-05-29T00:05:00+07:00"),
        ("2026-05-28T07:45:00", "2026-05-28T07:45:00+07:00"),
        ("2026-05-28 07:45", "2026-05-28T07:45+07:00"),
        ("2026-05-28T07:45:00+07", "2026-05-28T07:45:00+07:00"),
        ("Thứ sáu, 29/05/2026 - 14:20", "2026-05-29T14:20:00+07:00"),
        ("Chủ nhật, 31/5/2026, 09:30 (GMT+7)", "2026-05-31T09:30:00+07:00"),
        ("29/05/2026 14:20", "2026-05-29T14:20:00+07:00"),
        # Good dates and unknown formats stay as they are.
        ("Sun, 31 May 2026 16:30:00 +0700", "Sun, 31 May 2026 16:30:00 +0700"),
        ("Sun, 31 May 2026 09:30:00 GMT", "Sun, 31 May 2026 09:30:00 GMT"),
        ("2026-05-31T09:30:00Z", "2026-05-31T09:30:00Z"),
        ("2026-05-31T09:30:00+07:00", "2026-05-31T09:30:00+07:00"),
        ("hôm qua", "hôm qua"),
        ("31/02/2026 10:00", "31/02/2026 10:00"),
    ],
)
def test_repair_dates(raw: str, fixed: str) -> None:
    assert repair_dates(f"<item><pubDate>{raw}</pubDate></item>") == (
        f"<item><pubDate>{fixed}</pubDate></item>"
    )


def test_repair_dates_only_touches_date_elements() -> None:
    xml = (
        "<entry><title>2026-05-28 07:45</title><updated>2026-05-28 07:45</updated>"
        "<dc:date><![CDATA[5/30/2026 10:52:00 AM]]></dc:date></entry>"
    )
    assert repair_dates(xml) == (
        "<entry><title>2026-05-28 07:45</title><updated>2026-05-28T07:45+07:00</updated>"
        "<dc:date>2026-05-30T10:52:00+07:00</dc:date></entry>"
    )


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=7))])))
def test_good_dates_are_left_alone(moment: datetime) -> None:
    for good in (format_datetime(moment), moment.isoformat()):
        xml = f"<pubDate>{good}</pubDate>"
        assert repair_dates(xml) == xml


@pytest.mark.parametrize(
    ("raw", "utc"),
    [
        ("Sun, 31 May 2026 16:30:00 +07", datetime(2026, 5, 31, 9, 30, tzinfo=UTC)),
        ("Sun, 31 May 2026 09:10:00 GMT+7", datetime(2026, 5, 31, 2, 10, tzinfo=UTC)),
        ("5/30/2026 10:52:00\u202fAM", datetime(2026, 5, 30, 3, 52, tzinfo=UTC)),
        ("2026-05-28T07:45:00", datetime(2026, 5, 28, 0, 45, tzinfo=UTC)),
        ("Thứ sáu, 29/05/2026 - 14:20", datetime(2026, 5, 29, 7, 20, tzinfo=UTC)),
        ("hôm qua", None),
    ],
)
def test_parsed_dates_are_utc(raw: str, utc: datetime | None) -> None:
    [parsed] = parse(rss(f"<title>Tin</title><pubDate>{raw}</pubDate>"), NEWS)
    assert parsed.published == utc


# --- parse ----------------------------------------------------------------------------------


def test_congbao_takes_title_from_description_and_number_from_url() -> None:
    items = parse((FEEDS / "congbao-van-ban-moi.rss").read_bytes(), CONGBAO)
    first = items[0]
    assert (
        first.title
        == first.summary
        == ("Quy định mức lương cơ sở đối với cán bộ, công chức, viên chức và lực lượng vũ trang")
    )
    assert first.doc_number == "161/2026/NĐ-CP"
    assert first.published == datetime(2026, 5, 29, 1, 15, tzinfo=UTC)
    assert [i.doc_number for i in items[1:7]] == [
        "162/2026/NĐ-CP",
        "105/2026/NĐ-CP",
        "170/2026/NĐ-CP",
        "12/2026/TT-BNV",
        "25/2026/QĐ-UBND",
        "31/2026/QĐ-UBND",
    ]
    assert len(items) == 9  # parse keeps the repeated item; the report removes it


@pytest.mark.parametrize(
    ("url", "number"),
    [
        (
            "https://congbao.chinhphu.vn/van-ban/nghi-dinh-so-293-2025-nd-cp-46568/59713.htm",
            "293/2025/NĐ-CP",
        ),
        (
            "https://congbao.chinhphu.vn/van-ban/thong-tu-so-99-2025-tt-btc-46529.htm",
            "99/2025/TT-BTC",
        ),
        ("https://congbao.chinhphu.vn/van-ban/luat-so-50-2024-qh15-42779.htm", "50/2024/QH15"),
        (
            "https://congbao.chinhphu.vn/van-ban/quyet-dinh-so-12-2026-qd-ttg-47001.htm",
            "12/2026/QĐ-TTg",
        ),
        (
            "https://congbao.chinhphu.vn/van-ban/nghi-quyet-so-5-2026-nq-hdnd-47002.htm",
            "5/2026/NQ-HĐND",
        ),
        ("https://congbao.chinhphu.vn/van-ban/ke-hoach-so-61-kh-ubnd-47003.htm", "61/KH-UBND"),
        ("https://congbao.chinhphu.vn/cac-van-ban-moi-ban-hanh.htm", None),
    ],
)
def test_congbao_number(url: str, number: str | None) -> None:
    assert congbao_number(url) == number


def test_generic_finds_number_in_text_and_strips_html() -> None:
    items = parse((FEEDS / "nld-chinh-sach.rss").read_bytes(), NEWS)
    by_title = {i.title: i for i in items}
    decree = by_title["Nghị định 293/2025/NĐ-CP: những điểm mới về lương tối thiểu"]
    assert decree.doc_number == "293/2025/NĐ-CP"
    pension = by_title["Tăng lương hưu 8% từ tháng 7/2026"]
    assert pension.doc_number == "162/2026/NĐ-CP"  # from the summary
    wage = items[0]
    assert "<" not in wage.summary
    assert wage.summary.startswith("Hội đồng Tiền lương quốc gia thống nhất")
    assert "người lao động tại vùng I" in wage.summary


def test_atom_entries() -> None:
    items = parse((FEEDS / "xaydungchinhsach.atom").read_text(encoding="utf-8"), NEWS)
    assert [i.published for i in items] == [
        datetime(2026, 5, 31, 2, 0, tzinfo=UTC),
        datetime(2026, 5, 30, 8, 0, tzinfo=UTC),  # no zone: Hà Nội time
        datetime(2026, 5, 29, 1, 0, tzinfo=UTC),
    ]
    assert items[0].doc_number == "161/2026/NĐ-CP"
    assert items[0].summary.startswith("Chính phủ ban hành Nghị định")
    assert items[2].guid == items[2].link  # no <id>


def test_guid_falls_back_to_link_then_to_a_hash() -> None:
    with_link, bare = parse(
        rss(
            "<title>Tin một</title><link>https://example.vn/1</link>",
            "<title>Tin hai</title><description>Nội dung</description>",
        ),
        NEWS,
    )
    assert with_link.guid == "https://example.vn/1"
    assert bare.guid == "sha256:" + hashlib.sha256(b"Tin hai\nN\xe1\xbb\x99i dung").hexdigest()[:40]
    assert bare.link is None


def test_text_is_nfc() -> None:
    decomposed = unicodedata.normalize("NFD", "Lương cơ sở tăng")
    [parsed] = parse(
        rss(f"<title>{decomposed}</title><description>{decomposed}</description>"), NEWS
    )
    assert parsed.title == parsed.summary == unicodedata.normalize("NFC", "Lương cơ sở tăng")


def test_plain_text() -> None:
    assert plain_text("<p>Lương&nbsp;cơ sở</p><p>tăng <b>8%</b></p><script>x()</script>") == (
        "Lương cơ sở tăng 8%"
    )


def test_an_anti_bot_page_is_not_a_feed() -> None:
    with pytest.raises(NotAFeed):
        parse((FEEDS / "laodong-challenge.html").read_bytes(), NEWS)


def test_an_empty_channel_is_a_feed_without_items() -> None:
    assert parse((FEEDS / "empty.rss").read_bytes(), NEWS) == []


def test_feed_model() -> None:
    assert DEFAULT_FEEDS[0].adapter == "congbao"
    assert DEFAULT_FEEDS[0].url == "https://congbao.chinhphu.vn/cac-van-ban-moi-ban-hanh.rss"
    for bad in ("ftp://example.vn/rss", "https://example .vn/rss", "congbao.chinhphu.vn"):
        with pytest.raises(ValidationError, match="http"):
            Feed(name="Sai", url=bad)


# --- score ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Nghị định 161/2026/NĐ-CP quy định mức lương cơ sở 2.530.000 đồng/tháng từ 01/07/2026",
        "Nghị định 162/2026/NĐ-CP điều chỉnh lương hưu, trợ cấp bảo hiểm xã hội tăng 8%",
        "Nghị định 105/2026/NĐ-CP quy định chi tiết Luật Công đoàn về tài chính công đoàn",
        "Nghị định 293/2025/NĐ-CP quy định mức lương tối thiểu đối với người lao động",
        "Sửa Bộ luật Lao động để bổ sung ngày 24/11 là ngày nghỉ lễ",
    ],
)
def test_reference_examples_match(text: str) -> None:
    assert score(item(title=text)).value >= 4
    assert score(item(feed=CONGBAO, title=text, summary=text)).value >= 4


@pytest.mark.parametrize(
    ("title", "summary"),
    [
        ("Quy định về quản lý tàu cá, khai thác và bảo vệ nguồn lợi thủy sản", ""),
        ("Bão số 2 đổ bộ, báo động lũ trên sông Hồng", "Sơ tán dân khỏi vùng trũng thấp."),
        ("Không lường trước rủi ro chứng khoán", "Luồng vốn ngoại đảo chiều."),
        ("Chính sách phát triển thủy sản", ""),  # one weak term in the title: 3 < 4
    ],
)
def test_irrelevant_items_do_not_match(title: str, summary: str) -> None:
    assert score(item(title=title, summary=summary)).value < 4


@pytest.mark.parametrize(
    ("title", "summary", "expected"),
    [
        ("Lương cơ sở tăng", "", Score(9, ("lương cơ sở",))),  # title ×3
        ("Tin mới", "Lương cơ sở tăng", Score(3, ("lương cơ sở",))),
        ("Lương cơ sở tăng", "lương cơ sở, lương cơ sở", Score(9, ("lương cơ sở",))),  # once
        ("LƯƠNG TỐI THIỂU VÙNG", "", Score(9, ("lương tối thiểu",))),  # not also "lương"
        ("Đóng BHXH", "bảo hiểm xã hội tự nguyện", Score(9, ("bảo hiểm xã hội",))),  # one term
        ("Tin", "người  lao\nđộng", Score(3, ("người lao động",))),  # a phrase across spaces
        ("Tin", "lương và chính sách", Score(2, ("chính sách", "lương"))),
        (
            "Thỏa ước lao động tập thể",
            "thoả ước lao động tập thể",
            Score(9, ("thỏa ước lao động tập thể",)),
        ),
        ("Nghị định về công chức", "", Score(6, ("công chức",))),
        ("Điều hành chính sách tiền tệ", "theo Báo Lao Động", Score(0, ())),  # ignored phrases
    ],
)
def test_score_table(title: str, summary: str, expected: Score) -> None:
    assert score(item(title=title, summary=summary)) == expected


def test_local_documents_need_the_place() -> None:
    elsewhere = item(
        feed=CONGBAO,
        title="Hỗ trợ người lao động bị chấm dứt hợp đồng lao động trên địa bàn tỉnh Nghệ An",
        doc="25/2026/QĐ-UBND",
    )
    hanoi = item(
        feed=CONGBAO,
        title="Hỗ trợ người lao động bị chấm dứt hợp đồng lao động trên địa bàn Thành phố Hà Nội",
        doc="31/2026/QĐ-UBND",
    )
    by_title = item(title="Kế hoạch 61/KH-UBND về an toàn, vệ sinh lao động tại Đà Nẵng")
    assert score(elsewhere) == Score(0, ("hợp đồng lao động", "người lao động"))
    assert score(hanoi).value == 18
    assert score(by_title).value == 0
    assert score(item(title="Nghị định về hợp đồng lao động")).value == 9  # central: no rule


KEYWORDS_YAML = """
title_weight: 3
threshold: 4
tiers:
  - weight: 3
    terms: [báo, gia, lương tối thiểu]
  - weight: 1
    terms: [lương]
ignore: [quốc gia]
local_documents:
  markers: [KH-UBND]
  places: [Đà Nẵng, TP. Đà Nẵng]
"""


@pytest.fixture
def keywords(tmp_path: Path) -> Keywords:
    path = tmp_path / "keywords.yaml"
    path.write_text(KEYWORDS_YAML, encoding="utf-8")
    return Keywords.load(path)


@pytest.mark.parametrize(
    ("summary", "hits"),
    [
        ("báo chí", ("báo",)),
        ("cơn bão", ()),  # bão ≠ báo
        ("Báo", ("báo",)),
        ("giao thông", ()),  # whole words only
        ("gia hạn", ("gia",)),
        ("an ninh quốc gia", ()),  # an ignored phrase shadows the term inside it
        ("lường trước", ()),  # lường ≠ lương
        ("luồng", ()),
        ("lương", ("lương",)),
        ("lương tối thiểu", ("lương tối thiểu",)),
        ("tiền lương tối thiểu và lương", ("lương tối thiểu", "lương")),
    ],
)
def test_word_boundaries_and_diacritics(
    keywords: Keywords, summary: str, hits: tuple[str, ...]
) -> None:
    assert score(item(title="Tin", summary=summary), keywords).hits == hits


def test_place_is_configurable(keywords: Keywords) -> None:
    plan = "Kế hoạch 61/KH-UBND về báo cáo lương tối thiểu"
    assert score(item(title=plan), keywords).value == 0
    assert score(item(title=plan, summary="TP. Đà Nẵng"), keywords).value == 18


def test_a_term_listed_twice_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "keywords.yaml"
    path.write_text(KEYWORDS_YAML.replace("[lương]", "[lương, Báo]"), encoding="utf-8")
    with pytest.raises(ValueError, match="Báo"):
        Keywords.load(path)


# --- dedupe, keys, drafts -------------------------------------------------------------------


def test_unique_keeps_the_first_of_each_guid() -> None:
    a = FeedItem(NEWS, "g1", "A", "", "https://example.vn/1", None, None)
    b = FeedItem(NEWS, "g1", "B", "", "https://example.vn/2", None, None)
    c = FeedItem(NEWS, "g2", "C", "", "https://example.vn/1", None, None)
    assert unique([a, b, c, b]) == [a, c]


def test_source_key_is_stable_and_short() -> None:
    one = item(title="Tin")
    expected = hashlib.sha256(f"{NEWS.url}\nguid-1".encode()).hexdigest()[:40]
    assert one.source_key == f"feed:{expected}"
    assert item(title="Đã sửa tiêu đề").source_key == one.source_key
    assert item(feed=CONGBAO).source_key != one.source_key
    assert len(one.source_key) == 45


def test_draft_fields() -> None:
    long_summary = "Quy định mức lương cơ sở đối với cán bộ, công chức, viên chức " * 6
    decree = FeedItem(
        CONGBAO,
        "g",
        long_summary.strip(),
        long_summary.strip(),
        "https://congbao.chinhphu.vn/van-ban/nghi-dinh-so-161-2026-nd-cp-47512.htm",
        datetime(2026, 5, 28, 20, 0, tzinfo=UTC),
        "161/2026/NĐ-CP",
    )
    fields = draft_fields(decree, score(decree))
    assert len(fields["title"]) <= 200
    assert fields["title"].endswith("…")
    assert fields["body"].endswith(
        f"\n\nSố hiệu văn bản: 161/2026/NĐ-CP\nNguồn: Công báo\n{decree.link}"
    )
    assert fields["link"] == decree.link
    assert fields["citation"] == "161/2026/NĐ-CP"
    assert fields["as_of"] == date(2026, 5, 29)  # the date in Hà Nội
    assert fields["source_key"] == decree.source_key
    assert fields["kind"] == "law"
    assert "lương cơ sở" in fields["note"]


def test_declared_encoding_is_honoured() -> None:
    latin = rss("<title>Café công đoàn</title>").replace("utf-8", "windows-1258")
    [parsed] = parse(latin.encode("windows-1258"), NEWS)
    assert parsed.title == "Café công đoàn"


def test_text_that_looks_like_a_path_is_not_opened(tmp_path: Path) -> None:
    secret = tmp_path / "secret.rss"
    secret.write_text(rss("<title>Không được đọc</title>"), encoding="utf-8")
    for name in (str(secret), str(secret).encode()):
        with pytest.raises(NotAFeed):
            parse(name, NEWS)

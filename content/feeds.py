"""RSS/Atom feeds for the daily legal-policy update: read, score, report health.

A pure library: `fetch` reads one feed over HTTP and never raises for the feed's fault;
`parse` and `score` work on text. Nothing here touches the database: the job stores
`draft_fields(...)` as a draft and skips any `FeedItem.source_key` it already has.

Scoring (terms in `content/data/keywords.yaml`): text is NFC-normalised and casefolded,
diacritics are kept, and terms match whole words. One regex holds every spelling, longest
first, so at each position the longest term wins and the words it covers count for no other
term ("lương tối thiểu" is one strong hit, not also "lương"). Vietnamese puts spaces between
syllables, not words, so whole-word matching alone cannot tell "gia" from "quốc gia": phrases
listed under `ignore` take part in that longest match and count for nothing. Each term counts
once per item, times `title_weight` when it is in the title.
"""

from __future__ import annotations

import asyncio
import calendar
import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from typing import Annotated, Any, Literal, TypedDict
from xml.sax import SAXParseException
from zoneinfo import ZoneInfo

import feedparser  # type: ignore[import-untyped]  # no type stubs published
import httpx
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from content.kinds import TITLE_MAX, nfc

VN = ZoneInfo("Asia/Ho_Chi_Minh")
STALE_AFTER = timedelta(days=4)
FUTURE_SLACK = timedelta(days=1)
MAX_FEED_BYTES = 5 * 1024 * 1024
KEYWORDS_FILE = Path(__file__).resolve().parent / "data" / "keywords.yaml"
# Some sites answer plain HTTP clients with an error or an anti-bot page; look like a browser.
BROWSER_HEADERS = {
    "User-Agent": (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36"
    ),
    "Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8",
    "Accept-Language": "vi-VN,vi;q=0.9,en;q=0.8",
}
# The reference's pattern for central documents; Công báo items carry their number in the URL.
DOC_NUMBER = re.compile(
    r"\b\d{1,4}/\d{4}/(?:QH1[4-6]|NĐ-CP|NQ-CP|QĐ-TTg|TT-[A-ZĐ]{2,8}|NQ-UBTVQH1[4-6]|VBHN-[A-ZĐ-]+)\b"
)


def _http_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s/]+(?:/\S*)?", value):
        raise ValueError(
            f"địa chỉ nguồn tin «{value[:80]}» phải bắt đầu bằng http:// hoặc https://"
        )
    return value


class Feed(BaseModel):
    """One feed to read; `min_score` None means the threshold in keywords.yaml."""

    model_config = ConfigDict(frozen=True)

    name: str
    url: Annotated[str, AfterValidator(_http_url)]
    adapter: Literal["generic", "congbao"] = "generic"
    min_score: int | None = Field(default=None, ge=1)


DEFAULT_FEEDS: tuple[Feed, ...] = (
    Feed(
        name="Công báo Chính phủ – văn bản mới ban hành",
        url="https://congbao.chinhphu.vn/cac-van-ban-moi-ban-hanh.rss",
        adapter="congbao",
    ),
)


@dataclass(frozen=True)
class FeedItem:
    """One item of a feed, NFC text, `published` aware in UTC (None when unreadable)."""

    feed: Feed
    guid: str
    title: str
    summary: str
    link: str | None
    published: datetime | None
    doc_number: str | None

    @property
    def source_key(self) -> str:
        """A stable key for the posts table's unique `source_key` column."""
        digest = hashlib.sha256(f"{self.feed.url}\n{self.guid}".encode()).hexdigest()
        return f"feed:{digest[:40]}"


# --- Dates --------------------------------------------------------------------------------

_DATE_ELEMENT = re.compile(
    r"<(?P<tag>(?:[\w-]+:)?(?:pubDate|lastBuildDate|published|updated|date|issued|modified))>"
    r"(?P<value>[^<]*|<!\[CDATA\[.*?\]\]>)</(?P=tag)>",
    re.DOTALL,
)
_ISO = re.compile(
    r"(?P<stamp>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"(?P<zone>Z|[+-]\d{2}(?::?\d{2})?)?"
)
_RFC822 = re.compile(
    r"(?P<head>(?:[A-Za-z]+,\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{4}\s+\d{1,2}:\d{2}(?::\d{2})?)"
    r"\s*(?P<zone>.*)"
)
_BAD_OFFSET = re.compile(
    r"(?:GMT|UTC)?\s*(?P<sign>[+-])(?P<hours>\d{1,2})(?::?(?P<minutes>\d{2}))?"
)
_US_12H = re.compile(
    r"(?P<month>\d{1,2})/(?P<day>\d{1,2})/(?P<year>\d{4})\s+"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?\s*(?P<half>AM|PM)",
    re.IGNORECASE,
)
# "Thứ ba, 08/09/2026 - 10:52", "Chủ nhật, 6/9/2026, 09:30 (GMT+7)": day first, Hà Nội time.
_VN_DAY_FIRST = re.compile(
    r"(?:(?:thứ\s+\w+|chủ\s+nhật)\s*,?\s*)?"
    r"(?P<day>\d{1,2})/(?P<month>\d{1,2})/(?P<year>\d{4})\s*[,-]?\s*"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{2})(?::(?P<second>\d{2}))?"
    r"\s*(?:\(?\s*(?:GMT|UTC)\s*\+\s*0?7(?::?00)?\s*\)?)?",
    re.IGNORECASE,
)


def _vn_time(parts: dict[str, str | None], hour: int) -> str:
    """ISO 8601 in Hà Nội time from regex groups; ValueError when no such date exists."""
    stamp = datetime(
        int(parts["year"] or 0),
        int(parts["month"] or 0),
        int(parts["day"] or 0),
        hour,
        int(parts["minute"] or 0),
        int(parts["second"] or 0),
        tzinfo=VN,
    )
    return stamp.isoformat()


def _repair_date(value: str) -> str:
    """One date string made readable by feedparser, or returned unchanged."""
    text = " ".join(value.replace("\u202f", " ").replace("\u00a0", " ").split())
    try:
        if m := _ISO.fullmatch(text):
            zone = m["zone"]
            if zone is None:
                return f"{m['stamp']}T{m['time']}+07:00"
            if len(zone) == 3:  # "+07"
                return f"{m['stamp']}T{m['time']}{zone}:00"
            return value
        if m := _RFC822.fullmatch(text):
            if not m["zone"]:
                return f"{m['head']} +0700"
            offset = _BAD_OFFSET.fullmatch(m["zone"])
            if offset is None:
                return value  # GMT, Z, EST...: feedparser knows these
            minutes = offset["minutes"] or "00"
            return f"{m['head']} {offset['sign']}{int(offset['hours']):02d}{minutes}"
        if m := _US_12H.fullmatch(text):
            hour = int(m["hour"]) % 12 + (12 if m["half"].upper() == "PM" else 0)
            return _vn_time(m.groupdict(), hour)
        if m := _VN_DAY_FIRST.fullmatch(text):
            return _vn_time(m.groupdict(), int(m["hour"]))
    except ValueError:  # 31/02, 25:00...
        return value
    return value


def repair_dates(xml: str) -> str:
    """Rewrite the broken dates Vietnamese feeds publish so that feedparser reads them.

    Fixes `+07` / `GMT+7` / `GMT+07:00` offsets, US `9/1/2026 10:52:00 AM` (also with a
    narrow or non-breaking space), day-first `08/09/2026 10:52` with or without a Vietnamese
    day name, and dates without a zone (Hà Nội time is assumed). Good RFC 822 and ISO 8601
    dates, and anything unrecognised, are left as they are.
    """

    def fix(m: re.Match[str]) -> str:
        raw = m["value"]
        inner = raw[9:-3] if raw.startswith("<![CDATA[") else raw
        fixed = _repair_date(inner)
        if fixed == inner:
            return m[0]
        return f"<{m['tag']}>{fixed}</{m['tag']}>"

    return _DATE_ELEMENT.sub(fix, xml)


# --- Parsing ------------------------------------------------------------------------------


class NotAFeed(ValueError):
    """The content is not RSS or Atom (an error page, an anti-bot page, nothing)."""


class _TextOnly(HTMLParser):
    """The text of an HTML fragment; block elements become spaces, scripts vanish."""

    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "td", "h1", "h2", "h3", "h4", "img"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(self._skip - 1, 0)
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def plain_text(html: str) -> str:
    """Tags stripped, entities decoded, whitespace collapsed, NFC."""
    parser = _TextOnly()
    parser.feed(html)
    parser.close()
    return nfc(" ".join("".join(parser.parts).split()))


# Công báo URLs: /van-ban/nghi-dinh-so-161-2026-nd-cp-47512.htm (sometimes /47512/59713.htm).
_CONGBAO_SLUG = re.compile(
    r"-so-(?P<number>\d{1,4})(?:-(?P<year>\d{4}))?-(?P<code>[a-z0-9]+(?:-[a-z0-9]+)*?)"
    r"-\d+(?:/\d+)?\.html?$"
)
# URL slugs lose the Đ and the case of "TTg".
_CODE_PARTS = {"nd": "NĐ", "qd": "QĐ", "hdnd": "HĐND", "ttg": "TTg", "bldtbxh": "BLĐTBXH"}


def congbao_number(url: str) -> str | None:
    """The document number in a Công báo URL ("161/2026/NĐ-CP"), if it has one."""
    m = _CONGBAO_SLUG.search(url.split("?")[0].lower())
    if m is None:
        return None
    code = "-".join(_CODE_PARTS.get(part, part.upper()) for part in m["code"].split("-"))
    return "/".join(p for p in (m["number"], m["year"], code) if p)


def _published(entry: Any) -> datetime | None:
    # dict.get: feedparser's own get() maps a missing key to another with a warning.
    parsed = dict.get(entry, "published_parsed") or dict.get(entry, "updated_parsed")
    if parsed is None:
        return None
    return datetime.fromtimestamp(calendar.timegm(parsed), UTC)


def _text(detail: Any) -> str:
    """A feedparser text construct as plain NFC text, whatever markup it came in."""
    if not detail or not detail.get("value"):
        return ""
    value: str = detail["value"]
    if "html" in (detail.get("type") or ""):
        return plain_text(value)
    return nfc(" ".join(value.split()))


def _item(entry: Any, feed: Feed) -> FeedItem:
    title = _text(entry.get("title_detail"))
    summary = _text(entry.get("summary_detail") or (entry.get("content") or [None])[0])
    link = nfc(entry.get("link") or "") or None
    if feed.adapter == "congbao" and not title:
        title = summary
    doc_number = congbao_number(link) if feed.adapter == "congbao" and link else None
    if doc_number is None:
        found = DOC_NUMBER.search(title) or DOC_NUMBER.search(summary)
        doc_number = found[0] if found else None
    guid = nfc(entry.get("id") or "") or link
    if not guid:
        guid = "sha256:" + hashlib.sha256(f"{title}\n{summary}".encode()).hexdigest()[:40]
    return FeedItem(feed, guid, title, summary, link, _published(entry), doc_number)


def _decode(xml: bytes) -> str:
    declared = re.match(rb"\s*<\?xml[^>]*encoding=[\"']([\w.-]+)", xml)
    encoding = declared[1].decode() if declared else "utf-8"
    try:
        return xml.decode("utf-8-sig" if encoding.lower() == "utf-8" else encoding)
    except (LookupError, UnicodeDecodeError):
        return xml.decode("utf-8", errors="replace")


def _parse(xml: bytes | str, feed: Feed) -> tuple[list[FeedItem], str | None]:
    """The items, and what was wrong with the XML when feedparser had to recover."""
    text = unicodedata.normalize("NFC", _decode(xml) if isinstance(xml, bytes) else xml)
    # A stream: feedparser opens a str or bytes that names a URL or an existing file.
    stream = io.BytesIO(repair_dates(text).encode())
    utf8 = {"content-type": "application/xml; charset=utf-8"}  # outranks the declaration
    result = feedparser.parse(stream, response_headers=utf8)
    if not result.get("version"):
        raise NotAFeed("nội dung không phải RSS/Atom")
    error = result.get("bozo_exception")
    broken = None
    if isinstance(error, SAXParseException):  # feedparser recovered what it could
        broken = f"có XML bị lỗi (dòng {error.getLineNumber()}: {error.getMessage()})"
    items = [_item(entry, feed) for entry in result.entries]
    return [i for i in items if i.title or i.summary], broken


def parse(xml: bytes | str, feed: Feed) -> list[FeedItem]:
    """The items of an RSS or Atom document (dates repaired first); `NotAFeed` otherwise."""
    return _parse(xml, feed)[0]


def unique(items: Iterable[FeedItem]) -> list[FeedItem]:
    """The first item of each GUID, in feed order."""
    first: dict[str, FeedItem] = {}
    for item in items:
        first.setdefault(item.guid, item)
    return list(first.values())


# --- Scoring ------------------------------------------------------------------------------


class _Tier(BaseModel):
    weight: int = Field(ge=1)
    terms: list[str | list[str]]


class _LocalRule(BaseModel):
    markers: list[str]
    places: list[str] = Field(min_length=1)


class _KeywordFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title_weight: int = Field(ge=1)
    threshold: int = Field(ge=1)
    tiers: list[_Tier]
    ignore: list[str] = []
    local_documents: _LocalRule


def _fold(text: str) -> str:
    """How text is compared: NFC, casefolded, diacritics kept."""
    return unicodedata.normalize("NFC", text).casefold()


def _words_pattern(spellings: Iterable[str]) -> re.Pattern[str]:
    """Any of the spellings as whole words, longest first, spaces matching any whitespace."""
    alternatives = [
        r"\s+".join(re.escape(word) for word in spelling.split())
        for spelling in sorted(spellings, key=len, reverse=True)
    ]
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)")


@dataclass(frozen=True)
class Keywords:
    """The compiled contents of keywords.yaml."""

    title_weight: int
    threshold: int
    weights: dict[str, int]  # canonical term -> weight
    canonical: dict[str, str]  # folded spelling -> canonical term ("" for an ignored phrase)
    terms: re.Pattern[str]
    local_markers: re.Pattern[str]
    places: re.Pattern[str]

    @classmethod
    def load(cls, path: Path = KEYWORDS_FILE) -> Keywords:
        """Read and check a keywords file; a ValueError names a term listed twice."""
        spec = _KeywordFile.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
        weights: dict[str, int] = {}
        canonical: dict[str, str] = {}
        groups = [(tier.weight, e) for tier in spec.tiers for e in tier.terms]
        for weight, entry in [*groups, *((0, phrase) for phrase in spec.ignore)]:
            spellings = [nfc(s) for s in ([entry] if isinstance(entry, str) else entry)]
            name = spellings[0] if weight else ""
            for spelling in spellings:
                if _fold(spelling) in canonical:
                    raise ValueError(f"cụm từ «{spelling}» có hai lần trong {path.name}")
                canonical[_fold(spelling)] = name
            if weight:
                weights[name] = weight
        rule = spec.local_documents
        return cls(
            title_weight=spec.title_weight,
            threshold=spec.threshold,
            weights=weights,
            canonical=canonical,
            terms=_words_pattern(canonical),
            local_markers=_words_pattern(_fold(m) for m in rule.markers),
            places=_words_pattern(_fold(p) for p in rule.places),
        )

    def terms_in(self, text: str) -> set[str]:
        """The canonical terms in a text (leftmost, then longest, without overlap)."""
        found = (self.canonical[" ".join(m[0].split())] for m in self.terms.finditer(_fold(text)))
        return {term for term in found if term}


@cache
def default_keywords() -> Keywords:
    """keywords.yaml, read once on first use."""
    return Keywords.load()


@dataclass(frozen=True)
class Score:
    """How relevant an item is to workers, and the terms that made it so (best first).

    A local document (QĐ-UBND…) that names none of the configured places scores 0; its
    hits are kept so the log can say what it was about.
    """

    value: int
    hits: tuple[str, ...]


def score(item: FeedItem, keywords: Keywords | None = None) -> Score:
    """Weight of each term found; title hits count `title_weight` times."""
    kw = keywords or default_keywords()
    in_title = kw.terms_in(item.title)
    points = {t: kw.weights[t] * (kw.title_weight if t in in_title else 1) for t in in_title}
    for term in kw.terms_in(item.summary) - in_title:
        points[term] = kw.weights[term]
    hits = tuple(sorted(points, key=lambda t: (-points[t], t)))
    everything = _fold(f"{item.title}\n{item.summary}\n{item.doc_number or ''}")
    if kw.local_markers.search(everything) and not kw.places.search(everything):
        return Score(0, hits)
    return Score(sum(points.values()), hits)


# --- Fetching -----------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedReport:
    """What one feed gave: usable items, the matches (best first) and its health."""

    feed: Feed
    items: list[FeedItem] = field(default_factory=list)
    matches: list[tuple[FeedItem, Score]] = field(default_factory=list)
    newest: datetime | None = None
    problem: str | None = None  # Vietnamese, for the officer's alert

    @property
    def healthy(self) -> bool:
        """True when nothing is wrong with the feed."""
        return self.problem is None


def new_feed_client(timeout: float = 20.0) -> httpx.AsyncClient:
    """An httpx client for feeds with bounded timeouts (`fetch` adds the browser's headers)."""
    return httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)))


async def _download(client: httpx.AsyncClient, url: str) -> bytes | str:
    """The body, or a Vietnamese description of why there is none."""
    try:
        request = client.build_request("GET", url, headers=BROWSER_HEADERS)
        response = await client.send(request, stream=True, follow_redirects=True)
        try:
            if response.status_code >= 400:
                return f"không truy cập được (HTTP {response.status_code})"
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_FEED_BYTES:
                    return "trả về nội dung quá lớn (trên 5 MB)"
            return bytes(body)
        finally:
            await response.aclose()
    except httpx.TimeoutException:
        return "không phản hồi kịp (quá thời gian chờ)"
    except httpx.ConnectError:
        return "không truy cập được (không kết nối được máy chủ)"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        return f"không truy cập được (lỗi mạng: {type(exc).__name__})"


def _report(feed: Feed, items: list[FeedItem], now: datetime, broken: str | None) -> FeedReport:
    problems = [broken] if broken else []
    future = [i for i in items if i.published and i.published > now + FUTURE_SLACK]
    items = unique(i for i in items if i not in future)
    dates = [i.published for i in items if i.published is not None]
    newest = max(dates, default=None)
    if not items and not future:
        problems.append("không có tin nào")
    if future:
        problems.append(f"có {len(future)} tin đề ngày trong tương lai (đã bỏ qua)")
    if undated := len(items) - len(dates):
        problems.append(f"có {undated} tin không đọc được ngày đăng")
    if newest is not None and now - newest > STALE_AFTER:
        problems.append(f"tin mới nhất đã cũ {(now - newest).days} ngày")
    threshold = feed.min_score or default_keywords().threshold
    scored = [(item, score(item)) for item in items]
    matches = sorted(
        ((i, s) for i, s in scored if s.value >= threshold), key=lambda pair: -pair[1].value
    )
    problem = f"nguồn tin «{feed.name}» {'; '.join(problems)}" if problems else None
    return FeedReport(feed, items, matches, newest, problem)


async def fetch(client: httpx.AsyncClient, feed: Feed, *, now: datetime) -> FeedReport:
    """Read, parse and score one feed; a feed's fault ends up in `problem`, never raised."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    body = await _download(client, feed.url)
    if isinstance(body, str):
        return FeedReport(feed, problem=f"nguồn tin «{feed.name}» {body}")
    try:
        items, broken = _parse(body, feed)
    except NotAFeed as exc:
        return FeedReport(feed, problem=f"nguồn tin «{feed.name}» trả về {exc}")
    return _report(feed, items, now, broken)


async def fetch_all(
    client: httpx.AsyncClient, feeds: Sequence[Feed], *, now: datetime
) -> list[FeedReport]:
    """Every feed at once; a match whose link an earlier feed already matched is dropped."""
    reports = await asyncio.gather(*(fetch(client, feed, now=now) for feed in feeds))
    seen: set[str] = set()
    result: list[FeedReport] = []
    for report in reports:
        matches = [(i, s) for i, s in report.matches if i.link is None or i.link not in seen]
        seen.update(i.link for i, _ in matches if i.link is not None)
        result.append(replace(report, matches=matches))
    return result


# --- Drafts -------------------------------------------------------------------------------


def _shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1].rsplit(" ", 1)[0].rstrip(" ,;:–-")
    return f"{cut}…"


class DraftFields(TypedDict):
    """The fields of a law-explainer draft built from a feed item (see `PostDraft`)."""

    kind: str
    title: str
    body: str
    link: str | None
    citation: str | None
    as_of: date | None
    source: str
    source_key: str
    note: str  # for the officer reviewing the draft, not for the post


def draft_fields(item: FeedItem, score: Score) -> DraftFields:
    """What a law-explainer draft needs: title, body with number and source, link, a note."""
    number = f"Số hiệu văn bản: {item.doc_number}\n" if item.doc_number else ""
    source = f"{item.feed.name}\n{item.link}" if item.link else item.feed.name
    as_of = item.published.astimezone(VN).date() if item.published else None
    return {
        "kind": "law",
        "title": _shorten(nfc(item.title or item.summary), TITLE_MAX),
        "body": nfc(f"{item.summary or item.title}\n\n{number}Nguồn: {source}"),
        "link": item.link,
        "citation": item.doc_number,
        "as_of": as_of,
        "source": "feed",
        "source_key": item.source_key,
        "note": f"Tin tự động, điểm {score.value}; từ khóa: {', '.join(score.hits) or '—'}",
    }

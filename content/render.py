"""Per-channel rendering of a post, from the Jinja2 templates beside this module.

Everything rendered is Unicode NFC. `render` is pure: the same post and organisation
always give the same text, which is what the delivery's fingerprint relies on.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from functools import cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

TEMPLATES = Path(__file__).resolve().parent / "templates"
LIMITS = {
    "facebook_page": 63_206,
    "zalo_group": 2_000,
    "zalo_user": 2_000,
    "zalo_broadcast": 100_000,
    "zalo_mention": 1_970,  # room for the "[@user_id] " in front
}
TEMPLATE_FOR = {
    "facebook_page": "facebook.j2",
    "zalo_group": "zalo_text.j2",
    "zalo_user": "zalo_text.j2",
    "zalo_broadcast": "zalo_article.j2",
    "zalo_mention": "zalo_text.j2",
}
# Text messages cut short point here, to the full post.
SHORTENED = {"zalo_group", "zalo_user", "zalo_mention"}
# Zalo reads "[@id]" in a group message as a mention: text from people must not make one.
MENTION = "[@"
ESCAPED_MENTION = "[\u200b@"


@dataclass(frozen=True)
class Identity:
    """What the organisation adds to every post: signature, slogan, hashtags."""

    signature: str = ""
    slogan: str = ""
    hashtags: tuple[str, ...] = ()


@dataclass(frozen=True)
class PostContent:
    """The parts of a post that rendering reads."""

    kind: str
    title: str
    body: str
    link: str | None = None
    hashtags: tuple[str, ...] = field(default_factory=tuple)
    details: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Rendering:
    """A post as one channel shows it."""

    channel: str
    title: str
    text: str
    shortened: bool = False  # cut to fit, ending with a link to the full text

    @property
    def length(self) -> int:
        return len(self.text)

    @property
    def limit(self) -> int:
        return LIMITS[self.channel]

    @property
    def too_long(self) -> bool:
        return self.length > self.limit


def _day(iso: str | None) -> str | None:
    """ "2026-07-23" as the office writes it: "23/07/2026"."""
    return date.fromisoformat(iso).strftime("%d/%m/%Y") if iso else None


def _hashtag(tag: str) -> str:
    return "#" + tag.lstrip("#")


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        autoescape=False,  # plain text for platforms that do not read HTML
    )
    env.filters["hashtag"] = _hashtag
    return env


def render(post: PostContent, channel: str, identity: Identity) -> Rendering:
    """The text `channel` will carry for `post`.

    A Zalo text message longer than its limit is cut at a word and ends with the post's
    link to the full text; without a link it is returned whole and `too_long` says so.
    """
    text = _render(post, channel, identity, post.body, more=None)
    if len(text) > LIMITS[channel] and channel in SHORTENED and post.link:
        room = LIMITS[channel] - len(_render(post, channel, identity, "x", more=post.link)) + 1
        text = _render(post, channel, identity, _cut(post.body, room), more=post.link)
        return Rendering(channel=channel, title=post.title, text=text, shortened=True)
    return Rendering(channel=channel, title=post.title, text=text)


def _cut(text: str, room: int) -> str:
    """`text` in at most `room` characters, ending at a word, with "…"."""
    if room <= 1:
        return ""
    cut = text[: room - 1]
    space = cut.rfind(" ")
    if space > room // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–") + "…"


def _render(
    post: PostContent, channel: str, identity: Identity, body: str, *, more: str | None
) -> str:
    template = _environment().get_template(TEMPLATE_FOR[channel])
    tags = tuple(dict.fromkeys((*post.hashtags, *identity.hashtags)))
    title = post.title
    extra = {key: post.details.get(key) for key in ("citation", "place")}
    if channel.startswith("zalo_"):
        title, body = (t.replace(MENTION, ESCAPED_MENTION) for t in (title, body))
        extra = {k: v.replace(MENTION, ESCAPED_MENTION) if v else v for k, v in extra.items()}
    text = template.render(
        title=title,
        body=body,
        link=post.link,
        more=more,
        signature=identity.signature.strip(),
        slogan=identity.slogan.strip(),
        hashtags=tags,
        as_of=_day(post.details.get("as_of")),
        event_date=_day(post.details.get("event_date")),
        **extra,
    )
    return unicodedata.normalize("NFC", text).strip()

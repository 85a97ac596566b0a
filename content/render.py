"""Per-channel rendering of a post, from the Jinja2 templates beside this module.

Everything rendered is Unicode NFC. `render` is pure: the same post and organisation
always give the same text, which is what the delivery's fingerprint relies on.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Rendering:
    """A post as one channel shows it."""

    channel: str
    title: str
    text: str

    @property
    def length(self) -> int:
        return len(self.text)

    @property
    def limit(self) -> int:
        return LIMITS[self.channel]

    @property
    def too_long(self) -> bool:
        return self.length > self.limit


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
    """The text `channel` will carry for `post`."""
    template = _environment().get_template(TEMPLATE_FOR[channel])
    tags = tuple(dict.fromkeys((*post.hashtags, *identity.hashtags)))
    title, body = post.title, post.body
    if channel.startswith("zalo_"):
        title, body = (t.replace(MENTION, ESCAPED_MENTION) for t in (title, body))
    text = template.render(
        title=title,
        body=body,
        link=post.link,
        signature=identity.signature.strip(),
        slogan=identity.slogan.strip(),
        hashtags=tags,
    )
    text = unicodedata.normalize("NFC", text).strip()
    return Rendering(channel=channel, title=post.title, text=text)

"""What the fake platforms hold: posts, photos, groups, users, articles, broadcasts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def iso(moment: datetime | None) -> str | None:
    """ISO-8601 text of an aware datetime, or None."""
    return None if moment is None else moment.isoformat()


@dataclass
class FbPhoto:
    """A photo uploaded to the Page."""

    id: str
    created_time: datetime
    published: bool
    caption: str = ""
    url: str | None = None
    size: int = 0
    post_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "id": self.id,
            "created_time": iso(self.created_time),
            "published": self.published,
            "caption": self.caption,
            "url": self.url,
            "size": self.size,
            "post_id": self.post_id,
        }


@dataclass
class FbPost:
    """A post on the Page feed."""

    id: str
    message: str
    link: str | None
    created_time: datetime
    permalink_url: str
    photo_ids: list[str] = field(default_factory=list)
    published: bool = True
    scheduled_publish_time: datetime | None = None
    updated_time: datetime | None = None
    video_id: str | None = None

    def visible(self, now: datetime) -> bool:
        """Published, or scheduled for a moment that has passed."""
        if self.published:
            return True
        return self.scheduled_publish_time is not None and self.scheduled_publish_time <= now

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "id": self.id,
            "message": self.message,
            "link": self.link,
            "created_time": iso(self.created_time),
            "permalink_url": self.permalink_url,
            "photo_ids": list(self.photo_ids),
            "published": self.published,
            "scheduled_publish_time": iso(self.scheduled_publish_time),
            "video_id": self.video_id,
        }


@dataclass
class FbVideo:
    """A video uploaded to the Page; it becomes a post once processing ends well.

    `polls_left` status reads still answer "processing"; `fails` makes it end in "error".
    """

    id: str
    created_time: datetime
    description: str
    title: str
    published: bool
    size: int
    container: str | None
    file_url: str | None
    polls_left: int
    fails: bool
    status: str = "processing"
    status_reads: int = 0
    post_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "id": self.id,
            "created_time": iso(self.created_time),
            "description": self.description,
            "title": self.title,
            "published": self.published,
            "size": self.size,
            "container": self.container,
            "file_url": self.file_url,
            "status": self.status,
            "status_reads": self.status_reads,
            "post_id": self.post_id,
        }


@dataclass
class ZaloMessage:
    """A message the OA sent to a group or a user."""

    message_id: str
    text: str
    at: datetime
    media_type: str | None = None
    media_url: str | None = None
    attachment_id: str | None = None
    file_name: str | None = None
    file_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "message_id": self.message_id,
            "text": self.text,
            "at": iso(self.at),
            "media_type": self.media_type,
            "media_url": self.media_url,
            "attachment_id": self.attachment_id,
            "file_name": self.file_name,
            "file_size": self.file_size,
        }


@dataclass
class ZaloGroup:
    """A GMF group managed by the OA."""

    group_id: str
    name: str
    status: str = "enabled"
    messages: list[ZaloMessage] = field(default_factory=list)
    asset_valid_through: str = "31/12/2027"  # dd/mm/yyyy, as getgroup shows it

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "group_id": self.group_id,
            "name": self.name,
            "status": self.status,
            "messages": [m.to_dict() for m in self.messages],
        }


@dataclass
class ZaloUser:
    """A Zalo user known to the OA."""

    user_id: str
    display_name: str
    last_interaction: datetime
    messages: list[ZaloMessage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "user_id": self.user_id,
            "display_name": self.display_name,
            "last_interaction": iso(self.last_interaction),
            "messages": [m.to_dict() for m in self.messages],
        }


@dataclass
class ZaloArticle:
    """An article created through the Article API; `id` is set once verified."""

    token: str
    title: str
    description: str
    cover_url: str
    body: list[dict[str, Any]]
    status: str
    created_at: datetime
    polls_left: int
    id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "token": self.token,
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "cover_url": self.cover_url,
            "body": self.body,
            "status": self.status,
            "created_at": iso(self.created_at),
            "polls_left": self.polls_left,
        }


@dataclass
class ZaloBroadcast:
    """An article broadcast to the OA's followers."""

    message_id: str
    article_id: str
    title: str
    target: dict[str, Any]
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the control API."""
        return {
            "message_id": self.message_id,
            "article_id": self.article_id,
            "title": self.title,
            "target": self.target,
            "at": iso(self.at),
        }


def parse_moment(text: str) -> datetime:
    """An aware datetime from ISO-8601 text (naive means UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def older_than(moment: datetime, now: datetime, days: float) -> bool:
    """True when `moment` lies more than `days` before `now`."""
    return now - moment > timedelta(days=days)

"""Tables. Only `bot.queue` writes posts and deliveries; see docs/ARCHITECTURE.md."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.db.types import UTCDateTime, db_now

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base with stable constraint names for migrations."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[str]: JSON(),
    }


class PostKind(enum.StrEnum):
    """What a post is; each kind has its own rules in `content.kinds`."""

    INFOGRAPHIC = "infographic"
    LAW = "law"
    EVENT = "event"
    NEWS = "news"
    STORY = "story"
    VIDEO = "video"


class PlanCategory(enum.StrEnum):
    """The communications plan's content groups (section II of the plan)."""

    IN_DEPTH = "in_depth"
    REGULAR = "regular"
    EVENT = "event"
    GOOD_DEEDS = "good_deeds"


class PostStatus(enum.StrEnum):
    """draft → approved → done, or cancelled."""

    DRAFT = "draft"
    APPROVED = "approved"
    DONE = "done"
    CANCELLED = "cancelled"


class Channel(enum.StrEnum):
    """Where a delivery goes. `account` maps each channel to the account it uses."""

    FACEBOOK_PAGE = "facebook_page"
    ZALO_BROADCAST = "zalo_broadcast"
    ZALO_GROUP = "zalo_group"
    ZALO_USER = "zalo_user"
    # An admin outside Zalo's 7-day window is named in the cluster's group instead.
    ZALO_MENTION = "zalo_mention"

    @property
    def account(self) -> str:
        return "facebook" if self is Channel.FACEBOOK_PAGE else "zalo"

    @classmethod
    def choosable(cls) -> list[Channel]:
        """The channels an officer picks for a post (mentions are added by the bot)."""
        return [c for c in cls if c is not cls.ZALO_MENTION]


class DeliveryStatus(enum.StrEnum):
    """The delivery state machine of docs/ARCHITECTURE.md."""

    PENDING = "pending"
    CLAIMED = "claimed"
    SENDING = "sending"
    SENT = "sent"
    RETRY_WAIT = "retry_wait"
    FAILED = "failed"
    IN_DOUBT = "in_doubt"
    NEEDS_HUMAN = "needs_human"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset(
    {
        DeliveryStatus.SENT,
        DeliveryStatus.FAILED,
        DeliveryStatus.NEEDS_HUMAN,
        DeliveryStatus.CANCELLED,
    }
)
# Statuses a claim may pick up (an expired `claimed` lease means nothing was sent).
CLAIMABLE = (DeliveryStatus.PENDING, DeliveryStatus.RETRY_WAIT, DeliveryStatus.CLAIMED)
# What the dispatcher's claim looks at: sends to make, and uncertain sends to look up.
DUE = (*CLAIMABLE, DeliveryStatus.IN_DOUBT)


class Cluster(Base):
    """A competition cluster (cụm thi đua) of grassroots unions, with its Zalo group."""

    __tablename__ = "clusters"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    zalo_group_id: Mapped[str | None] = mapped_column(String(64))
    unions: Mapped[list[Union]] = relationship(
        back_populates="cluster", cascade="all, delete-orphan", order_by="Union.name"
    )
    admins: Mapped[list[ClusterAdmin]] = relationship(
        back_populates="cluster", cascade="all, delete-orphan", order_by="ClusterAdmin.name"
    )


class Union(Base):
    """A grassroots union (công đoàn cơ sở) in a cluster."""

    __tablename__ = "unions"
    __table_args__ = (UniqueConstraint("cluster_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    members: Mapped[int | None] = mapped_column(Integer)
    cluster: Mapped[Cluster] = relationship(back_populates="unions")


class ClusterAdmin(Base):
    """An official who administers a cluster and receives direct Zalo messages."""

    __tablename__ = "cluster_admins"
    __table_args__ = (UniqueConstraint("cluster_id", "zalo_user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    cluster_id: Mapped[int] = mapped_column(ForeignKey("clusters.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    zalo_user_id: Mapped[str] = mapped_column(String(64))
    position: Mapped[str | None] = mapped_column(String(255))
    # When this person last wrote to the OA (webhook); Zalo lets the OA message them for 7 days.
    last_interaction_at: Mapped[datetime | None]
    cluster: Mapped[Cluster] = relationship(back_populates="admins")


class Account(Base):
    """One platform account (the Facebook Page, the Zalo OA) and its health."""

    __tablename__ = "accounts"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    paused_until: Mapped[datetime | None]
    needs_reauth: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str | None] = mapped_column(Text)
    usage: Mapped[dict[str, Any] | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=db_now())


class Credential(Base):
    """An account's tokens, encrypted with CDBOT_SECRET_KEY. One row per account."""

    __tablename__ = "credentials"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token: Mapped[str] = mapped_column(Text)
    refresh_token: Mapped[str | None] = mapped_column(Text)
    access_expires_at: Mapped[datetime | None]
    refresh_expires_at: Mapped[datetime | None]
    version: Mapped[int] = mapped_column(default=1)
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=db_now())


class Upload(Base):
    """A file already uploaded to a platform, reused while the platform keeps it."""

    __tablename__ = "uploads"
    __table_args__ = (UniqueConstraint("account", "sha256", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    remote_id: Mapped[str] = mapped_column(String(255))
    uploaded_at: Mapped[datetime] = mapped_column(server_default=func.now())


class PlatformEvent(Base):
    """A webhook event, kept once (platforms redeliver)."""

    __tablename__ = "platform_events"
    __table_args__ = (UniqueConstraint("platform", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    event_name: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str | None] = mapped_column(String(64), index=True)
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    payload: Mapped[dict[str, Any]]


class Post(Base):
    """Something to publish, with the targets chosen for it."""

    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(2000))
    hashtags: Mapped[list[str]] = mapped_column(default=list)
    media: Mapped[list[str]] = mapped_column(default=list)
    channels: Mapped[list[str]] = mapped_column(default=list)
    # None means every cluster known when the post is approved.
    clusters: Mapped[list[str] | None] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(32), default="manual")
    source_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    # The kind's own fields: citation and as-of date of a law explainer, date and place of
    # an event notice (see content.kinds.PostDraft.details).
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16), default=PostStatus.DRAFT.value, index=True)
    scheduled_at: Mapped[datetime]
    author: Mapped[str | None] = mapped_column(String(255))
    approver: Mapped[str | None] = mapped_column(String(255))
    approved_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=db_now())
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="post", order_by="Delivery.id", cascade="all, delete-orphan"
    )


DUE_WHERE = "status IN ('pending', 'retry_wait', 'claimed', 'in_doubt')"


class Delivery(Base):
    """One post to one target. The unique key makes fan-out idempotent."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("post_id", "channel", "target_id"),
        # The claim reads only due rows (`DUE`); a partial index keeps it cheap as history grows.
        Index(
            "ix_deliveries_due",
            "account",
            "next_attempt_at",
            postgresql_where=text(DUE_WHERE),
            sqlite_where=text(DUE_WHERE),
        ),
        Index(
            "ix_deliveries_sending",
            "lease_expires_at",
            postgresql_where=text("status IN ('sending', 'in_doubt')"),
            sqlite_where=text("status IN ('sending', 'in_doubt')"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), index=True)
    channel: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(128))
    target_label: Mapped[str] = mapped_column(String(255))
    cluster_code: Mapped[str | None] = mapped_column(String(64))
    account: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    next_attempt_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    resends: Mapped[int] = mapped_column(default=0)
    reconcile_tries: Mapped[int] = mapped_column(default=0, server_default="0")
    lease_owner: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    current_attempt_id: Mapped[int | None]
    remote_id: Mapped[str | None] = mapped_column(String(255))
    permalink: Mapped[str | None] = mapped_column(String(2000))
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now(), onupdate=db_now())
    post: Mapped[Post] = relationship(back_populates="deliveries")


class Attempt(Base):
    """One try at a delivery, written before the HTTP call and completed after it."""

    __tablename__ = "attempts"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int]
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    remote_id: Mapped[str | None] = mapped_column(String(255))


class JobRun(Base):
    """One row per (job, fire time): a recurring job runs once across all schedulers."""

    __tablename__ = "job_runs"
    __table_args__ = (UniqueConstraint("job", "fire_time"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    fire_time: Mapped[datetime]
    worker: Mapped[str] = mapped_column(String(128))
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(Text)


class Role(enum.StrEnum):
    """What a console user may do (see bot.web.auth.PERMISSIONS)."""

    VIEWER = "viewer"
    EDITOR = "editor"
    APPROVER = "approver"
    ADMIN = "admin"


class User(Base):
    """A person who signs in to the web console."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_login_at: Mapped[datetime | None]


class ApiToken(Base):
    """A token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]


class AuditEntry(Base):
    """Who did what to which post, and when."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(server_default=func.now())
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(64))
    post_id: Mapped[int | None] = mapped_column(index=True)
    detail: Mapped[dict[str, Any] | None]

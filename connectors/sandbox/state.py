"""In-memory state of the platform sandbox: what was accepted, scripted faults and counters.

Handlers run in the server's thread while tests inspect the state from theirs, so every
read-modify-write goes through `SandboxState.lock`.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.sandbox.faults import FAULT_KINDS, ROUTES, Fault, random_fault
from connectors.sandbox.records import (
    FbPhoto,
    FbPost,
    FbVideo,
    ZaloArticle,
    ZaloBroadcast,
    ZaloGroup,
    ZaloMessage,
    ZaloUser,
    iso,
)

__all__ = [
    "SANDBOX_PAGE_ID",
    "SANDBOX_PAGE_NAME",
    "SANDBOX_PAGE_TOKEN",
    "SANDBOX_ZALO_ACCESS_TOKEN",
    "SANDBOX_ZALO_APP_ID",
    "SANDBOX_ZALO_APP_SECRET",
    "SANDBOX_ZALO_OA_ID",
    "SANDBOX_ZALO_OA_NAME",
    "SANDBOX_ZALO_REFRESH_TOKEN",
    "Fault",
    "FbPhoto",
    "FbPost",
    "FbVideo",
    "SandboxState",
    "ZaloArticle",
    "ZaloBroadcast",
    "ZaloGroup",
    "ZaloMessage",
    "ZaloUser",
    "utc_now",
]

SANDBOX_PAGE_ID = "100000000000001"
SANDBOX_PAGE_NAME = "Công đoàn cơ sở (hộp cát)"
SANDBOX_PAGE_TOKEN = "sandbox-page-token"
SANDBOX_ZALO_APP_ID = "2000000000000000001"
SANDBOX_ZALO_APP_SECRET = "sandbox-zalo-app-secret"
SANDBOX_ZALO_ACCESS_TOKEN = "sandbox-zalo-access-token"
SANDBOX_ZALO_REFRESH_TOKEN = "sandbox-zalo-refresh-token"
SANDBOX_ZALO_OA_ID = "3000000000000000001"
SANDBOX_ZALO_OA_NAME = "Công đoàn cơ sở (hộp cát)"
# The non-resumable `/{page-id}/videos` limit (reference §3.5 (b)).
FB_VIDEO_MAX_BYTES = 1024 * 1024 * 1024


def utc_now() -> datetime:
    """The real time, aware and in UTC."""
    return datetime.now(UTC)


@dataclass
class _QueuedFault:
    fault: Fault
    remaining: int


class SandboxState:
    """Everything both fake platforms know, plus the knobs tests turn."""

    def __init__(
        self,
        *,
        clock: Callable[[], datetime] | None = None,
        auto_register: bool = True,
        enforce_night_hours: bool = True,
        fb_app_secret: str | None = None,
        fb_call_budget: int = 4800,
        zalo_rate_per_minute: int = 4000,
        article_verify_polls: int = 1,
        video_processing_polls: int = 2,
        video_fails: bool = False,
        video_max_bytes: int = FB_VIDEO_MAX_BYTES,
        downloadable_urls: Iterable[str] = (),
    ) -> None:
        self.lock = threading.RLock()
        self.clock: Callable[[], datetime] = clock or utc_now
        self.auto_register = auto_register
        self.enforce_night_hours = enforce_night_hours
        self.fb_app_secret = fb_app_secret
        self.fb_call_budget = fb_call_budget
        self.zalo_rate_per_minute = zalo_rate_per_minute
        self.article_verify_polls = article_verify_polls
        self.zalo_upload_ttl = timedelta(days=7)
        self.latency_seconds = 0.0
        # Status reads of a new video that still answer "processing".
        self.video_processing_polls = video_processing_polls
        # New videos end in "error" instead of "ready".
        self.video_fails = video_fails
        self.video_max_bytes = video_max_bytes
        # `file_url` values Facebook can fetch; empty means any https URL.
        self.downloadable_urls: set[str] = set(downloadable_urls)
        self.fb_page_id = SANDBOX_PAGE_ID
        self._interrupt = threading.Event()
        self._clear()

    def _clear(self) -> None:
        self.fb_posts: list[FbPost] = []
        self.fb_photos: dict[str, FbPhoto] = {}
        self.fb_videos: dict[str, FbVideo] = {}
        self.fb_tokens: dict[str, str] = {SANDBOX_PAGE_TOKEN: "valid"}
        self.zalo_groups: dict[str, ZaloGroup] = {}
        self.zalo_users: dict[str, ZaloUser] = {}
        self.zalo_articles: dict[str, ZaloArticle] = {}
        self.zalo_broadcasts: list[ZaloBroadcast] = []
        self.zalo_uploads: dict[str, Any] = {}
        self.zalo_access_tokens: dict[str, datetime | None] = {SANDBOX_ZALO_ACCESS_TOKEN: None}
        self.zalo_refresh_tokens: dict[str, str] = {SANDBOX_ZALO_REFRESH_TOKEN: "unused"}
        self.zalo_auth_codes: dict[str, tuple[str, datetime]] = {}
        self.requests: list[dict[str, Any]] = []
        self._message_log: list[dict[str, Any]] = []
        self._faults: dict[str, list[_QueuedFault]] = {}
        self._random_faults: dict[
            str, tuple[dict[str, float], dict[str, dict[str, Any]], random.Random]
        ] = {}
        self._fb_calls: deque[float] = deque()
        self._zalo_calls: deque[float] = deque()
        self._seq = itertools.count(1)

    def reset(self) -> None:
        """Forget all data, tokens, faults and logs; keep the clock and configuration knobs."""
        with self.lock:
            self._clear()

    async def sleep(self, seconds: float) -> None:
        """Sleep like a slow platform; `interrupt_sleeps` cuts every such sleep short."""
        deadline = time.monotonic() + seconds
        while not self._interrupt.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            await asyncio.sleep(min(remaining, 0.05))

    def interrupt_sleeps(self, interrupted: bool = True) -> None:
        """End hanging faults now (so a server can stop), or allow them again with False."""
        if interrupted:
            self._interrupt.set()
        else:
            self._interrupt.clear()

    def now(self) -> datetime:
        """The sandbox's idea of now (aware UTC)."""
        return self.clock()

    def set_now(self, moment: datetime | None) -> None:
        """Freeze the clock at `moment`, or go back to real time with None."""
        if moment is None:
            self.clock = utc_now
            return
        if moment.tzinfo is None:
            raise ValueError("the sandbox clock needs an aware datetime")
        frozen = moment.astimezone(UTC)
        self.clock = lambda: frozen

    def next_seq(self) -> int:
        """A number unique within this state, for ids."""
        with self.lock:
            return next(self._seq)

    def add_group(self, group_id: str, name: str, enabled: bool = True) -> ZaloGroup:
        """Register (or replace the settings of) a GMF group managed by the OA."""
        with self.lock:
            group = self.zalo_groups.get(group_id)
            if group is None:
                group = ZaloGroup(group_id=group_id, name=name)
                self.zalo_groups[group_id] = group
            group.name = name
            group.status = "enabled" if enabled else "disabled"
            return group

    def add_user(
        self, user_id: str, name: str, last_interaction: datetime | None = None
    ) -> ZaloUser:
        """Register a user; `last_interaction` None means they interacted just now."""
        with self.lock:
            moment = last_interaction or self.now()
            user = self.zalo_users.get(user_id)
            if user is None:
                user = ZaloUser(user_id=user_id, display_name=name, last_interaction=moment)
                self.zalo_users[user_id] = user
            user.display_name = name
            user.last_interaction = moment
            return user

    def known_group(self, group_id: str) -> ZaloGroup | None:
        """The group, registered on the fly when `auto_register` is on."""
        with self.lock:
            group = self.zalo_groups.get(group_id)
            if group is None and self.auto_register:
                group = self.add_group(group_id, group_id)
            return group

    def known_user(self, user_id: str) -> ZaloUser | None:
        """The user, registered on the fly (interacted now) when `auto_register` is on."""
        with self.lock:
            user = self.zalo_users.get(user_id)
            if user is None and self.auto_register:
                user = self.add_user(user_id, user_id)
            return user

    def register_auth_code(self, code: str, challenge: str) -> None:
        """Make `code` exchangeable once, within 10 minutes, with a verifier for `challenge`."""
        with self.lock:
            self.zalo_auth_codes[code] = (challenge, self.now())

    def push_fault(self, route: str, fault: Fault) -> None:
        """Queue `fault` for the next `fault.times` matching requests on `route` (or "*")."""
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}; known: {sorted(ROUTES)}")
        with self.lock:
            self._faults.setdefault(route, []).append(_QueuedFault(fault, fault.times))

    def set_random_faults(
        self,
        route: str,
        rates: Mapping[str, float],
        seed: int | None = None,
        fields: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        """Inject fault kinds with the given probabilities when no scripted fault is queued.

        `fields` sets, per kind, fields of the faults drawn (e.g. a throttle's `minutes`).
        An empty `rates` switches random faults off for `route`.
        """
        if route not in ROUTES:
            raise ValueError(f"unknown route {route!r}")
        bad = set(rates) - FAULT_KINDS
        shapes = {kind: dict(values) for kind, values in (fields or {}).items()}
        if bad or sum(rates.values()) > 1.0 or not set(shapes) <= set(rates):
            raise ValueError(f"bad random fault rates {dict(rates)!r}")
        for kind, values in shapes.items():
            random_fault(kind, values)  # reject unknown fields now, not mid-request
        with self.lock:
            if rates:
                self._random_faults[route] = (dict(rates), shapes, random.Random(seed))
            else:
                self._random_faults.pop(route, None)

    def clear_faults(self) -> None:
        """Drop every queued and random fault."""
        with self.lock:
            self._faults.clear()
            self._random_faults.clear()

    def take_fault(self, route: str, *, duplicate: bool = False) -> Fault | None:
        """The fault this request gets, consuming one use of it."""
        with self.lock:
            for key in (route, "*"):
                queue = self._faults.get(key, [])
                for queued in queue:
                    if queued.fault.when_duplicate and not duplicate:
                        continue
                    queued.remaining -= 1
                    if queued.remaining <= 0:
                        queue.remove(queued)
                    return queued.fault
            for key in (route, "*"):
                if key in self._random_faults:
                    rates, shapes, rng = self._random_faults[key]
                    draw = rng.random()
                    for kind, rate in rates.items():
                        if draw < rate:
                            return random_fault(kind, shapes.get(kind))
                        draw -= rate
        return None

    def log_request(
        self, platform: str, method: str, path: str, route: str | None
    ) -> dict[str, Any]:
        """Append a request to `requests` (never with tokens or query strings)."""
        entry: dict[str, Any] = {
            "platform": platform,
            "method": method,
            "path": path,
            "route": route,
            "time": self.now(),
            "monotonic": time.monotonic(),
            "status": None,
            "outcome": "pending",
        }
        with self.lock:
            self.requests.append(entry)
        return entry

    def finish_request(
        self,
        entry: dict[str, Any],
        status: int | None,
        outcome: str,
        *,
        regain_seconds: float | None = None,
    ) -> None:
        """Record how a logged request ended; a throttle answer also says when access returns."""
        with self.lock:
            entry["status"] = status
            entry["outcome"] = outcome
            entry["answered"] = time.monotonic()
            if regain_seconds is not None:
                entry["regain_seconds"] = regain_seconds

    def fb_usage(self) -> tuple[int, int]:
        """Count a Graph call; return (percent of the hourly budget used, minutes to regain)."""
        return self._count_call(self._fb_calls, 3600.0, self.fb_call_budget)

    def zalo_usage(self) -> tuple[int, int]:
        """Count a Zalo call; return (calls in the last minute, the per-minute limit)."""
        with self.lock:
            self._count_call(self._zalo_calls, 60.0, self.zalo_rate_per_minute)
            return len(self._zalo_calls), self.zalo_rate_per_minute

    def _count_call(self, calls: deque[float], window: float, budget: int) -> tuple[int, int]:
        now = time.monotonic()
        with self.lock:
            calls.append(now)
            while calls and calls[0] <= now - window:
                calls.popleft()
            percent = min(100, len(calls) * 100 // max(budget, 1))
            regain = 0
            if len(calls) > budget:
                oldest_needed = calls[len(calls) - budget]
                regain = max(1, int((oldest_needed + window - now) // 60) + 1)
            return percent, regain

    def record_message(
        self,
        platform: str,
        channel: str,
        target: str,
        text: str,
        remote_id: str,
        *,
        video_id: str | None = None,
        file_name: str | None = None,
    ) -> None:
        """Note an accepted message for `messages()`; a video post also carries `video_id`,
        a Zalo file message `file` (the file's name)."""
        entry = {
            "platform": platform,
            "channel": channel,
            "target": target,
            "text": text,
            "remote_id": remote_id,
            "at": self.now().isoformat(),
        }
        if video_id is not None:
            entry["video_id"] = video_id
        if file_name is not None:
            entry["file"] = file_name
        with self.lock:
            self._message_log.append(entry)

    def forget_message(self, remote_id: str) -> None:
        """Drop a post that was deleted or unpublished from `messages()`."""
        with self.lock:
            self._message_log = [m for m in self._message_log if m["remote_id"] != remote_id]

    def messages(self) -> list[dict[str, Any]]:
        """Every accepted, visible message on every channel, in acceptance order."""
        with self.lock:
            return [dict(m) for m in self._message_log]

    def snapshot(self) -> dict[str, Any]:
        """The whole state as JSON-ready data, for the control API."""
        with self.lock:
            requests = [{**entry, "time": iso(entry["time"])} for entry in self.requests]
            return {
                "now": self.now().isoformat(),
                "messages": self.messages(),
                "fb_posts": [p.to_dict() for p in self.fb_posts],
                "fb_photos": [p.to_dict() for p in self.fb_photos.values()],
                "fb_videos": [v.to_dict() for v in self.fb_videos.values()],
                "zalo_groups": [g.to_dict() for g in self.zalo_groups.values()],
                "zalo_users": [u.to_dict() for u in self.zalo_users.values()],
                "zalo_articles": [a.to_dict() for a in self.zalo_articles.values()],
                "zalo_broadcasts": [b.to_dict() for b in self.zalo_broadcasts],
                "zalo_uploads": [u.to_dict() for u in self.zalo_uploads.values()],
                "request_count": len(self.requests),
                "requests": requests,
            }

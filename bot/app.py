"""The composition root: settings in, engine, queue, connectors and dispatcher out.

Nothing below this module reads settings; it hands plain values down. A channel
without credentials is wired to the built-in sandbox (started in this process unless
`CDBOT_SANDBOX_URL` names one already running), and says so.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.db.engine import backend, make_engine, make_sessionmaker
from bot.db.models import Post
from bot.dispatcher import Dispatcher, Policy
from bot.errors import ConfigError
from bot.queue import Claimed, PostQueue, Target, clusters_for
from bot.settings import reveal
from connectors.base import Connector, OutboundMessage, Rejected
from content.kinds import DOCUMENT_CHANNELS
from content.media import is_document
from content.render import Identity, PostContent, Rendering, render

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from bot.credentials import DbTokenStore
    from bot.org import Organisation
    from bot.settings import Settings
    from connectors.sandbox import SandboxState
    from connectors.sandbox.server import SandboxServer

log = logging.getLogger(__name__)
POST_CACHE = 512
VIDEO_SUFFIXES = frozenset({".mp4", ".mov"})
SANDBOX_MEDIA_URL = "https://sandbox.invalid/media"
WITH_MEDIA = frozenset({"facebook_page", "zalo_group", "zalo_user", "zalo_broadcast"})
# Documents go as Zalo file messages; a Page post or a follower article cannot carry one.
WITH_DOCUMENTS = frozenset(DOCUMENT_CHANNELS)


@dataclass(frozen=True)
class ChannelMode:
    """Whether an account talks to the real platform or to the sandbox."""

    account: str
    sandbox: bool
    base_url: str


class App:
    """Everything one process needs, built from one `Settings`."""

    def __init__(
        self,
        settings: Settings,
        *,
        sandbox_state: SandboxState | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings
        # The platforms' wall clock (their night hours); tests give the sandbox's.
        self.clock = clock or (lambda: datetime.now(UTC))
        self.sandbox_url: str | None = settings.sandbox_url
        self._sandbox_state = sandbox_state
        self._sandbox_server: SandboxServer | None = None
        self._posts: dict[int, Post] = {}
        self._loading: dict[int, asyncio.Future[Post]] = {}  # one read per post, however many ask
        self._fitted: dict[tuple[str, str, int, int], Path] = {}

    @cached_property
    def engine(self) -> AsyncEngine:
        try:
            backend(self.settings.database_url)
        except ValueError as exc:
            raise ConfigError("CDBOT_DATABASE_URL phải là sqlite:///… hoặc postgresql://…") from exc
        return make_engine(self.settings.database_url)

    @cached_property
    def sessions(self) -> async_sessionmaker[AsyncSession]:
        return make_sessionmaker(self.engine)

    @cached_property
    def queue(self) -> PostQueue:
        return PostQueue(self.sessions)

    @cached_property
    def org(self) -> Organisation:
        from bot.org import load_organisation

        return load_organisation(self.settings.org_file)

    @property
    def identity(self) -> Identity:
        """Signature, slogan and hashtags every post carries."""
        org = self.org
        return Identity(
            signature=org.signature,
            slogan=org.slogans[0] if org.slogans else "",
            hashtags=tuple(org.hashtags),
        )

    # ---- schema -------------------------------------------------------------------------

    def ensure_schema(self) -> None:
        """Migrate a SQLite file by itself; ask for `cdbot db upgrade` on PostgreSQL."""
        from bot.db.engine import ensure_sqlite_file
        from bot.db.migrate import current_revision, head_revision, upgrade

        url = self.settings.database_url
        ensure_sqlite_file(url)
        if current_revision(url) == head_revision():
            return
        if backend(url) == "sqlite":
            upgrade(url)
            return
        raise ConfigError("Cơ sở dữ liệu chưa ở phiên bản mới nhất; hãy chạy «cdbot db upgrade».")

    # ---- channels -------------------------------------------------------------------------

    def modes(self) -> dict[str, ChannelMode]:
        """Each account's mode, without starting anything."""
        s = self.settings
        sandbox = self.sandbox_url or "(hộp cát tích hợp, khởi động khi chạy)"
        fb_live = s.facebook_configured
        zalo_live = s.zalo_configured
        return {
            "facebook": ChannelMode(
                "facebook", not fb_live, s.facebook_graph_url if fb_live else sandbox
            ),
            "zalo": ChannelMode(
                "zalo", not zalo_live, s.zalo_openapi_url if zalo_live else sandbox
            ),
        }

    def check_production(self) -> None:
        """With CDBOT_SANDBOX=false every credential must be there."""
        if not self.settings.sandbox:
            missing = self.settings.missing_for_production()
            if missing:
                raise ConfigError(
                    "CDBOT_SANDBOX=false nhưng còn thiếu: " + ", ".join(missing) + "."
                )

    @property
    def page_id(self) -> str:
        from connectors.sandbox import SANDBOX_PAGE_ID

        if self.settings.facebook_configured and self.settings.facebook_page_id:
            return self.settings.facebook_page_id
        return SANDBOX_PAGE_ID

    @asynccontextmanager
    async def connectors(self) -> AsyncIterator[dict[str, Connector]]:
        """Open a connector per account (starting the sandbox if one needs it)."""
        from bot.uploads import DbUploadStore
        from connectors import sandbox as sb
        from connectors.facebook import FacebookPageConnector
        from connectors.zalo import ZaloOAConnector

        self.check_production()
        s = self.settings
        modes = self.modes()
        async with AsyncExitStack() as stack:
            if (modes["facebook"].sandbox or modes["zalo"].sandbox) and not self.sandbox_url:
                from connectors.sandbox.server import SandboxServer

                server = SandboxServer(self._sandbox_state or await self._rehearsal_state())
                self.sandbox_url = server.start()
                self._sandbox_server = server
                stack.callback(self._sandbox_stopped, server)
            for mode in modes.values():
                if mode.sandbox:
                    log.warning(
                        "Kênh %s chạy với HỘP CÁT tại %s: chưa có thông tin đăng nhập thật.",
                        mode.account,
                        self.sandbox_url,
                    )
            fb_live = not modes["facebook"].sandbox
            facebook = FacebookPageConnector(
                graph_url=s.facebook_graph_url if fb_live else str(self.sandbox_url),
                api_version=s.facebook_api_version,
                page_id=self.page_id,
                page_token=(await self._facebook_page_token() or "")
                if fb_live
                else sb.SANDBOX_PAGE_TOKEN,
                app_secret=reveal(s.facebook_app_secret) if fb_live else None,
                video_url=s.facebook_video_url if fb_live else str(self.sandbox_url),
                min_gap_seconds=s.facebook_min_gap_seconds,
                timeout=s.http_timeout_seconds,
                sandbox=not fb_live,
            )
            stack.push_async_callback(facebook.aclose)
            zalo_live = not modes["zalo"].sandbox

            async def sandbox_token() -> str:
                return sb.SANDBOX_ZALO_ACCESS_TOKEN

            zalo = ZaloOAConnector(
                openapi_url=s.zalo_openapi_url if zalo_live else str(self.sandbox_url),
                access_token=await self._zalo_tokens(stack) if zalo_live else sandbox_token,
                article_cover_url=self.org.article_cover_url,
                broadcast_target=self.org.broadcast_target,
                requests_per_minute=s.zalo_requests_per_minute,
                public_media_url=self.public_media_url,
                clock=self.clock,
                uploads=DbUploadStore(self.sessions),
                timeout=s.http_timeout_seconds,
                sandbox=not zalo_live,
            )
            stack.push_async_callback(zalo.aclose)
            yield {"facebook": facebook, "zalo": zalo}

    async def _rehearsal_state(self) -> SandboxState:
        """A sandbox that knows the office's cluster groups and admins, for a rehearsal."""
        from connectors.sandbox import SandboxState

        state = SandboxState(auto_register=False)
        async with self.sessions() as session:
            for cluster in await clusters_for(session, None):
                if cluster.zalo_group_id:
                    state.add_group(cluster.zalo_group_id, cluster.name)
                for admin in cluster.admins:
                    state.add_user(admin.zalo_user_id, admin.name)
        return state

    def _sandbox_stopped(self, server: SandboxServer) -> None:
        """Stop the sandbox `connectors()` started, and forget its address."""
        server.stop()
        self.sandbox_url = self.settings.sandbox_url
        self._sandbox_server = None

    async def _facebook_page_token(self) -> str | None:
        """The Page token saved in the console (encrypted), else the one in the settings."""
        from bot.db.models import Credential
        from bot.secrets import Cipher

        async with self.sessions() as session:
            row = await session.get(Credential, "facebook")
        key = reveal(self.settings.secret_key)
        if row is not None and key:
            return Cipher(key).decrypt(row.access_token)
        return reveal(self.settings.facebook_page_token)

    async def _zalo_tokens(self, stack: AsyncExitStack) -> DbTokenStore:
        """The stored Zalo OA credential, refreshed once across every process (bot.credentials)."""
        from bot.credentials import DbTokenStore
        from bot.secrets import Cipher
        from connectors.tokens import ZaloOAuthClient

        s = self.settings
        key = reveal(s.secret_key)
        if not key:
            raise ConfigError("Cần đặt CDBOT_SECRET_KEY để dùng mã Zalo đã lưu (được mã hoá).")
        oauth = ZaloOAuthClient(
            oauth_url=s.zalo_oauth_url,
            app_id=str(s.zalo_app_id),
            app_secret=reveal(s.zalo_app_secret) or "",
            # SQLite keeps its one write lock while Zalo answers: do not wait on it for long.
            timeout=min(s.http_timeout_seconds, 20.0),
        )
        stack.push_async_callback(oauth.aclose)

        async def consent_needed(note: str) -> None:
            await self.queue.pause_account("zalo", seconds=None, needs_reauth=True, note=note)

        store = DbTokenStore(self.sessions, Cipher(key), oauth, on_consent_needed=consent_needed)
        if await store.status() is None:
            log.warning("Zalo OA chưa được kết nối; hãy chạy «cdbot zalo connect».")
        return store

    def webhook_app(self) -> Starlette:
        """The webhook routes, with the secrets that verify each platform's events."""
        from bot.webhook import create_webhook_app

        s = self.settings
        return create_webhook_app(
            self.sessions,
            zalo_app_id=s.zalo_app_id,
            zalo_oa_secret=reveal(s.zalo_oa_secret_key),
            facebook_app_secret=reveal(s.facebook_app_secret),
            facebook_verify_token=reveal(s.facebook_verify_token),
        )

    @property
    def public_media_url(self) -> str | None:
        """Where Zalo fetches article images; the sandbox takes any address."""
        if self.settings.public_media_url:
            return self.settings.public_media_url
        return None if self.settings.zalo_configured else SANDBOX_MEDIA_URL

    @property
    def sandbox_server(self) -> SandboxServer | None:
        """The in-process sandbox, when this process started one."""
        return self._sandbox_server

    # ---- posts ----------------------------------------------------------------------------

    async def targets(
        self, channels: Sequence[str], cluster_codes: Sequence[str] | None
    ) -> list[Target]:
        """The deliveries a post fans out to."""
        targets: list[Target] = []
        if "facebook_page" in channels:
            targets.append(Target("facebook_page", self.page_id, "Trang Facebook"))
        if "zalo_broadcast" in channels:
            targets.append(Target("zalo_broadcast", "followers", "Người quan tâm OA"))
        async with self.sessions() as session:
            clusters = await clusters_for(session, cluster_codes)
        for cluster in clusters:
            if "zalo_group" in channels and cluster.zalo_group_id:
                targets.append(
                    Target(
                        "zalo_group", cluster.zalo_group_id, f"Nhóm {cluster.name}", cluster.code
                    )
                )
            if "zalo_user" in channels:
                targets += [
                    Target("zalo_user", admin.zalo_user_id, admin.name, cluster.code)
                    for admin in cluster.admins
                ]
        return targets

    async def approve(self, post_id: int, *, actor: str) -> tuple[Post, int]:
        """Approve a post for the targets it names."""
        post = await self.queue.get(post_id)
        targets = await self.targets(post.channels, post.clusters)
        return await self.queue.approve(post_id, targets, actor=actor)

    def render(self, post: Post, channel: str) -> Rendering:
        """The text `channel` will carry for `post`."""
        content = PostContent(
            post.kind, post.title, post.body, post.link, tuple(post.hashtags), post.details
        )
        return render(content, channel, self.identity)

    async def compose(self, claimed: Claimed) -> OutboundMessage:
        """Render a claimed delivery into the message its connector sends."""
        post = self._posts.get(claimed.post_id) or await self._load_post(claimed.post_id)
        rendering = self.render(post, claimed.channel)
        media = [Path(p) for p in post.media] if claimed.channel in WITH_MEDIA else []
        documents = tuple(p for p in media if is_document(p))
        if claimed.channel not in WITH_DOCUMENTS:
            documents = ()  # a Page post or a follower article carries no file
        media = [p for p in media if not is_document(p)]
        videos = [p for p in media if p.suffix.lower() in VIDEO_SUFFIXES]
        images = tuple(self._fit(p, claimed.channel) for p in media if p not in videos)
        if claimed.channel != "facebook_page":
            videos = []  # Zalo messages carry images; a video post goes as its text and link
        text = rendering.text
        if claimed.channel == "zalo_mention":  # name the admin: "[@user_id] …"
            text = f"[@{claimed.target_id.split('/', 1)[1]}] {text}"
        return OutboundMessage(
            channel=claimed.channel,
            target_id=claimed.target_id,
            title=post.title,
            text=text,
            link=post.link if claimed.channel == "facebook_page" and not media else None,
            images=() if videos else images,
            video=videos[0] if videos else None,
            documents=documents,
            resume_since=await self._resume_since(claimed) if documents else None,
        )

    async def _load_post(self, post_id: int) -> Post:
        """Read a post once for all its deliveries (its content does not change once approved)."""
        loop = asyncio.get_running_loop()
        loading = self._loading.get(post_id)
        if loading is None or loading.get_loop() is not loop:
            loading = loop.create_task(self.queue.post_of(post_id))
            self._loading[post_id] = loading

            def forget(done: asyncio.Future[Post]) -> None:
                if self._loading.get(post_id) is done:
                    del self._loading[post_id]

            loading.add_done_callback(forget)
        post = await asyncio.shield(loading)  # one reader cancelled leaves the read to the rest
        if post_id not in self._posts:
            if len(self._posts) >= POST_CACHE:
                self._posts.pop(next(iter(self._posts)))
            self._posts[post_id] = post
        return post

    async def _resume_since(self, claimed: Claimed) -> datetime | None:
        """For a message in parts tried before: when its first try began (see send)."""
        if claimed.current_attempt_id is None:
            return None
        return await self.queue.first_attempt_started(claimed.id)

    def _fit(self, image: Path, channel: str) -> Path:
        """The image as the platform will take it (re-encoded into the cache when too big)."""
        from content.media import fit_for_facebook, fit_for_zalo

        platform = "facebook" if channel == "facebook_page" else "zalo"
        try:
            stat = image.stat()
            key = (str(image), platform, stat.st_mtime_ns, stat.st_size)
            if key not in self._fitted:  # a post fans out to many targets: fit it once
                fit = fit_for_facebook if platform == "facebook" else fit_for_zalo
                self._fitted[key] = fit(image, self.settings.media_cache_dir)
        except (OSError, ValueError) as exc:
            raise Rejected(
                str(exc) if isinstance(exc, ValueError) else f"Không đọc được ảnh «{image.name}».",
                code="media",
            ) from exc
        return self._fitted[key]

    def policy(self) -> Policy:
        """Dispatcher tuning from settings."""
        s = self.settings
        return Policy(
            lease_seconds=s.lease_seconds,
            max_attempts=s.max_attempts,
            backoff_base=s.backoff_base_seconds,
            backoff_cap=s.backoff_cap_seconds,
            poll_seconds=s.poll_seconds,
            settle_seconds=s.settle_seconds,
            stop_grace_seconds=s.stop_grace_seconds,
            concurrency={"facebook": s.facebook_concurrency, "zalo": s.zalo_concurrency},
            window_fallback=s.zalo_window_fallback,
        )

    def dispatcher(self, connectors: dict[str, Connector]) -> Dispatcher:
        """A dispatcher over the given connectors."""
        return Dispatcher(self.queue, connectors, self.compose, self.policy())

    async def aclose(self) -> None:
        """Release the database pool."""
        if "engine" in self.__dict__:
            await self.engine.dispose()

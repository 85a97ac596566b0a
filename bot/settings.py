"""Settings read from the environment and `.env` (prefix ``CDBOT_``).

Only the composition root (`bot.app`) builds a `Settings`; everything below it
receives plain values (URLs, tokens, paths), never this object.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")
EXAMPLE_ORG_DIR = Path(__file__).resolve().parent.parent / "content" / "data" / "example"

# Values people paste from examples; a secret equal to one of these is treated as missing.
PLACEHOLDERS = frozenset({"", "changeme", "change-me", "xxx", "your-secret", "secret", "todo"})


def reveal(secret: SecretStr | None) -> str | None:
    """A secret's value, or None when it is unset or a placeholder copied from an example."""
    if secret is None:
        return None
    value = secret.get_secret_value()
    return None if value.strip().lower() in PLACEHOLDERS else value


def _real(secret: SecretStr | None) -> bool:
    return reveal(secret) is not None


class Settings(BaseSettings):
    """Everything the bot can be told from outside. See `.env.example` for each key."""

    model_config = SettingsConfigDict(
        env_prefix="CDBOT_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
    )

    database_url: str = Field(default=f"sqlite:///{DEFAULT_DATA_DIR / 'cdbot.sqlite3'}")
    timezone: str = "Asia/Ho_Chi_Minh"
    secret_key: SecretStr | None = None
    sandbox: bool = True
    sandbox_url: str | None = None
    org_file: Path = EXAMPLE_ORG_DIR / "organisation.yaml"
    media_cache_dir: Path = DEFAULT_DATA_DIR / "media"
    cards_dir: Path = DEFAULT_DATA_DIR / "cards"  # infographics drawn by the automatic jobs
    log_level: str = "INFO"

    facebook_graph_url: str = "https://graph.facebook.com"
    facebook_api_version: str = "v26.0"
    facebook_video_url: str = "https://graph-video.facebook.com"
    facebook_page_id: str | None = None
    facebook_page_token: SecretStr | None = None
    facebook_app_secret: SecretStr | None = None

    zalo_openapi_url: str = "https://openapi.zalo.me"
    zalo_oauth_url: str = "https://oauth.zaloapp.com"
    zalo_app_id: str | None = None
    zalo_app_secret: SecretStr | None = None
    # The OA's "Official Account Callback Url" in Zalo's developer console (cdbot zalo connect).
    zalo_redirect_uri: str | None = None
    zalo_oa_secret_key: SecretStr | None = None
    facebook_verify_token: SecretStr | None = None

    # Webhooks are served by `cdbot run` only when a port is given.
    webhook_host: str = "127.0.0.1"
    # The web console: `cdbot web`, or inside `cdbot run` when a port is set.
    web_host: str = "127.0.0.1"
    web_port: Annotated[int, Field(ge=1, le=65535)] | None = None
    web_https_only: bool = False  # set when the console is served behind HTTPS
    webhook_port: Annotated[int, Field(ge=1, le=65535)] | None = None

    # Dispatcher tuning.
    lease_seconds: Annotated[int, Field(ge=10)] = 300
    max_attempts: Annotated[int, Field(ge=1)] = 8
    backoff_base_seconds: Annotated[float, Field(gt=0)] = 5.0
    backoff_cap_seconds: Annotated[float, Field(gt=0)] = 3600.0
    http_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    poll_seconds: Annotated[float, Field(gt=0)] = 5.0
    settle_seconds: Annotated[float, Field(ge=0)] = 15.0
    stop_grace_seconds: Annotated[float, Field(ge=0)] = 20.0
    facebook_concurrency: Annotated[int, Field(ge=1)] = 1
    facebook_min_gap_seconds: Annotated[float, Field(ge=0)] = 60.0
    zalo_concurrency: Annotated[int, Field(ge=1)] = 8
    zalo_window_fallback: bool = True
    zalo_requests_per_minute: Annotated[int, Field(ge=1)] = 3000  # Zalo allows 4,000
    # A public base URL the office serves post images from (Zalo articles link to images).
    public_media_url: str | None = None

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: str) -> str:
        scheme = value.split(":", 1)[0].split("+", 1)[0].lower()
        if scheme not in ("sqlite", "postgresql", "postgres"):
            raise ValueError("chỉ hỗ trợ sqlite:///… hoặc postgresql://…")
        return "postgresql" + value[len("postgres") :] if scheme == "postgres" else value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"múi giờ không tồn tại: {value}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The zone in which the officer reads and writes times."""
        return ZoneInfo(self.timezone)

    @property
    def facebook_configured(self) -> bool:
        """True when real Facebook credentials are present."""
        return bool(self.facebook_page_id) and _real(self.facebook_page_token)

    @property
    def zalo_configured(self) -> bool:
        """True when the Zalo app is set; its tokens are stored by `cdbot zalo connect`."""
        return bool(self.zalo_app_id) and _real(self.zalo_app_secret)

    def secret_values(self) -> list[str]:
        """Every secret's value (each SecretStr field), for the log filter to mask."""
        return [v.get_secret_value() for v in self.__dict__.values() if isinstance(v, SecretStr)]

    def missing_for_production(self) -> list[str]:
        """Keys that must be set when the sandbox is switched off."""
        missing: list[str] = []
        if not self.facebook_configured:
            missing += ["CDBOT_FACEBOOK_PAGE_ID", "CDBOT_FACEBOOK_PAGE_TOKEN"]
        if not self.zalo_configured:
            missing += ["CDBOT_ZALO_APP_ID", "CDBOT_ZALO_APP_SECRET"]
        if not _real(self.secret_key):
            missing.append("CDBOT_SECRET_KEY")
        return missing

"""Settings: defaults, placeholders, production mode."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from bot.settings import Settings


def make(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def test_defaults_run_everything_in_the_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CDBOT_DATABASE_URL", "CDBOT_FACEBOOK_PAGE_TOKEN", "CDBOT_ZALO_APP_SECRET"):
        monkeypatch.delenv(key, raising=False)
    settings = make()
    assert settings.database_url.startswith("sqlite:///data/")
    assert settings.timezone == "Asia/Ho_Chi_Minh"
    assert settings.facebook_api_version == "v26.0"
    assert not settings.facebook_configured and not settings.zalo_configured


def test_placeholder_secrets_count_as_missing() -> None:
    settings = make(sandbox=False, facebook_page_id="1", facebook_page_token=SecretStr("changeme"))
    assert not settings.facebook_configured
    missing = settings.missing_for_production()
    assert "CDBOT_FACEBOOK_PAGE_TOKEN" in missing and "CDBOT_SECRET_KEY" in missing


def test_complete_production_settings_have_nothing_missing() -> None:
    settings = make(
        sandbox=False,
        secret_key=SecretStr("k" * 32),
        facebook_page_id="123",
        facebook_page_token=SecretStr("EAAB-real-token"),
        zalo_app_id="456",
        zalo_app_secret=SecretStr("zalo-secret"),
    )
    assert settings.missing_for_production() == []


@pytest.mark.parametrize("url", ["mysql://x/y", "oracle://z", "nonsense"])
def test_unsupported_databases_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="sqlite"):
        make(database_url=url)


def test_postgres_alias_is_accepted() -> None:
    assert make(database_url="postgres://u@h/db").database_url == "postgresql://u@h/db"


def test_unknown_timezone_is_refused() -> None:
    with pytest.raises(ValidationError, match="múi giờ"):
        make(timezone="Mars/Olympus")


def test_every_secret_reaches_the_log_filter() -> None:
    settings = make(
        facebook_page_token=SecretStr("fb-token-1"),
        zalo_oa_secret_key=SecretStr("oa-key-2"),
        facebook_verify_token=SecretStr("verify-3"),
    )
    assert {"fb-token-1", "oa-key-2", "verify-3"} <= set(settings.secret_values())

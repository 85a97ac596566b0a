"""Tokens at rest: encrypted, and unreadable with another key."""

from __future__ import annotations

import pytest

from bot.errors import ConfigError
from bot.secrets import Cipher


def test_round_trip_and_no_plaintext() -> None:
    cipher = Cipher("a-long-random-secret-key-123")
    sealed = cipher.encrypt("zalo-refresh-token-abc")
    assert "zalo-refresh-token-abc" not in sealed
    assert cipher.decrypt(sealed) == "zalo-refresh-token-abc"


def test_another_key_cannot_read_it() -> None:
    sealed = Cipher("a-long-random-secret-key-123").encrypt("token")
    with pytest.raises(ConfigError, match="CDBOT_SECRET_KEY"):
        Cipher("another-long-secret-key-456").decrypt(sealed)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match="ít nhất"):
        Cipher("short")

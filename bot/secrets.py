"""Encryption of tokens at rest, with a key derived from CDBOT_SECRET_KEY.

Fernet (AES-128-CBC with HMAC-SHA256) from `cryptography`; the key is stretched with
HKDF so any long random string works as CDBOT_SECRET_KEY. The key never reaches the
database; rotating it means re-entering the tokens.
"""

from __future__ import annotations

import base64

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bot.errors import ConfigError

# Used only when every channel runs in the sandbox and no key was set: sandbox tokens are
# not secret, and saying so is better than refusing to rehearse.
SANDBOX_KEY = "congdoan-bot sandbox key: not for real tokens"
MIN_KEY_LENGTH = 16


class Cipher:
    """Encrypts and decrypts short secrets (tokens) as text."""

    def __init__(self, secret_key: str) -> None:
        if len(secret_key) < MIN_KEY_LENGTH:
            raise ConfigError(f"CDBOT_SECRET_KEY phải dài ít nhất {MIN_KEY_LENGTH} ký tự.")
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=b"congdoan-bot", info=b"tokens-v1"
        ).derive(secret_key.encode("utf-8"))
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt(self, plain: str) -> str:
        """The token, encrypted and base64-encoded."""
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, sealed: str) -> str:
        """The token back; ConfigError if it was sealed with another key."""
        try:
            return self._fernet.decrypt(sealed.encode("ascii")).decode("utf-8")
        except (InvalidToken, ValueError) as exc:
            raise ConfigError(
                "Không giải mã được mã truy cập đã lưu: CDBOT_SECRET_KEY đã bị đổi? "
                "Hãy kết nối lại tài khoản."
            ) from exc

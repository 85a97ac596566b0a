"""The root of every error this project raises on purpose.

    BotError
    ├── InputError            the officer's input is wrong (a Vietnamese sentence; exit code 2)
    ├── ConfigError           settings or files are wrong or missing (exit code 2)
    └── PlatformError         connectors/base.py: what a platform answered
        ├── Throttled         slow down; the account pauses until retry_after
        ├── AuthExpired       the token or a permission is gone; the account pauses
        ├── Rejected          the platform refuses this content; do not retry
        ├── Unavailable       transient, and surely not sent; retry with backoff
        └── OutcomeUnknown    maybe sent; reconcile before anything else

This module imports nothing, so every layer may use it.
"""

from __future__ import annotations


class BotError(Exception):
    """Lỗi của congdoan-bot."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0])


class InputError(BotError):
    """Dữ liệu nhập vào không hợp lệ."""

    def __init__(self, message: str | None = None, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        """The officer's name for the field at fault, when one is."""


class ConfigError(BotError):
    """Cấu hình không hợp lệ."""

"""Logging set-up, with one filter that keeps tokens and secrets out of every record."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# Token-looking values that may sit in URLs, headers or bodies quoted in a message.
_PATTERNS = (
    re.compile(
        r"((?:access_token|appsecret_proof|refresh_token|secret_key|code_verifier)=)[^&\s\"']+"
    ),
    re.compile(r"(\"?(?:access_token|refresh_token|secret_key)\"?\s*:\s*\"?)[^\"',\s}]+"),
)
MASK = "***"


class RedactSecrets(logging.Filter):
    """Replaces known secret values and token-shaped parameters with ***."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 6}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, MASK)
        for pattern in _PATTERNS:
            text = pattern.sub(r"\g<1>" + MASK, text)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redact(message)
        if record.exc_info and record.exc_info[1] is not None:
            clean_exc = self.redact(logging.Formatter().formatException(record.exc_info))
            clean = f"{clean}\n{clean_exc}"
            record.exc_info = None
            record.exc_text = None
        record.msg, record.args = clean, None
        return True


def setup_logging(level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Log to stderr, times in ISO form, secrets redacted."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn.access", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))

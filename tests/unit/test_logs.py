"""One logging filter keeps tokens and secrets out of every record."""

from __future__ import annotations

import logging

import pytest

from bot.logs import RedactSecrets


def test_known_secrets_and_token_parameters_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    caplog.handler.addFilter(RedactSecrets(["page-token-123456"]))
    with caplog.at_level(logging.DEBUG, logger="test.redact"):
        logger.info("GET /v26.0/me?access_token=%s&fields=id", "abcdef123")
        logger.info("token %s in a sentence", "page-token-123456")
        logger.info('body {"refresh_token": "rt-999999"}')
    text = caplog.text
    assert "abcdef123" not in text and "page-token-123456" not in text and "rt-999999" not in text
    assert text.count("***") == 3


def test_exception_text_is_masked_too(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact.exc")
    caplog.handler.addFilter(RedactSecrets(["s3cr3t-value"]))
    with caplog.at_level(logging.ERROR, logger="test.redact.exc"):
        try:
            raise RuntimeError("failed with s3cr3t-value")
        except RuntimeError:
            logger.exception("boom")
    assert "s3cr3t-value" not in caplog.text

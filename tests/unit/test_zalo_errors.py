"""The Zalo classifier: errors come as HTTP 200 with a negative code."""

from __future__ import annotations

from typing import Any

import pytest

from connectors.base import AuthExpired, OutcomeUnknown, Rejected, Throttled, Unavailable
from connectors.zalo import _seconds_until_morning, check_response


def err(code: int) -> dict[str, Any]:
    return {"error": code, "message": "x"}


TABLE: list[tuple[int, Any, bool, type[Exception]]] = [
    (200, err(-32), True, Throttled),
    (200, err(-216), True, AuthExpired),
    (200, err(-220), True, AuthExpired),
    (200, err(-242), True, AuthExpired),
    (200, err(-224), True, AuthExpired),
    (200, err(-230), True, Rejected),
    (200, err(-232), True, Rejected),
    (200, err(-237), True, Rejected),
    (200, err(-403), True, Rejected),
    (200, err(-201), True, Rejected),
    (200, err(-210), True, Rejected),
    (200, err(-248), True, Rejected),
    (200, err(-234), True, Unavailable),
    (200, err(-211), True, Unavailable),
    (200, err(-218), True, Unavailable),
    (200, err(-214), True, Unavailable),
    (200, err(-200), True, Unavailable),
    (500, "oops", True, OutcomeUnknown),
    (502, None, False, Unavailable),
    (200, "not json", True, OutcomeUnknown),
    (404, "<html>", True, Unavailable),
    (200, err(-99999), True, Rejected),
]


@pytest.mark.parametrize(("status", "body", "write", "expected"), TABLE)
def test_classifier(status: int, body: Any, write: bool, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        check_response(status, body, write=write)


def test_success_returns_data() -> None:
    body = {"data": {"message_id": "abc"}, "error": 0, "message": "Success"}
    assert check_response(200, body, write=True) == {"message_id": "abc"}


@pytest.mark.parametrize("code", [-234, -211, -218])
def test_deferrals_say_when(code: int) -> None:
    with pytest.raises(Unavailable) as caught:
        check_response(200, err(code), write=True)
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


def test_morning_is_six_in_vietnam() -> None:
    from datetime import UTC, datetime

    at_23_vn = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # 23:00 in Hà Nội
    assert _seconds_until_morning(at_23_vn) == 7 * 3600
    at_5_vn = datetime(2026, 11, 29, 22, 0, tzinfo=UTC)  # 05:00 the next day
    assert _seconds_until_morning(at_5_vn) == 3600

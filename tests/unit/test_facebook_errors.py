"""The Graph API classifier: (status, body) → the dispatcher's class, from the JSON body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connectors.base import AuthExpired, OutcomeUnknown, Rejected, Throttled, Unavailable
from connectors.facebook import check_response


def err(code: int, subcode: int | None = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": "x",
        "type": "OAuthException",
        "code": code,
        "fbtrace_id": "t",
    }
    if subcode is not None:
        body["error_subcode"] = subcode
    return {"error": body | extra}


TABLE: list[tuple[int, Any, bool, type[Exception]]] = [
    (400, err(4), True, Throttled),
    (400, err(17), True, Throttled),
    (400, err(32), True, Throttled),
    (400, err(341), True, Throttled),
    (400, err(613), True, Throttled),
    (400, err(613, 1996), True, Throttled),
    (400, err(80001), True, Throttled),
    (400, err(80014), True, Throttled),
    (400, err(368, 1390008), True, Throttled),
    (400, err(368), True, Throttled),  # policy block: a long pause, never hammered
    (400, err(190), True, AuthExpired),
    (400, err(190, 460), True, AuthExpired),
    (400, err(190, 463), True, AuthExpired),
    (400, err(102), True, AuthExpired),
    (400, err(10), True, AuthExpired),
    (403, err(200), True, AuthExpired),
    (400, err(299), True, AuthExpired),
    (
        400,
        err(100, message="Invalid appsecret_proof provided in the API argument"),
        True,
        AuthExpired,
    ),
    (400, err(100), True, Rejected),
    (400, err(100, 1366046), True, Rejected),
    (400, err(197), True, Rejected),
    (400, err(1500), True, Rejected),
    (400, err(5101), True, Rejected),
    (400, err(1609005), True, Rejected),
    (400, err(506), True, Rejected),
    (500, err(1), True, OutcomeUnknown),
    (500, err(2), True, OutcomeUnknown),
    (400, err(2), True, OutcomeUnknown),  # the status is not what decides
    (500, err(2), False, Unavailable),  # a failed read is simply retried
    (400, err(9999, is_transient=True), True, OutcomeUnknown),
    (502, "<html>bad gateway</html>", True, OutcomeUnknown),
    (503, None, False, Unavailable),
    (200, None, True, OutcomeUnknown),  # accepted, but the answer is unreadable
    (404, {"nothing": True}, True, Rejected),
]


@pytest.mark.parametrize(("status", "body", "write", "expected"), TABLE)
def test_classifier(status: int, body: Any, write: bool, expected: type[Exception]) -> None:
    with pytest.raises(expected):
        check_response(status, {}, body, write=write)


def test_success_returns_the_body() -> None:
    body = {"id": "1_2", "post_supports_client_mutation_id": True}
    assert check_response(200, {}, body, write=True) == body


def test_throttle_waits_for_the_regain_time_in_minutes() -> None:
    usage = {"1": [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 7}]}
    headers = {"x-business-use-case-usage": json.dumps(usage)}
    with pytest.raises(Throttled) as caught:
        check_response(400, headers, err(80001), write=True)
    assert caught.value.retry_after == 7 * 60
    assert caught.value.code == "80001"


def test_auth_error_keeps_the_subcode() -> None:
    with pytest.raises(AuthExpired) as caught:
        check_response(400, {}, err(190, 460), write=True)
    assert caught.value.code == "190/460"


def usage(call: int, regain: int = 0) -> dict[str, str]:
    buc = {"1": [{"type": "pages", "call_count": call, "total_time": 1, "total_cputime": 1,
                  "estimated_time_to_regain_access": regain}]}  # fmt: skip
    return {"x-business-use-case-usage": json.dumps(buc), "x-app-usage": '{"call_count": 3}'}


@pytest.mark.parametrize(
    ("headers", "gap", "expected"),
    [
        ({}, 60.0, 60.0),
        (usage(50), 0.0, 0.0),
        (usage(85), 60.0, 120.0),  # above 80 %: slow down
        (usage(96), 0.0, 900.0),  # above 95 %: stop for a while
        (usage(99, regain=30), 0.0, 1800.0),  # or as long as Facebook says
        ({"x-page-usage": '{"call_count": 97}'}, 0.0, 900.0),
        ({"x-app-usage": "not json"}, 10.0, 10.0),
    ],
)
def test_cooldown_after_a_publish(headers: dict[str, str], gap: float, expected: float) -> None:
    from connectors.facebook import cooldown_for

    assert cooldown_for(headers, gap) == expected

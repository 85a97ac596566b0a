"""judge(): a failed attempt's next state, delay and account pause, as a table."""

from __future__ import annotations

import pytest

from bot.db.models import DeliveryStatus as S
from bot.dispatcher import Policy, judge
from connectors.base import (
    AuthExpired,
    OutcomeUnknown,
    PlatformError,
    Rejected,
    Throttled,
    Unavailable,
)

POLICY = Policy(max_attempts=3, settle_seconds=15.0, backoff_base=5.0, backoff_cap=60.0)


@pytest.mark.parametrize(
    ("error", "attempt", "resent", "status", "refund", "pause"),
    [
        (Throttled(code="80001", retry_after=420), 1, False, S.RETRY_WAIT, True, (420, False)),
        (AuthExpired(code="190/460"), 5, False, S.RETRY_WAIT, True, (None, True)),
        (Rejected(code="100"), 1, False, S.FAILED, False, None),
        (OutcomeUnknown(code="2"), 1, False, S.IN_DOUBT, False, None),
        (Unavailable(code="-234", retry_after=3600), 7, False, S.RETRY_WAIT, True, None),
        (Unavailable(code="http_503"), 1, False, S.RETRY_WAIT, False, None),
        (Unavailable(code="http_503"), 3, False, S.FAILED, False, None),
        (Rejected(code="1609005"), 1, False, S.RETRY_WAIT, False, None),
        (Rejected(code="1609005"), 2, False, S.FAILED, False, None),
        # "already posted" right after an uncertain try: look again rather than fail
        (Rejected(code="506"), 1, True, S.IN_DOUBT, False, None),
        (Rejected(code="506"), 1, False, S.FAILED, False, None),
        (Throttled(code="368", retry_after=60), 1, True, S.IN_DOUBT, False, None),
    ],
)
def test_verdicts(
    error: PlatformError,
    attempt: int,
    resent: bool,
    status: S,
    refund: bool,
    pause: tuple[float | None, bool] | None,
) -> None:
    verdict = judge(error, attempt, POLICY, resent=resent)
    assert (verdict.status, verdict.refund, verdict.pause) == (status, refund, pause)


def test_uncertain_outcomes_wait_to_settle_before_reconciling() -> None:
    assert judge(OutcomeUnknown(), 1, POLICY).retry_in == POLICY.settle_seconds


def test_transient_retries_back_off_within_the_window() -> None:
    delays = [judge(Unavailable(), 2, POLICY).retry_in for _ in range(200)]
    assert all(0 <= d <= 10 for d in delays)

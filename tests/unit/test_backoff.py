"""Full jitter stays within [0, min(cap, base·2^(n-1))] and spreads retries out."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from bot.backoff import full_jitter


@given(
    attempt=st.integers(min_value=1, max_value=60),
    base=st.floats(min_value=0.01, max_value=100),
    cap=st.floats(min_value=0.01, max_value=86_400),
    seed=st.integers(),
)
def test_delay_is_within_the_window(attempt: int, base: float, cap: float, seed: int) -> None:
    delay = full_jitter(attempt, base=base, cap=cap, rng=random.Random(seed))
    assert 0 <= delay <= min(cap, base * 2 ** (attempt - 1))


def test_simultaneous_failures_spread_over_the_window() -> None:
    rng = random.Random(7)
    delays = [full_jitter(4, base=1.0, cap=60.0, rng=rng) for _ in range(1000)]
    buckets = [0] * 80  # 100 ms buckets over the 8 s window
    for delay in delays:
        buckets[min(int(delay * 10), 79)] += 1
    assert max(buckets) <= 100  # no bucket holds more than 10 %
    assert max(delays) - min(delays) >= 4.0  # spread over at least half the window

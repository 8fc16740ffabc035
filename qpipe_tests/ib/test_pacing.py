"""The historical-data pacer keeps both of IB's sliding windows, on a simulated clock."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.ib.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def pacer(clock: Clock, **kw: float) -> Pacer:
    return Pacer(clock=clock, sleep=clock.sleep, **kw)


def test_per_contract_window_waits_for_the_oldest_request():
    clock = Clock()
    p = pacer(clock, per_key=2, key_window=2.0)
    assert p.wait("A") == 0.0
    clock.now = 0.5
    assert p.wait("A") == 0.0
    clock.now = 1.0
    assert p.wait("A") == 1.0  # the first left the window at 2.0
    assert clock.now == 2.0
    assert p.wait("B") == 0.0  # another contract is not held back


def test_overall_window():
    clock = Clock()
    p = pacer(clock, max_requests=3, window=600.0, per_key=100)
    for key in "ABC":
        assert p.wait(key) == 0.0
    assert p.wait("D") == 600.0


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from("ABC"), st.floats(0, 3)), min_size=1, max_size=40),
    st.integers(1, 4),
    st.integers(1, 6),
)
def test_no_window_ever_holds_more_than_its_limit(requests, per_key, overall):
    clock = Clock()
    p = pacer(clock, max_requests=overall, window=10.0, per_key=per_key, key_window=2.0)
    stamps: list[tuple[str, float]] = []
    for key, gap in requests:
        clock.now += gap
        p.wait(key)
        stamps.append((key, clock.now))
    for key, t in stamps:
        in_window = [s for s in stamps if s[1] <= t < s[1] + 10.0]
        assert len(in_window) <= overall
        same = [s for s in in_window if s[0] == key and t < s[1] + 2.0]
        assert len(same) <= per_key

"""Risk rules: hand-computed stop-loss and circuit-breaker cases, and properties."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.strategies.risk import (
    BreakerMode,
    BreakerResult,
    BreakerState,
    CircuitBreaker,
    StopLoss,
    StopResult,
    StopState,
    Transition,
    breaker_targets,
    current_targets,
)

NAN = np.nan
ACTIVE, REDUCING, HALTED = BreakerMode.ACTIVE, BreakerMode.REDUCING, BreakerMode.HALTED
D0 = dt.date(2024, 1, 2)


def day(k: int) -> dt.date:
    return D0 + dt.timedelta(days=k)


def state(entry: list[float], peak: list[float], side: list[int]) -> StopState:
    return StopState(np.array(entry, float), np.array(peak, float), np.array(side))


def assert_stop(
    result: StopResult,
    entry: list[float],
    peak: list[float],
    side: list[int],
    exit_: list[bool],
    reasons: dict[int, str],
) -> None:
    np.testing.assert_array_equal(result.state.entry, entry)
    np.testing.assert_array_equal(result.state.peak, peak)
    np.testing.assert_array_equal(result.state.side, side)
    np.testing.assert_array_equal(result.exit, exit_)
    assert result.exit.dtype == bool
    assert result.reasons == reasons


def fold_stop(rule: StopLoss, steps: list[tuple]) -> list[StopResult]:
    """``step`` folded from the empty state over ``(quantity, price[, fill])`` tuples."""
    s = rule.initial(len(steps[0][0]))
    out = []
    for args in steps:
        r = rule.step(s, *(np.array(a, float) for a in args))
        out.append(r)
        s = r.state
    return out


# --------------------------------------------------------------------------- stop loss


def test_initial_stop_state_is_flat() -> None:
    s = StopLoss(0.1).initial(3)
    assert np.isnan(s.entry).all() and np.isnan(s.peak).all()
    np.testing.assert_array_equal(s.side, [0, 0, 0])
    assert s == state([NAN] * 3, [NAN] * 3, [0] * 3)
    assert s != state([100, NAN, NAN], [100, NAN, NAN], [1, 0, 0])
    assert StopLoss(0.1).initial(0).n == 0


def test_new_entry_at_fill_price_else_close() -> None:
    rule = StopLoss(0.10)
    r = rule.step(
        rule.initial(4),
        quantity=np.array([10.0, 5.0, 0.0, 3.0]),
        price=np.array([101.0, 50.0, 20.0, 30.0]),
        fill_price=np.array([100.0, NAN, NAN, np.inf]),
    )
    assert_stop(
        r,
        entry=[100, 50, NAN, 30],
        peak=[101, 50, NAN, 30],  # filled at 100, closed at 101: the peak since entry
        side=[1, 1, 0, 1],
        exit_=[False] * 4,
        reasons={},
    )


def test_fixed_stop_threshold_just_above_at_and_below() -> None:
    rule = StopLoss(0.10)
    held = state([100, 100, 100], [100, 100, 100], [1, 1, 1])
    r = rule.step(held, np.array([1.0, 1.0, 1.0]), np.array([90.01, 90.0, 88.0]))
    assert_stop(
        r,
        entry=[100, 100, 100],
        peak=[100, 100, 100],
        side=[1, 1, 1],
        exit_=[False, True, True],
        reasons={
            1: "stop loss: close 90.00 <= 90.00 = entry 100.00 x (1 - 0.10)",
            2: "stop loss: close 88.00 <= 90.00 = entry 100.00 x (1 - 0.10)",
        },
    )
    # not sold yet: the entry is kept and the stop triggers again
    again = rule.step(r.state, np.array([1.0, 1.0, 1.0]), np.array([91.0, 89.5, 88.0]))
    np.testing.assert_array_equal(again.exit, [False, True, True])
    assert again.reasons[1] == "stop loss: close 89.50 <= 90.00 = entry 100.00 x (1 - 0.10)"


def test_stop_can_trigger_on_the_entry_day_from_the_fill_price() -> None:
    rule = StopLoss(0.10)
    r = rule.step(
        rule.initial(2), np.array([1.0, 1.0]), np.array([89.0, 89.0]), np.array([100, NAN])
    )
    assert_stop(
        r,
        entry=[100, 89],
        peak=[100, 89],
        side=[1, 1],
        exit_=[True, False],
        reasons={0: "stop loss: close 89.00 <= 90.00 = entry 100.00 x (1 - 0.10)"},
    )


@pytest.mark.parametrize("missing", [NAN, np.inf, -np.inf])
def test_missing_price_no_trigger_and_state_unchanged(missing: float) -> None:
    rule = StopLoss(0.10, trailing=True)
    before = state([100, 100, NAN], [120, 90, NAN], [1, -1, 0])
    r = rule.step(before, np.array([1.0, -1.0, 0.0]), np.full(3, missing))
    assert r.state == before
    assert not r.exit.any() and r.reasons == {}
    # the same with prices would have triggered both
    hit = rule.step(before, np.array([1.0, -1.0, 0.0]), np.array([100.0, 100.0, NAN]))
    np.testing.assert_array_equal(hit.exit, [True, True, False])


def test_opening_without_any_price_is_entered_at_the_next_close() -> None:
    rule = StopLoss(0.10)
    steps = [([1.0], [NAN]), ([1.0], [80.0]), ([1.0], [72.0])]
    r0, r1, r2 = fold_stop(rule, steps)
    assert_stop(r0, [NAN], [NAN], [0], [False], {})
    assert_stop(r1, [80], [80], [1], [False], {})
    assert_stop(
        r2,
        [80],
        [80],
        [1],
        [True],
        {0: "stop loss: close 72.00 <= 72.00 = entry 80.00 x (1 - 0.10)"},
    )


def test_closed_position_clears_state_even_without_price() -> None:
    rule = StopLoss(0.10)
    held = state([100, 100], [110, 110], [1, 1])
    r = rule.step(held, np.array([0.0, 0.0]), np.array([50.0, NAN]))
    assert_stop(r, [NAN, NAN], [NAN, NAN], [0, 0], [False, False], {})


def test_sign_flip_is_a_new_entry() -> None:
    rule = StopLoss(0.10)
    held = state([100, 100], [130, 80], [1, -1])
    r = rule.step(held, np.array([-2.0, 3.0]), np.array([95.0, 85.0]), np.array([96.0, NAN]))
    # a long at 100 closing at 95 and a short closing at 85: no trigger for the new positions
    # (the short filled at 96 and closed at 95: its trough since entry is 95)
    assert_stop(r, entry=[96, 85], peak=[95, 85], side=[-1, 1], exit_=[False, False], reasons={})
    # the new short stops out above its own entry, not the old long's
    r2 = rule.step(r.state, np.array([-2.0, 3.0]), np.array([105.6, 76.5]))
    assert_stop(
        r2,
        entry=[96, 85],
        peak=[95, 85],
        side=[-1, 1],
        exit_=[True, True],
        reasons={
            0: "stop loss (short): close 105.60 >= 105.60 = entry 96.00 x (1 + 0.10)",
            1: "stop loss: close 76.50 <= 76.50 = entry 85.00 x (1 - 0.10)",
        },
    )


def test_fixed_stop_on_short_positions() -> None:
    rule = StopLoss(0.10)
    steps = [
        ([-5.0, -5.0], [100.0, 100.0]),
        ([-5.0, -5.0], [90.0, 95.0]),  # the trough falls
        ([-5.0, -5.0], [109.99, 110.0]),
    ]
    r0, r1, r2 = fold_stop(rule, steps)
    assert_stop(r0, [100, 100], [100, 100], [-1, -1], [False, False], {})
    assert_stop(r1, [100, 100], [90, 95], [-1, -1], [False, False], {})
    assert_stop(
        r2,
        entry=[100, 100],
        peak=[90, 95],
        side=[-1, -1],
        exit_=[False, True],
        reasons={1: "stop loss (short): close 110.00 >= 110.00 = entry 100.00 x (1 + 0.10)"},
    )


def test_trailing_stop_from_peak_where_fixed_would_not_trigger() -> None:
    steps = [
        ([1.0], [100.0]),
        ([1.0], [110.0]),
        ([1.0], [120.0]),
        ([1.0], [109.0]),
        ([1.0], [107.0]),
    ]
    trailing = fold_stop(StopLoss(0.10, trailing=True), steps)
    np.testing.assert_array_equal([r.state.peak[0] for r in trailing], [100, 110, 120, 120, 120])
    assert [bool(r.exit[0]) for r in trailing] == [False, False, False, False, True]
    assert_stop(
        trailing[-1],
        entry=[100],
        peak=[120],
        side=[1],
        exit_=[True],
        reasons={0: "trailing stop: close 107.00 <= 108.00 = peak 120.00 x (1 - 0.10)"},
    )
    fixed = fold_stop(StopLoss(0.10), steps)
    assert not any(r.exit.any() for r in fixed)
    assert fixed[-1].state == trailing[-1].state


def test_trailing_stop_on_short_from_trough() -> None:
    steps = [
        ([-1.0], [100.0]),
        ([-1.0], [80.0]),
        ([-1.0], [NAN]),
        ([-1.0], [87.99]),
        ([-1.0], [88.0]),
    ]
    results = fold_stop(StopLoss(0.10, trailing=True), steps)
    np.testing.assert_array_equal([r.state.peak[0] for r in results], [100, 80, 80, 80, 80])
    assert [bool(r.exit[0]) for r in results] == [False, False, False, False, True]
    assert results[-1].reasons == {
        0: "trailing stop (short): close 88.00 >= 88.00 = trough 80.00 x (1 + 0.10)"
    }
    assert not any(r.exit.any() for r in fold_stop(StopLoss(0.10), steps))


def test_reason_shows_small_prices_and_stops_faithfully() -> None:
    rule = StopLoss(0.075)
    r = rule.step(state([1.234], [1.234], [1]), np.array([1.0]), np.array([1.1]))
    assert r.reasons == {0: "stop loss: close 1.10 <= 1.1415 = entry 1.234 x (1 - 0.075)"}


def test_step_is_pure() -> None:
    rule = StopLoss(0.10, trailing=True)
    before = state([100, NAN], [100, NAN], [1, 0])
    q, p, f = np.array([1.0, 2.0]), np.array([120.0, 50.0]), np.array([NAN, 49.0])
    copies = [a.copy() for a in (before.entry, before.peak, before.side, q, p, f)]
    r = rule.step(before, q, p, f)
    for a, b in zip((before.entry, before.peak, before.side, q, p, f), copies, strict=True):
        np.testing.assert_array_equal(a, b)
    assert r.state.peak[0] == 120 and r.state.entry[1] == 49
    with pytest.raises(ValueError, match="read-only"):
        r.state.entry[0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        r.exit[0] = True
    assert rule.step(before, q, p, f) == r


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stop": 1.5}, "StopLoss: stop must be in (0, 1), got 1.5"),
        ({"stop": 0.0}, "StopLoss: stop must be in (0, 1), got 0.0"),
        ({"stop": math.nan}, "StopLoss: stop must be in (0, 1), got nan"),
        ({"stop": "0.1"}, "StopLoss: stop must be a number, got '0.1'"),
        ({"stop": 0.1, "trailing": "yes"}, "StopLoss: trailing must be a bool, got 'yes'"),
    ],
)
def test_stop_loss_parameter_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        StopLoss(**kwargs)
    assert str(err.value) == message


def test_stop_loss_input_validation() -> None:
    rule = StopLoss(0.1)
    s = rule.initial(2)
    with pytest.raises(ValueError, match="quantity must have length 2"):
        rule.step(s, np.array([1.0]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="quantity must be finite"):
        rule.step(s, np.array([1.0, NAN]), np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="fill_price must have length 2"):
        rule.step(s, np.array([1.0, 1.0]), np.array([1.0, 2.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="n must be an int >= 0, got -1"):
        rule.initial(-1)
    with pytest.raises(ValueError, match="finite exactly where side is non-zero"):
        state([100, NAN], [100, 100], [1, 0])
    with pytest.raises(ValueError, match="side must hold -1, 0 or 1"):
        state([100], [100], [2])
    # side omitted: finite entries are longs
    np.testing.assert_array_equal(StopState(np.array([100, NAN]), np.array([90, NAN])).side, [1, 0])


@st.composite
def stop_paths(draw: st.DrawFn) -> tuple[StopLoss, list[tuple[np.ndarray, ...]]]:
    """Positions that change on ~20% of days, random-walk closes with ~10% missing, fills
    near the close or missing; generated from a drawn seed (fast, reproducible)."""
    rule = StopLoss(draw(st.sampled_from([0.02, 0.05, 0.1])), draw(st.booleans()))
    n, length = draw(st.integers(1, 4)), draw(st.integers(1, 30))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    trades = rng.choice([-2.0, -1.0, 0.0, 1.0, 2.0], size=(length, n))
    q = trades.copy()
    for t in range(1, length):
        q[t] = np.where(rng.random(n) < 0.2, trades[t], q[t - 1])
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.04, size=(length, n)), axis=0))
    fill = np.where(
        rng.random((length, n)) < 0.5, NAN, close * rng.uniform(0.97, 1.03, (length, n))
    )
    close[rng.random((length, n)) < 0.1] = NAN
    return rule, [(q[t], close[t], fill[t]) for t in range(length)]


@settings(max_examples=50, deadline=None)
@given(stop_paths())
def test_stop_loss_symbols_are_independent_and_steps_deterministic(case) -> None:
    rule, steps = case
    full = fold_stop(rule, steps)
    assert fold_stop(rule, steps) == full
    for i in range(len(steps[0][0])):
        alone = fold_stop(rule, [tuple(a[i : i + 1] for a in s) for s in steps])
        for k, (r, a) in enumerate(zip(full, alone, strict=True)):
            np.testing.assert_array_equal(r.state.entry[i : i + 1], a.state.entry, str(k))
            np.testing.assert_array_equal(r.state.peak[i : i + 1], a.state.peak, str(k))
            assert r.state.side[i] == a.state.side[0], k
            assert r.exit[i] == a.exit[0], k
            assert r.reasons.get(i) == a.reasons.get(0), k
    for (q, p, _), r in zip(steps, full, strict=True):
        # an exit needs a position held and a price today
        assert not (r.exit & ((q == 0) | np.isnan(p))).any()
        # the state follows the position: flat where flat, else flat or the position's sign
        assert ((r.state.side == 0) | (r.state.side == np.sign(q))).all()
        assert (r.state.side[q == 0] == 0).all()


# --------------------------------------------------------------------------- circuit breaker


def run(breaker: CircuitBreaker, navs: list[float]) -> tuple[list[BreakerResult], list[Transition]]:
    return breaker.run([(day(k), v) for k, v in enumerate(navs)])


def modes(results: list[BreakerResult]) -> list[BreakerMode]:
    return [r.state.mode for r in results]


def test_initial_state() -> None:
    assert CircuitBreaker.initial(100.0) == BreakerState(ACTIVE, 100.0, 100.0, 0, None)
    assert CircuitBreaker.initial(100.0, D0).since == D0


def test_active_to_reducing() -> None:
    results, transitions = run(CircuitBreaker(), [100, 97, 94, 91, 89])
    assert modes(results) == [ACTIVE, ACTIVE, ACTIVE, REDUCING]
    assert [r.exposure for r in results] == [1.0, 1.0, 1.0, 0.5]
    assert transitions == [
        Transition(day(4), ACTIVE, REDUCING, "drawdown 11.0% >= 10.0%: reduce exposure to 50%")
    ]
    assert results[-1].transition == transitions[0]
    assert results[-1].state == BreakerState(REDUCING, 100.0, 89.0, 0, day(4))


def test_active_to_reducing_exactly_at_threshold() -> None:
    results, transitions = run(CircuitBreaker(reduce_to=0.25), [100, 96, 92, 90])
    assert modes(results) == [ACTIVE, ACTIVE, REDUCING]
    assert results[-1].exposure == 0.25
    assert transitions[0].reason == "drawdown 10.0% >= 10.0%: reduce exposure to 25%"


def test_reducing_to_active() -> None:
    results, transitions = run(CircuitBreaker(), [100, 97, 94, 91, 89, 92, 94.99, 95, 96])
    assert modes(results) == [ACTIVE] * 3 + [REDUCING] * 3 + [ACTIVE, ACTIVE]
    assert [r.exposure for r in results] == [1.0] * 3 + [0.5] * 3 + [1.0, 1.0]
    assert transitions[-1] == Transition(
        day(7), REDUCING, ACTIVE, "drawdown 5.0% <= 5.0%: recovered"
    )
    assert results[-1].state == BreakerState(ACTIVE, 100.0, 96.0, 0, day(7))


def test_active_to_halted_by_drawdown() -> None:
    results, transitions = run(CircuitBreaker(max_daily_loss=None), [100, 79])
    assert transitions == [Transition(day(1), ACTIVE, HALTED, "drawdown 21.0% >= 20.0%: halt")]
    assert results[0].exposure == 0.0
    assert results[0].state == BreakerState(HALTED, 100.0, 79.0, 0, day(1))
    # with the daily-loss trigger on, both reasons are given
    _, both = run(CircuitBreaker(), [100, 79])
    assert both[0].reason == "daily loss 21.0% >= 5.0%; drawdown 21.0% >= 20.0%: halt"


def test_active_to_halted_by_daily_loss() -> None:
    results, transitions = run(CircuitBreaker(), [100, 120, 114.1, 120, 114])
    assert modes(results) == [ACTIVE, ACTIVE, ACTIVE, HALTED]
    assert [r.exposure for r in results] == [1.0, 1.0, 1.0, 0.0]
    assert transitions == [Transition(day(4), ACTIVE, HALTED, "daily loss 5.0% >= 5.0%: halt")]
    assert results[-1].state.peak_nav == 120.0


def test_reducing_to_halted() -> None:
    # daily losses stay under 5%: 4.0, 4.2, 4.3, 4.5, 4.2, 0.6
    results, transitions = run(CircuitBreaker(), [100, 96, 92, 88, 84, 80.5, 80])
    assert modes(results) == [ACTIVE, ACTIVE, REDUCING, REDUCING, REDUCING, HALTED]
    assert [r.exposure for r in results] == [1.0, 1.0, 0.5, 0.5, 0.5, 0.0]
    assert transitions[-1] == Transition(day(6), REDUCING, HALTED, "drawdown 20.0% >= 20.0%: halt")
    assert results[-1].state == BreakerState(HALTED, 100.0, 80.0, 0, day(6))
    _, by_loss = run(CircuitBreaker(), [100, 96, 92, 88, 83])
    assert by_loss[-1] == Transition(day(4), REDUCING, HALTED, "daily loss 5.7% >= 5.0%: halt")


@pytest.mark.parametrize("cooldown", [1, 3, 5])
def test_halted_to_active_after_exactly_cooldown_sessions(cooldown: int) -> None:
    # halt on day 1; while halted the NAV keeps moving (a big daily loss, a new low)
    halted_navs = [70.0, 50.0, 52.0, 60.0, 58.0][: cooldown - 1]
    navs = [100, 75, *halted_navs, 55, 54]
    results, transitions = run(CircuitBreaker(cooldown_sessions=cooldown), navs)
    assert modes(results) == [HALTED] * cooldown + [ACTIVE, ACTIVE]
    assert [r.exposure for r in results] == [0.0] * cooldown + [1.0, 1.0]
    assert [r.state.halted_sessions for r in results] == [*range(cooldown), 0, 0]
    sessions = "session" if cooldown == 1 else "sessions"
    resume = Transition(
        day(1 + cooldown), HALTED, ACTIVE, f"cool-down of {cooldown} {sessions} over: resume"
    )
    assert transitions == [
        Transition(
            day(1), ACTIVE, HALTED, "daily loss 25.0% >= 5.0%; drawdown 25.0% >= 20.0%: halt"
        ),
        resume,
    ]
    # the peak is reset to the resume day's NAV, so the drawdown does not re-halt
    assert results[cooldown].state == BreakerState(ACTIVE, 55.0, 55.0, 0, day(1 + cooldown))
    assert results[cooldown + 1].state == BreakerState(ACTIVE, 55.0, 54.0, 0, day(1 + cooldown))


def test_halt_can_recur_after_resuming() -> None:
    results, transitions = run(CircuitBreaker(cooldown_sessions=1), [100, 90, 90, 80])
    assert modes(results) == [HALTED, ACTIVE, HALTED]
    assert transitions[-1].reason == "daily loss 11.1% >= 5.0%: halt"


@pytest.mark.parametrize(("mode", "exposure"), [(ACTIVE, 1.0), (REDUCING, 0.3), (HALTED, 0.0)])
def test_exposure_per_mode(mode: BreakerMode, exposure: float) -> None:
    breaker = CircuitBreaker(reduce_to=0.3, cooldown_sessions=10)
    assert breaker.exposure(mode) == exposure
    # a quiet session keeps the mode (restored from the saved value string)
    halted = 2 if mode is HALTED else 0
    s = BreakerState(mode.value, 100.0, 92.0, halted, D0)  # type: ignore[arg-type]
    r = breaker.step(s, day(1), 92.0)
    assert r.transition is None
    assert r.state == BreakerState(mode, 100.0, 92.0, halted + 1 if halted else 0, D0)
    assert r.exposure == exposure


def test_disabled_triggers() -> None:
    crash = [100, 94, 88, 82, 76, 70, 40]
    _, none_at_all = run(
        CircuitBreaker(reduce_drawdown=None, halt_drawdown=None, max_daily_loss=None), crash
    )
    assert none_at_all == []
    only_reduce, t = run(CircuitBreaker(halt_drawdown=None, max_daily_loss=None), crash)
    assert modes(only_reduce) == [ACTIVE] + [REDUCING] * 5
    assert [x.to_mode for x in t] == [REDUCING]
    no_reduce, t = run(CircuitBreaker(reduce_drawdown=None, max_daily_loss=None), crash)
    assert modes(no_reduce) == [ACTIVE] * 3 + [HALTED] * 3
    assert [x.reason for x in t] == ["drawdown 24.0% >= 20.0%: halt"]
    only_loss, t = run(CircuitBreaker(reduce_drawdown=None, halt_drawdown=None), crash)
    assert modes(only_loss) == [HALTED] * 5 + [ACTIVE]
    assert t[0].reason == "daily loss 6.0% >= 5.0%: halt"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reduce_drawdown": 0.0}, "reduce_drawdown must be in (0, 1), got 0.0"),
        ({"reduce_to": 1.0}, "reduce_to must be in (0, 1), got 1.0"),
        ({"reduce_to": 0}, "reduce_to must be in (0, 1), got 0"),
        ({"halt_drawdown": 1.2}, "halt_drawdown must be in (0, 1), got 1.2"),
        ({"halt_drawdown": 0.1}, "halt_drawdown must be > reduce_drawdown (0.1), got 0.1"),
        ({"max_daily_loss": math.nan}, "max_daily_loss must be in (0, 1), got nan"),
        ({"max_daily_loss": -0.05}, "max_daily_loss must be in (0, 1), got -0.05"),
        ({"recover_drawdown": 0.1}, "recover_drawdown must be < reduce_drawdown (0.1), got 0.1"),
        ({"recover_drawdown": -0.01}, "recover_drawdown must be in [0, 1), got -0.01"),
        ({"cooldown_sessions": 0}, "cooldown_sessions must be an int >= 1, got 0"),
        ({"cooldown_sessions": 2.5}, "cooldown_sessions must be an int >= 1, got 2.5"),
        ({"cooldown_sessions": True}, "cooldown_sessions must be an int >= 1, got True"),
    ],
)
def test_breaker_parameter_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        CircuitBreaker(**kwargs)
    assert str(err.value) == f"CircuitBreaker: {message}"


def test_breaker_parameters_valid_edge_cases() -> None:
    CircuitBreaker(recover_drawdown=0.0)
    CircuitBreaker(reduce_drawdown=None, recover_drawdown=0.5, halt_drawdown=0.05)
    CircuitBreaker(halt_drawdown=None, reduce_drawdown=0.3)


@pytest.mark.parametrize("bad", [0.0, -5.0, math.nan, math.inf])
def test_bad_nav_names_day_and_value(bad: float) -> None:
    breaker = CircuitBreaker()
    with pytest.raises(ValueError) as err:
        breaker.step(breaker.initial(100.0), dt.date(2024, 3, 5), bad)
    assert (
        str(err.value) == f"CircuitBreaker: nav on 2024-03-05 must be finite and > 0, got {bad!r}"
    )
    with pytest.raises(ValueError, match=r"nav on 2024-03-05 must be finite and > 0"):
        breaker.run([(day(0), 100.0), (dt.date(2024, 3, 5), bad)])
    with pytest.raises(ValueError, match=r"nav on None must be finite and > 0"):
        breaker.initial(bad)


def test_run_first_nav_only_initialises() -> None:
    breaker = CircuitBreaker()
    assert breaker.run([]) == ([], [])
    assert breaker.run([(day(0), 50.0)]) == ([], [])
    results, _ = breaker.run([(day(0), 50.0), (day(1), 49.0)])
    assert len(results) == 1
    assert results[0].state == BreakerState(ACTIVE, 50.0, 49.0, 0, day(0))


# --------------------------------------------------------------------------- breaker property


@st.composite
def nav_paths(draw: st.DrawFn) -> tuple[CircuitBreaker, list[tuple[dt.date, float]]]:
    reduce = draw(st.sampled_from([None, 0.05, 0.1]))
    breaker = CircuitBreaker(
        reduce_drawdown=reduce,
        reduce_to=draw(st.sampled_from([0.25, 0.5])),
        halt_drawdown=draw(st.sampled_from([None, 0.15, 0.25])),
        max_daily_loss=draw(st.sampled_from([None, 0.03, 0.06])),
        recover_drawdown=0.0 if reduce is None else reduce / 2,
        cooldown_sessions=draw(st.integers(1, 6)),
    )
    # random-walk NAVs from a drawn seed: long enough drifting paths to reduce, recover,
    # halt and resume (hypothesis floats favour extremes and short lists)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    sigma = draw(st.sampled_from([0.01, 0.02, 0.03]))
    returns = rng.normal(0.0, sigma, size=draw(st.sampled_from([0, 1, 2, 3, 10, 40, 80, 120])))
    navs = [100.0, *(100.0 * np.cumprod(1.0 + returns)).tolist()]
    return breaker, [(day(k), v) for k, v in enumerate(navs)]


@settings(max_examples=100, deadline=None)
@given(nav_paths(), st.data())
def test_breaker_halted_iff_recent_halt_and_no_lookahead(case, data: st.DataObject) -> None:
    breaker, navs = case
    results, transitions = breaker.run(navs)
    assert len(results) == len(navs) - 1
    assert transitions == [r.transition for r in results if r.transition is not None]
    cd = breaker.cooldown_sessions
    halts = [k for k, r in enumerate(results) if r.transition and r.transition.to_mode is HALTED]
    for k, r in enumerate(results):
        recent_halt = any(k - cd < j <= k for j in halts)
        assert (r.state.mode is HALTED) == recent_halt, k
        assert r.exposure in {1.0, breaker.reduce_to, 0.0}
        assert r.exposure == {ACTIVE: 1.0, REDUCING: breaker.reduce_to, HALTED: 0.0}[r.state.mode]
        before = results[k - 1].state.mode if k else ACTIVE
        assert (r.transition is None) == (r.state.mode is before), k
        assert r.state.last_nav == navs[k + 1][1]
        assert r.state.peak_nav >= r.state.last_nav
    # no look-ahead: a prefix of the path gives the prefix of the results
    m = data.draw(st.integers(0, len(navs)), label="prefix")
    prefix_results, prefix_transitions = breaker.run(navs[:m])
    assert prefix_results == results[: max(m - 1, 0)]
    assert prefix_transitions == [r.transition for r in prefix_results if r.transition]
    if m:
        s = breaker.initial(navs[0][1], navs[0][0])
        for k, (d, v) in enumerate(navs[1:m]):
            r = breaker.step(s, d, v)
            assert r == results[k]
            s = r.state


# --------------------------------------------------------------------------- breaker orders


def test_current_targets_follow_the_latest_weights_less_stops_and_delistings() -> None:
    # Five names: a rebalance gives A..D weights (E none); then a session without weights in
    # which the stop exits B and D is delisted; then a rebalance that gives B again.
    start = np.full(5, NAN)
    rebalance = np.array([0.3, 0.2, 0.0, 0.5, NAN])
    none = np.zeros(5, dtype=bool)
    after = current_targets(start, rebalance, none, none)
    np.testing.assert_array_equal(after, [0.3, 0.2, 0.0, 0.5, NAN])
    quiet = current_targets(
        after, np.full(5, NAN), np.array([0, 1, 0, 0, 0], bool), np.array([0, 0, 0, 1, 0], bool)
    )
    np.testing.assert_array_equal(quiet, [0.3, 0.0, 0.0, NAN, NAN])
    again = current_targets(quiet, np.array([NAN, 0.4, NAN, NAN, 0.1]), none, none)
    np.testing.assert_array_equal(again, [0.3, 0.4, 0.0, NAN, 0.1])
    np.testing.assert_array_equal(after, [0.3, 0.2, 0.0, 0.5, NAN])  # inputs untouched


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        (ACTIVE, [0.0, 0.25, 0.4, NAN]),  # resume: today's decisions, else the targets
        (REDUCING, [0.0, 0.25, 0.35, 0.1]),  # leave ACTIVE: today's decisions, else held
        (HALTED, [0.0, 0.25, 0.35, 0.1]),
    ],
)
def test_breaker_targets_fill_what_today_left_undecided(mode, expected) -> None:
    decided = np.array([0.0, 0.25, NAN, NAN])  # a stop exit, a rebalance weight, two NaN
    current = np.array([0.3, 0.3, 0.4, NAN])
    held = np.array([0.2, 0.3, 0.35, 0.1])
    np.testing.assert_array_equal(breaker_targets(mode, decided, current, held), expected)

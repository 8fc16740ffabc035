"""The strategy's risk rules against live state, hand-computed, with the state kept between
sessions and re-runs of a session deciding the same way."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from qpipe.live.broker import Position
from qpipe.live.risk_book import RiskBook, RiskStateAhead
from qpipe.strategies.risk import CircuitBreaker, StopLoss
from qpipe_tests.backtest.test_rules import (
    HALT_BARS,
    HALT_ON_LOSS,
    RECOVER_BARS,
    REDUCE,
    make_bars,
    run,
)

NAN = np.nan

D1, D2, D3 = dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)


def held(**positions: tuple[float, float]) -> dict[str, Position]:
    return {s: Position(s, q, c) for s, (q, c) in positions.items()}


def test_fixed_stop_enters_at_average_cost_and_exits(tmp_path):
    book = RiskBook(tmp_path, "s", StopLoss(0.15), None)
    targets = pd.Series({"A": np.nan, "B": 0.3})
    # A bought at 100: 85.01 is above 100 x 0.85 = 85, no exit
    out = book.apply(D1, targets, held(A=(10, 100.0)), pd.Series({"A": 85.01, "B": 50.0}), 1e4)
    assert out.events.empty and np.isnan(out.targets["A"])
    # next session 85.00 reaches the stop: A's target becomes 0, the reason states the numbers
    out = book.apply(D2, targets, held(A=(10, 100.0)), pd.Series({"A": 85.0, "B": 50.0}), 1e4)
    assert out.targets["A"] == 0.0 and out.targets["B"] == 0.3
    assert out.events.to_dict("records") == [
        {"symbol": "A", "rule": "stop_loss", "reason": "stop loss: close 85.00 <= 85.00 = entry "
         "100.00 x (1 - 0.15)"}
    ]  # fmt: skip


def test_trailing_stop_keeps_its_peak_and_a_rerun_does_not_step_twice(tmp_path):
    book = RiskBook(tmp_path, "s", StopLoss(0.10, trailing=True), None)
    pos = held(A=(5, 100.0))
    book.apply(D1, pd.Series(dtype=float), pos, pd.Series({"A": 120.0}), 1e4)  # peak 120
    first = book.apply(D2, pd.Series(dtype=float), pos, pd.Series({"A": 108.5}), 1e4)
    assert first.events.empty  # 108.5 > 120 x 0.9 = 108
    again = book.apply(D2, pd.Series(dtype=float), pos, pd.Series({"A": 108.5}), 1e4)
    assert again.events.empty
    hit = book.apply(D3, pd.Series(dtype=float), pos, pd.Series({"A": 108.0}), 1e4)
    assert hit.targets["A"] == 0.0
    assert "peak 120.00" in hit.events["reason"].iloc[0]
    # a re-run of D3 decides the same from D3's "before" state
    assert (
        book.apply(D3, pd.Series(dtype=float), pos, pd.Series({"A": 108.0}), 1e4).targets["A"]
        == 0.0
    )


def test_stop_forgets_a_closed_position(tmp_path):
    book = RiskBook(tmp_path, "s", StopLoss(0.10), None)
    book.apply(D1, pd.Series(dtype=float), held(A=(5, 100.0)), pd.Series({"A": 100.0}), 1e4)
    book.apply(D2, pd.Series(dtype=float), {}, pd.Series({"A": 50.0}), 1e4)  # sold
    out = book.apply(D3, pd.Series(dtype=float), held(A=(5, 50.0)), pd.Series({"A": 50.0}), 1e4)
    assert out.events.empty  # re-entered at 50, not measured against the old 100


def test_breaker_halts_on_a_daily_loss_and_flattens_at_once(tmp_path):
    breaker = CircuitBreaker(reduce_drawdown=0.10, halt_drawdown=0.20, max_daily_loss=0.07)
    book = RiskBook(tmp_path, "s", None, breaker)
    pos = held(A=(10, 100.0), B=(10, 50.0))
    prices = pd.Series({"A": 100.0, "B": 50.0})
    first = book.apply(D1, pd.Series({"A": np.nan, "B": np.nan}), pos, prices, 10_000.0)
    assert first.mode == "active" and first.events.empty
    # 9,300 is a 7% daily loss: halted; no-decision targets become held weights, then x 0
    out = book.apply(D2, pd.Series({"A": np.nan, "B": 0.2, "C": 0.1}), pos, prices, 9_300.0)
    assert out.mode == "halted"
    assert out.targets.to_dict() == {"A": 0.0, "B": 0.0, "C": 0.0}
    assert out.events["reason"].tolist() == ["daily loss 7.0% >= 7.0%: halt"]


def test_breaker_reduces_exposure_on_drawdown(tmp_path):
    breaker = CircuitBreaker(reduce_drawdown=0.10, reduce_to=0.5, halt_drawdown=0.30,
                             max_daily_loss=None)  # fmt: skip
    book = RiskBook(tmp_path, "s", None, breaker)
    book.apply(D1, pd.Series(dtype=float), {}, pd.Series(dtype=float), 10_000.0)
    book.apply(D2, pd.Series(dtype=float), {}, pd.Series(dtype=float), 10_500.0)  # new peak
    out = book.apply(D3, pd.Series({"A": 0.4}), {}, pd.Series({"A": 10.0}), 9_400.0)
    assert out.mode == "reducing"  # 1 - 9,400 / 10,500 = 10.5%
    assert out.targets["A"] == pytest.approx(0.2)


def test_an_earlier_session_than_the_state_is_refused(tmp_path):
    book = RiskBook(tmp_path, "s", StopLoss(0.1), CircuitBreaker())
    book.apply(D2, pd.Series(dtype=float), {}, pd.Series(dtype=float), 1e4)
    with pytest.raises(RiskStateAhead, match="already at session 2024-01-03"):
        book.apply(D1, pd.Series(dtype=float), {}, pd.Series(dtype=float), 1e4)


# The breaker's transitions decide the same orders live as in the engine: the RiskBook is fed
# each session's inputs as the engine saw them at its decision (held shares, closes, NAV) and
# gives the orders the engine's hand-computed cases in qpipe_tests/backtest/test_rules.py
# traded: after a halt's cool-down and on recovering from REDUCING, back to the strategy's
# current targets (less the name the stop exited), at once.

HALT_ORDERS = [[0.5, 0.5], [NAN, NAN], [0.0, 0.0], [NAN, NAN], [0.5, 0.5], [NAN, NAN], [NAN, NAN]]
RECOVER_ORDERS = [[0.5, 0.5], [NAN, NAN], [0.25, 0.25], [NAN, 0.0], [NAN, NAN], [0.5, 0.0],
                  [NAN, NAN]]  # fmt: skip


@pytest.mark.parametrize("fill", ["next_open", "close"])
@pytest.mark.parametrize(("case", "orders"), [("halt", HALT_ORDERS), ("recover", RECOVER_ORDERS)])
def test_breaker_transitions_order_as_the_engine(tmp_path, fill, case, orders):
    if case == "halt":
        bars, stop, breaker = make_bars(HALT_BARS["open"], HALT_BARS["close"]), None, HALT_ON_LOSS
    else:
        bars, stop, breaker = (
            make_bars(RECOVER_BARS["open"], RECOVER_BARS["close"]),
            StopLoss(0.20),
            REDUCE,
        )
    result, symbols = run(bars, {0: [0.5, 0.5]}, stop_loss=stop, circuit_breaker=breaker,
                          fill=fill, initial_cash=1000.0)  # fmt: skip
    book = RiskBook(tmp_path, "s", stop, breaker)
    closes = bars["close"].to_pandas()
    positions, cash = result.positions, result.daily["cash"]
    got = []
    for t, day in enumerate(closes.index):
        if fill == "close":  # decided before the day's trades, on yesterday's book
            qty = positions.iloc[t - 1] if t else positions.iloc[0] * 0.0
            nav = (cash.iloc[t - 1] if t else 1000.0) + float((qty * closes.iloc[t]).sum())
        else:  # decided after the day's fills at the open
            qty, nav = positions.iloc[t], float(result.equity.iloc[t])
        held = {s: Position(s, float(q), 10.0 if s == "A" else 20.0) for s, q in qty.items() if q}
        if case == "recover":
            held = {s: Position(s, p.quantity, 10.0) for s, p in held.items()}  # both bought at 10
        weights = pd.Series([0.5, 0.5] if t == 0 else [NAN, NAN], index=symbols)
        out = book.apply(day.date(), weights, held, closes.iloc[t], nav)
        got.append(out.targets.reindex(symbols).tolist())
    np.testing.assert_array_equal(np.array(got), np.array(orders))


def test_resume_starts_from_the_last_rebalance_and_drops_delisted_names(tmp_path):
    # No saved targets yet: the last rebalance's weights (A 0.6, B 0.4) are the current ones.
    breaker = CircuitBreaker(reduce_drawdown=None, halt_drawdown=None, max_daily_loss=0.10,
                             cooldown_sessions=1)  # fmt: skip
    book = RiskBook(tmp_path, "s", None, breaker)
    previous = pd.Series({"A": 0.6, "B": 0.4})
    none = pd.Series({"A": NAN, "B": NAN})
    pos, prices = held(A=(60, 100.0), B=(20, 200.0)), pd.Series({"A": 100.0, "B": 200.0})
    assert book.apply(D1, none, pos, prices, 10_000.0, previous=previous).mode == "active"
    halt = book.apply(D2, none, pos, prices, 8_500.0)  # a 15% daily loss
    assert halt.mode == "halted" and halt.targets.to_dict() == {"A": 0.0, "B": 0.0}
    # The cool-down of one session is over on D3; B was delisted meanwhile: A back to 0.6.
    for _ in range(2):  # a re-run of D3 decides the same
        out = book.apply(D3, none, {}, pd.Series({"A": 100.0}), 8_500.0, delisted=["B"])
        assert out.mode == "active"
        assert out.targets["A"] == 0.6 and np.isnan(out.targets["B"])
        assert out.events["reason"].tolist() == ["cool-down of 1 session over: resume"]


def test_a_dry_run_decides_the_same_and_saves_nothing(tmp_path):
    breaker = CircuitBreaker(reduce_drawdown=0.1, halt_drawdown=0.5, max_daily_loss=None)
    book = RiskBook(tmp_path, "s", StopLoss(0.15), breaker)
    pos = held(A=(10, 100.0))
    targets = pd.Series({"A": 0.5})
    book.apply(D1, targets, pos, pd.Series({"A": 100.0}), 1e4)  # saved: peak NAV 10,000
    files = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert files  # the real run saved its state
    # D2: A at 84 hits the stop (84 <= 85), NAV 8,900 is 11% below the peak: reducing
    dry = book.apply(D2, targets, pos, pd.Series({"A": 84.0}), 8_900.0, save=False)
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == files
    assert dry.mode == "reducing" and dry.targets["A"] == 0.0
    assert set(dry.events["rule"]) == {"stop_loss", "circuit_breaker"}
    # an earlier session after the dry run: the state was never moved past D1
    book.apply(D1, targets, pos, pd.Series({"A": 100.0}), 1e4, save=False)
    real = book.apply(D2, targets, pos, pd.Series({"A": 84.0}), 8_900.0)
    pd.testing.assert_series_equal(real.targets, dry.targets)
    pd.testing.assert_frame_equal(real.events, dry.events)
    with pytest.raises(RiskStateAhead, match="already at session 2024-01-03"):
        book.apply(D1, targets, pos, pd.Series({"A": 100.0}), 1e4, save=False)

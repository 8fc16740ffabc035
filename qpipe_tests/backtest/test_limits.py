"""The pre-trade limits in the backtest engine: a session whose orders live would refuse
(:func:`qpipe.rulebook.limits.refusal`, the live trader's rule) trades nothing of them, and
the daily frame says so (``refused``, ``refused_limit``, ``refused_notional``).

Hand-computed cases on a few symbols with a halt and a late listing; a property test of the
rule against a plain loop; the live trader on the paper broker and the engine refusing the
same plan from the same settings."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.runner import engine_config
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.live.trader import Limits, LiveTrader, RebalanceRefused
from qpipe.rulebook.limits import LIMITS, limit_params, refusal
from qpipe.settings import parse_settings
from qpipe_tests.backtest.test_rules import make_bars, run
from qpipe_tests.conftest import two_day_lake

NAN = np.nan


def test_an_order_above_the_cap_refuses_the_whole_session_with_a_halt_and_a_late_listing():
    # d0: w = (0.5, 0.5, -) of V = 1,000,000: orders of 500,000 each > 400,000: refused,
    # nothing traded (not A either). d2: B halted. d3: w = 0.3 each: 300,000 each (A 12 ->
    # 25,000; B 25 -> 12,000; C 50, listed on d2 -> 6,000), all under the cap: traded.
    closes = {"A": [10, 10, 12, 12, 12, 12], "B": [20, 20, NAN, 25, 25, 25],
              "C": [NAN, NAN, 50, 50, 50, 50]}  # fmt: skip
    bars = make_bars(closes, closes)
    rows = {0: [0.5, 0.5, NAN], 3: [0.3, 0.3, 0.3]}
    result, _ = run(bars, rows, fill="close", max_order_notional=400_000.0)
    daily = result.daily
    assert daily["refused"].tolist() == [1, 0, 0, 0, 0, 0]
    assert daily["refused_limit"].tolist() == ["max_order_notional", "", "", "", "", ""]
    assert daily["refused_notional"].tolist() == [1_000_000.0, 0, 0, 0, 0, 0]
    assert result.fills["date"].dt.strftime("%d").tolist() == ["04", "04", "04"]  # d3 only
    np.testing.assert_allclose(result.positions.iloc[2], [0, 0, 0])
    np.testing.assert_allclose(result.positions.iloc[-1], [25_000, 12_000, 6_000])
    np.testing.assert_allclose(result.equity, 1_000_000.0)
    assert any("live would refuse the rebalance of 1 session(s)" in w for w in result.warnings)
    assert any("2024-01-01 (limits.max_order_notional)" in w for w in result.warnings)
    # Without the cap (the default: no limit) d0 trades A 50,000 and B 25,000.
    free, _ = run(bars, rows, fill="close")
    np.testing.assert_allclose(free.positions.iloc[0], [50_000, 25_000, 0])
    assert free.daily["refused"].sum() == 0 and not free.warnings


def test_a_turnover_above_the_cap_is_refused_on_the_fill_session():
    # next_open. d0: all in A (1,000,000 / 10 = 100,000 shares), filled d1: turnover 1.0.
    # d2: switch to B, filled d3: sell 1,000,000 + buy 1,000,000 = 2.0 x NAV > 1.5: refused
    # at d3, A kept. Under 2.0 (the default of limits.max_turnover) the switch trades.
    px = {"A": [10.0] * 5, "B": [10.0] * 5}
    bars = make_bars(px, px)
    rows = {0: [1.0, 0.0], 2: [0.0, 1.0]}
    result, _ = run(bars, rows, max_turnover=1.5)
    assert result.daily["refused"].tolist() == [0, 0, 0, 1, 0]
    assert result.daily["refused_limit"].iloc[3] == "max_turnover"
    assert result.daily["refused_notional"].iloc[3] == pytest.approx(2_000_000.0)
    np.testing.assert_allclose(result.positions.iloc[-1], [100_000, 0])
    traded, _ = run(bars, rows, max_turnover=2.0)
    np.testing.assert_allclose(traded.positions.iloc[-1], [0, 100_000])
    assert traded.daily["refused"].sum() == 0


@pytest.mark.parametrize(
    ("weights", "limits", "limit"),
    [([0.6, 0.4], {"max_weight": 0.5}, "max_weight"),
     ([0.5, 0.5], {"max_gross": 0.9}, "max_gross")],
)  # fmt: skip
def test_weights_above_a_limit_refuse_the_session(weights, limits, limit):
    px = {"A": [10.0] * 3, "B": [20.0] * 3}
    result, _ = run(make_bars(px, px), {1: weights}, fill="close", **limits)
    assert result.daily["refused"].tolist() == [0, 1, 0]
    assert result.daily["refused_limit"].iloc[1] == limit
    # 1,000,000 x (w_A + w_B) of orders not traded.
    assert result.daily["refused_notional"].iloc[1] == pytest.approx(1_000_000.0)
    assert result.fills.empty and (result.positions.to_numpy() == 0).all()


def test_the_backtest_reads_the_refusal_limits_of_the_settings():
    keys = ("max_weight", "max_gross", "max_order_notional", "max_turnover")
    plain = engine_config(parse_settings({}).backtest)
    assert tuple(getattr(plain, k) for k in keys) == (1.0, 1.0, None, 2.0)
    raw = {"limits": {"max_weight": 0.4, "max_gross": 0.9, "max_order_notional": 5e4,
                      "max_turnover": 1.2}}  # fmt: skip
    cfg = engine_config(parse_settings(raw).backtest)
    assert tuple(getattr(cfg, k) for k in keys) == (0.4, 0.9, 5e4, 1.2)
    old = engine_config(parse_settings({"live": {"max_order_notional": 7e4}}).backtest)
    assert old.max_order_notional == 7e4
    assert BacktestConfig().max_order_notional is None  # the engine alone: no limit


def _plain_refusal(target, notional, value, lim):
    """The refusal rule written out (the live trader's checks, in its order)."""
    w = [x for x in target if not np.isnan(x)]
    for i, x in enumerate(target):
        if not np.isnan(x) and abs(x) > lim["max_weight"] + 1e-12:
            return "max_weight", i
    if sum(abs(x) for x in w) > lim["max_gross"] + 1e-9:
        return "max_gross", -1
    for k, v in enumerate(notional):
        if v > lim["max_order_notional"]:
            return "max_order_notional", k
    if sum(notional) > 0 and sum(notional) / value > lim["max_turnover"] + 1e-12:
        return "max_turnover", -1
    return "", -1


@settings(max_examples=200, deadline=None)
@given(
    target=st.lists(st.one_of(st.just(NAN), st.floats(-1.0, 1.0)), max_size=6),
    notional=st.lists(st.floats(0.0, 2e5), max_size=6),
    value=st.floats(1e3, 1e6),
    lim=st.fixed_dictionaries(
        {
            "max_weight": st.floats(0.05, 1.0),
            "max_gross": st.floats(0.1, 1.0),
            "max_order_notional": st.floats(1e3, 3e5),
            "max_turnover": st.floats(0.1, 3.0),
        }
    ),
)
def test_refusal_is_the_rule_written_out(target, notional, value, lim):
    code, index = refusal(np.array(target, float), np.array(notional, float), value,
                          limit_params(**lim))  # fmt: skip
    assert (("", *LIMITS)[code], index) == _plain_refusal(target, notional, value, lim)


def test_no_limit_refuses_nothing():
    code, _ = refusal(np.array([5.0, NAN]), np.array([1e12]), 1.0, limit_params())
    assert code == 0
    with pytest.raises(ValueError, match="max_turnover"):
        limit_params(max_turnover=0.0)


@pytest.mark.parametrize(("cap", "refused"), [(3_998.0, True), (4_001.0, False)])
def test_live_and_the_backtest_refuse_the_same_plan_from_the_same_settings(tmp_path, cap, refused):
    # 10,000 account, A at 12 and B at 25, w = 0.4 each: live orders A 333 (3,996) and B 160
    # (4,000); the engine's A 333.33 (4,000) and B 160 (4,000). A cap of 3,998 refuses both
    # (B), one of 4,001 neither.
    s = parse_settings({"limits": {"max_order_notional": cap, "max_weight": 0.5}})
    now = dt.datetime(2024, 1, 4, 20, 45, tzinfo=dt.UTC)
    lake = two_day_lake(tmp_path / "lake")
    broker = PaperBroker(lake, BacktestConfig(initial_cash=10_000.0), clock=lambda: now)
    trader = LiveTrader(broker, Journal(lake.root), Limits.from_settings(s.limits))
    targets = pd.Series({"A": 0.4, "B": 0.4})
    session, last = dt.date(2024, 1, 4), dt.date(2024, 1, 3)
    if refused:
        with pytest.raises(RebalanceRefused, match=r"limits\.max_order_notional"):
            trader.rebalance("s", session, targets, last, last)
    else:
        assert len(trader.rebalance("s", session, targets, last, last).orders) == 2
    cfg = engine_config(s.backtest).model_copy(update={"fill": "close", "initial_cash": 1e4})
    px = {"A": [12.0], "B": [25.0]}
    bars = make_bars(px, px)
    weights = xr.DataArray([[0.4, 0.4]], dims=("date", "symbol"), coords=bars.coords)
    result = BacktestEngine(cfg).run(bars, weights)
    assert result.daily["refused"].tolist() == [1 if refused else 0]

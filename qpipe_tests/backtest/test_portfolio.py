"""The portfolio backtest: the strategies' sleeves on one account (NAV the sum of the
sleeves and the unallocated cash; fills netted per date and symbol), by hand and on the
packaged strategies."""

from __future__ import annotations

import pandas as pd
import pytest

from qpipe.backtest.portfolio import combine
from qpipe.backtest.result import BacktestResult

D = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])


def result(equity: list[float], dates, fills: list[tuple]) -> BacktestResult:
    frame = pd.DataFrame(fills, columns=["date", "symbol", "side", "quantity", "price", "fee",
                                         "reason"])  # fmt: skip
    frame["date"] = pd.to_datetime(frame["date"])
    return BacktestResult(pd.Series(equity, index=dates), pd.DataFrame(), frame,
                          pd.DataFrame(), pd.DataFrame())  # fmt: skip


def test_account_is_the_sleeves_plus_unallocated_cash_and_orders_are_netted():
    a = result([600.0, 610.0, 620.0], D, [
        ("2024-01-02", "X", "buy", 10, 5.0, 1.0, "rebalance"),
        ("2024-01-03", "Y", "buy", 4, 5.0, 0.5, "rebalance"),
    ])  # fmt: skip
    # b starts a session later (its first signal) and trades X against a
    b = result([300.0, 290.0], D[1:], [
        ("2024-01-03", "X", "sell", 0, 5.0, 0.0, "rebalance"),
        ("2024-01-02", "Y", "buy", 1, 5.0, 0.0, "rebalance"),
        ("2024-01-04", "X", "buy", 3, 5.0, 0.2, "rebalance"),
    ])  # fmt: skip
    b.fills.loc[0, "quantity"] = 0  # a zero fill nets to no order
    a.fills.loc[len(a.fills)] = [D[2], "X", "sell", 3, 5.0, 0.3, "rebalance"]
    got = combine({"a": a, "b": b}, {"a": 0.6, "b": 0.3}, 1000.0)
    # before b's first session its sleeve is its cash 300; 100 is unallocated
    assert got.equity.tolist() == pytest.approx([600 + 300 + 100, 610 + 300 + 100,
                                                 620 + 290 + 100], rel=1e-15)  # fmt: skip
    orders = {(r.date.date().isoformat(), r.symbol): (r.side, r.quantity, r.fee)
              for r in got.orders.itertuples()}  # fmt: skip
    assert orders == {
        ("2024-01-02", "X"): ("buy", 10.0, 1.0),
        ("2024-01-02", "Y"): ("buy", 1.0, 0.0),
        ("2024-01-03", "Y"): ("buy", 4.0, 0.5),
        # 2024-01-04: a sells 3 X, b buys 3 X: no order at the account
    }
    assert got.metrics["total_return"] == pytest.approx(1010 / 1000 - 1)


def test_allocations_above_one_are_refused():
    a = result([1.0], D[:1], [])
    with pytest.raises(ValueError, match=r"sum to 1\.2, above 1"):
        combine({"a": a, "b": a}, {"a": 0.6, "b": 0.6}, 1.0)


def test_each_sleeve_is_its_strategy_on_its_share_of_the_capital(tmp_path):
    # fractional shares, no minimum commission: the engine is linear in its capital, so each
    # sleeve is its allocation times the strategy's own full-capital backtest
    from qpipe.backtest.portfolio import run_portfolio
    from qpipe.backtest.runner import run_backtest
    from qpipe.factors.factory import library_for, to_long
    from qpipe.factors.panel import compute
    from qpipe.project import Project
    from qpipe.strategies.signals import compute_signals
    from qpipe_tests.conftest import SMALL_CONFIG, write_config

    strategies = {
        "lin": {"kind": "linear", "allocation": 0.5,
                "params": {"factors": {"reversal_1m": 1.0}, "universe": {"kinds": ["stock"]},
                           "top_k": 5, "rebalance": "weekly"}},
        "rot": {"kind": "rotation", "allocation": 0.3,
                "params": {"symbols": ["EMKT", "ETECH"], "lookback": 20, "top_k": 1,
                           "min_return": -0.5}},
    }  # fmt: skip
    config = {**SMALL_CONFIG, "strategies": strategies, "factors": {"names": ["reversal_1m"]}}
    project = Project.load(write_config(tmp_path / "c.yaml", config), tmp_path / "data")
    market = project.source.fetch("2024-01-02", "2024-06-28")
    panels = compute(market, ["reversal_1m"], library=library_for(project.settings.factors))
    factors = to_long(panels, market.bars)
    signals = {
        name: compute_signals(s, market, factors, project.instruments, project.calendar)
        for name, s in project.strategies.items()
    }
    settings = project.settings.backtest
    ppy = project.calendar.sessions_per_year
    allocations = {n: s.allocation for n, s in project.settings.strategies.items()}
    got = run_portfolio(project.strategies, market, signals, settings, project.instruments,
                        allocations, periods_per_year=ppy)  # fmt: skip
    cash = settings.initial_cash
    for name, strategy in project.strategies.items():
        own, _ = run_backtest(strategy, market, signals[name], settings, project.instruments,
                              periods_per_year=ppy)  # fmt: skip
        assert len(own.fills) > 0, name
        want = (own.equity * allocations[name]).reindex(got.equity.index).ffill()
        want = want.fillna(allocations[name] * cash)
        pd.testing.assert_series_equal(got.sleeves[name], want, check_names=False, rtol=1e-9)
    expected = got.sleeves.sum(axis=1) + 0.2 * cash
    pd.testing.assert_series_equal(got.equity, expected, check_names=False, rtol=1e-12)

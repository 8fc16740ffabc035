"""Capital per strategy on one account: each strategy sizes on its allocation of the net
liquidation value and trades only its sleeve (the fills of its own orders); positions no
sleeve owns are reported and never traded; a dry run writes no sleeve."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from qpipe.backtest.config import BacktestConfig
from qpipe.live.broker import Execution, Order, Position
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.live.sleeves import Sleeves, unowned
from qpipe.live.trader import Limits, LiveTrader

SESSION = dt.date(2024, 1, 4)
LAST_BAR = PREVIOUS = dt.date(2024, 1, 3)
NOW = dt.datetime(2024, 1, 4, 20, 45, tzinfo=dt.UTC)
T = dt.datetime(2024, 1, 4, 21, 0)


def fill(exec_id: str, symbol: str, side: str, quantity: float) -> Execution:
    return Execution(exec_id, f"qp:s:20240104:{symbol}", symbol, side, quantity, 10.0, 0.0, T)


def test_sleeve_holdings_are_its_fills_each_once(tmp_path):
    sleeves = Sleeves(tmp_path, "ACC")
    assert sleeves.holdings("s").empty
    assert sleeves.record("s", [fill("1", "A", "buy", 10), fill("2", "B", "buy", 5)]) == 2
    # the same fills again add nothing; a sell reduces; a name back to 0 leaves the sleeve
    assert sleeves.record("s", [fill("1", "A", "buy", 10), fill("3", "A", "sell", 4),
                                fill("4", "B", "sell", 5)]) == 2  # fmt: skip
    assert sleeves.holdings("s").to_dict() == {"A": 6.0}
    assert Sleeves(tmp_path, "OTHER").holdings("s").empty  # per account
    sleeves.record("t", [fill("9", "A", "buy", 3)])
    assert sleeves.owned(["s", "t"]).to_dict() == {"A": 9.0}
    positions = {"A": Position("A", 9, 1.0), "C": Position("C", 7, 1.0)}
    assert unowned(positions, sleeves.owned(["s", "t"])).to_dict() == {"C": 7.0}
    # the sleeves holding more than the broker shows as negative
    assert unowned({}, sleeves.owned(["s"])).to_dict() == {"A": -6.0}


def trader(lake, clock: list[dt.datetime] | None = None) -> LiveTrader:
    """A paper account of 10,000 with no costs; ``clock[0]`` is its time (default NOW)."""
    now = clock or [NOW]
    costs = BacktestConfig(initial_cash=10_000.0, commission_bps=0.0, slippage_bps=0.0)
    broker = PaperBroker(lake, costs, clock=lambda: now[0])
    return LiveTrader(broker, Journal(lake.root), Limits(max_weight=1.0), sleeves_root=lake.root)


def held(t: LiveTrader) -> dict[str, float]:
    return {s: p.quantity for s, p in t.broker.positions().items()}


def test_each_strategy_sizes_on_its_allocation_and_trades_its_sleeve(lake):
    # closes on the last bar: A 12, B 25; no costs; an account of 10,000
    t = trader(lake)
    args = (SESSION, LAST_BAR, PREVIOUS)
    dry = t.rebalance("s1", SESSION, pd.Series({"A": 1.0}), LAST_BAR, PREVIOUS, "dry_run", 0.6)
    assert dry.orders["quantity"].tolist() == [500]  # 0.6 x 10,000 / 12 = 500
    assert not (lake.root / "live" / "sleeves").exists()  # a dry run writes no sleeve
    t.rebalance("s1", args[0], pd.Series({"A": 1.0}), *args[1:], "execute", 0.6)
    two = t.rebalance("s2", args[0], pd.Series({"A": 0.5, "B": 0.5}), *args[1:], "execute", 0.4)
    # 0.4 x 10,000 = 4,000: 2,000 / 12 -> 166 A, 2,000 / 25 -> 80 B
    assert dict(zip(two.orders["symbol"], two.orders["quantity"], strict=True)) == {
        "A": 166, "B": 80,
    }  # fmt: skip
    sleeves = Sleeves(lake.root, "PAPER")
    assert sleeves.holdings("s1").to_dict() == {"A": 500.0}
    assert sleeves.holdings("s2").to_dict() == {"A": 166.0, "B": 80.0}
    assert held(t) == {"A": 666.0, "B": 80.0}
    gross = (666 * 12 + 80 * 25) / t.broker.account().net_liquidation
    assert gross <= 1.0
    # a re-run of either trades nothing: each compares its targets with its own sleeve
    for name, targets, allocation in (("s1", {"A": 1.0}, 0.6), ("s2", {"A": 0.5, "B": 0.5}, 0.4)):
        again = t.rebalance(name, SESSION, pd.Series(targets), LAST_BAR, PREVIOUS, "execute",
                            allocation)  # fmt: skip
        assert again.orders.empty
    assert held(t) == {"A": 666.0, "B": 80.0}


def test_a_position_no_sleeve_owns_is_never_traded(lake):
    clock = [NOW]
    t = trader(lake, clock)
    t.rebalance("s", SESSION, pd.Series({"B": 0.5}), LAST_BAR, PREVIOUS, "execute", 0.5)
    assert held(t) == {"B": 100.0}  # 0.5 x 0.5 x 10,000 / 25
    t.broker.submit(Order("B", "buy", 30, "MKT", "bought-by-hand"))
    t.broker.submit(Order("A", "buy", 20, "MKT", "bought-by-hand-too"))
    clock[0] = NOW + dt.timedelta(days=1)
    # the strategy exits B and A: it sells its own 100 B; the 30 B and 20 A bought by hand stay
    exit_ = t.rebalance("s", SESSION + dt.timedelta(days=1), pd.Series({"A": 0.0, "B": 0.0}),
                        LAST_BAR, PREVIOUS, "execute", 0.5)  # fmt: skip
    assert dict(zip(exit_.orders["symbol"], exit_.orders["quantity"], strict=True)) == {"B": 100}
    assert held(t) == {"A": 20.0, "B": 30.0}
    sleeves = Sleeves(lake.root, "PAPER")
    assert sleeves.holdings("s").empty
    left = unowned(t.broker.positions(), sleeves.owned(["s"]))
    pd.testing.assert_series_equal(left, pd.Series({"A": 20.0, "B": 30.0}), check_names=False)
    assert np.isfinite(t.broker.account().cash)


def test_an_account_traded_before_sleeves_starts_them_from_the_journal(lake):
    t = trader(lake)
    old = LiveTrader(t.broker, t.journal, t.limits)  # no sleeves: the whole account
    old.rebalance("s", SESSION, pd.Series({"B": 0.5}), LAST_BAR, PREVIOUS, "execute")
    assert held(t) == {"B": 200.0}  # 0.5 x 10,000 / 25
    t.broker.submit(Order("A", "buy", 20, "MKT", "bought-by-hand"))
    # with sleeves: the journal's fills of s on this account are its sleeve (the 200 B stay
    # its own, not bought again); the dry run writes no ledger
    dry = t.rebalance("s", SESSION, pd.Series({"B": 0.5}), LAST_BAR, PREVIOUS, "dry_run", 1.0)
    assert dry.orders.empty
    assert not Sleeves(lake.root, "PAPER").exists("s")
    t.rebalance("s", SESSION, pd.Series({"B": 0.5}), LAST_BAR, PREVIOUS, "execute", 1.0)
    sleeves = Sleeves(lake.root, "PAPER")
    assert sleeves.holdings("s").to_dict() == {"B": 200.0}
    assert unowned(t.broker.positions(), sleeves.owned(["s"])).to_dict() == {"A": 20.0}

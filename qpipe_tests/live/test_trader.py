"""The live trader on the paper broker: dry run by default, idempotent re-runs, the kill
switch, and every refusal (stale data, empty account, caps, missing price) sending nothing
and journaling its cause."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from qpipe.backtest.config import BacktestConfig
from qpipe.errors import ConfigError
from qpipe.live.broker import Account, Order
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.live.trader import KILL_ENV, Limits, LiveTrader, RebalanceRefused
from qpipe.settings import parse_settings

SESSION = dt.date(2024, 1, 4)
LAST_BAR = PREVIOUS = dt.date(2024, 1, 3)
NOW = dt.datetime(2024, 1, 4, 20, 45, tzinfo=dt.UTC)
TARGETS = pd.Series({"A": 0.2, "B": 0.2})


def trader(lake, **limits):
    broker = PaperBroker(lake, BacktestConfig(initial_cash=10_000.0), clock=lambda: NOW)
    limits = {"max_weight": 0.5, **limits}
    return LiveTrader(broker, Journal(lake.root), Limits(**limits))


def test_dry_run_sends_nothing_and_journals_the_plan(lake):
    t = trader(lake)
    report = t.rebalance("s", SESSION, TARGETS, LAST_BAR, PREVIOUS)
    assert report.mode == "dry_run" and report.sent.empty
    # 2,000 / 12 -> 166 A; 2,000 / 25 -> 80 B.
    assert dict(zip(report.orders["symbol"], report.orders["quantity"], strict=True)) == {
        "A": 166, "B": 80,
    }  # fmt: skip
    assert set(report.orders["action"]) == {"dry_run"}
    assert t.broker.positions() == {}
    journal = t.journal
    assert len(journal.read("snapshot")) == 2 and len(journal.read("intended")) == 2
    assert set(journal.read("submitted")["run_id"]) == {report.run_id}


def test_execute_then_rerun_sends_nothing_twice(lake):
    t = trader(lake)
    first = t.rebalance("s", SESSION, TARGETS, LAST_BAR, PREVIOUS, mode="execute")
    assert list(first.sent["symbol"]) == ["A", "B"]
    assert {s: p.quantity for s, p in t.broker.positions().items()} == {"A": 166, "B": 80}
    again = t.rebalance("s", SESSION, TARGETS, LAST_BAR, PREVIOUS, mode="execute")
    assert again.sent.empty
    assert {s: p.quantity for s, p in t.broker.positions().items()} == {"A": 166, "B": 80}
    assert len(t.broker.executions(SESSION)) == 2


def test_an_open_order_with_the_reference_is_not_doubled(lake):
    t = trader(lake)
    ref = "qp:s:20240104:B"
    t.broker.submit(Order("B", "buy", 80, "LMT", ref, limit_price=1.0))  # stays open
    report = t.rebalance("s", SESSION, TARGETS, LAST_BAR, PREVIOUS, mode="execute")
    actions = dict(zip(report.orders["symbol"], report.orders["action"], strict=True))
    assert actions == {"A": "sent", "B": "already_open"}
    assert list(t.journal.read("reconciliation")["reference"]) == [ref]


def test_kill_switch_stops_every_order(lake, monkeypatch, tmp_path):
    t = trader(lake)
    monkeypatch.setenv(KILL_ENV, "1")
    report = t.rebalance("s", SESSION, TARGETS, LAST_BAR, PREVIOUS, mode="execute")
    assert set(report.orders["action"]) == {"killed"} and t.broker.positions() == {}
    monkeypatch.delenv(KILL_ENV)
    t.kill_file = tmp_path / "STOP"
    t.kill_file.touch()
    assert t.killed()


class EmptyAccount(PaperBroker):
    def account(self) -> Account:
        return Account("DU0", 0.0, 0.0)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("stale", "stale data: the last bar is 2024-01-02, older than the previous session"),
        ("empty", "account DU0 is empty or inconsistent"),
        ("weight", "weights above the per-name limit 0.5: A 0.6000"),
        ("notional", "orders above the notional cap 1,000: A 1,992"),
        ("turnover", "turnover 39.92% of NAV above the cap 10.00%"),
        ("price", "C: no usable price"),
    ],
)
def test_refusals_send_nothing_and_say_why(lake, case, message):
    t = trader(lake)
    targets, last_bar = TARGETS, LAST_BAR
    if case == "stale":
        last_bar = dt.date(2024, 1, 2)
    elif case == "empty":
        t.broker = EmptyAccount(lake, clock=lambda: NOW)
    elif case == "weight":
        targets = pd.Series({"A": 0.6})
    elif case == "notional":
        t.limits = Limits(max_weight=0.5, max_order_notional=1_000.0)
    elif case == "turnover":
        t.limits = Limits(max_weight=0.5, max_turnover=0.1)
    elif case == "price":
        targets = pd.Series({"A": 0.2, "C": 0.1})
    with pytest.raises(RebalanceRefused, match=message.replace(".", r"\.")):
        t.rebalance("s", SESSION, targets, last_bar, PREVIOUS, mode="execute")
    assert t.broker.positions() == {} and t.broker.executions(SESSION) == []
    events = t.journal.read("events")
    assert list(events["event"]) == ["refused"] and message.split(":")[0] in events["detail"][0]


def test_a_full_buy_with_costs_leaves_no_negative_cash(lake):
    """Sized at the last close, the old planner bought 416 A and 200 B with 10,000: 9,992 at
    the close, 10,006.99 with 5 bp slippage and 10 bp commission (cash -6.99). Sized with the
    cost model, the buys are scaled to the cash: 415 and 199 (both truncated at k just below
    1), and the paper account keeps a positive cash."""
    cfg = BacktestConfig(initial_cash=10_000.0, commission_bps=10.0, slippage_bps=5.0)
    broker = PaperBroker(lake, cfg, clock=lambda: NOW)
    t = LiveTrader(broker, Journal(lake.root), Limits(max_weight=0.5), cfg.costs)
    report = t.rebalance("s", SESSION, pd.Series({"A": 0.5, "B": 0.5}), LAST_BAR, PREVIOUS,
                         mode="execute")  # fmt: skip
    assert list(report.sent["symbol"]) == ["A", "B"]
    assert {s: p.quantity for s, p in broker.positions().items()} == {"A": 415, "B": 199}
    spent = sum(q * px * 1.0005 * 1.001 for q, px in ((415, 12.0), (199, 25.0)))
    cash = broker.account().cash
    assert cash == pytest.approx(10_000.0 - spent, rel=1e-12) and cash >= 0.0


def test_limits_come_from_the_settings():
    raw = {"limits": {"max_weight": 0.4, "max_gross": 0.9, "max_turnover": 1.5,
                      "max_order_notional": 5_000.0, "min_trade_value": 25.0,
                      "lot_size": 10, "cash_buffer": 0.02}}  # fmt: skip
    got = Limits.from_settings(parse_settings(raw).limits)
    want = Limits(max_order_notional=5_000.0, max_weight=0.4, max_turnover=1.5, lot_size=10,
                  min_trade_value=25.0, cash_buffer=0.02, max_gross=0.9)  # fmt: skip
    assert got == want
    assert Limits.from_settings(parse_settings({}).limits).lot_size == 1  # whole shares live
    with pytest.raises(ConfigError, match=r"limits\.lot_size 0\.5 is not a whole number"):
        Limits.from_settings(parse_settings({"limits": {"lot_size": 0.5}}).limits)


def test_max_gross_limit_refuses_the_plan(lake):
    t = trader(lake, max_gross=0.3)
    with pytest.raises(RebalanceRefused, match=r"0\.4000 gross, above the limit 0\.3"):
        t.rebalance("s", SESSION, TARGETS, LAST_BAR, PREVIOUS, mode="execute")
    assert t.broker.positions() == {}

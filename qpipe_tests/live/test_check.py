"""The health check on the paper broker: green lines on a sound account, a red line when
the account's cash is negative."""

from __future__ import annotations

import datetime as dt

import pytest

from qpipe.backtest.config import BacktestConfig
from qpipe.live.broker import Order
from qpipe.live.check import run_check
from qpipe.live.paper import PaperBroker

NOW = dt.datetime(2024, 1, 4, 20, 50, tzinfo=dt.UTC)


def broker(lake) -> PaperBroker:
    costs = BacktestConfig(commission_bps=10, slippage_bps=0, min_commission=0.0,
                           initial_cash=1_000.0)  # fmt: skip
    return PaperBroker(lake, costs, clock=lambda: NOW)


def red(lines: list[tuple[bool, str]]) -> list[str]:
    return [text for good, text in lines if not good]


def test_cash_at_zero_or_above_is_ok(lake):
    b = broker(lake)
    # 83 A at 12 = 996, fee 0.996: cash 3.004 >= 0
    b.submit(Order("A", "buy", 83, "MOC", "r1"))
    lines = list(run_check(b, "A"))
    assert red(lines) == [], lines
    assert any("cash 3.00" in text for _, text in lines)


def test_negative_cash_is_a_red_line(lake):
    b = broker(lake)
    # 83 A at 12 = 996 and 1 B at 25: cash 1,000 - 1,021 - 1.021 = -22.021
    b.submit(Order("A", "buy", 83, "MOC", "r1"))
    b.submit(Order("B", "buy", 1, "MOC", "r2"))
    assert b.account().cash == pytest.approx(1_000 - 83 * 12 - 25 - (83 * 12 + 25) * 0.001)
    lines = list(run_check(b, "A"))
    (line,) = red(lines)
    assert line.startswith("cash -22.02 of account PAPER is negative"), lines

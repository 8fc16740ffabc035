"""Hand-computed sizing cases shared by the engine's tests
(``qpipe_tests/backtest/test_sizing.py``) and the live planner's
(``qpipe_tests/live/test_orders.py``): both size orders with
:func:`qpipe.rulebook.sizing.size_orders`, and must give these orders on these inputs.

Each case: the cash, the shares held, the quoted prices, the target weights (NaN: leave the
name), the cost model and limits, and the expected signed order per symbol (shares) and the
cash after the fills (at the quoted price moved by the slippage, commission on top). The
sizing value is the cash plus the held shares at the quoted prices (the engine's portfolio
marked at the fill prices, the live account's net liquidation value)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

NAN = math.nan


@dataclass(frozen=True)
class SizingCase:
    name: str
    cash: float
    held: dict[str, float]
    prices: dict[str, float]
    targets: dict[str, float]
    expected: dict[str, float]
    cash_after: float
    commission_rate: float = 0.0
    min_commission: float = 0.0
    slippage_rate: float = 0.0
    lot_size: float = 1.0
    min_trade_value: float = 0.0
    cash_buffer: float = 0.0
    note: str = field(default="", compare=False)

    @property
    def nav(self) -> float:
        return self.cash + sum(q * self.prices[s] for s, q in self.held.items())


CASES = [
    SizingCase(
        "whole_shares_sells_first",
        cash=84_930.0,
        held={"B": 500, "C": 100, "D": 7},
        prices={"A": 33.0, "B": 20.0, "C": 50.0, "D": 10.0},
        targets={"A": 0.3, "B": 0.0, "C": 0.1, "D": NAN},
        expected={"B": -500, "A": 909, "C": 100},
        cash_after=84_930.0 + 10_000.0 - 909 * 33.0 - 5_000.0,
        note="NAV 100,000: A 30,000 / 33 = 909.09 -> 909; C 10,000 / 50 = 200, held 100; "
        "D NaN: left as it is.",
    ),
    SizingCase(
        "lots_buffer_minimum_trade_value",
        cash=90_550.0,
        held={"C": 900},
        prices={"A": 7.0, "B": 10.0, "C": 10.5},
        targets={"A": 0.5, "B": 0.01, "C": 0.1},
        expected={"A": 6_700},
        cash_after=90_550.0 - 6_700 * 7.0,
        lot_size=100.0,
        min_trade_value=50.0,
        cash_buffer=0.05,
        note="NAV 100,000, investable 95,000: A 47,500 / 7 = 6,785.7 -> 6,700 in lots of 100; "
        "B 950 / 10 = 95 -> 0 lots; C 9,500 / 10.5 = 904.8 -> 900, held 900: nothing.",
    ),
    SizingCase(
        "min_trade_value_drops_a_small_order",
        cash=90_550.0,
        held={"C": 900},
        prices={"A": 7.0, "C": 10.5},
        targets={"A": 0.5, "C": 0.1},
        expected={"A": 6_785},
        cash_after=90_550.0 - 6_785 * 7.0,
        min_trade_value=50.0,
        cash_buffer=0.05,
        note="Whole shares: C 9,500 / 10.5 = 904.76 -> 904, 4 more than held: 42 of notional, "
        "below the minimum 50: dropped; A 47,500 / 7 = 6,785.7 -> 6,785.",
    ),
    SizingCase(
        "buys_scaled_to_the_cash_after_slippage_and_commission",
        cash=10_000.0,
        held={},
        prices={"A": 10.0, "B": 20.0},
        targets={"A": 0.5, "B": 0.5},
        expected={"A": 499, "B": 249},
        cash_after=10_000.0 - 499 * 10.01 * 1.001 - 249 * 20.02 * 1.001,
        commission_rate=0.001,
        slippage_rate=0.001,
        note="Targets 500 A and 250 B cost 10,020.01 with 10 bp slippage and commission; "
        "scaled by k just below 1: 499 and 249 cost 9,989.95.",
    ),
    SizingCase(
        "reductions_pay_for_the_buys",
        cash=1_000.0,
        held={"A": 100},
        prices={"A": 90.0, "B": 50.0},
        targets={"A": 0.0, "B": 1.0},
        expected={"A": -100, "B": 199},
        cash_after=1_000.0 + 9_000.0 - 9.0 - 199 * 50.0 * 1.001,
        commission_rate=0.001,
        note="NAV 10,000; selling A brings 9,000 less 9 of fee: 9,991; B 200 would cost "
        "10,010: 199 (9,959.95).",
    ),
    SizingCase(
        "an_order_below_its_minimum_commission_is_not_made",
        cash=10_000.0,
        held={},
        prices={"A": 1.0, "B": 10.0},
        targets={"A": 0.0004, "B": 0.5},
        expected={"B": 500},
        cash_after=10_000.0 - 5_000.0 - 5.0,
        min_commission=5.0,
        note="A: 4 shares, 4 of notional below the 5 fee: not made; B 500 shares, fee 5.",
    ),
]

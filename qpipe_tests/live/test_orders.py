"""Target weights to orders, by hand: whole shares and lots, the cash buffer, the minimum
trade value, reductions first, deterministic references, and refusals that name the cause."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from qpipe.live.orders import OrderPlanError, order_reference, plan_orders

DAY = dt.date(2026, 11, 24)


def plan(targets, held, prices, nav=100_000.0, **kw):
    return plan_orders(targets, held, prices, nav, session=DAY, strategy="s", **kw)


def test_weights_to_whole_shares_sells_first():
    # NAV 100,000: A 30% at 33 -> 909 shares (909.09 truncated); B held 500, target 0;
    # C held 100 at 50, target 10% -> 200 shares: buy 100; D held, no target: untouched.
    orders = plan(
        {"A": 0.3, "B": 0.0, "C": 0.1},
        {"B": 500, "C": 100, "D": 7},
        {"A": 33.0, "B": 20.0, "C": 50.0, "D": 10.0},
    )
    rows = [
        tuple(r) for r in orders[["symbol", "side", "quantity", "target"]].itertuples(index=False)
    ]
    assert rows == [("B", "sell", 500, 0), ("A", "buy", 909, 909), ("C", "buy", 100, 200)]
    assert orders.loc[orders.symbol == "A", "notional"].item() == pytest.approx(909 * 33.0)
    assert list(orders["reference"]) == [order_reference(DAY, "s", s) for s in "BAC"]


def test_lots_buffer_and_minimum_trade_value():
    # Investable 100,000 x (1 - 0.05) = 95,000; A 50% at 7 -> 6,785.7 shares -> 6,700 in
    # lots of 100; B 1% at 10 -> 95 shares -> 0 lots, held 0: nothing; C 10% at 10.5 -> 904
    # shares against 900 held: 4 shares, 42 of notional, below the 50 minimum: dropped.
    orders = plan(
        {"A": 0.5, "B": 0.01, "C": 0.1},
        {"C": 900},
        {"A": 7.0, "B": 10.0, "C": 10.5},
        lot_size=100, cash_buffer=0.05, min_trade_value=50.0,
    )  # fmt: skip
    assert list(orders["symbol"]) == ["A"] and orders["quantity"].item() == 6_700


def test_nan_target_leaves_the_position_and_needs_no_price():
    orders = plan({"A": np.nan, "B": 0.0}, {"A": 10}, {"A": np.nan})
    assert orders.empty


def test_references_are_deterministic_and_short():
    assert order_reference(DAY, "mf", "AAPL") == "qp:mf:20261124:AAPL"
    long = order_reference(DAY, "a_very_long_strategy_name_indeed", "SOME.LONG.SYMBOL")
    assert len(long) <= 40 and long == order_reference(DAY, "a_very_long_strategy_name_indeed",
                                                       "SOME.LONG.SYMBOL")  # fmt: skip
    assert long != order_reference(DAY, "a_very_long_strategy_name_indeed", "OTHER.LONG.SYMBOL")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"prices": {"A": 0.0}}, "A: no usable price"),
        ({"prices": {"A": np.nan}}, "A: no usable price"),
        ({"prices": {}}, "A: no usable price"),
        ({"targets": {"A": 0.7, "B": -0.5}}, "1.2000 gross, above the limit 1.0"),
        ({"nav": 0.0}, "net liquidation value must be positive"),
        ({"nav": float("nan")}, "net liquidation value must be positive"),
        ({"lot_size": 0}, "lot_size"),
        ({"cash_buffer": 1.0}, "cash_buffer"),
    ],
)
def test_bad_input_is_refused_by_cause(kwargs, message):
    args = {"targets": {"A": 0.5}, "held": {}, "prices": {"A": 10.0, "B": 5.0}, **kwargs}
    extra = {k: args.pop(k) for k in ("nav", "lot_size", "cash_buffer") if k in args}
    with pytest.raises(OrderPlanError, match=message.replace("(", r"\(").replace(".", r"\.")):
        plan(args["targets"], args["held"], args["prices"], **extra)

"""Target weights to orders, by hand: whole shares and lots, the cash buffer, the minimum
trade value, reductions first, deterministic references, and refusals that name the cause."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.live.orders import OrderPlanError, order_reference, plan_orders
from qpipe_tests.sizing_cases import CASES, SizingCase

DAY = dt.date(2026, 11, 24)


def plan(targets, held, prices, nav=100_000.0, cash=None, **kw):
    """``cash`` defaults to the NAV less the held names at ``prices`` (unpriced: 0)."""
    if cash is None:
        cash = nav - sum(
            q * prices.get(s, 0.0) for s, q in held.items() if prices.get(s) == prices.get(s)
        )
    return plan_orders(targets, held, prices, nav, cash=cash, session=DAY, strategy="s", **kw)


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


def filled_cash(orders, cash, rate, minimum, slippage):
    """The cash after filling ``orders`` at their price moved by ``slippage`` against the
    trader, commission ``max(rate x notional, minimum)`` on top: a loop, by hand."""
    for r in orders.itertuples():
        px = r.price * (1 + slippage) if r.side == "buy" else r.price * (1 - slippage)
        notional = r.quantity * px
        fee = max(rate * notional, minimum)
        cash += -notional - fee if r.side == "buy" else notional - fee
    return cash


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_live_planner_sizes_the_shared_cases(case: SizingCase):
    """The engine's shared cases (qpipe_tests/backtest/test_sizing.py runs them through the
    engine's fill step): the same orders, and the same cash once filled."""
    orders = plan_orders(
        case.targets, case.held, case.prices, case.nav, cash=case.cash, session=DAY,
        strategy="s", lot_size=int(case.lot_size), min_trade_value=case.min_trade_value,
        cash_buffer=case.cash_buffer, commission_rate=case.commission_rate,
        min_commission=case.min_commission, slippage_rate=case.slippage_rate,
    )  # fmt: skip
    signed = {
        r.symbol: float(r.quantity if r.side == "buy" else -r.quantity) for r in orders.itertuples()
    }
    assert signed == case.expected
    assert list(orders["side"]) == sorted(orders["side"], key=["sell", "buy"].index)
    after = filled_cash(orders, case.cash, case.commission_rate, case.min_commission,
                        case.slippage_rate)  # fmt: skip
    assert after == pytest.approx(case.cash_after, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    invested=st.floats(0.0, 0.9),
    rate=st.sampled_from([0.0, 0.0005, 0.002]),
    minimum=st.sampled_from([0.0, 1.0, 10.0]),
    slippage=st.sampled_from([0.0, 0.0005, 0.01]),
    lot=st.sampled_from([1, 10, 100]),
    buffer=st.sampled_from([0.0, 0.01, 0.05]),
    min_trade=st.sampled_from([0.0, 100.0]),
)
def test_fills_never_take_the_cash_below_the_buffer(
    n, seed, invested, rate, minimum, slippage, lot, buffer, min_trade
):
    """Any weights summing to at most 1, any holdings: the planned orders, filled with the
    cost model's slippage and commission, leave at least the buffer in cash (the old planner
    sized at the quote and left the costs unpaid: a full buy went below zero)."""
    rng = np.random.default_rng(seed)
    symbols = [f"S{i}" for i in range(n)]
    prices = dict(zip(symbols, rng.uniform(1.0, 500.0, n), strict=True))
    nav = 100_000.0
    held_value = rng.dirichlet(np.ones(n)) * invested * nav
    held = {s: float(np.floor(v / prices[s])) for s, v in zip(symbols, held_value, strict=True)}
    cash = nav - sum(q * prices[s] for s, q in held.items())
    weights = rng.dirichlet(np.ones(n)) * rng.uniform(0.5, 1.0)
    targets = dict(zip(symbols, weights, strict=True))
    orders = plan_orders(
        targets, held, prices, nav, cash=cash, session=DAY, strategy="s", lot_size=lot,
        min_trade_value=min_trade, cash_buffer=buffer, commission_rate=rate,
        min_commission=minimum, slippage_rate=slippage,
    )  # fmt: skip
    assert (orders["target"] % lot == 0).all()
    assert (orders["notional"] * (1 - slippage) >= min_trade - 1e-9).all()
    after = filled_cash(orders, cash, rate, minimum, slippage)
    assert after >= min(cash, buffer * nav) - 1e-6

"""From target weights to an order list: the live trader's arithmetic, with no broker in it.

The sizing is the backtest engine's (:func:`qpipe.rulebook.sizing.size_orders`), with the
account's net liquidation value as the sizing value and its cash as the cash to pay with:
``target weight x NAV x (1 - cash buffer) / price`` becomes whole shares (rounded toward zero
to whole lots), minus the shares held, as one order per symbol; an order whose notional at
its expected fill price is below the minimum trade value, or below its commission, is
dropped; reductions come first (their proceeds pay for the increases), and the increases are
scaled down together so that, filled at the cost model's slippage and commission, they leave
at least the cash buffer (and never a negative cash). Every order carries a deterministic
reference per session, strategy and symbol, so a re-run of the same rebalance can be
reconciled against what the broker already has.

Bad input is refused with :class:`OrderPlanError` naming the cause, before any order exists:
a price that is missing, zero, negative or not finite for a symbol that would trade; weights
whose gross sum exceeds the limit; a NAV that is not positive; a cash that is not finite.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from qpipe.errors import QpipeError
from qpipe.rulebook.sizing import OUT, TRADED, TRADED_, UNPRICED, size_orders, sizing_params

ORDER_COLUMNS = [
    "symbol", "side", "quantity", "price", "notional", "held", "target", "target_weight",
    "reference",
]  # fmt: skip
REFERENCE_MAX = 40
"""Longest order reference (IB keeps ``orderRef`` short; longer ones are hashed)."""


class OrderPlanError(QpipeError, ValueError):
    """The inputs of an order plan are unusable; nothing may be sent."""


def order_reference(session: dt.date, strategy: str, symbol: str) -> str:
    """``qp:<strategy>:<YYYYMMDD>:<symbol>``, the same for every run of one rebalance
    (a hash stands in for the strategy and symbol when that is too long)."""
    ref = f"qp:{strategy}:{session:%Y%m%d}:{symbol}"
    if len(ref) <= REFERENCE_MAX:
        return ref
    digest = hashlib.sha256(f"{strategy}|{symbol}".encode()).hexdigest()[:16]
    return f"qp:{session:%Y%m%d}:{digest}"


def plan_orders(
    targets: Mapping[str, float] | pd.Series,
    held: Mapping[str, float] | pd.Series,
    prices: Mapping[str, float] | pd.Series,
    nav: float,
    *,
    cash: float,
    session: dt.date,
    strategy: str,
    lot_size: int = 1,
    min_trade_value: float = 0.0,
    cash_buffer: float = 0.0,
    max_gross: float = 1.0,
    commission_rate: float = 0.0,
    min_commission: float = 0.0,
    slippage_rate: float = 0.0,
) -> pd.DataFrame:
    """The orders that take the ``held`` shares to the ``targets`` (symbol -> weight of NAV;
    NaN or absent: leave the position as it is) at ``prices``, one row per symbol
    (:data:`ORDER_COLUMNS`; ``quantity`` > 0, ``side`` buy or sell, ``price`` and
    ``notional`` at the quoted price), sells first, sized by
    :func:`qpipe.rulebook.sizing.size_orders`.

    ``nav`` sizes the targets; ``cash`` (currency) pays for the buys, with the sells'
    proceeds. ``cash_buffer`` (a fraction of NAV) is kept out of the investable value and out
    of the cash the buys may spend; ``lot_size`` rounds every target toward zero to whole lots
    of shares; an order whose notional at its fill price is below ``min_trade_value`` or its
    commission is dropped. The cost model: ``commission_rate`` and ``slippage_rate`` are
    fractions, ``min_commission`` the least fee of an order (currency); the buys are scaled
    down so that their fills at ``price x (1 + slippage_rate)`` with their commissions leave
    at least the buffer."""
    if not (isinstance(nav, int | float) and math.isfinite(nav) and nav > 0):
        raise OrderPlanError(f"net liquidation value must be positive and finite, got {nav!r}")
    if not (isinstance(cash, int | float) and math.isfinite(cash)):
        raise OrderPlanError(f"cash must be finite, got {cash!r}")
    if not 0.0 <= cash_buffer < 1.0:
        raise OrderPlanError(f"cash_buffer must be in [0, 1), got {cash_buffer!r}")
    if lot_size < 1 or int(lot_size) != lot_size:
        raise OrderPlanError(f"lot_size must be a whole number of shares >= 1, got {lot_size!r}")
    try:
        params = sizing_params(
            rate=commission_rate, minimum=min_commission, slippage=slippage_rate,
            lot=float(lot_size), min_trade_value=min_trade_value, cash_buffer=cash_buffer,
        )  # fmt: skip
    except ValueError as exc:
        raise OrderPlanError(str(exc)) from None
    weights = pd.Series(targets, dtype=np.float64).dropna()
    if not np.isfinite(weights).all():
        raise OrderPlanError(
            f"target weights must be finite, got {weights[~np.isfinite(weights)].to_dict()}"
        )
    gross = float(weights.abs().sum())
    if gross > max_gross + 1e-9:
        raise OrderPlanError(
            f"target weights sum to {gross:.4f} gross, above the limit {max_gross}"
        )
    symbols = sorted(weights.index)  # a held name without a target is left as it is
    shares = pd.Series(held, dtype=np.float64).reindex(symbols).fillna(0.0).to_numpy()
    quotes = pd.Series(prices, dtype=np.float64).reindex(symbols).to_numpy()
    target = weights.reindex(symbols).to_numpy()
    out = np.empty((len(symbols), len(OUT)))
    status = np.empty(len(symbols), dtype=np.int64)
    size_orders(target, shares, quotes, np.full(len(symbols), np.inf), float(cash), float(nav),
                params, out, status)  # fmt: skip
    for k in np.flatnonzero(status == UNPRICED):
        raise OrderPlanError(f"{symbols[k]}: no usable price ({quotes[k]!r}); no order is sent")
    rows = []
    for k in np.flatnonzero(status == TRADED_):
        symbol, delta, price = symbols[k], float(out[k, TRADED]), float(quotes[k])
        rows.append({
            "symbol": symbol, "side": "buy" if delta > 0 else "sell", "quantity": int(abs(delta)),
            "price": price, "notional": abs(delta) * price, "held": float(shares[k]),
            "target": int(shares[k] + delta), "target_weight": float(target[k]),
            "reference": order_reference(session, strategy, symbol),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=ORDER_COLUMNS)
    order = frame["side"].map({"sell": 0, "buy": 1})
    return (
        frame.assign(_o=order)
        .sort_values(["_o", "symbol"])
        .drop(columns="_o")
        .reset_index(drop=True)
    )

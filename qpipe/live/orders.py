"""From target weights to an order list: the live trader's arithmetic, with no broker in it.

``target weight x investable NAV / price`` becomes whole shares (rounded toward zero to whole
lots), minus the shares held, as one order per symbol; orders worth less than the minimum
trade value are dropped; reductions come first (their proceeds pay for the increases). Every
order carries a deterministic reference per session, strategy and symbol, so a re-run of the
same rebalance can be reconciled against what the broker already has.

Bad input is refused with :class:`OrderPlanError` naming the cause, before any order exists:
a price that is missing, zero, negative or not finite for a symbol that would trade; weights
whose gross sum exceeds the limit; a NAV that is not positive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from qpipe.errors import QpipeError

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
    session: dt.date,
    strategy: str,
    lot_size: int = 1,
    min_trade_value: float = 0.0,
    cash_buffer: float = 0.0,
    max_gross: float = 1.0,
) -> pd.DataFrame:
    """The orders that take the ``held`` shares to the ``targets`` (symbol -> weight of NAV;
    NaN or absent: leave the position as it is) at ``prices``, one row per symbol
    (:data:`ORDER_COLUMNS`; ``quantity`` > 0, ``side`` buy or sell), sells first.

    ``cash_buffer`` (a fraction of NAV) is kept out of the investable value; ``lot_size``
    rounds every target toward zero to whole lots of shares; an order whose notional is below
    ``min_trade_value`` is dropped."""
    if not (isinstance(nav, int | float) and math.isfinite(nav) and nav > 0):
        raise OrderPlanError(f"net liquidation value must be positive and finite, got {nav!r}")
    if not 0.0 <= cash_buffer < 1.0:
        raise OrderPlanError(f"cash_buffer must be in [0, 1), got {cash_buffer!r}")
    if lot_size < 1 or int(lot_size) != lot_size:
        raise OrderPlanError(f"lot_size must be a whole number of shares >= 1, got {lot_size!r}")
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
    shares = pd.Series(held, dtype=np.float64).fillna(0.0)
    quotes = pd.Series(prices, dtype=np.float64)
    investable = nav * (1.0 - cash_buffer)
    rows = []
    for symbol in sorted(weights.index):  # a held name without a target is left as it is
        now = float(shares.get(symbol, 0.0))
        weight = float(weights[symbol])
        price = quotes.get(symbol, np.nan)
        if not (np.isfinite(price) and price > 0):
            if weight == 0.0 and now == 0.0:
                continue  # nothing held, nothing wanted: no price needed
            raise OrderPlanError(f"{symbol}: no usable price ({price!r}); no order is sent")
        target = math.trunc(weight * investable / price / lot_size) * lot_size
        delta = target - now
        if delta == 0 or abs(delta) * price < min_trade_value:
            continue
        rows.append({
            "symbol": symbol, "side": "buy" if delta > 0 else "sell", "quantity": abs(delta),
            "price": price, "notional": abs(delta) * price, "held": now, "target": target,
            "target_weight": weight, "reference": order_reference(session, strategy, symbol),
        })  # fmt: skip
    frame = pd.DataFrame(rows, columns=ORDER_COLUMNS)
    order = frame["side"].map({"sell": 0, "buy": 1})
    return (
        frame.assign(_o=order)
        .sort_values(["_o", "symbol"])
        .drop(columns="_o")
        .reset_index(drop=True)
    )

"""Orders from target weights: the one sizing of the backtest engine and the live trader.

:func:`size_orders` is compiled (numba): the engine calls it from its compiled day step, the
live planner (:func:`qpipe.live.orders.plan_orders`) from Python. For each name ``i`` whose
target weight ``w`` is not NaN (NaN: leave the position as it is), in this order:

1. **Price.** A name without a usable price ``p`` (NaN, infinite, zero or negative) does not
   trade; when it has a non-zero target or is held its status is :data:`UNPRICED`.
2. **Target shares.** ``w x V x (1 - cash_buffer) / p``, truncated toward zero to whole lots
   of ``lot`` shares (``lot`` 0: fractional shares). ``V`` is the sizing value, in currency:
   the engine's portfolio marked at the fill session's prices, the live account's net
   liquidation value. The order is the target minus the shares held (a change below
   ``1e-12`` relative to the holding is none).
3. **Cap.** At most ``cap[i]`` shares (truncated to whole lots; ``inf``: no cap, the live
   case; the engine's participation cap); the rest is ``unfilled`` (its notional at ``p``).
4. **Reductions first.** Sells fill at ``p x (1 - slippage)``; one whose commission would
   exceed its notional (status :data:`FEE`) or whose notional is below ``min_trade_value``
   (:data:`SMALL`) is not made; the others add their notional less their fee to the cash.
5. **Increases scaled to the cash.** Buys fill at ``p x (1 + slippage)``; those not worth
   their fee or below the minimum trade value in full are not made (:data:`FEE`,
   :data:`SMALL`); the rest are scaled down together, by the largest common factor ``k <= 1``
   (then truncated to whole lots), so that the cash after them, commissions included, is at
   least ``cash_buffer x V``: fills at the cost model's prices never take the cash below the
   buffer, nor below zero. A buy that the scaling leaves below its fee or the minimum trade
   value is not made (:data:`SHORT`, its notional part of the shortfall).

The cost model is :mod:`qpipe.rulebook.costs` (``rate`` and ``slippage`` fractions,
``minimum`` the least commission of an order, in currency).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from qpipe.rulebook.costs import commission, fill_price, worth_its_fee

PARAMS = ("rate", "minimum", "slippage", "lot", "min_trade_value", "cash_buffer")
"""The entries of the sizing parameters array (:func:`sizing_params`)."""
RATE, MINIMUM, SLIPPAGE, LOT, MIN_TRADE, BUFFER = range(len(PARAMS))
OUT = ("order", "traded", "price", "fee", "unfilled", "target")
"""The columns of :func:`size_orders`' ``out``: the order in shares (signed, after the cap),
the shares traded (signed; 0 when not made), the fill price, the commission of the trade,
the notional the cap cut (at the quoted price) and the target in shares."""
ORDER, TRADED, PRICE, FEE_PAID, UNFILLED, TARGET = range(len(OUT))
STATUSES = ("none", "traded", "unpriced", "fee", "small", "short")
"""What happened to a name: no order; traded (in full or scaled); no usable price; not worth
its fee; below the minimum trade value; scaled to the cash below its fee or the minimum."""
NONE, TRADED_, UNPRICED, FEE, SMALL, SHORT = range(len(STATUSES))

_jit = nb.njit(cache=True, nogil=True)


def sizing_params(
    *,
    rate: float = 0.0,
    minimum: float = 0.0,
    slippage: float = 0.0,
    lot: float | None = None,
    min_trade_value: float = 0.0,
    cash_buffer: float = 0.0,
) -> np.ndarray:
    """The flat array :func:`size_orders` reads (:data:`PARAMS`). ``rate`` and ``slippage``
    are fractions (10 bp = 0.001); ``lot`` None or 0: fractional shares; ``cash_buffer`` a
    fraction of the sizing value in ``[0, 1)``. Raises ``ValueError`` naming a bad one."""
    values = {"rate": rate, "minimum": minimum, "slippage": slippage, "lot": lot or 0.0,
              "min_trade_value": min_trade_value, "cash_buffer": cash_buffer}  # fmt: skip
    for name, v in values.items():
        if not (np.isfinite(v) and v >= 0.0):
            raise ValueError(f"sizing: {name} must be finite and >= 0, got {v!r}")
    if cash_buffer >= 1.0:
        raise ValueError(f"sizing: cash_buffer must be in [0, 1), got {cash_buffer!r}")
    return np.array([values[k] for k in PARAMS], dtype=np.float64)


@_jit
def lots(shares: float, lot: float) -> float:
    """``shares`` truncated toward zero to whole lots of ``lot`` (``lot`` 0: unchanged)."""
    if lot > 0.0:
        return np.trunc(shares / lot) * lot
    return shares


@_jit
def _made(notional: float, fee: float, min_trade: float) -> bool:
    """Whether an order of ``notional`` (at its fill price) is made: worth its fee and at
    least the minimum trade value."""
    return worth_its_fee(notional, fee) and notional >= min_trade


@_jit
def _left(
    size: np.ndarray, px: np.ndarray, cash: float, rate: float, minimum: float, min_trade: float
) -> float:
    """The cash left after buying ``size`` at ``px`` (none of a buy that is not made),
    subtracted in the order and with the arithmetic of the buys themselves: when it is not
    negative, the cash pays for them exactly."""
    for k in range(size.shape[0]):
        if size[k] > 0.0:
            notional = size[k] * px[k]
            fee = commission(notional, rate, minimum)
            if _made(notional, fee, min_trade):
                cash -= notional + fee
    return cash


@_jit
def _scaled(size: np.ndarray, factor: float, lot: float, out: np.ndarray) -> np.ndarray:
    """``size x factor`` into ``out``, truncated toward zero to whole lots when ``lot > 0``."""
    for k in range(size.shape[0]):
        out[k] = lots(size[k] * factor, lot)
    return out


@_jit
def affordable(
    size: np.ndarray, px: np.ndarray, cash: float, rate: float, minimum: float, lot: float,
    min_trade: float,
) -> np.ndarray:  # fmt: skip
    """``size`` (buys, shares) when ``cash`` pays for them at ``px``, else ``size`` scaled
    down by the largest common factor ``k < 1`` (then truncated to whole lots) whose buys the
    cash pays for; a buy not made at its scaled size (below its fee or ``min_trade``) costs
    nothing."""
    if _left(size, px, cash, rate, minimum, min_trade) >= 0.0:
        return size
    trial = np.empty_like(size)
    if lot == 0.0 and minimum == 0.0 and min_trade == 0.0:
        # Proportional fees: the cost is linear in k; the closed form, nudged down until the
        # buys' own arithmetic leaves no negative cash.
        cost = -_left(size, px, 0.0, rate, minimum, min_trade)
        if cost <= 0.0 or cash <= 0.0:
            return np.zeros_like(size)
        scale = cash / cost
        for _ in range(60):
            over = -_left(_scaled(size, scale, 0.0, trial), px, cash, rate, minimum, min_trade)
            if over <= 0.0:
                return trial
            scale *= max(0.0, 1.0 - over / max(cash + over, 1e-300) - 1e-12)
        return np.zeros_like(size)
    # Whole lots, a minimum fee or a minimum trade value: the cost of the scaled buys is a
    # step function that never falls as k grows (truncation; a buy starts once it is made),
    # so the largest k is found by bisection, to the last float.
    lo, hi = 0.0, 1.0
    for _ in range(1100):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _left(_scaled(size, mid, lot, trial), px, cash, rate, minimum, min_trade) >= 0.0:
            lo = mid
        else:
            hi = mid
    return _scaled(size, lo, lot, trial)


@_jit
def size_orders(
    target: np.ndarray, qty: np.ndarray, price: np.ndarray, cap: np.ndarray, cash: float,
    value: float, params: np.ndarray, out: np.ndarray, status: np.ndarray,
) -> float:  # fmt: skip
    """Size the orders that take ``qty`` (shares held) toward ``target`` (weights of
    ``value``; NaN: leave as is) at the quoted ``price``, with at most ``cap`` shares per
    name (``inf``: none) and ``cash`` to pay, following the rules of this module with
    ``params`` (:func:`sizing_params`). Fills ``out`` (names x :data:`OUT`, zeroed here) and
    ``status`` (:data:`STATUSES`) and returns the cash after the trades. Reads and changes
    nothing else: the caller books the trades."""
    rate, minimum, slip = params[RATE], params[MINIMUM], params[SLIPPAGE]
    lot, min_trade, buffer = params[LOT], params[MIN_TRADE], params[BUFFER]
    n = qty.shape[0]
    out[:] = 0.0
    status[:] = NONE
    investable = value * (1.0 - buffer)
    n_buys = 0
    for i in range(n):
        p = price[i]
        if np.isnan(target[i]):
            continue
        if not (np.isfinite(p) and p > 0.0):
            if target[i] != 0.0 or qty[i] != 0.0:
                status[i] = UNPRICED
            continue
        want = lots(target[i] * investable / p, lot)
        out[i, TARGET] = want
        d = want - qty[i]
        if abs(d) < 1e-12 * max(1.0, abs(qty[i])):
            continue
        if cap[i] < np.inf:
            room = lots(cap[i], lot)
            capped = min(max(d, -room), room)
            out[i, UNFILLED] = abs(d - capped) * p
            d = capped
        out[i, ORDER] = d
        if d > 0.0:
            n_buys += 1
    # Reductions (sells) first: their proceeds pay for the buys.
    for i in range(n):
        d = out[i, ORDER]
        if d < 0.0:
            px = fill_price(price[i], -1.0, slip)
            out[i, PRICE] = px
            notional = -d * px
            fee = commission(notional, rate, minimum)
            if not worth_its_fee(notional, fee):
                status[i] = FEE
            elif notional < min_trade:
                status[i] = SMALL
            else:
                cash += notional - fee
                out[i, TRADED] = d
                out[i, FEE_PAID] = fee
                status[i] = TRADED_
    if n_buys == 0:
        return cash
    buys = np.empty(n_buys, dtype=np.int64)
    size = np.empty(n_buys)
    px = np.empty(n_buys)
    k = 0
    for i in range(n):
        if out[i, ORDER] > 0.0:
            buys[k] = i
            size[k] = out[i, ORDER]
            px[k] = fill_price(price[i], 1.0, slip)
            out[i, PRICE] = px[k]
            notional = size[k] * px[k]
            if not worth_its_fee(notional, commission(notional, rate, minimum)):
                status[i] = FEE  # not worth its fee even in full: not short of cash
                size[k] = 0.0
            elif notional < min_trade:
                status[i] = SMALL
                size[k] = 0.0
            k += 1
    spendable = cash - buffer * value if buffer > 0.0 else cash
    size = affordable(size, px, spendable, rate, minimum, lot, min_trade)
    for k in range(n_buys):
        i = buys[k]
        if status[i] != NONE:
            continue
        notional = size[k] * px[k]
        fee = commission(notional, rate, minimum)
        if size[k] <= 0.0 or not _made(notional, fee, min_trade):
            status[i] = SHORT  # scaled to the cash below its fee or the minimum
            continue
        cash -= notional + fee
        out[i, TRADED] = size[k]
        out[i, FEE_PAID] = fee
        status[i] = TRADED_
    return cash

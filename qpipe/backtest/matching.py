"""The engine's compiled day steps: corporate actions, fills, marks, delisting and the
decision of one session, over flat arrays that the steps update in place.

:mod:`qpipe.backtest.engine` holds the rules in words and drives these steps: in one compiled
call over all sessions when the strategy has no risk rules (:func:`run_days`), or one session
at a time with the risk rules evaluated in Python between :func:`open_day` and
:func:`close_day`. Both paths run the same steps, so they give the same numbers.

The arrays, grouped in tuples:

- ``market``: ``opens, closes, volume`` (sessions x symbols, NaN = no bar), ``split,
  dividend`` (sessions x symbols by ex-date; read only on sessions where ``has_actions``),
  ``has_actions`` (bool per session), ``delist_day`` (per symbol, the session its declared
  delisting closes it at its last price and after which it takes no orders; -1 = none).
- ``book``: ``qty`` (shares per symbol), ``last`` (the mark: the last close seen, in post-split
  ex-dividend terms after an ex-date without a bar), ``fill_px`` (fill prices since the
  caller last cleared them, NaN = none), ``acct`` (``[cash, pending]``), ``pending_target``
  and ``pending_reason`` (the order decided at the last close).
- ``out``: ``cash, nav`` (per session), ``positions`` (sessions x symbols), ``daily``
  (sessions x :data:`DAILY_COLUMNS`: traded notional, fees, slippage, buy shortfall,
  unfilled notional (participation cap), dividends, ``skipped`` notional (fee above the
  order's value), ``unpriced`` orders (no fill price), and the positions' net and gross
  value at the marks, from which NAV and exposure both come).
- ``ledger``: one row per fill (:data:`LEDGER_COLUMNS`), ``count`` (``[rows used]``).
- ``params``: see :func:`params`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.costs import commission, fill_price, worth_its_fee

DAILY_COLUMNS = (
    "traded", "fees", "slippage", "shortfall", "unfilled", "dividends", "skipped", "unpriced",
    "net_value", "gross_value",
)  # fmt: skip
(TRADED, FEES, SLIPPAGE, SHORTFALL, UNFILLED, DIVIDENDS, SKIPPED, UNPRICED, NET_VALUE,
 GROSS_VALUE) = range(len(DAILY_COLUMNS))  # fmt: skip
LEDGER_COLUMNS = ("day", "symbol", "quantity", "price", "fee", "reason")
REASONS = ("rebalance", "stop_loss", "circuit_breaker", "delisting")
REBALANCE, STOP, BREAKER, DELIST = range(len(REASONS))
CASH, PENDING = 0, 1
FILL_MODES = ("next_open", "next_close", "close")
NEXT_OPEN, NEXT_CLOSE, CLOSE = range(len(FILL_MODES))
_FILL, _RATE, _MINIMUM, _SLIPPAGE, _PARTICIPATION, _LOT = range(6)

_jit = nb.njit(cache=True, nogil=True)


def params(config: BacktestConfig) -> np.ndarray:
    """``config`` as the flat array the steps read (participation and lot size 0 = none)."""
    return np.array(
        [
            FILL_MODES.index(config.fill),
            config.commission_rate,
            config.min_commission,
            config.slippage_rate,
            config.participation or 0.0,
            config.lot_size or 0.0,
        ],
        dtype=np.float64,
    )


@_jit
def value(qty: np.ndarray, price: np.ndarray) -> tuple[float, float]:
    """The positions marked at ``price``: ``(sum(qty x price), sum(|qty x price|))``, net
    and gross, over the names held (a name never priced is held by no one). The one marking
    of NAV and exposure."""
    net = 0.0
    gross = 0.0
    for i in range(qty.shape[0]):
        if qty[i] != 0.0 and not np.isnan(price[i]):
            held = qty[i] * price[i]
            net += held
            gross += abs(held)
    return net, gross


@_jit
def _record(
    t: int, i: int, signed: float, px: float, fee: float, quoted: float, why: int,
    ledger: np.ndarray, count: np.ndarray, daily: np.ndarray,
) -> None:  # fmt: skip
    k = count[0]
    ledger[k, 0] = t
    ledger[k, 1] = i
    ledger[k, 2] = signed
    ledger[k, 3] = px
    ledger[k, 4] = fee
    ledger[k, 5] = why
    count[0] = k + 1
    size = abs(signed)
    daily[t, TRADED] += size * px
    daily[t, FEES] += fee
    daily[t, SLIPPAGE] += size * abs(px - quoted)


@_jit
def _left(size: np.ndarray, px: np.ndarray, cash: float, rate: float, minimum: float) -> float:
    """The cash left after buying ``size`` at ``px`` (none of a buy whose fee would exceed
    its notional), subtracted in the order and with the arithmetic of the buys themselves:
    when it is not negative, the cash pays for them exactly."""
    for k in range(size.shape[0]):
        if size[k] > 0.0:
            notional = size[k] * px[k]
            fee = commission(notional, rate, minimum)
            if worth_its_fee(notional, fee):
                cash -= notional + fee
    return cash


@_jit
def _scaled(size: np.ndarray, factor: float, lot: float, out: np.ndarray) -> np.ndarray:
    """``size x factor`` into ``out``, truncated toward zero to whole lots when ``lot > 0``."""
    for k in range(size.shape[0]):
        out[k] = size[k] * factor
        if lot > 0.0:
            out[k] = np.trunc(out[k] / lot) * lot
    return out


@_jit
def _affordable(
    size: np.ndarray, px: np.ndarray, cash: float, rate: float, minimum: float, lot: float
) -> np.ndarray:
    """``size`` when the cash pays for it, else ``size`` scaled down by the largest common
    factor ``k < 1`` (then truncated to whole lots) whose buys the cash pays for; a buy whose
    fee would exceed its scaled notional costs nothing (it is not made)."""
    if _left(size, px, cash, rate, minimum) >= 0.0:
        return size
    trial = np.empty_like(size)
    if lot == 0.0 and minimum == 0.0:
        # Proportional fees: the cost is linear in k; the closed form, nudged down until the
        # buys' own arithmetic leaves no negative cash.
        cost = -_left(size, px, 0.0, rate, minimum)
        if cost <= 0.0 or cash <= 0.0:
            return np.zeros_like(size)
        scale = cash / cost
        for _ in range(60):
            over = -_left(_scaled(size, scale, 0.0, trial), px, cash, rate, minimum)
            if over <= 0.0:
                return trial
            scale *= max(0.0, 1.0 - over / max(cash + over, 1e-300) - 1e-12)
        return np.zeros_like(size)
    # Whole lots or a minimum fee: the cost of the scaled buys is a step function that never
    # falls as k grows (truncation; a buy starts once it is worth its fee), so the largest k
    # is found by bisection, to the last float.
    lo, hi = 0.0, 1.0
    for _ in range(1100):
        mid = 0.5 * (lo + hi)
        if mid <= lo or mid >= hi:
            break
        if _left(_scaled(size, mid, lot, trial), px, cash, rate, minimum) >= 0.0:
            lo = mid
        else:
            hi = mid
    return _scaled(size, lo, lot, trial)


@_jit
def _known_volume(
    t: int, i: int, volume: np.ndarray, split: np.ndarray, has_actions: np.ndarray
) -> float:
    """The volume the participation cap of symbol ``i`` allows a share of on session ``t``:
    that of session ``t - 1``, the last session complete before any fill on ``t`` (a ``close``
    fill's own volume is not known at a market-on-close cut-off), in shares of session ``t``
    (times the split ratio when ``t`` is an ex-date). NaN (no room) on the first session or
    when ``t - 1`` has no volume."""
    if t == 0:
        return np.nan
    v = volume[t - 1, i]
    if has_actions[t]:
        v *= split[t, i]
    return v


@_jit
def execute(
    t: int, target: np.ndarray, reason: np.ndarray, price: np.ndarray, market: tuple,
    book: tuple, daily: np.ndarray, ledger: np.ndarray, count: np.ndarray, params: np.ndarray,
) -> None:  # fmt: skip
    """Trade toward ``target`` weights (NaN: leave as is) at ``price`` on session ``t``:
    sells first, then buys scaled to the cash. A name without a price does not trade (an
    order in it, a non-zero target or a held name, counts ``unpriced``); the participation
    cap is on :func:`_known_volume`; a trade whose fee would exceed its notional (at the
    fill price, after the cap) is skipped, its notional reported ``skipped``; a buy that the
    scaling to the cash leaves below its fee is not made either (its notional is part of the
    shortfall). Cash never goes negative."""
    qty, last, fill_px, acct = book[0], book[1], book[2], book[3]
    volume, split, has_actions = market[2], market[3], market[5]
    rate, minimum, slip = params[_RATE], params[_MINIMUM], params[_SLIPPAGE]
    participation, lot = params[_PARTICIPATION], params[_LOT]
    n = qty.shape[0]
    cash = acct[CASH]
    sizing = cash  # the portfolio marked at the fill prices before any trade
    for i in range(n):
        mark = last[i] if np.isnan(price[i]) else price[i]
        if qty[i] != 0.0 and not np.isnan(mark):
            sizing += qty[i] * mark
    delta = np.zeros(n)
    for i in range(n):
        p = price[i]
        if np.isnan(target[i]):
            continue
        if np.isnan(p):
            if target[i] != 0.0 or qty[i] != 0.0:
                daily[t, UNPRICED] += 1.0
            continue
        want = target[i] * sizing / p
        if lot > 0.0:
            want = np.trunc(want / lot) * lot
        d = want - qty[i]
        if abs(d) < 1e-12 * max(1.0, abs(qty[i])):
            continue
        if participation > 0.0:
            v = _known_volume(t, i, volume, split, has_actions)
            cap = participation * (0.0 if np.isnan(v) else v)
            if lot > 0.0:
                cap = np.trunc(cap / lot) * lot
            capped = min(max(d, -cap), cap)
            daily[t, UNFILLED] += abs(d - capped) * p
            d = capped
        delta[i] = d
    # Reductions (sells) first: their proceeds pay for the buys.
    for i in range(n):
        if delta[i] < 0.0:
            px = fill_price(price[i], -1.0, slip)
            notional = -delta[i] * px
            fee = commission(notional, rate, minimum)
            if not worth_its_fee(notional, fee):
                daily[t, SKIPPED] += notional
                continue
            cash += notional - fee
            qty[i] += delta[i]
            fill_px[i] = px
            _record(t, i, delta[i], px, fee, price[i], reason[i], ledger, count, daily)
    buys = np.flatnonzero(delta > 0.0)
    if buys.shape[0]:
        size = delta[buys]
        px = np.empty(buys.shape[0])
        wanted = 0.0
        for k in range(buys.shape[0]):
            px[k] = fill_price(price[buys[k]], 1.0, slip)
            notional = size[k] * px[k]
            if worth_its_fee(notional, commission(notional, rate, minimum)):
                wanted += notional
            else:  # not worth its fee even in full: skipped, not short of cash
                daily[t, SKIPPED] += notional
                size[k] = 0.0
        size = _affordable(size, px, cash, rate, minimum, lot)
        bought = 0.0
        for k in range(buys.shape[0]):
            if size[k] <= 0.0:
                continue
            i = buys[k]
            notional = size[k] * px[k]
            fee = commission(notional, rate, minimum)
            if not worth_its_fee(notional, fee):  # scaled to the cash below its fee: short
                continue
            bought += notional
            cash -= notional + fee
            qty[i] += size[k]
            fill_px[i] = px[k]
            _record(t, i, size[k], px[k], fee, price[i], reason[i], ledger, count, daily)
        daily[t, SHORTFALL] += wanted - bought
    acct[CASH] = cash


@_jit
def open_day(
    t: int, weights: np.ndarray, target: np.ndarray, reason: np.ndarray, market: tuple,
    book: tuple, daily: np.ndarray, ledger: np.ndarray, count: np.ndarray, params: np.ndarray,
) -> float:  # fmt: skip
    """Session ``t`` up to the decision: corporate actions, yesterday's order filled,
    positions marked at the close, delisted names closed, and the strategy's order of the
    day in ``target`` and ``reason`` (see :func:`_rebalance_target`). Returns the NAV."""
    opens, closes, _, split, dividend, has_actions, delist_day = market
    qty, last, acct = book[0], book[1], book[3]
    n = qty.shape[0]
    if has_actions[t]:
        paid = 0.0
        for i in range(n):
            qty[i] *= split[t, i]
            # Marks in post-split, ex-dividend terms (a name without a bar keeps this one).
            last[i] = last[i] / split[t, i] - dividend[t, i]
            paid += qty[i] * dividend[t, i]
        acct[CASH] += paid
        daily[t, DIVIDENDS] = paid
    if acct[PENDING] != 0.0:
        price = opens[t] if params[_FILL] == NEXT_OPEN else closes[t]
        execute(t, book[4], book[5], price, market, book, daily, ledger, count, params)
        acct[PENDING] = 0.0
    for i in range(n):
        if not np.isnan(closes[t, i]):
            last[i] = closes[t, i]
    for i in range(n):
        if delist_day[i] == t and qty[i] != 0.0:
            px = last[i]
            acct[CASH] += qty[i] * px
            _record(t, i, -qty[i], px, 0.0, px, DELIST, ledger, count, daily)
            qty[i] = 0.0
    _rebalance_target(t, weights, delist_day, target, reason)
    return acct[CASH] + value(qty, last)[0]


@_jit
def _rebalance_target(
    t: int, weights: np.ndarray, delist_day: np.ndarray, target: np.ndarray, reason: np.ndarray
) -> None:
    """The strategy's order of session ``t`` into ``target`` and ``reason``: its weights,
    except for a name delisted today or before (gone: nothing to trade)."""
    for i in range(target.shape[0]):
        gone = delist_day[i] >= 0 and delist_day[i] <= t
        target[i] = np.nan if gone else weights[t, i]
        reason[i] = REBALANCE


@_jit
def close_day(
    t: int, target: np.ndarray, reason: np.ndarray, market: tuple, book: tuple, out: tuple,
    ledger: np.ndarray, count: np.ndarray, params: np.ndarray,
) -> None:  # fmt: skip
    """Session ``t`` from the decision on: ``target`` (NaN: leave as is) fills at this close
    or waits for the next session; the day's cash, positions, their net and gross value at
    the marks, and the NAV (cash + net value) are recorded."""
    closes = market[1]
    qty, last, acct = book[0], book[1], book[3]
    out_cash, out_nav, positions, daily = out
    decided = False
    for i in range(target.shape[0]):
        if not np.isnan(target[i]):
            decided = True
            break
    if decided:
        if params[_FILL] == CLOSE:
            execute(t, target, reason, closes[t], market, book, daily, ledger, count, params)
        else:
            book[4][:] = target
            book[5][:] = reason
            acct[PENDING] = 1.0
    net, gross = value(qty, last)
    daily[t, NET_VALUE] = net
    daily[t, GROSS_VALUE] = gross
    out_cash[t] = acct[CASH]
    out_nav[t] = acct[CASH] + net
    positions[t] = qty


@_jit
def run_days(
    t0: int, t1: int, weights: np.ndarray, market: tuple, book: tuple, out: tuple,
    ledger: np.ndarray, count: np.ndarray, params: np.ndarray,
) -> int:  # fmt: skip
    """Sessions ``t0 .. t1 - 1`` without risk rules. Returns the first session not run: ``t1``,
    or earlier when the ledger might not hold another session's fills (grow it and resume)."""
    n = weights.shape[1]
    target = np.empty(n)
    reason = np.empty(n, dtype=np.int64)
    daily = out[3]
    for t in range(t0, t1):
        if count[0] + 2 * n > ledger.shape[0]:
            return t
        open_day(t, weights, target, reason, market, book, daily, ledger, count, params)
        close_day(t, target, reason, market, book, out, ledger, count, params)
    return t1

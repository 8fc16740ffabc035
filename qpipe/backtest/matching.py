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
  order's value, or the order below the minimum trade value), ``unpriced`` orders (no fill
  price), and the positions' net and gross value at the marks, from which NAV and exposure
  both come).
- ``ledger``: one row per fill (:data:`LEDGER_COLUMNS`), ``count`` (``[rows used]``).
- ``params``: see :func:`params`.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from qpipe.backtest.config import BacktestConfig
from qpipe.rulebook import limits as lm
from qpipe.rulebook import sizing as sz

DAILY_COLUMNS = (
    "traded", "fees", "slippage", "shortfall", "unfilled", "dividends", "skipped", "unpriced",
    "net_value", "gross_value", "refused", "refused_limit", "refused_notional",
)  # fmt: skip
(TRADED, FEES, SLIPPAGE, SHORTFALL, UNFILLED, DIVIDENDS, SKIPPED, UNPRICED, NET_VALUE,
 GROSS_VALUE, REFUSED, REFUSED_LIMIT, REFUSED_NOTIONAL) = range(len(DAILY_COLUMNS))  # fmt: skip
LEDGER_COLUMNS = ("day", "symbol", "quantity", "price", "fee", "reason")
REASONS = ("rebalance", "stop_loss", "circuit_breaker", "delisting")
REBALANCE, STOP, BREAKER, DELIST = range(len(REASONS))
CASH, PENDING = 0, 1
FILL_MODES = ("next_open", "next_close", "close")
NEXT_OPEN, NEXT_CLOSE, CLOSE = range(len(FILL_MODES))
_FILL, _PARTICIPATION, _LIMITS = range(3)  # then the limits (lm.LIMITS), the sizing (sz.PARAMS)
_SIZING = _LIMITS + len(lm.LIMITS)

_jit = nb.njit(cache=True, nogil=True)


def params(config: BacktestConfig) -> np.ndarray:
    """``config`` as the flat array the steps read: the fill mode, the participation cap
    (0 = none), :func:`qpipe.rulebook.limits.limit_params` (inf = none), then
    :func:`qpipe.rulebook.sizing.sizing_params` (lot size 0 = fractional)."""
    head = np.array([FILL_MODES.index(config.fill), config.participation or 0.0])
    limits = lm.limit_params(
        max_weight=config.max_weight,
        max_gross=config.max_gross,
        max_order_notional=config.max_order_notional,
        max_turnover=config.max_turnover,
    )
    sizing = sz.sizing_params(
        rate=config.commission_rate,
        minimum=config.min_commission,
        slippage=config.slippage_rate,
        lot=config.lot_size,
        min_trade_value=config.min_trade_value,
        cash_buffer=config.cash_buffer,
    )
    return np.concatenate([head, limits, sizing])


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
    """Trade toward ``target`` weights (NaN: leave as is) at ``price`` on session ``t``, sized
    by :func:`qpipe.rulebook.sizing.size_orders` against the portfolio marked at ``price``
    (a name without one at its mark): sells first, then buys scaled to the cash. A name
    without a price does not trade (an order in it, a non-zero target or a held name, counts
    ``unpriced``); the participation cap is on :func:`_known_volume`; a trade whose fee would
    exceed its notional (at the fill price, after the cap) is skipped, its notional reported
    ``skipped``; a buy that the scaling to the cash leaves below its fee is not made either
    (its notional is part of the shortfall). Cash never goes negative.

    The sized orders then go through the live trader's refusal rule
    (:func:`qpipe.rulebook.limits.refusal`: ``target`` against max weight and gross, each
    traded order's notional at ``price`` against max order notional, their sum over the
    portfolio's value against max turnover); a refused session trades nothing of this call,
    as live sends nothing of a refused plan: ``refused`` is 1, ``refused_limit`` the code of
    the limit broken (1 + its index in :data:`qpipe.rulebook.limits.LIMITS`), and
    ``refused_notional`` the notional of the orders not traded."""
    qty, last, fill_px, acct = book[0], book[1], book[2], book[3]
    volume, split, has_actions = market[2], market[3], market[5]
    participation = params[_PARTICIPATION]
    n = qty.shape[0]
    cash = acct[CASH]
    value = cash  # the portfolio marked at the fill prices before any trade
    for i in range(n):
        mark = last[i] if np.isnan(price[i]) else price[i]
        if qty[i] != 0.0 and not np.isnan(mark):
            value += qty[i] * mark
    cap = np.full(n, np.inf)
    if participation > 0.0:
        for i in range(n):
            if not np.isnan(target[i]) and not np.isnan(price[i]):
                v = _known_volume(t, i, volume, split, has_actions)
                cap[i] = participation * (0.0 if np.isnan(v) else v)
    out = np.empty((n, len(sz.OUT)))
    status = np.empty(n, dtype=np.int64)
    left = sz.size_orders(target, qty, price, cap, cash, value, params[_SIZING:], out, status)
    notional = np.empty(n)
    k = 0
    for i in range(n):
        if status[i] == sz.TRADED_:
            notional[k] = abs(out[i, sz.TRADED]) * price[i]
            k += 1
    code, _ = lm.refusal(target, notional[:k], value, params[_LIMITS:_SIZING])
    if code != lm.NOT_REFUSED:
        daily[t, REFUSED] = 1.0
        daily[t, REFUSED_LIMIT] = max(daily[t, REFUSED_LIMIT], float(code))
        daily[t, REFUSED_NOTIONAL] += notional[:k].sum()
        return
    any_buy = False
    for i in range(n):
        if status[i] == sz.UNPRICED:
            daily[t, UNPRICED] += 1.0
        if out[i, sz.UNFILLED] != 0.0:
            daily[t, UNFILLED] += out[i, sz.UNFILLED]
        if out[i, sz.ORDER] > 0.0:
            any_buy = True
    # Reductions (sells) first, as sized: their proceeds paid for the buys.
    for i in range(n):
        if out[i, sz.ORDER] < 0.0:
            _book(t, i, out, status, price, reason, qty, fill_px, ledger, count, daily)
    if any_buy:
        wanted = 0.0
        bought = 0.0
        for i in range(n):
            if out[i, sz.ORDER] > 0.0:
                if status[i] != sz.FEE and status[i] != sz.SMALL:  # not short of cash
                    wanted += out[i, sz.ORDER] * out[i, sz.PRICE]
                if status[i] == sz.TRADED_:
                    bought += out[i, sz.TRADED] * out[i, sz.PRICE]
                _book(t, i, out, status, price, reason, qty, fill_px, ledger, count, daily)
        daily[t, SHORTFALL] += wanted - bought
    acct[CASH] = left


@_jit
def _book(
    t: int, i: int, out: np.ndarray, status: np.ndarray, price: np.ndarray, reason: np.ndarray,
    qty: np.ndarray, fill_px: np.ndarray, ledger: np.ndarray, count: np.ndarray,
    daily: np.ndarray,
) -> None:  # fmt: skip
    """Book name ``i``'s sized order: its fill, or its notional ``skipped`` (fee above it,
    or below the minimum trade value)."""
    if status[i] == sz.FEE or status[i] == sz.SMALL:
        daily[t, SKIPPED] += abs(out[i, sz.ORDER]) * out[i, sz.PRICE]
    elif status[i] == sz.TRADED_:
        d, px = out[i, sz.TRADED], out[i, sz.PRICE]
        qty[i] += d
        fill_px[i] = px
        _record(t, i, d, px, out[i, sz.FEE_PAID], price[i], reason[i], ledger, count, daily)


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

"""The event-driven matching engine: target weights in, fills, cash and equity out.

One pass over the sessions, vectorised across the cross-section inside each day. A day ``t``:

1. Corporate actions with ex-date ``t`` (before the open): share counts are multiplied by the
   split ratio, then each share held receives the cash dividend (per post-split share); the
   last close becomes ``last / split - dividend`` (what a name without a bar on ``t`` is
   marked at).
2. Orders decided at the close of ``t - 1`` fill at the open (``next_open``) or the close
   (``next_close``) of ``t``.
3. Positions are marked at the close; a name without a close keeps its last close (a halt:
   held, whether or not its bars resume). A name with a declared delisting (``delistings``)
   is closed at its last price on its delisting session, or on the first session of the
   panel after it when that session is not in the panel; it takes no orders from then on.
   Nothing is inferred from where a name's bars end.
4. Decisions at the close of ``t``: the target weights of ``t`` (if it is a rebalance: any
   weight given; NaN leaves a name as it is, 0 exits it), the strategy's stop loss (exits)
   and circuit breaker (exposure scaled while reducing, flat while halted; on the session
   it changes mode the whole book moves at once, see
   :func:`qpipe.strategies.risk.breaker_targets`: down to the held weights times the new
   exposure, or on resuming back to the strategy's current targets). With ``fill =
   "close"`` they fill at once at the close of ``t``.

Filling follows ``DESIGN.md`` section 4: the sizing value ``V`` is the portfolio marked at the
fill prices before any trade; a target of ``w`` is ``w V / p`` shares (rounded toward zero to
whole lots if a lot size is set); names without a fill price do not trade (halt); sells run
before buys; buys that need more cash than there is are scaled down together (the shortfall is
reported); fees are paid from cash on top of the notional; slippage moves the price against
the trader; a participation cap limits an order to a fraction of the volume of the last
session complete before the fill session (``t - 1`` for a fill on ``t``: the decision
session's for ``next_open`` and ``next_close``, the one before for ``close``, whose own volume
is unknown at a market-on-close cut-off; split-adjusted on an ex-date; no volume there, as on
the first session, means no room), the rest reported unfilled. A trade whose fee would exceed
its notional is skipped and reported (``skipped``), so cash never goes negative; orders that
find no fill price are counted (``unpriced``) and a backtest that never trades, or leaves many
orders unpriced, says so in :attr:`BacktestResult.warnings`. NAV and the reported exposure
come from the same marks (cash + the positions' net value; gross value / NAV). Same inputs,
same outputs, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.backtest import matching as m
from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.result import BacktestResult
from qpipe.strategies.risk import (
    CircuitBreaker,
    StopLoss,
    StopState,
    breaker_targets,
    current_targets,
)

DIMS = ("date", "symbol")


@dataclass
class _Ledger:
    """The fills (one row each, :data:`matching.LEDGER_COLUMNS`) and the risk events."""

    rows: np.ndarray
    count: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))
    risk_events: list[tuple[pd.Timestamp, str, str, str]] = field(default_factory=list)

    def reserve(self, rows: int) -> None:
        """Room for ``rows`` more fills."""
        need = int(self.count[0]) + rows
        if need > len(self.rows):
            grown = np.empty((max(need, 2 * len(self.rows)), len(m.LEDGER_COLUMNS)))
            grown[: self.count[0]] = self.rows[: self.count[0]]
            self.rows = grown

    @property
    def fills(self) -> np.ndarray:
        return self.rows[: self.count[0]]


def _expected_fills(weights: np.ndarray) -> int:
    """Room for the fills to start with: one per weight given, and a day's worth more (the
    ledger grows when that is not enough)."""
    return int(np.count_nonzero(~np.isnan(weights))) + 2 * weights.shape[1] + 64


def _panel(bars: xr.Dataset, name: str, default: float | None = None) -> np.ndarray:
    if name not in bars:
        if default is None:
            raise ValueError(f"bars: no {name!r} variable (need open, close and volume)")
        return np.full((1, bars.sizes["symbol"]), default)  # read only where actions exist
    values = np.asarray(bars[name].transpose(*DIMS).values, dtype=np.float64)
    if default is not None:
        values = np.where(np.isnan(values), default, values)
    return values


class BacktestEngine:
    """``BacktestEngine(BacktestConfig(...)).run(bars, target_weights) -> BacktestResult``."""

    def __init__(self, config: BacktestConfig | None = None) -> None:
        self.config = config or BacktestConfig()

    def run(
        self,
        bars: xr.Dataset,
        target_weights: xr.DataArray,
        *,
        stop_loss: StopLoss | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        benchmark: pd.Series | None = None,
        delistings: Mapping[str, object] | pd.Series | None = None,
        initial_positions: Mapping[str, float] | pd.Series | None = None,
        initial_cash: float | None = None,
    ) -> BacktestResult:
        """Trade ``target_weights`` (dims ``date, symbol``; given on rebalance dates) on the
        raw ``bars`` (variables open, close, volume, optionally high, low, ``split_ratio``
        and ``dividend`` by ex-date), applying the strategy's risk rules if given.
        ``benchmark`` (a price or NAV series by date) feeds beta, alpha and tracking error.
        ``delistings``: symbol -> declared delisting date (the last session it trades; NaT or
        None: none), see :func:`delisting_days`; a name without bars and no delisting is
        halted, held and marked at its last close.
        ``initial_positions`` (symbol -> shares held before the first session; default none)
        and ``initial_cash`` (default the config's ``initial_cash``) start the run from a given
        book instead of all cash: held names are marked at their first close in ``bars``
        (unmarked before it, as a halted name never priced). Used to replay one live session
        from its journaled starting positions (:mod:`qpipe.live.drift`)."""
        cfg = self.config
        dates = pd.DatetimeIndex(bars.indexes["date"])
        symbols = pd.Index(bars.indexes["symbol"])
        weights = self._weights(target_weights, dates, symbols)
        opens, closes = _panel(bars, "open"), _panel(bars, "close")
        volume = _panel(bars, "volume")
        split = _panel(bars, "split_ratio", 1.0)
        dividend = _panel(bars, "dividend", 0.0)
        n_days, n = closes.shape
        delist_day = delisting_days(delistings, dates, symbols)
        if split.shape[0] == 1 and dividend.shape[0] == 1:
            has_actions = np.zeros(n_days, dtype=np.bool_)
        else:
            split = np.broadcast_to(split, closes.shape)
            dividend = np.broadcast_to(dividend, closes.shape)
            has_actions = ((split != 1.0) | (dividend != 0.0)).any(axis=1)

        market = (opens, closes, volume, split, dividend, has_actions, delist_day)
        start = np.zeros(n)
        if initial_positions is not None:
            held = pd.Series(initial_positions, dtype=np.float64)
            unknown = held.index.difference(symbols)
            if len(unknown):
                names = ", ".join(map(str, unknown[:5]))
                raise ValueError(f"initial_positions: symbols not in the bars: {names}")
            if not np.isfinite(held.to_numpy()).all():
                raise ValueError("initial_positions: shares must be finite")
            start[symbols.get_indexer(held.index)] = held.to_numpy()
        cash0 = cfg.initial_cash if initial_cash is None else float(initial_cash)
        if not np.isfinite(cash0):
            raise ValueError(f"initial_cash must be finite, got {initial_cash!r}")
        book = (
            start,  # qty
            np.full(n, np.nan),  # last close
            np.full(n, np.nan),  # fill prices since the last stop-loss step (its entries)
            np.array([cash0, 0.0]),  # cash, pending
            np.full(n, np.nan),  # pending target
            np.zeros(n, dtype=np.int64),  # pending reason
        )
        out = (np.empty(n_days), np.empty(n_days), np.empty((n_days, n)),
               np.zeros((n_days, len(m.DAILY_COLUMNS))))  # fmt: skip
        ledger = _Ledger(np.empty((_expected_fills(weights), len(m.LEDGER_COLUMNS))))
        params = m.params(cfg)

        breaker_mode = None
        if stop_loss is None and circuit_breaker is None:
            t = 0
            while t < n_days:
                t = m.run_days(t, n_days, weights, market, book, out, ledger.rows,
                               ledger.count, params)  # fmt: skip
                ledger.reserve(2 * n)
        else:
            breaker_mode = self._run_with_rules(
                dates, symbols, weights, market, book, out, ledger, params,
                stop_loss, circuit_breaker,
            )  # fmt: skip

        out_cash, out_nav, positions, daily = out
        return BacktestResult.build(
            dates=dates, symbols=symbols, nav=out_nav, cash=out_cash, positions=positions,
            daily=dict(zip(m.DAILY_COLUMNS, daily.T, strict=True)), fills=ledger.fills,
            risk_events=ledger.risk_events, reasons=m.REASONS, benchmark=benchmark,
            breaker_mode=breaker_mode, fill=cfg.fill, periods_per_year=cfg.periods_per_year,
        )  # fmt: skip

    @staticmethod
    def _run_with_rules(
        dates: pd.DatetimeIndex,
        symbols: pd.Index,
        weights: np.ndarray,
        market: tuple,
        book: tuple,
        out: tuple,
        ledger: _Ledger,
        params: np.ndarray,
        stop_loss: StopLoss | None,
        circuit_breaker: CircuitBreaker | None,
    ) -> np.ndarray | None:
        """The day loop with the strategy's stop loss and circuit breaker evaluated at each
        close (in Python, between the compiled steps). Returns the breaker's mode per day."""
        n_days, n = weights.shape
        split, has_actions, delist_day = market[3], market[5], market[6]
        qty, last, fill_px = book[0], book[1], book[2]
        daily = out[3]
        stop_state = stop_loss.initial(n) if stop_loss else None
        breaker_state = None
        modes = np.empty(n_days, dtype=object)
        target = np.empty(n)
        reason = np.empty(n, dtype=np.int64)
        current = np.full(n, np.nan)  # the strategy's current targets (see breaker_targets)
        for t in range(n_days):
            ledger.reserve(2 * n)
            if has_actions[t] and stop_state is not None:
                stop_state = _rescale_stops(stop_state, split[t])
            nav = m.open_day(
                t, weights, target, reason, market, book, daily, ledger.rows, ledger.count, params
            )
            given = target.copy()  # the strategy's weights of today (delisted names: NaN)
            exits = np.zeros(n, dtype=np.bool_)
            if stop_loss is not None and stop_state is not None:
                res = stop_loss.step(stop_state, qty, market[1][t], fill_px)
                stop_state = res.state
                fill_px[:] = np.nan
                exits = res.exit & (qty != 0)
                if exits.any():
                    target[exits] = 0.0
                    reason[exits] = m.STOP
                    for i, why in res.reasons.items():
                        if exits[i]:
                            ledger.risk_events.append((dates[t], symbols[i], "stop_loss", why))
            if circuit_breaker is not None:
                delisted = (delist_day >= 0) & (delist_day <= t)
                current = current_targets(current, given, exits, delisted)
                if breaker_state is None:
                    breaker_state = circuit_breaker.initial(nav, dates[t])
                    mode = breaker_state.mode
                else:
                    res_b = circuit_breaker.step(breaker_state, dates[t], nav)
                    breaker_state, mode = res_b.state, res_b.state.mode
                    if res_b.transition is not None:
                        tr = res_b.transition
                        ledger.risk_events.append((dates[t], "", "circuit_breaker", tr.reason))
                        # The whole book moves now, not at the next rebalance.
                        held = np.where(np.isnan(last), 0.0, qty * last) / nav
                        target[:] = breaker_targets(mode, target, current, held)
                        reason[reason != m.STOP] = m.BREAKER
                target *= circuit_breaker.exposure(mode)
                modes[t] = mode.value
            m.close_day(t, target, reason, market, book, out, ledger.rows, ledger.count, params)
        return modes if circuit_breaker is not None else None

    @staticmethod
    def _weights(
        target_weights: xr.DataArray, dates: pd.DatetimeIndex, symbols: pd.Index
    ) -> np.ndarray:
        if set(target_weights.dims) != set(DIMS):
            raise ValueError(f"target_weights: dims {target_weights.dims}, expected (date, symbol)")
        w = target_weights.transpose(*DIMS)
        extra = pd.DatetimeIndex(w.indexes["date"]).difference(dates)
        if len(extra):
            raise ValueError(
                f"target_weights: {len(extra)} dates not in the bars, first {extra[0].date()}"
            )
        unknown = pd.Index(w.indexes["symbol"]).difference(symbols)
        if len(unknown):
            raise ValueError(f"target_weights: symbols not in the bars: {', '.join(unknown[:5])}")
        values = w.reindex(date=dates, symbol=symbols).values.astype(np.float64)
        if np.isinf(values).any():
            raise ValueError("target_weights: infinite weights")
        return values


def delisting_days(
    delistings: Mapping[str, object] | pd.Series | None,
    dates: pd.DatetimeIndex,
    symbols: pd.Index,
) -> np.ndarray:
    """Per symbol of ``symbols``, the index in ``dates`` of the session its declared delisting
    closes it: the delisting date itself, or the first session after it when that date is not
    in ``dates`` (a date before the first session maps to session 0: never bought); -1 when
    no date is declared (None or NaT) or it falls after the last session (a fact not yet
    known then). Raises ValueError naming a symbol not in ``symbols`` or a value that is not
    a date."""
    days = np.full(len(symbols), -1, dtype=np.int64)
    if delistings is None or not len(dates):
        return days
    items = delistings.items() if hasattr(delistings, "items") else delistings
    declared: dict[str, pd.Timestamp] = {}
    for symbol, when in items:
        try:
            day = pd.Timestamp(when) if when is not None else pd.NaT
        except (TypeError, ValueError):
            raise ValueError(f"delistings: {symbol!r}: not a date: {when!r}") from None
        if not pd.isna(day):
            declared[str(symbol)] = day.tz_localize(None).normalize() if day.tz else day.normalize()
    unknown = pd.Index(list(declared)).difference(symbols)
    if len(unknown):
        raise ValueError(f"delistings: symbols not in the bars: {', '.join(unknown[:5])}")
    if declared:
        cols = symbols.get_indexer(list(declared))
        rows = dates.searchsorted(pd.DatetimeIndex(list(declared.values())), side="left")
        days[cols] = np.where(rows < len(dates), rows, -1)
    return days


def _rescale_stops(state: StopState, split: np.ndarray) -> StopState:
    """Stop-loss reference prices in post-split units."""
    return replace(state, entry=state.entry / split, peak=state.peak / split)

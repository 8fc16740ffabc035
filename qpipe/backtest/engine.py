"""The event-driven matching engine: target weights in, fills, cash and equity out.

One pass over the sessions, vectorised across the cross-section inside each day. A day ``t``:

1. Corporate actions with ex-date ``t`` (before the open): share counts are multiplied by the
   split ratio, then each share held receives the cash dividend (per post-split share).
2. Orders decided at the close of ``t - 1`` fill at the open (``next_open``) or the close
   (``next_close``) of ``t``.
3. Positions are marked at the close; a name without a close keeps its last close. A name
   whose bars end before the panel does (delisted) is closed at its last close.
4. Decisions at the close of ``t``: the target weights of ``t`` (if it is a rebalance: any
   weight given; NaN leaves a name as it is, 0 exits it), the strategy's stop loss (exits)
   and circuit breaker (exposure scaled while reducing, flat while halted). With ``fill =
   "close"`` they fill at once at the close of ``t``.

Filling follows ``DESIGN.md`` section 4: the sizing value ``V`` is the portfolio marked at the
fill prices before any trade; a target of ``w`` is ``w V / p`` shares (rounded toward zero to
whole lots if a lot size is set); names without a fill price do not trade (halt); sells run
before buys; buys that need more cash than there is are scaled down together (the shortfall is
reported); fees are paid from cash on top of the notional; slippage moves the price against
the trader; a participation cap limits an order to a fraction of the bar's volume (the rest is
reported unfilled). Same inputs, same outputs, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.costs import commissions, fill_prices
from qpipe.backtest.result import BacktestResult
from qpipe.strategies.risk import BreakerMode, CircuitBreaker, StopLoss

DIMS = ("date", "symbol")
REASONS = ("rebalance", "stop_loss", "circuit_breaker", "delisting")
_REBALANCE, _STOP, _BREAKER, _DELIST = range(4)


@dataclass
class _Ledger:
    """What the day loop records, turned into frames at the end."""

    fill_day: list[np.ndarray] = field(default_factory=list)
    fill_symbol: list[np.ndarray] = field(default_factory=list)
    fill_qty: list[np.ndarray] = field(default_factory=list)
    fill_price: list[np.ndarray] = field(default_factory=list)
    fill_fee: list[np.ndarray] = field(default_factory=list)
    fill_reason: list[np.ndarray] = field(default_factory=list)
    risk_events: list[tuple[pd.Timestamp, str, str, str]] = field(default_factory=list)

    def add(self, t: int, idx: np.ndarray, qty: np.ndarray, price: np.ndarray,
            fee: np.ndarray, reason: np.ndarray) -> None:  # fmt: skip
        if len(idx):
            self.fill_day.append(np.full(len(idx), t))
            self.fill_symbol.append(idx)
            self.fill_qty.append(qty)
            self.fill_price.append(price)
            self.fill_fee.append(fee)
            self.fill_reason.append(reason)


@dataclass
class _Day:
    """Per-day totals of the trades."""

    traded: float = 0.0
    fees: float = 0.0
    slippage: float = 0.0
    shortfall: float = 0.0
    unfilled: float = 0.0


def _panel(bars: xr.Dataset, name: str, default: float | None = None) -> np.ndarray:
    if name not in bars:
        if default is None:
            raise ValueError(f"bars: no {name!r} variable (need open, close and volume)")
        return np.full((bars.sizes["date"], bars.sizes["symbol"]), default)
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
    ) -> BacktestResult:
        """Trade ``target_weights`` (dims ``date, symbol``; given on rebalance dates) on the
        raw ``bars`` (variables open, close, volume, optionally high, low, ``split_ratio``
        and ``dividend`` by ex-date), applying the strategy's risk rules if given.
        ``benchmark`` (a price or NAV series by date) feeds beta, alpha and tracking error."""
        cfg = self.config
        dates = pd.DatetimeIndex(bars.indexes["date"])
        symbols = pd.Index(bars.indexes["symbol"])
        weights = self._weights(target_weights, dates, symbols)
        opens, closes = _panel(bars, "open"), _panel(bars, "close")
        volume = _panel(bars, "volume")
        split = _panel(bars, "split_ratio", 1.0)
        dividend = _panel(bars, "dividend", 0.0)
        n_days, n = closes.shape
        has_close = ~np.isnan(closes)
        seen = np.where(has_close.any(axis=0), n_days - 1 - np.argmax(has_close[::-1], 0), -1)
        delist_day = np.where((seen >= 0) & (seen < n_days - 1), seen, -1)
        has_actions = ((split != 1.0) | (dividend != 0.0)).any(axis=1)

        qty = np.zeros(n)
        cash = cfg.initial_cash
        last = np.full(n, np.nan)
        pending: tuple[np.ndarray, np.ndarray] | None = None
        stop_state = stop_loss.initial(n) if stop_loss else None
        breaker_state = None
        ledger = _Ledger()
        out_cash = np.empty(n_days)
        out_nav = np.empty(n_days)
        out_pos = np.empty((n_days, n))
        daily = {k: np.zeros(n_days) for k in ("traded", "fees", "slippage", "shortfall",
                                                "unfilled", "dividends")}  # fmt: skip
        exposure_mode = np.empty(n_days, dtype=object)
        fill_px = np.full(n, np.nan)  # fill prices since the last stop-loss step (its entries)

        for t in range(n_days):
            day = _Day()
            if has_actions[t]:
                qty = qty * split[t]
                last = last / split[t]
                paid = float(qty @ dividend[t])
                cash += paid
                daily["dividends"][t] = paid
                if stop_state is not None:
                    stop_state = _rescale_stops(stop_state, split[t])
            if pending is not None:
                price = opens[t] if cfg.fill == "next_open" else closes[t]
                qty, cash = self._execute(t, *pending, price, volume[t], qty, cash, last,
                                          ledger, day, fill_px)  # fmt: skip
                pending = None
            last = np.where(has_close[t], closes[t], last)
            gone = np.flatnonzero((delist_day == t) & (qty != 0))
            if len(gone):
                cash += float(qty[gone] @ last[gone])
                ledger.add(t, gone, -qty[gone], last[gone], np.zeros(len(gone)),
                           np.full(len(gone), _DELIST))  # fmt: skip
                day.traded += float(np.abs(qty[gone] * last[gone]).sum())
                qty = qty.copy()
                qty[gone] = 0.0
            nav = cash + _value(qty, last)

            target = weights[t].copy()
            target[delist_day == t] = np.nan  # gone: nothing to buy back at its last close
            reason = np.full(n, _REBALANCE)
            if stop_loss is not None and stop_state is not None:
                res = stop_loss.step(stop_state, qty, closes[t], fill_px)
                stop_state = res.state
                fill_px = np.full(n, np.nan)
                exits = res.exit & (qty != 0)
                if exits.any():
                    target[exits] = 0.0
                    reason[exits] = _STOP
                    for i, why in res.reasons.items():
                        if exits[i]:
                            ledger.risk_events.append((dates[t], symbols[i], "stop_loss", why))
            if circuit_breaker is not None:
                if breaker_state is None:
                    breaker_state = circuit_breaker.initial(nav, dates[t])
                    mode = breaker_state.mode
                else:
                    res_b = circuit_breaker.step(breaker_state, dates[t], nav)
                    breaker_state, mode = res_b.state, res_b.state.mode
                    if res_b.transition is not None:
                        tr = res_b.transition
                        ledger.risk_events.append((dates[t], "", "circuit_breaker", tr.reason))
                        if mode is not BreakerMode.ACTIVE:  # act now, not at the next rebalance
                            held = np.where(np.isnan(last), 0.0, qty * last) / nav
                            target = np.where(np.isnan(target), held, target)
                            reason[:] = _BREAKER
                scale = circuit_breaker.exposure(mode)
                target = target * scale
                exposure_mode[t] = mode.value
            if not np.isnan(target).all():
                if cfg.fill == "close":
                    qty, cash = self._execute(t, target, reason, closes[t], volume[t], qty,
                                              cash, last, ledger, day, fill_px)  # fmt: skip
                    nav = cash + _value(qty, last)
                else:
                    pending = (target, reason)
            out_cash[t] = cash
            out_nav[t] = nav
            out_pos[t] = qty
            for k in ("traded", "fees", "slippage", "shortfall", "unfilled"):
                daily[k][t] = getattr(day, k)

        return BacktestResult.build(
            dates=dates, symbols=symbols, nav=out_nav, cash=out_cash, positions=out_pos,
            closes=closes, daily=daily, ledger=ledger, reasons=REASONS, config=cfg,
            benchmark=benchmark,
            breaker_mode=exposure_mode if circuit_breaker is not None else None,
        )  # fmt: skip

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

    def _execute(
        self,
        t: int,
        target: np.ndarray,
        reason: np.ndarray,
        price: np.ndarray,
        volume: np.ndarray,
        qty: np.ndarray,
        cash: float,
        last: np.ndarray,
        ledger: _Ledger,
        day: _Day,
        fill_px: np.ndarray,
    ) -> tuple[np.ndarray, float]:
        """Trade toward ``target`` weights at ``price``; returns the new shares and cash."""
        cfg = self.config
        tradable = ~np.isnan(price)
        mark = np.where(tradable, price, last)
        value = cash + _value(qty, mark)
        want = np.where(
            np.isnan(target) | ~tradable, qty, target * value / np.where(tradable, price, 1.0)
        )
        if cfg.lot_size is not None:
            want = np.trunc(want / cfg.lot_size) * cfg.lot_size
        delta = want - qty
        delta[np.abs(delta) < 1e-12 * np.maximum(1.0, np.abs(qty))] = 0.0
        if cfg.participation is not None:
            cap = cfg.participation * np.where(np.isnan(volume), 0.0, volume)
            if cfg.lot_size is not None:
                cap = np.trunc(cap / cfg.lot_size) * cfg.lot_size
            capped = np.clip(delta, -cap, cap)
            day.unfilled += float(np.abs(delta - capped) @ np.where(tradable, price, 0.0))
            delta = capped
        qty = qty.copy()
        # Reductions (sells) first: their proceeds pay for the buys.
        sells = np.flatnonzero(delta < 0)
        if len(sells):
            px = fill_prices(price[sells], -np.ones(len(sells)), cfg)
            notional = -delta[sells] * px
            fee = commissions(notional, cfg)
            cash += float(notional.sum() - fee.sum())
            qty[sells] += delta[sells]
            self._record(
                t, sells, delta[sells], px, fee, price[sells], reason, ledger, day, fill_px
            )
        buys = np.flatnonzero(delta > 0)
        if len(buys):
            px = fill_prices(price[buys], np.ones(len(buys)), cfg)
            size = delta[buys]
            wanted = float(size @ px)
            size = self._affordable(size, px, cash)
            day.shortfall += wanted - float(size @ px)
            keep = size > 0
            buys, size, px = buys[keep], size[keep], px[keep]
            notional = size * px
            fee = commissions(notional, cfg)
            cash -= float(notional.sum() + fee.sum())
            qty[buys] += size
            self._record(t, buys, size, px, fee, price[buys], reason, ledger, day, fill_px)
        return qty, cash

    def _affordable(self, size: np.ndarray, px: np.ndarray, cash: float) -> np.ndarray:
        """``size`` scaled down together (and to whole lots) until notional plus fees fit in
        ``cash``."""
        cfg = self.config

        def cost(s: np.ndarray) -> float:
            notional = s * px
            return float(notional.sum() + commissions(notional, cfg).sum())

        total = cost(size)
        if total <= cash:
            return size
        if cfg.lot_size is not None:
            # The largest common factor whose whole-lot buys the cash pays for (the cost of
            # the truncated buys grows with the factor, so bisection finds it).
            lot = cfg.lot_size
            lo, hi = 0.0, 1.0
            for _ in range(64):
                mid = 0.5 * (lo + hi)
                if cost(np.trunc(size * mid / lot) * lot) <= cash:
                    lo = mid
                else:
                    hi = mid
            return np.trunc(size * lo / lot) * lot
        scale = max(cash, 0.0) / total
        scaled = size * scale
        for _ in range(60):  # a minimum commission makes fees non-proportional
            over = cost(scaled) - cash
            if over <= 0:
                return scaled
            scale *= max(0.0, 1.0 - over / max(cost(scaled), 1e-300) - 1e-12)
            scaled = size * scale
        return np.zeros_like(size)

    @staticmethod
    def _record(
        t: int,
        idx: np.ndarray,
        signed: np.ndarray,
        px: np.ndarray,
        fee: np.ndarray,
        quoted: np.ndarray,
        reason: np.ndarray,
        ledger: _Ledger,
        day: _Day,
        fill_px: np.ndarray,
    ) -> None:
        ledger.add(t, idx, signed, px, fee, reason[idx])
        size = np.abs(signed)
        day.traded += float(size @ px)
        day.fees += float(fee.sum())
        day.slippage += float(size @ np.abs(px - quoted))
        fill_px[idx] = px


def _value(qty: np.ndarray, price: np.ndarray) -> float:
    """``sum(qty * price)`` over the names held (a name never priced is held by no one)."""
    return float(qty @ np.where(np.isnan(price), 0.0, price))


def _rescale_stops(state: object, split: np.ndarray) -> object:
    """Stop-loss reference prices in post-split units."""
    return replace(state, entry=state.entry / split, peak=state.peak / split)  # type: ignore[attr-defined]

"""What a backtest returns: equity, positions, fills, daily accounts and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qpipe.analytics.metrics import performance_metrics
from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR

FILL_COLUMNS = ["date", "symbol", "side", "quantity", "price", "fee", "reason"]


@dataclass(frozen=True)
class BacktestResult:
    """A backtest's outputs.

    - ``equity``: end-of-day net asset value (cash + positions at the close), by date.
    - ``positions``: shares held at the end of each day (dates x symbols; 0 = none).
    - ``fills``: one row per fill: date, symbol, side (buy/sell), quantity (> 0), price (after
      slippage), fee, reason (rebalance, stop_loss, circuit_breaker, delisting).
    - ``daily``: cash, gross and net exposure (fractions of NAV), turnover (traded notional /
      NAV), fees, slippage (cost against the quoted price), costs (fees + slippage),
      dividends received, buy shortfall (notional the cash could not pay for), unfilled
      notional (participation cap), and the circuit breaker's mode when there is one.
    - ``risk_events``: date, symbol, rule, reason of every stop and breaker transition.
    - ``metrics``: see :func:`qpipe.analytics.metrics.performance_metrics` (annualised with
      the engine's ``periods_per_year``).
    """

    equity: pd.Series
    positions: pd.DataFrame
    fills: pd.DataFrame
    daily: pd.DataFrame
    risk_events: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        *,
        dates: pd.DatetimeIndex,
        symbols: pd.Index,
        nav: np.ndarray,
        cash: np.ndarray,
        positions: np.ndarray,
        closes: np.ndarray,
        daily: dict[str, np.ndarray],
        fills: np.ndarray,
        risk_events: list[tuple[Any, str, str, str]],
        reasons: tuple[str, ...],
        benchmark: pd.Series | None,
        breaker_mode: np.ndarray | None,
        periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR,
    ) -> BacktestResult:
        dates = pd.DatetimeIndex(dates, name="date")
        equity = pd.Series(nav, index=dates, name="equity")
        marks = pd.DataFrame(closes, index=dates, columns=symbols).ffill().to_numpy()
        value = np.where(positions != 0, positions * marks, 0.0)
        # Sums in symbol order, one addition after another (the last cumulative sum): a
        # symbol not held adds an exact 0, so the backtest over more symbols (a longer lake)
        # gives the very same numbers (the point-in-time check compares them exactly).
        gross = np.cumsum(np.abs(value), axis=1)[:, -1] if value.shape[1] else np.zeros(len(nav))
        net = np.cumsum(value, axis=1)[:, -1] if value.shape[1] else np.zeros(len(nav))
        with np.errstate(invalid="ignore", divide="ignore"):
            frame = pd.DataFrame(
                {
                    "cash": cash,
                    "nav": nav,
                    "gross_exposure": gross / nav,
                    "net_exposure": net / nav,
                    "turnover": daily["traded"] / nav,
                    "fees": daily["fees"],
                    "slippage": daily["slippage"],
                    "costs": daily["fees"] + daily["slippage"],
                    "dividends": daily["dividends"],
                    "shortfall": daily["shortfall"],
                    "unfilled": daily["unfilled"],
                },
                index=dates,
            )
        if breaker_mode is not None:
            frame["breaker"] = breaker_mode
        if len(fills):
            signed = fills[:, 2]
            fill_frame = pd.DataFrame(
                {
                    "date": dates[fills[:, 0].astype(np.int64)],
                    "symbol": pd.Categorical.from_codes(
                        fills[:, 1].astype(np.int64), categories=pd.Index(symbols)
                    ),
                    "side": pd.Categorical.from_codes(
                        (signed > 0).astype(np.int8), categories=["sell", "buy"]
                    ),
                    "quantity": np.abs(signed),
                    "price": fills[:, 3],
                    "fee": fills[:, 4],
                    "reason": pd.Categorical.from_codes(
                        fills[:, 5].astype(np.int8), categories=list(reasons)
                    ),
                }
            )
        else:
            fill_frame = pd.DataFrame({c: [] for c in FILL_COLUMNS})
        events = pd.DataFrame(risk_events, columns=["date", "symbol", "rule", "reason"])
        result = cls(
            equity=equity,
            positions=pd.DataFrame(positions, index=dates, columns=symbols),
            fills=fill_frame,
            daily=frame,
            risk_events=events,
        )
        metrics = performance_metrics(equity, frame, benchmark, periods_per_year)
        object.__setattr__(result, "metrics", metrics)
        return result

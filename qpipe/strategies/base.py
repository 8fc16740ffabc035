"""The strategy interface: declared inputs, scores, rebalance schedule, portfolio construction
and risk rules.

A strategy owns its data needs and its scoring but never fetches: it declares the factors it
reads and how many sessions of bars before the first date it needs (``lookback``), and is
handed a :class:`StrategyData`. ``score`` gives a ``(date, symbol)`` panel; ``signals`` turns
scores into target weights on the rebalance sessions of the calendar through the strategy's
:class:`~qpipe.strategies.portfolio.Portfolio`. The stop loss and the circuit breaker are
declared here and applied by whatever runs the strategy (the backtest engine's day loop, the
live trader), because they depend on fills and equity, which a strategy does not see.

Target weights follow the engine's contract: on a rebalance session every universe name has a
weight (0 = hold none); on other sessions they are NaN (leave positions as they are).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR, DateLike, TradingCalendar, to_date
from qpipe.factors.inputs import FactorInputs
from qpipe.factors.operators import ts_std
from qpipe.strategies.portfolio import InverseVolatility, Portfolio
from qpipe.strategies.risk import CircuitBreaker, StopLoss
from qpipe.strategies.schedule import Frequency, rebalance_mask

DIMS = ("date", "symbol")


@dataclass(frozen=True)
class Universe:
    """Which instruments a strategy trades: explicit ``symbols``, else every instrument of the
    given ``kinds``. Signals list them sorted (ties in a ranking go to the first)."""

    kinds: tuple[str, ...] = ("stock",)
    symbols: tuple[str, ...] | None = None

    def select(self, instruments: pd.DataFrame) -> list[str]:
        """The universe's symbols among ``instruments`` (columns symbol, kind)."""
        if self.symbols is not None:
            known = set(instruments["symbol"])
            return [s for s in self.symbols if s in known]
        chosen = instruments.loc[instruments["kind"].isin(self.kinds), "symbol"]
        return sorted(chosen.astype(str))


@dataclass(frozen=True)
class StrategyData:
    """What a strategy receives: forward-adjusted price panels (``bars``, the grid of dates
    and symbols, history before the first signal date included), the declared factor panels
    on that grid, and the instruments table (symbol, kind, sector)."""

    bars: FactorInputs
    factors: xr.Dataset
    instruments: pd.DataFrame

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.bars.close.indexes["date"])

    @property
    def symbols(self) -> pd.Index:
        return self.bars.close.indexes["symbol"]

    def factor(self, name: str) -> xr.DataArray:
        """Factor ``name`` on the bars' grid (NaN where the factor has no value)."""
        if name not in self.factors:
            raise KeyError(f"factor {name!r} was not given to the strategy")
        panel = self.factors[name].transpose(*DIMS)
        return panel.reindex(date=self.dates, symbol=self.symbols)


@dataclass(frozen=True)
class Signals:
    """A strategy's output on its signal dates: scores every session, target weights on
    rebalance sessions (NaN elsewhere), over the universe's symbols."""

    strategy: str
    score: xr.DataArray
    weight: xr.DataArray
    rebalance: np.ndarray

    listed: xr.DataArray | None = None
    """Where a name has a bar (None: everywhere); rows elsewhere are left out of frames."""

    def to_frame(self) -> pd.DataFrame:
        """Long rows ``date, symbol, strategy, score, target_weight`` sorted by date, symbol,
        for the names with a bar that date."""
        dates = self.score.indexes["date"]
        symbols = self.score.indexes["symbol"]
        n, m = self.score.shape
        frame = pd.DataFrame(
            {
                "date": np.repeat(dates.to_numpy(), m),
                "symbol": np.tile(symbols.to_numpy().astype(str), n),
                "strategy": self.strategy,
                "score": self.score.values.ravel(),
                "target_weight": self.weight.values.ravel(),
            }
        )
        if self.listed is not None:
            frame = frame.loc[self.listed.values.ravel()].reset_index(drop=True)
        return frame


class BaseStrategy(ABC):
    """A strategy: declared inputs, ``score``, schedule, construction and risk rules.

    Subclasses set :attr:`factors` and :attr:`lookback` and implement :meth:`score`.
    """

    factors: tuple[str, ...] = ()
    """Factor columns the strategy reads."""

    def __init__(
        self,
        name: str,
        *,
        universe: Universe,
        portfolio: Portfolio,
        rebalance: Frequency = "monthly",
        vol_window: int = 60,
        stop_loss: StopLoss | None = None,
        circuit_breaker: CircuitBreaker | None = None,
    ) -> None:
        self.name = name
        self.universe = universe
        self.portfolio = portfolio
        self.rebalance = rebalance
        self.vol_window = vol_window
        self.stop_loss = stop_loss
        self.circuit_breaker = circuit_breaker

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"

    @property
    def lookback(self) -> int:
        """Sessions of bars before a signal date that its signals need (the volatility
        window's returns when weights are inverse-volatility)."""
        return self.vol_window if self._needs_volatility() else 0

    @abstractmethod
    def score(self, data: StrategyData) -> xr.DataArray:
        """Scores over ``data``'s grid (higher is better; NaN = not eligible). A score at
        ``t`` may use data up to ``t`` only."""

    def volatility(
        self, data: StrategyData, periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR
    ) -> xr.DataArray:
        """Volatility of daily returns over ``vol_window`` sessions (ddof 1), annualised with
        ``periods_per_year`` sessions (the calendar's ``sessions_per_year``; for
        inverse-volatility weights, which do not depend on the scale)."""
        return ts_std(data.bars.returns, self.vol_window) * np.sqrt(periods_per_year)

    def signals(
        self,
        data: StrategyData,
        calendar: TradingCalendar,
        start: DateLike | None = None,
        end: DateLike | None = None,
        previous: pd.Series | None = None,
    ) -> Signals:
        """Scores and target weights for the sessions of ``data`` in ``[start, end]``.

        Rebalances fall on the schedule's sessions that have a bar of some universe name; a
        session missing from the data (a NaN row of ``data``'s grid) is not one.

        ``previous`` holds the weights decided at the last rebalance before ``start`` (by
        symbol; None: no position), which the hold band and the turnover buffer build on.
        """
        universe = self.universe.select(data.instruments)
        present = set(data.symbols)
        symbols = pd.Index(sorted(s for s in universe if s in present), name="symbol")
        score = self.score(data).reindex(symbol=symbols)
        dates = data.dates
        lo = pd.Timestamp(to_date(start)) if start is not None else dates[0]
        hi = pd.Timestamp(to_date(end)) if end is not None else dates[-1]
        keep = (dates >= lo) & (dates <= hi)
        score = score.isel(date=np.flatnonzero(keep))
        out_dates = dates[keep]
        listed = data.bars.close.reindex(symbol=symbols).isel(date=np.flatnonzero(keep)).notnull()
        # A scheduled session without a bar of the universe (missing from the data) decides
        # nothing: it has no rows, so a later run could not build on its weights.
        rebalance = rebalance_mask(out_dates, self.rebalance, calendar)
        rebalance &= listed.values.any(axis=1)
        vol = None
        if rebalance.any() and self._needs_volatility():
            vol = self.volatility(data, calendar.sessions_per_year)
            vol = vol.reindex(symbol=symbols).isel(date=np.flatnonzero(keep))
        weights = np.full(score.shape, np.nan)
        prev = np.zeros(len(symbols))
        if previous is not None:
            prev = previous.reindex(symbols).fillna(0.0).to_numpy(dtype=np.float64)
        ranked = self.ranking_score(score).values
        names = symbols.to_numpy()
        for i in np.flatnonzero(rebalance):
            vol_i = None if vol is None else vol.values[i]
            w = self.portfolio.build(ranked[i], prev, vol_i, names)
            weights[i] = w
            prev = w
        weight = xr.DataArray(weights, coords=score.coords, dims=DIMS)
        return Signals(self.name, score, weight, rebalance, listed)

    def ranking_score(self, score: xr.DataArray) -> xr.DataArray:
        """The scores portfolio construction ranks (default: ``score`` itself)."""
        return score

    def _needs_volatility(self) -> bool:
        return any(isinstance(step, InverseVolatility) for step in self.portfolio.steps)


def last_weights(frame: pd.DataFrame) -> pd.Series | None:
    """The target weights of the last rebalance in a signals frame (None if there is none)."""
    decided = frame.loc[frame["target_weight"].notna()]
    if decided.empty:
        return None
    last = decided.loc[decided["date"] == decided["date"].max()]
    return last.set_index("symbol")["target_weight"]

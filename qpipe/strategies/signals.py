"""Signals from the lake's tables: the glue between stored bars and factors and a strategy.

``strategy_data`` puts long ``bars``/``factors`` frames on one ``(date, symbol)`` grid;
``compute_signals`` runs a strategy over a range of sessions and returns the long rows of its
``signals_<name>`` table (``date, symbol, strategy, score, target_weight``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.calendars import DateLike, TradingCalendar
from qpipe.data.lake import Lake
from qpipe.data.schema import MarketData
from qpipe.factors.panel import build_inputs
from qpipe.strategies.base import BaseStrategy, StrategyData, last_weights

SIGNAL_COLUMNS = ["date", "symbol", "strategy", "score", "target_weight"]
PREVIOUS_WINDOW = 40
"""Sessions before a range searched for the last rebalance (a month holds at most 23)."""


def signals_table(strategy: str) -> str:
    """The lake table of a strategy's signals."""
    return f"signals_{strategy}"


def strategy_data(
    market: MarketData,
    factors: pd.DataFrame,
    names: Sequence[str],
    instruments: pd.DataFrame,
    calendar: TradingCalendar | None = None,
) -> StrategyData:
    """Forward-adjusted bars of ``market`` and the factor columns ``names`` of the long
    ``factors`` frame on the bars' grid (NaN where a factor row is missing). The grid's dates
    are ``calendar``'s sessions from the first to the last bar (a session without bars is a
    NaN row, so the strategy's windows count calendar sessions); None: the bars' own dates."""
    bars = build_inputs(market.bars, market.actions, calendar=calendar)
    dates = bars.close.indexes["date"]
    symbols = bars.close.indexes["symbol"]
    rows = dates.get_indexer(pd.DatetimeIndex(factors["date"])) if len(factors) else []
    cols = symbols.get_indexer(factors["symbol"].astype(str)) if len(factors) else []
    ok = (np.asarray(rows) >= 0) & (np.asarray(cols) >= 0)
    panels = {}
    for name in names:
        if name not in factors.columns:
            raise KeyError(f"the factors table has no column {name!r}")
        values = np.full((len(dates), len(symbols)), np.nan)
        column = factors[name].to_numpy(dtype=np.float64)
        values[np.asarray(rows)[ok], np.asarray(cols)[ok]] = column[ok]
        panels[name] = xr.DataArray(
            values, coords={"date": dates, "symbol": symbols}, dims=("date", "symbol")
        )
    return StrategyData(bars=bars, factors=xr.Dataset(panels), instruments=instruments)


def compute_signals(
    strategy: BaseStrategy,
    market: MarketData,
    factors: pd.DataFrame,
    instruments: pd.DataFrame,
    calendar: TradingCalendar,
    start: DateLike | None = None,
    end: DateLike | None = None,
    previous: pd.Series | None = None,
) -> pd.DataFrame:
    """The strategy's signal rows for the sessions in ``[start, end]`` (default: all of
    ``market``'s sessions); ``previous`` are the weights of the last rebalance before them.
    Look-back windows count ``calendar``'s sessions; a session without bars has no rows."""
    data = strategy_data(market, factors, strategy.factors, instruments, calendar)
    out = strategy.signals(data, calendar, start, end, previous)
    return out.to_frame()[SIGNAL_COLUMNS]


def previous_weights(
    frame: pd.DataFrame | None,
) -> pd.Series | None:
    """The weights of the last rebalance in a strategy's earlier signal rows (None: none)."""
    if frame is None or len(frame) == 0:
        return None
    return last_weights(frame)


def lake_previous_weights(
    lake: Lake, calendar: TradingCalendar, strategy: str, first: DateLike
) -> pd.Series | None:
    """The weights of the strategy's last rebalance in the :data:`PREVIOUS_WINDOW` sessions
    before ``first``, from its signal table in ``lake`` (None: none)."""
    last = lake_last_rebalance(lake, calendar, strategy, first)
    return None if last is None else last[1]


def lake_last_rebalance(
    lake: Lake, calendar: TradingCalendar, strategy: str, first: DateLike
) -> tuple[pd.Timestamp, pd.Series] | None:
    """The date and weights (by symbol) of the strategy's last rebalance in the
    :data:`PREVIOUS_WINDOW` sessions before ``first``, from its signal table in ``lake``
    (None: none)."""
    table = signals_table(strategy)
    before = calendar.sessions_index(None, first)
    before = before[before < pd.Timestamp(first)][-PREVIOUS_WINDOW:]
    if not len(before) or table not in lake.tables():
        return None
    frame = lake.read(table, before[0], before[-1])
    weights = previous_weights(frame)
    if weights is None:
        return None
    decided = frame.loc[frame["target_weight"].notna(), "date"]
    return pd.Timestamp(decided.max()), weights

"""A configured strategy's backtest from lake frames: bars (with corporate actions), its
signal rows and the backtest settings, with its benchmark; and every configured strategy's
backtest from the lake, saved back to it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import bottleneck as bn
import numpy as np
import pandas as pd
import xarray as xr

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.inputs import (
    bars_dataset,
    delisting_dates,
    total_return_index,
    weights_panel,
)
from qpipe.backtest.result import BacktestResult
from qpipe.backtest.store import save_result
from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR
from qpipe.data.lake import Lake
from qpipe.data.schema import MarketData
from qpipe.settings import BacktestSettings
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.signals import signals_table

EQUAL_WEIGHT = "equal_weight"


def engine_config(
    settings: BacktestSettings, periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR
) -> BacktestConfig:
    """The engine's configuration from the ``backtest`` settings (with the minimum trade
    value and cash buffer of ``limits:``, and its refusal limits: max weight, gross, order
    notional and turnover), its metrics annualised with ``periods_per_year`` sessions (the
    calendar's ``sessions_per_year``)."""
    min_trade_value, cash_buffer = settings.sizing_limits
    return BacktestConfig(
        **settings.model_dump(exclude={"benchmark"}),
        periods_per_year=periods_per_year,
        min_trade_value=min_trade_value,
        cash_buffer=cash_buffer,
        **settings.refusal_limits,
    )


def benchmark_series(
    bars: xr.Dataset,
    spec: str,
    universe: list[str],
    delistings: pd.Series | Mapping[str, object] | None = None,
) -> pd.Series:
    """The benchmark's value by date: a symbol's total-return index
    (:func:`~qpipe.backtest.inputs.total_return_index`), or ``equal_weight``: the universe
    equally weighted and rebalanced daily, starting at 1. Its growth on a session is the mean,
    over the members listed on that session and the one before, of ``TR_t / TR_{t-1}``: a
    halted member counts with growth 1, a member listed later joins from the session after
    its first bar, a delisted one (``delistings``: date by symbol) leaves after its delisting
    session; a session without such members has growth 1."""
    index = total_return_index(bars, delistings)
    if spec != EQUAL_WEIGHT:
        if spec not in bars.indexes["symbol"]:
            raise ValueError(f"backtest.benchmark: no bars for {spec!r}")
        return index.sel(symbol=spec).to_pandas().rename(spec)
    members = [s for s in universe if s in bars.indexes["symbol"]]
    values = index.sel(symbol=members).transpose("date", "symbol").values
    growth = np.full(values.shape, np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        growth[1:] = values[1:] / values[:-1]  # NaN unless listed both days
    mean = bn.nanmean(growth, axis=1) if len(members) else np.full(len(values), np.nan)
    mean = np.where(np.isnan(mean), 1.0, mean)
    return pd.Series(np.cumprod(mean), index=bars.indexes["date"], name=EQUAL_WEIGHT)


def declared_delistings(instruments: pd.DataFrame, bars: xr.Dataset) -> pd.Series:
    """Symbol -> declared delisting date (:func:`~qpipe.backtest.inputs.delisting_dates`) of
    the symbols in ``bars``: the engine closes a position on that session, and infers nothing
    from where a name's bars end."""
    declared = delisting_dates(instruments)
    return declared.loc[declared.index.isin(bars.indexes["symbol"])]


def backtest_inputs(
    strategy: BaseStrategy,
    market: MarketData,
    signals: pd.DataFrame,
    settings: BacktestSettings,
    instruments: pd.DataFrame,
) -> tuple[xr.Dataset, xr.DataArray, pd.Series]:
    """The engine's bars and weights from the first signal session on, and the benchmark."""
    if signals.empty:
        raise ValueError(f"strategy {strategy.name!r} has no signals: run `qpipe signals`")
    first = signals["date"].min()
    cut = MarketData(market.bars.loc[market.bars["date"] >= first], market.actions)
    bars = bars_dataset(cut)
    weights = weights_panel(signals).reindex(symbol=bars.indexes["symbol"])
    universe = strategy.universe.select(instruments)
    benchmark = benchmark_series(bars, settings.benchmark, universe, delisting_dates(instruments))
    return bars, weights, benchmark


def run_backtest(
    strategy: BaseStrategy,
    market: MarketData,
    signals: pd.DataFrame,
    settings: BacktestSettings,
    instruments: pd.DataFrame,
    *,
    periods_per_year: float,
) -> tuple[BacktestResult, pd.Series]:
    """Trade the strategy's target weights on the raw bars from its first signal session on,
    with its stop loss and circuit breaker and the instruments' declared delistings, against
    the configured benchmark, its metrics annualised with ``periods_per_year`` sessions;
    returns the result and the benchmark series."""
    bars, weights, benchmark = backtest_inputs(strategy, market, signals, settings, instruments)
    delistings = declared_delistings(instruments, bars)
    result = run_engine(strategy, bars, weights, settings, benchmark, periods_per_year, delistings)
    return result, benchmark


def run_engine(
    strategy: BaseStrategy,
    bars: xr.Dataset,
    weights: xr.DataArray,
    settings: BacktestSettings,
    benchmark: pd.Series | None,
    periods_per_year: float,
    delistings: pd.Series | None = None,
) -> BacktestResult:
    """The engine of ``settings`` on ``bars`` and target ``weights`` with the strategy's stop
    loss and circuit breaker, closing positions on their declared ``delistings``, its metrics
    annualised with ``periods_per_year`` sessions."""
    return BacktestEngine(engine_config(settings, periods_per_year)).run(
        bars,
        weights,
        stop_loss=strategy.stop_loss,
        circuit_breaker=strategy.circuit_breaker,
        benchmark=benchmark,
        delistings=delistings,
    )


def lake_market(lake: Lake) -> MarketData:
    """Every bar and corporate action in ``lake``."""
    return MarketData(lake.read("bars"), lake.read("corporate_actions"))


def backtest_lake(
    lake: Lake,
    strategies: Mapping[str, BaseStrategy],
    settings: BacktestSettings,
    instruments: pd.DataFrame,
    market: MarketData | None = None,
    *,
    periods_per_year: float,
) -> Iterator[tuple[str, BacktestResult, Path]]:
    """Backtest each of ``strategies`` over its signal table in ``lake`` (on ``market``, by
    default :func:`lake_market`, read once; metrics annualised with ``periods_per_year``
    sessions, the calendar's ``sessions_per_year``) and save each result under
    ``lake/backtests/<name>/``; yields name, result and where it was saved, one strategy at a
    time."""
    if market is None:
        market = lake_market(lake)
    for name, strategy in strategies.items():
        signals = lake.read(signals_table(name), columns=["target_weight"])
        result, benchmark = run_backtest(
            strategy, market, signals, settings, instruments, periods_per_year=periods_per_year
        )
        yield name, result, save_result(lake.root, name, result, benchmark)

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
from qpipe.backtest.inputs import bars_dataset, total_return_index, weights_panel
from qpipe.backtest.result import BacktestResult
from qpipe.backtest.store import save_result
from qpipe.data.lake import Lake
from qpipe.data.schema import MarketData
from qpipe.settings import BacktestSettings
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.signals import signals_table

EQUAL_WEIGHT = "equal_weight"


def engine_config(settings: BacktestSettings) -> BacktestConfig:
    return BacktestConfig(**settings.model_dump(exclude={"benchmark"}))


def benchmark_series(bars: xr.Dataset, spec: str, universe: list[str]) -> pd.Series:
    """The benchmark's value by date: a symbol's total-return index, or the equally weighted
    (daily rebalanced) total return of ``universe``."""
    index = total_return_index(bars)
    if spec != EQUAL_WEIGHT:
        if spec not in bars.indexes["symbol"]:
            raise ValueError(f"backtest.benchmark: no bars for {spec!r}")
        return index.sel(symbol=spec).to_pandas().rename(spec)
    members = [s for s in universe if s in bars.indexes["symbol"]]
    growth = (index.sel(symbol=members) / index.sel(symbol=members).shift(date=1)).values
    mean = bn.nanmean(np.where(np.isfinite(growth), growth, np.nan), axis=1)
    mean = np.where(np.isnan(mean), 1.0, mean)
    return pd.Series(np.cumprod(mean), index=bars.indexes["date"], name=EQUAL_WEIGHT)


def declared_delistings(instruments: pd.DataFrame, bars: xr.Dataset) -> pd.Series:
    """Symbol -> declared delisting date (the instruments' ``last_date``; NaT: none) of the
    symbols in ``bars``: the engine closes a position on that session, and infers nothing
    from where a name's bars end."""
    frame = instruments.loc[instruments["last_date"].notna(), ["symbol", "last_date"]]
    frame = frame.loc[frame["symbol"].isin(bars.indexes["symbol"])]
    return pd.Series(frame["last_date"].to_numpy(), index=frame["symbol"].astype(str).to_numpy())


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
    benchmark = benchmark_series(bars, settings.benchmark, strategy.universe.select(instruments))
    return bars, weights, benchmark


def run_backtest(
    strategy: BaseStrategy,
    market: MarketData,
    signals: pd.DataFrame,
    settings: BacktestSettings,
    instruments: pd.DataFrame,
) -> tuple[BacktestResult, pd.Series]:
    """Trade the strategy's target weights on the raw bars from its first signal session on,
    with its stop loss and circuit breaker and the instruments' declared delistings, against
    the configured benchmark; returns the result and the benchmark series."""
    bars, weights, benchmark = backtest_inputs(strategy, market, signals, settings, instruments)
    delistings = declared_delistings(instruments, bars)
    return run_engine(strategy, bars, weights, settings, benchmark, delistings), benchmark


def run_engine(
    strategy: BaseStrategy,
    bars: xr.Dataset,
    weights: xr.DataArray,
    settings: BacktestSettings,
    benchmark: pd.Series | None,
    delistings: pd.Series | None = None,
) -> BacktestResult:
    """The engine of ``settings`` on ``bars`` and target ``weights`` with the strategy's stop
    loss and circuit breaker, closing positions on their declared ``delistings``."""
    return BacktestEngine(engine_config(settings)).run(
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
) -> Iterator[tuple[str, BacktestResult, Path]]:
    """Backtest each of ``strategies`` over its signal table in ``lake`` (on ``market``, by
    default :func:`lake_market`, read once) and save each result under
    ``lake/backtests/<name>/``; yields name, result and where it was saved, one strategy at a
    time."""
    if market is None:
        market = lake_market(lake)
    for name, strategy in strategies.items():
        signals = lake.read(signals_table(name), columns=["target_weight"])
        result, benchmark = run_backtest(strategy, market, signals, settings, instruments)
        yield name, result, save_result(lake.root, name, result, benchmark)

"""A configured strategy's variants re-run in memory (the viewer's strategy lab).

The strategy's data is prepared once from the lake's frames: its forward-adjusted bars and
factor panels from the precomputed factor table, and the engine's raw bars. A variant (other
factor weights, top-k, rebalance frequency, costs) is then validated like a configuration,
scored, weighted and backtested on that data without touching the lake; the configured
parameters reproduce :func:`qpipe.backtest.runner.run_backtest` on the strategy's signals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
import xarray as xr

from qpipe.backtest.inputs import bars_dataset, delisting_dates, weights_panel
from qpipe.backtest.result import BacktestResult
from qpipe.backtest.runner import benchmark_series, declared_delistings, run_engine
from qpipe.calendars import TradingCalendar
from qpipe.data.schema import MarketData
from qpipe.settings import Settings
from qpipe.strategies.base import StrategyData
from qpipe.strategies.factory import build_strategies
from qpipe.strategies.signals import strategy_data


@dataclass(frozen=True)
class VariantBase:
    """What every variant of strategy ``name`` shares."""

    name: str
    settings: Settings
    data: StrategyData
    bars: xr.Dataset
    instruments: pd.DataFrame
    calendar: TradingCalendar
    factor_names: tuple[str, ...]


def prepare(
    name: str,
    settings: Settings,
    market: MarketData,
    factors: pd.DataFrame,
    instruments: pd.DataFrame,
    calendar: TradingCalendar,
    factor_names: Iterable[str],
) -> VariantBase:
    """The shared data of strategy ``name`` of ``settings`` (``factors``: the long factor
    table with at least the strategy's columns)."""
    if name not in settings.strategies:
        raise KeyError(f"no strategy {name!r}; configured: {', '.join(settings.strategies)}")
    names = tuple(factor_names)
    strategy = build_strategies(_only(settings, name), names, instruments)[name]
    data = strategy_data(market, factors, strategy.factors, instruments, calendar)
    return VariantBase(name, settings, data, bars_dataset(market), instruments, calendar, names)


def variant_settings(
    base: VariantBase, params: Mapping[str, Any] | None = None,
    backtest: Mapping[str, Any] | None = None,
) -> Settings:  # fmt: skip
    """``base``'s settings with the strategy's ``params`` and the ``backtest`` section
    updated, validated as a configuration would be (a bad value raises, naming the key)."""
    raw = base.settings.model_dump(mode="json")
    raw["strategies"] = {base.name: raw["strategies"][base.name]}
    raw["strategies"][base.name]["params"].update(params or {})
    raw["backtest"].update(backtest or {})
    return Settings.model_validate(raw)


def run_variant(
    base: VariantBase, params: Mapping[str, Any] | None = None,
    backtest: Mapping[str, Any] | None = None,
) -> tuple[BacktestResult, pd.Series]:  # fmt: skip
    """Backtest the variant of ``base`` with these ``params`` and ``backtest`` settings over
    the strategy's whole history; returns the result and the benchmark."""
    settings = variant_settings(base, params, backtest)
    strategy = build_strategies(settings, base.factor_names, base.instruments)[base.name]
    missing = [f for f in strategy.factors if f not in base.data.factors]
    if missing:
        raise ValueError(f"factors not prepared for {base.name!r}: {', '.join(missing)}")
    signals = strategy.signals(base.data, base.calendar).to_frame()
    decided = signals.loc[signals["target_weight"].notna()]
    if decided.empty:
        raise ValueError(f"the variant of {base.name!r} never rebalances")
    bars = from_session(base.bars, signals["date"].min())
    weights = weights_panel(signals).reindex(symbol=bars.indexes["symbol"])
    universe = strategy.universe.select(base.instruments)
    delistings = delisting_dates(base.instruments)
    benchmark = benchmark_series(bars, settings.backtest.benchmark, universe, delistings)
    result = run_engine(strategy, bars, weights, settings.backtest, benchmark,
                        base.calendar.sessions_per_year,
                        declared_delistings(base.instruments, bars))  # fmt: skip
    return result, benchmark


def from_session(bars: xr.Dataset, first: pd.Timestamp) -> xr.Dataset:
    """The engine's bars from session ``first`` on, as :func:`bars_dataset` builds them from
    bars cut there: the corporate actions of the first session are not applied (they belong
    to the history before it)."""
    cut = bars.sel(date=slice(first, None)).copy(deep=True)
    cut["split_ratio"][0] = 1.0
    cut["dividend"][0] = 0.0
    return cut


def _only(settings: Settings, name: str) -> Settings:
    return settings.model_copy(update={"strategies": {name: settings.strategies[name]}})

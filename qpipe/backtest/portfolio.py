"""The portfolio backtest: every configured strategy on one account with its allocation.

Each strategy's engine trades its allocation of the initial cash (its sleeve, as live: it
sizes on its share of the capital and holds only what its orders built); the account's NAV
is the sleeves' NAVs plus the cash no strategy is allocated. Before a strategy's first
session its sleeve is its cash; after its last, its last NAV. The account's orders are the
strategies' fills netted per session and symbol (one order per symbol, as live nets them),
for the report; the fees are the strategies' fees summed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from qpipe.backtest.metrics import performance_metrics
from qpipe.backtest.result import BacktestResult
from qpipe.backtest.runner import lake_market, run_backtest
from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR
from qpipe.data.lake import Lake
from qpipe.data.schema import MarketData
from qpipe.settings import BacktestSettings
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.signals import signals_table

ORDER_COLUMNS = ["date", "symbol", "side", "quantity", "fee"]


@dataclass(frozen=True)
class PortfolioResult:
    """``equity``: the account's NAV by date; ``sleeves``: each strategy's NAV (dates x
    strategies); ``orders``: the fills netted per date and symbol (:data:`ORDER_COLUMNS`,
    ``quantity`` > 0, no row where the strategies' trades cancel out); ``metrics`` of the
    account's NAV; ``results``: each strategy's own backtest on its allocation."""

    equity: pd.Series
    sleeves: pd.DataFrame
    orders: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    results: dict[str, BacktestResult] = field(default_factory=dict, repr=False)


def combine(
    results: Mapping[str, BacktestResult],
    allocations: Mapping[str, float],
    initial_cash: float,
    periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR,
) -> PortfolioResult:
    """One account from the strategies' ``results``, each run on ``allocations[name] x
    initial_cash`` (allocations sum to at most 1; the rest is cash)."""
    total = sum(allocations[name] for name in results)
    if total > 1 + 1e-9:
        raise ValueError(f"the allocations sum to {total:g}, above 1")
    dates = pd.DatetimeIndex(sorted(set().union(*(r.equity.index for r in results.values()))))
    sleeves = pd.DataFrame(index=dates)
    for name, result in results.items():
        start = allocations[name] * initial_cash
        sleeves[name] = result.equity.reindex(dates).ffill().fillna(start)
    equity = (sleeves.sum(axis=1) + (1.0 - total) * initial_cash).rename("nav")
    parts = [r.fills for r in results.values() if len(r.fills)]
    orders = pd.DataFrame(columns=ORDER_COLUMNS)
    if parts:
        fills = pd.concat(parts, ignore_index=True)
        sign = np.where(fills["side"] == "buy", 1.0, -1.0)
        netted = (
            fills.assign(signed=sign * fills["quantity"].astype(np.float64))
            .groupby(["date", "symbol"], as_index=False)
            .agg(signed=("signed", "sum"), fee=("fee", "sum"))
        )
        netted = netted.loc[netted["signed"].abs() > 1e-9]
        orders = netted.assign(
            side=np.where(netted["signed"] > 0, "buy", "sell"), quantity=netted["signed"].abs()
        )[ORDER_COLUMNS].reset_index(drop=True)
    metrics = performance_metrics(equity, periods_per_year=periods_per_year) if len(dates) else {}
    return PortfolioResult(equity, sleeves, orders, metrics, dict(results))


def run_portfolio(
    strategies: Mapping[str, BaseStrategy],
    market: MarketData,
    signals: Mapping[str, pd.DataFrame],
    settings: BacktestSettings,
    instruments: pd.DataFrame,
    allocations: Mapping[str, float],
    *,
    periods_per_year: float,
) -> PortfolioResult:
    """Backtest each of ``strategies`` (its ``signals`` table) on its allocation of
    ``settings.initial_cash`` (:func:`~qpipe.backtest.runner.run_backtest`) and combine them
    into one account (:func:`combine`)."""
    results = {}
    for name, strategy in strategies.items():
        cash = settings.initial_cash * allocations[name]
        own = settings.model_copy(update={"initial_cash": cash})
        results[name], _ = run_backtest(
            strategy, market, signals[name], own, instruments, periods_per_year=periods_per_year
        )
    return combine(results, allocations, settings.initial_cash, periods_per_year)


def portfolio_lake(
    lake: Lake,
    strategies: Mapping[str, BaseStrategy],
    settings: BacktestSettings,
    instruments: pd.DataFrame,
    allocations: Mapping[str, float],
    *,
    periods_per_year: float,
) -> PortfolioResult:
    """:func:`run_portfolio` of ``strategies`` over their signal tables in ``lake`` (nothing
    is saved)."""
    signals = {
        name: lake.read(signals_table(name), columns=["target_weight"]) for name in strategies
    }
    return run_portfolio(strategies, lake_market(lake), signals, settings, instruments,
                         allocations, periods_per_year=periods_per_year)  # fmt: skip

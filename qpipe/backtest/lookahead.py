"""The backtest's point-in-time guarantee, checked: the backtest over the lake through session
``T`` (bars, corporate actions and signals up to ``T``; the instruments as known) equals, on
every date up to ``T``, the same backtest over the whole lake: equity, the daily accounts,
positions and fills, exactly. A backtest that reads the future (a delisting guessed from where
a name's bars end, say) differs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpipe.backtest.result import BacktestResult
from qpipe.backtest.runner import run_backtest
from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR
from qpipe.data.schema import MarketData
from qpipe.factors.lookahead import truncated
from qpipe.settings import BacktestSettings
from qpipe.strategies.base import BaseStrategy

FILL_KEYS = ("date", "symbol", "side", "quantity", "price", "fee", "reason")


@dataclass(frozen=True)
class Difference:
    """The first ``date`` on which two backtests differ and the ``fields`` that differ then
    (``equity``, ``daily.<column>``, ``positions.<symbol>``, ``fills``)."""

    date: pd.Timestamp
    fields: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d}: {', '.join(self.fields)}"


def backtest_through(
    strategy: BaseStrategy,
    market: MarketData,
    signals: pd.DataFrame,
    settings: BacktestSettings,
    instruments: pd.DataFrame,
    end: pd.Timestamp,
    periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR,
) -> BacktestResult:
    """The strategy's backtest over the lake cut at session ``end``: bars, corporate actions
    and signal rows up to ``end`` inclusive (:func:`qpipe.backtest.runner.run_backtest`)."""
    end = pd.Timestamp(end)
    cut = truncated(market, end)
    result, _ = run_backtest(
        strategy, cut, signals.loc[signals["date"] <= end], settings, instruments,
        periods_per_year=periods_per_year,
    )  # fmt: skip
    return result


def first_difference(full: BacktestResult, cut: BacktestResult) -> Difference | None:
    """The first date up to ``cut``'s last date on which ``full`` and ``cut`` differ (exact
    equality, NaN equal to NaN; a symbol missing from one side's positions holds 0), with
    every field that differs on it; None when they agree."""
    end = cut.equity.index[-1]
    firsts: list[tuple[pd.Timestamp, str]] = []

    def frames(name: str, a: pd.DataFrame, b: pd.DataFrame, fill: object) -> None:
        a, b = a.loc[:end], b.loc[:end]
        columns = a.columns.union(b.columns, sort=False)
        index = a.index.union(b.index)
        a = a.reindex(index=index, columns=columns, fill_value=fill)
        b = b.reindex(index=index, columns=columns, fill_value=fill)
        for column in columns:
            x, y = a[column].to_numpy(), b[column].to_numpy()
            same = (x == y) | (pd.isna(x) & pd.isna(y))
            if not same.all():
                firsts.append((index[int(np.argmin(same))], f"{name}{column}"))

    frames("", full.equity.to_frame("equity"), cut.equity.to_frame("equity"), np.nan)
    frames("daily.", full.daily, cut.daily, np.nan)
    frames("positions.", full.positions, cut.positions, 0.0)
    a, b = _fill_rows(full.fills, end), _fill_rows(cut.fills, end)
    k = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    if k < max(len(a), len(b)):
        firsts.append((min(r[0] for r in (a[k : k + 1] + b[k : k + 1])), "fills"))
    if not firsts:
        return None
    first = min(day for day, _ in firsts)
    return Difference(pd.Timestamp(first), tuple(f for day, f in firsts if day == first))


def _fill_rows(fills: pd.DataFrame, end: pd.Timestamp) -> list[tuple]:
    """The fills up to ``end`` as plain tuples, in ledger order."""
    if fills.empty:
        return []
    kept = fills.loc[fills["date"] <= end, list(FILL_KEYS)]
    return [
        (pd.Timestamp(r[0]), str(r[1]), str(r[2]), *r[3:6], str(r[6]))
        for r in kept.itertuples(index=False, name=None)
    ]


def lookahead_difference(
    strategy: BaseStrategy,
    market: MarketData,
    signals: pd.DataFrame,
    settings: BacktestSettings,
    instruments: pd.DataFrame,
    full: BacktestResult,
    end: pd.Timestamp,
) -> Difference | None:
    """Where ``full`` (the backtest over all of ``market`` and ``signals``) and the backtest
    over them cut at session ``end`` (:func:`backtest_through`) first differ; None when they
    agree on every date up to ``end``."""
    cut = backtest_through(strategy, market, signals, settings, instruments, end)
    return first_difference(full, cut)

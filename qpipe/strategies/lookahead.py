"""The point-in-time guarantee for strategies: a session's scores and target weights computed
from bars and factors cut at that session equal those of the whole range (from the same
starting weights, so path-dependent construction is covered too)."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from qpipe.calendars import TradingCalendar
from qpipe.data.schema import MarketData
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.signals import compute_signals


def signal_lookahead_violations(
    strategy: BaseStrategy,
    market: MarketData,
    factors: pd.DataFrame,
    instruments: pd.DataFrame,
    calendar: TradingCalendar,
    full: pd.DataFrame,
    dates: Iterable[pd.Timestamp],
    previous: pd.Series | None = None,
) -> dict[str, list[str]]:
    """``{"score": [...], "target_weight": [...]}`` sessions among ``dates`` where the rows of
    ``full`` (the signals of the whole range, starting from ``previous``) differ from a run on
    data cut there; empty when there is no difference."""
    start = full["date"].min() if len(full) else None
    bad: dict[str, list[str]] = {}
    for t in dates:
        t = pd.Timestamp(t)
        cut = MarketData(
            market.bars.loc[market.bars["date"] <= t],
            market.actions.loc[market.actions["date"] <= t],
        )
        part = compute_signals(
            strategy,
            cut,
            factors.loc[factors["date"] <= t],
            instruments,
            calendar,
            start,
            t,
            previous,
        )
        got = part.loc[part["date"] == t].set_index("symbol")
        want = full.loc[full["date"] == t].set_index("symbol").reindex(got.index)
        for column in ("score", "target_weight"):
            a, b = got[column].to_numpy(), want[column].to_numpy()
            if not np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
                bad.setdefault(column, []).append(f"{t:%Y-%m-%d}")
    return bad

"""The point-in-time guarantee, checked: a factor's value at ``t`` computed from history
truncated at ``t`` (and only its declared look-back of it) equals the value from the full
history. A factor that peeks ahead, or uses more history than it declares, fails."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.calendars import TradingCalendar
from qpipe.data.schema import MarketData
from qpipe.factors.panel import compute
from qpipe.factors.registry import FactorLibrary


def truncated(
    market: MarketData,
    end: pd.Timestamp,
    lookback: int | None = None,
    calendar: TradingCalendar | None = None,
) -> MarketData:
    """``market`` cut at ``end`` (inclusive), every action up to ``end``; when ``lookback``
    is given, only the bars of the last ``lookback + 1`` sessions of ``calendar`` up to
    ``end`` (None: of the bars' own dates), as an incremental computation reads them."""
    bars = market.bars.loc[market.bars["date"] <= end]
    if lookback is not None:
        if calendar is None:
            dates = pd.DatetimeIndex(np.unique(bars["date"].to_numpy()))
        else:
            dates = calendar.sessions_index(None, end)
        if len(dates) > lookback:
            bars = bars.loc[bars["date"] >= dates[len(dates) - 1 - lookback]]
    return MarketData(bars, market.actions.loc[market.actions["date"] <= end])


def lookahead_violations(
    market: MarketData,
    library: FactorLibrary,
    names: Sequence[str],
    dates: Iterable[pd.Timestamp],
    full: xr.Dataset | None = None,
    sectors: Mapping[str, str] | None = None,
    rtol: float = 1e-9,
    calendar: TradingCalendar | None = None,
) -> dict[str, list[str]]:
    """Factors whose value at one of ``dates`` changes when the history is cut there (to the
    factor's own look-back, in sessions of ``calendar``; None: the bars' own dates), with the
    dates where it does. ``full`` may pass the panels already computed on all of ``market``
    (with the same ``calendar``, which also gives the sessions per year)."""
    if full is None:
        full = compute(market, names, library=library, sectors=sectors, calendar=calendar)
    by_lookback: dict[int, list[str]] = {}
    for name in names:
        by_lookback.setdefault(library[name].lookback, []).append(name)
    found: dict[str, set[str]] = {}
    for t in dates:
        # Factors of one look-back share the cut history (one pass over the inputs).
        for lookback, group in by_lookback.items():
            cut = truncated(market, t, lookback, calendar)
            parts = compute(cut, group, t, t, library=library, sectors=sectors, calendar=calendar)
            if parts.sizes["date"] == 0:
                continue
            for name in group:
                got = parts[name].isel(date=0)
                want = full[name].sel(date=t).reindex(symbol=got.indexes["symbol"])
                if not np.allclose(got.values, want.values, rtol=rtol, atol=1e-12, equal_nan=True):
                    found.setdefault(name, set()).add(f"{pd.Timestamp(t):%Y-%m-%d}")
    return {name: sorted(found[name]) for name in names if name in found}

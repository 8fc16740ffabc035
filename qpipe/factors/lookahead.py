"""The point-in-time guarantee, checked: a factor's value at ``t`` computed from history
truncated at ``t`` (and only its declared look-back of it) equals the value from the full
history. A factor that peeks ahead, or uses more history than it declares, fails."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR
from qpipe.data.schema import MarketData
from qpipe.factors.panel import compute
from qpipe.factors.registry import FactorLibrary


def truncated(market: MarketData, end: pd.Timestamp, lookback: int | None = None) -> MarketData:
    """``market`` cut at ``end`` (inclusive): bars of the last ``lookback + 1`` dates only when
    ``lookback`` is given, every action up to ``end``."""
    bars = market.bars.loc[market.bars["date"] <= end]
    if lookback is not None:
        dates = np.unique(bars["date"].to_numpy())
        bars = bars.loc[bars["date"] >= dates[max(0, len(dates) - 1 - lookback)]]
    return MarketData(bars, market.actions.loc[market.actions["date"] <= end])


def lookahead_violations(
    market: MarketData,
    library: FactorLibrary,
    names: Sequence[str],
    dates: Iterable[pd.Timestamp],
    full: xr.Dataset | None = None,
    sectors: Mapping[str, str] | None = None,
    rtol: float = 1e-9,
    sessions_per_year: float = DEFAULT_SESSIONS_PER_YEAR,
) -> dict[str, list[str]]:
    """Factors whose value at one of ``dates`` changes when the history is cut there (to the
    factor's own look-back), with the dates where it does. ``full`` may pass the panels
    already computed on all of ``market`` (with the same ``sessions_per_year``)."""
    if full is None:
        full = compute(market, names, library=library, sectors=sectors,
                       sessions_per_year=sessions_per_year)  # fmt: skip
    by_lookback: dict[int, list[str]] = {}
    for name in names:
        by_lookback.setdefault(library[name].lookback, []).append(name)
    found: dict[str, set[str]] = {}
    for t in dates:
        # Factors of one look-back share the cut history (one pass over the inputs).
        for lookback, group in by_lookback.items():
            parts = compute(
                truncated(market, t, lookback), group, t, t, library=library, sectors=sectors,
                sessions_per_year=sessions_per_year,
            )  # fmt: skip
            if parts.sizes["date"] == 0:
                continue
            for name in group:
                got = parts[name].isel(date=0)
                want = full[name].sel(date=t).reindex(symbol=got.indexes["symbol"])
                if not np.allclose(got.values, want.values, rtol=rtol, atol=1e-12, equal_nan=True):
                    found.setdefault(name, set()).add(f"{pd.Timestamp(t):%Y-%m-%d}")
    return {name: sorted(found[name]) for name in names if name in found}

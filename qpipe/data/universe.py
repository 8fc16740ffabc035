"""The investable universe: which of a source's instruments qpipe keeps."""

from __future__ import annotations

import pandas as pd

from qpipe.errors import ConfigError
from qpipe.settings import UniverseConfig


def select_instruments(instruments: pd.DataFrame, universe: UniverseConfig) -> pd.DataFrame:
    """Rows of ``instruments`` in the universe: listed ``symbols`` (all if None), of the
    configured ``kinds``, minus ``exclude``. Symbols named in the config that the source does
    not offer are an error naming them."""
    known = set(instruments["symbol"])
    keep = pd.Series(True, index=instruments.index)
    if universe.symbols is not None:
        unknown = sorted(set(universe.symbols) - known)
        if unknown:
            raise ConfigError(
                f"universe.symbols: not offered by the data source: {', '.join(unknown)}"
            )
        keep &= instruments["symbol"].isin(universe.symbols)
    keep &= instruments["kind"].isin(universe.kinds)
    keep &= ~instruments["symbol"].isin(universe.exclude)
    return instruments.loc[keep].reset_index(drop=True)


def listed_on(instruments: pd.DataFrame, day: pd.Timestamp) -> set[str]:
    """Symbols whose listing interval ``[first_date, last_date]`` contains ``day``."""
    first = instruments["first_date"]
    last = instruments["last_date"]
    live = (first.isna() | (first <= day)) & (last.isna() | (last >= day))
    return set(instruments.loc[live, "symbol"])

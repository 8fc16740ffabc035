"""Column contracts of the tables qpipe keeps: bars, corporate actions and instruments.

All frames are long format with a ``date`` column of dtype ``datetime64[ns]`` (midnight, no
time zone: the session date) and a ``symbol`` column of strings; ``(date, symbol)`` is unique
and rows are sorted by it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close")
BAR_COLUMNS: tuple[str, ...] = ("date", "symbol", "open", "high", "low", "close", "volume")
"""Raw bars as traded: prices in the instrument's currency, volume in shares (NaN if unknown)."""

ACTION_COLUMNS: tuple[str, ...] = ("date", "symbol", "split_ratio", "dividend", "factor")
"""Corporate actions by ex-date.

- ``split_ratio``: new shares per old share (2.0 for a 2-for-1 split, 1.0 for none).
- ``dividend``: cash per share (post-split basis of the ex-date), 0.0 for none.
- ``factor``: the multiplier for prices *before* the ex-date that removes the jump,
  ``1 / split_ratio - dividend / previous_close`` (previous close as traded).
"""

INSTRUMENT_COLUMNS: tuple[str, ...] = ("symbol", "kind", "sector", "first_date", "last_date")
"""Instruments a source offers: kind is ``stock`` or ``etf``; sector may be empty; first_date is
the listing (or the first bar); last_date is the declared delisting, the last session the
instrument trades, and NaT when the source declares none (never where its data happens to
end: a symbol whose bars stop without a delisting is halted, not gone)."""

BAR_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
    ]
)
"""Arrow schema of one bars partition file (``date`` lives in the Hive path, not the file)."""

ACTION_SCHEMA = pa.schema(
    [
        ("symbol", pa.string()),
        ("split_ratio", pa.float64()),
        ("dividend", pa.float64()),
        ("factor", pa.float64()),
    ]
)

TABLE_SCHEMAS: dict[str, pa.Schema] = {"bars": BAR_SCHEMA, "corporate_actions": ACTION_SCHEMA}


def empty_frame(columns: tuple[str, ...]) -> pd.DataFrame:
    """An empty frame with the given contract columns and their dtypes."""
    data: dict[str, pd.Series] = {}
    for name in columns:
        if name in ("date", "first_date", "last_date"):
            data[name] = pd.Series([], dtype="datetime64[ns]")
        elif name in ("symbol", "kind", "sector"):
            data[name] = pd.Series([], dtype=object)
        else:
            data[name] = pd.Series([], dtype=np.float64)
    return pd.DataFrame(data)


def normalize(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.DataFrame:
    """Return ``frame`` restricted to ``columns`` with contract dtypes, sorted by (date, symbol).

    Dates are floored to midnight; numeric columns become float64. Raises ``KeyError`` naming a
    missing column.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KeyError(f"missing columns: {', '.join(missing)}")
    out = frame.loc[:, list(columns)].copy()
    for name in columns:
        if name == "date":
            out[name] = pd.to_datetime(out[name]).dt.tz_localize(None).dt.normalize()
            out[name] = out[name].astype("datetime64[ns]")
        elif name == "symbol":
            out[name] = out[name].astype(str).astype(object)
        else:
            out[name] = out[name].astype(np.float64)
    if "date" in columns and "symbol" in columns:
        out = out.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)
    return out


@dataclass(frozen=True)
class MarketData:
    """What a source returns for a date range: raw bars and corporate actions (contract frames)."""

    bars: pd.DataFrame
    actions: pd.DataFrame

    @classmethod
    def empty(cls) -> MarketData:
        return cls(empty_frame(BAR_COLUMNS), empty_frame(ACTION_COLUMNS))

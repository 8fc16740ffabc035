"""The factor report at rest: one Parquet file per table under ``<lake>/factor_report/``
(``summary``, ``ic``, ``quantiles``, ``correlation``; see
:func:`qpipe.analytics.factor_eda.report_tables`), each replaced atomically (missing values
NULL in the files, NaN when read back), and how it is computed from the lake."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from qpipe.analytics.factor_eda import HORIZONS, long_to_panels, report_tables
from qpipe.backtest.inputs import bars_dataset, total_return_index
from qpipe.data.lake import Lake, write_frame
from qpipe.data.schema import MarketData

TABLES = ("summary", "ic", "quantiles", "correlation")


def report_dir(lake_root: Path | str) -> Path:
    return Path(lake_root) / "factor_report"


def lake_factor_report(
    lake: Lake,
    names: Sequence[str],
    delistings: pd.Series | Mapping[str, object] | None,
    horizons: Sequence[int] = HORIZONS,
    quantiles: int = 5,
) -> dict[str, pd.DataFrame]:
    """The EDA of factors ``names`` of the lake's ``factors`` table against the total-return
    index of its bars (splits and dividends included, carried over halts, ending at the
    declared ``delistings``: date by symbol, see
    :func:`qpipe.backtest.inputs.delisting_dates`)."""
    bars = bars_dataset(MarketData(lake.read("bars"), lake.read("corporate_actions")))
    prices = total_return_index(bars, delistings).transpose("date", "symbol")
    dates = pd.DatetimeIndex(prices.indexes["date"])
    symbols = pd.Index(prices.indexes["symbol"])
    factors = long_to_panels(lake.read("factors", columns=list(names)), names, dates, symbols)
    return report_tables(factors, prices.values, dates, horizons, quantiles)


def save_report(lake_root: Path | str, tables: dict[str, pd.DataFrame]) -> Path:
    """Write the report's tables (each file atomic)."""
    target = report_dir(lake_root)
    for name in TABLES:
        write_frame(tables[name], target / f"{name}.parquet")
    return target


def load_table(lake_root: Path | str, table: str) -> pd.DataFrame:
    """One table of the saved factor report."""
    if table not in TABLES:
        raise ValueError(f"unknown factor report table {table!r}; one of {', '.join(TABLES)}")
    path = report_dir(lake_root) / f"{table}.parquet"
    if not path.exists():
        raise FileNotFoundError("no factor report yet: materialise the factor_report asset")
    return pd.read_parquet(path)

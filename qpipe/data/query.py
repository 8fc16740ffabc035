"""SQL over the lake: an in-memory DuckDB connection with one view per lake table.

Each view reads ``<root>/<table>/*/data.parquet`` with Hive partitioning, so ``date`` is a DATE
column taken from the path (first in the view) and a filter on it only opens the matching
partitions. Missing values are NULL in the files (:mod:`qpipe.data.lake`), so ``count``,
``sum`` and comparisons treat them as SQL does. Views are resolved when a query runs: new
partitions written after :func:`connect` are seen, tables created after it are not. The
connection keeps nothing on disk (no database file, no spilling), so readers never lock the
lake or get in a writer's way.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from qpipe.data.lake import DATA_FILE, Lake
from qpipe.data.schema import TABLE_SCHEMAS

_DUCK_TYPES = {pa.string(): "VARCHAR", pa.float64(): "DOUBLE"}


def connect(lake_root: Path | str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table of the lake at ``lake_root``.

    Known tables (``bars``, ``corporate_actions``) always get a view, an empty one with the right
    columns and types while they have no data. Each table with data also gets a table macro
    ``<table>_on(day)`` for one session's cross-section:
    ``select * from bars_on('2024-03-28')``. The view ``adjusted_bars`` derives adjusted prices
    from ``bars`` and ``corporate_actions``; the view ``signals`` is every strategy's
    ``signals_<strategy>`` table together (they carry a ``strategy`` column), and
    ``backtest_daily``/``_positions``/``_fills``/``_metrics``/``_risk_events``/``_warnings``
    every saved backtest.
    """
    lake = Lake(lake_root)
    con = duckdb.connect(":memory:", config={"temp_directory": ""})
    present = set(lake.tables())
    for table in sorted(present | set(TABLE_SCHEMAS)):
        if table in present:
            # "*/data.parquet" rather than "*/*.parquet": DuckDB then prunes partitions by the
            # date filter about twice as fast (measured: ~60 ms vs ~120 ms over 2,520 dates)
            pattern = _quote(str(lake.path(table) / "*" / DATA_FILE))
            first = lake.path(table) / f"date={lake.dates(table)[0]}" / DATA_FILE
            # name the columns: any "key=value" directory above the lake would be a column too
            names = ", ".join(_ident(name) for name in pq.read_schema(first).names)
            con.execute(
                f"CREATE VIEW {_ident(table)} AS SELECT date, {names} FROM read_parquet("
                f"{pattern}, hive_partitioning = true, hive_types = {{'date': 'DATE'}})"
            )
            # <table>_on(day): one session read straight from its partition file (~10 ms,
            # against ~60 ms for the view's date filter, which lists every partition first)
            prefix = _quote(str(lake.path(table)) + "/date=")
            con.execute(
                f"CREATE MACRO {_ident(table + '_on')}(day) AS TABLE "
                f"SELECT CAST(day AS DATE) AS date, {names} FROM read_parquet("
                f"{prefix} || strftime(CAST(day AS DATE), '%Y-%m-%d') || '/{DATA_FILE}', "
                f"hive_partitioning = false)"
            )
        else:
            columns = ", ".join(
                ["CAST(NULL AS DATE) AS date"]
                + [
                    f"CAST(NULL AS {_DUCK_TYPES[f.type]}) AS {_ident(f.name)}"
                    for f in TABLE_SCHEMAS[table]
                ]
            )
            con.execute(f"CREATE VIEW {_ident(table)} AS SELECT {columns} WHERE false")
    con.execute(ADJUSTED_BARS_VIEW)
    backtests = Path(lake_root) / "backtests"
    for output in ("daily", "positions", "fills", "metrics", "risk_events", "warnings"):
        files = sorted(backtests.glob(f"*/{output}.parquet")) if backtests.is_dir() else []
        if files:
            listed = ", ".join(_quote(str(f)) for f in files)
            con.execute(
                f"CREATE VIEW backtest_{output} AS SELECT * FROM read_parquet([{listed}], "
                "union_by_name = true)"
            )
    strategies = sorted(t for t in present if t.startswith("signals_"))
    if strategies and "signals" not in present:
        union = " UNION ALL BY NAME ".join(f"SELECT * FROM {_ident(t)}" for t in strategies)
        con.execute(f"CREATE VIEW signals AS {union}")
    return con


ADJUSTED_BARS_VIEW = """
CREATE VIEW adjusted_bars AS
WITH later AS (
    SELECT symbol, date, factor, split_ratio,
        exp(sum(ln(factor)) OVER w) AS tr_after,
        exp(sum(ln(1.0 / split_ratio)) OVER w) AS split_after
    FROM corporate_actions
    WINDOW w AS (PARTITION BY symbol ORDER BY date DESC
                 ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)
), multipliers AS (
    SELECT symbol, date,
        coalesce(tr_after, 1.0) * factor AS tr,
        coalesce(split_after, 1.0) / split_ratio AS split
    FROM later
)
SELECT b.date, b.symbol,
    b.open * coalesce(m.tr, 1.0) AS open, b.high * coalesce(m.tr, 1.0) AS high,
    b.low * coalesce(m.tr, 1.0) AS low, b.close * coalesce(m.tr, 1.0) AS close,
    b.volume / coalesce(m.split, 1.0) AS volume
FROM bars b ASOF LEFT JOIN multipliers m ON b.symbol = m.symbol AND b.date < m.date
"""
"""Backward total-return-adjusted bars: each price times the product of the corporate-action
factors of every later ex-date (the latest price is as traded); volume adjusted for splits only.
The same numbers as :func:`qpipe.data.adjustments.adjusted_prices`."""


def sql(lake_root: Path | str, query: str) -> pd.DataFrame:
    """Run ``query`` over the lake's views and return the result as a DataFrame."""
    con = connect(lake_root)
    try:
        return con.sql(query).df()
    finally:
        con.close()


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

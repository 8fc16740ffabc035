"""Benchmark of the Parquet lake: write, full-panel read, one-column read and cross-sections.

Usage: ``python benchmarks/lake_benchmark.py [--symbols 500] [--years 10] [--repeats 5]``.

Builds a synthetic bars panel (random walks, 252 sessions a year), writes it to a temporary
lake and times each operation (best of ``--repeats``) next to a baseline measured in the same
run on the same data held in one single Parquet file. Then compares the ways of reading the
partitioned panel that :meth:`Lake.read` could use (``--no-strategies`` skips this).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

try:
    import qpipe  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qpipe.data import query
from qpipe.data.lake import Lake, _read_files
from qpipe.data.schema import TABLE_SCHEMAS

READ_GOAL_S = 0.5
CROSS_SECTION_GOAL_S = 0.020


def synthetic_bars(symbols: int, sessions: int, seed: int = 0) -> pd.DataFrame:
    """A (date, symbol) sorted bars panel: random-walk closes, OHLC around them, volumes."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2010-01-04", periods=sessions)
    names = np.array([f"S{i:04d}" for i in range(symbols)])
    returns = rng.normal(0.0003, 0.02, (sessions, symbols))
    close = np.round(20.0 * np.exp(np.cumsum(returns, axis=0)), 2).ravel()
    spread = np.abs(rng.normal(0, 0.01, close.size)) * close
    return pd.DataFrame(
        {
            "date": np.repeat(days.values, symbols),
            "symbol": np.tile(names, sessions),
            "open": np.round(close + rng.normal(0, 0.5, close.size) * spread, 2),
            "high": np.round(close + spread, 2),
            "low": np.round(close - spread, 2),
            "close": close,
            "volume": np.round(rng.lognormal(13, 1, close.size)),
        }
    )


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Smallest wall time of ``repeats`` calls (time.perf_counter)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def report(label: str, seconds: float, baseline: float, baseline_label: str) -> None:
    print(
        f"  {label:<34} {seconds * 1e3:9.1f} ms   baseline {baseline * 1e3:8.1f} ms "
        f"({baseline_label})   ratio {seconds / baseline:6.2f}x"
    )


def goal(label: str, seconds: float, limit: float) -> bool:
    ok = seconds <= limit
    print(
        f"  {label:<34} {seconds * 1e3:9.1f} ms   goal <= {limit * 1e3:.0f} ms   "
        f"{'PASS' if ok else 'MISS'}"
    )
    return ok


def strategies(lake: Lake, repeats: int) -> None:
    """Full-panel reads of the partitioned lake into pandas, by each candidate method."""
    tdir = str(lake.path("bars"))
    sessions = lake.dates("bars")
    files = [os.path.join(tdir, f"date={day}", "data.parquet") for day in sessions]
    days = np.array(sessions, dtype="datetime64[D]").astype("datetime64[ns]")

    def with_dates(pieces: list[pa.Table]) -> pd.DataFrame:
        counts = [p.num_rows for p in pieces]
        table = pa.concat_tables(pieces).combine_chunks()
        table = table.add_column(0, "date", pa.array(np.repeat(days, counts)))
        return table.to_pandas(split_blocks=True)

    def dataset() -> pd.DataFrame:
        hive = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
        data = ds.dataset(files, format="parquet", partitioning=hive, partition_base_dir=tdir)
        return data.to_table().to_pandas(split_blocks=True)

    pool = ThreadPoolExecutor(os.cpu_count() or 2)

    def per_file_pool() -> pd.DataFrame:
        return with_dates(list(pool.map(lambda f: pq.read_table(f, use_threads=False), files)))

    def per_file_sequential() -> pd.DataFrame:
        return with_dates([pq.ParquetFile(f, pre_buffer=False).read() for f in files])

    def bare_sequential() -> pd.DataFrame:
        return with_dates(_read_files(files, TABLE_SCHEMAS["bars"].names, threads=1))

    con = duckdb.connect()

    def duck() -> pd.DataFrame:
        table = con.sql(
            "select * from read_parquet($files, hive_partitioning = true, "
            "hive_types = {'date': 'DATE'})",
            params={"files": files},
        ).to_arrow_table()
        return table.set_column(
            table.schema.get_field_index("date"), "date", table["date"].cast(pa.timestamp("ns"))
        ).to_pandas(split_blocks=True)

    candidates = {
        "pyarrow.dataset, explicit file list": dataset,
        "pq.read_table per file, thread pool": per_file_pool,
        "pq.ParquetFile.read per file, serial": per_file_sequential,
        "duckdb read_parquet(file list)": duck,
        "bare Parquet readers, serial": bare_sequential,
        "Lake.read (chunked bare readers)": lambda: lake.read("bars"),
    }
    print(f"\nRead strategies, full panel into pandas ({len(files)} files, best of {repeats}):")
    for label, fn in candidates.items():
        print(f"  {label:<38} {best_of(fn, repeats) * 1e3:8.1f} ms")
    pool.shutdown()
    con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--years", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-strategies", action="store_true", help="skip the strategy table")
    args = parser.parse_args()
    sessions = 252 * args.years

    print(f"os.cpu_count() = {os.cpu_count()}   load average = {os.getloadavg()[0]:.2f}")
    frame = synthetic_bars(args.symbols, sessions)
    days = pd.DatetimeIndex(frame["date"].unique())
    print(f"panel: {args.symbols} symbols x {sessions} sessions = {len(frame):,} rows\n")

    with tempfile.TemporaryDirectory(prefix="qpipe-lake-bench-") as tmp:
        root = Path(tmp)
        lake = Lake(root / "lake")
        single = root / "panel.parquet"
        table = pa.Table.from_pandas(frame, preserve_index=False)

        write_s = best_of(lambda: lake.write("bars", frame, days), max(2, args.repeats // 2))
        write_base = best_of(
            lambda: pq.write_table(table, single, compression="snappy"), args.repeats
        )
        day = days[len(days) // 2]
        iso = day.date().isoformat()

        read_s = best_of(lambda: lake.read("bars"), args.repeats)
        read_base = best_of(lambda: pq.read_table(single).to_pandas(), args.repeats)
        col_s = best_of(lambda: lake.read("bars", columns=["close"]), args.repeats)
        col_base = best_of(
            lambda: pq.read_table(single, columns=["date", "symbol", "close"]).to_pandas(),
            args.repeats,
        )
        xs_s = best_of(lambda: lake.cross_section("bars", day), args.repeats)
        xs_base = best_of(
            lambda: pq.read_table(single, filters=[("date", "=", day)]).to_pandas(), args.repeats
        )
        con = query.connect(lake.root)
        sql = f"select * from bars where date = DATE '{iso}'"
        duck_s = best_of(lambda: con.sql(sql).df(), args.repeats)
        duck_base = best_of(
            lambda: duckdb.sql(
                f"select * from read_parquet('{single}') where date = TIMESTAMP '{iso}'"
            ).df(),
            args.repeats,
        )
        macro = f"select * from bars_on('{iso}')"
        macro_s = best_of(lambda: con.sql(macro).df(), args.repeats)
        assert len(lake.cross_section("bars", day)) == args.symbols == len(con.sql(sql).df())
        assert len(con.sql(macro).df()) == args.symbols
        con.close()

        print(f"Timings (best of {args.repeats}; write best of {max(2, args.repeats // 2)}):")
        single_label = "one Parquet file"
        report(
            f"write ({len(days)} partitions)", write_s, write_base, "pq.write_table " + single_label
        )
        report("read full panel, Lake.read", read_s, read_base, "pq.read_table+to_pandas")
        report("read one column (close)", col_s, col_base, "same, columns=")
        report("cross-section, Lake.cross_section", xs_s, xs_base, "read_table(filters=)")
        report("cross-section, DuckDB view", duck_s, duck_base, "DuckDB on " + single_label)
        report("cross-section, DuckDB bars_on()", macro_s, duck_base, "DuckDB on " + single_label)

        print("\nGoals:")
        ok = goal("full-panel read", read_s, READ_GOAL_S)
        ok &= goal("cross-section (Lake.cross_section)", xs_s, CROSS_SECTION_GOAL_S)
        ok &= goal("cross-section (DuckDB bars_on macro)", macro_s, CROSS_SECTION_GOAL_S)
        goal("cross-section (DuckDB view date filter, info)", duck_s, CROSS_SECTION_GOAL_S)

        if not args.no_strategies:
            strategies(lake, min(3, args.repeats))
    print(f"\n{'all goals met' if ok else 'some goals missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

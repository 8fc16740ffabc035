"""Missing values are NULL at rest in every table (SQL filters and aggregates them as SQL
does) and read back as NaN where the in-memory code expects NaN."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qpipe.analytics.factor_eda import report_tables
from qpipe.analytics.factor_store import TABLES, load_table, save_report
from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.store import backtest_dir, load_output, load_result, save_result
from qpipe.data import query
from qpipe.data.lake import Lake, write_frame
from qpipe.data.schema import BAR_COLUMNS
from qpipe.live.journal import Journal

DAYS = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]).as_unit("ns")


def sql_counts(con: duckdb.DuckDBPyConnection, source: str, column: str) -> tuple:
    """(count(col), sum(col), rows where col IS NULL, rows where col is NaN, rows where
    col > 1) as DuckDB computes them."""
    col = f'"{column}"'
    return con.execute(
        f"select count({col}), sum({col}), count(*) filter (where {col} is null), "
        f"count(*) filter (where isnan({col})), count(*) filter (where {col} > 1) "
        f"from {source}"
    ).fetchone()


def expected_counts(values: pd.Series) -> tuple:
    """What SQL's NULL semantics give for ``values`` with NaN as missing, by plain pandas."""
    present = values.dropna()
    total = float(present.sum()) if len(present) else None
    return (len(present), total, int(values.isna().sum()), 0, int((present > 1).sum()))


def assert_sql_nulls(con: duckdb.DuckDBPyConnection, source: str, frame: pd.DataFrame, column: str):
    got = sql_counts(con, source, column)
    want = expected_counts(frame[column])
    assert got[0] == want[0] and got[2:] == want[2:], (column, got, want)
    assert (got[1] is None and want[1] is None) or got[1] == pytest.approx(want[1]), column


def file_source(path: Path) -> str:
    return f"read_parquet('{path}')"


# ---------------------------------------------------------------------- lake tables


def test_bars_with_a_missing_volume_are_null_in_sql(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    bars = pd.DataFrame(
        {
            "date": DAYS.repeat(2),
            "symbol": ["A", "B"] * 4,
            "open": [10.0, 20.0, 11.0, np.nan, 12.0, 21.0, 13.0, 22.0],
            "high": [10.5, 20.5, 11.5, np.nan, 12.5, 21.5, 13.5, 22.5],
            "low": [9.5, 19.5, 10.5, np.nan, 11.5, 20.5, 12.5, 21.5],
            "close": [10.0, 20.0, 11.0, 20.0, 12.0, 21.0, 13.0, 22.0],
            "volume": [100.0, np.nan, 300.0, np.nan, 500.0, 600.0, np.nan, 800.0],
        }
    )
    lake.write("bars", bars, DAYS)
    con = query.connect(lake.root)
    for column in ("open", "volume"):
        assert_sql_nulls(con, "bars", bars, column)
    # hand-computed: volume 100 + 300 + 500 + 600 + 800 over five rows
    assert con.execute("select count(volume), sum(volume) from bars").fetchone() == (5, 2300.0)
    assert (
        con.execute("select count(*) from bars_on('2024-01-03') where volume is null").fetchone()[0]
        == 1
    )
    got = lake.read("bars")
    pd.testing.assert_frame_equal(got, bars[list(BAR_COLUMNS)])
    assert got["volume"].isna().tolist() == bars["volume"].isna().tolist()


def test_factors_with_nan_are_null_in_sql(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    # a late listing (C from the third session) and a window still filling (mom NaN at first)
    factors = pd.DataFrame(
        {
            "date": DAYS.repeat(3),
            "symbol": ["A", "B", "C"] * 4,
            "mom": [np.nan, np.nan, np.nan, 0.5, 1.5, np.nan, 2.0, -1.0, np.nan, 3.0, 0.1, 0.2],
            "vol": [0.2, 0.3, np.nan, 0.2, 0.3, np.nan, 0.2, 0.3, 0.4, 0.2, 0.3, 0.4],
        }
    )
    lake.write("factors", factors, DAYS)
    con = query.connect(lake.root)
    for column in ("mom", "vol"):
        assert_sql_nulls(con, "factors", factors, column)
    assert con.execute("select count(*) from factors where mom > 1").fetchone()[0] == 3
    pd.testing.assert_frame_equal(lake.read("factors"), factors)


def test_signals_between_rebalances_are_null_in_sql(tmp_path: Path) -> None:
    """Target weights are NaN between rebalances (leave positions as they are): in SQL they
    are NULL, so sum() is the invested weight and `target_weight > 0` finds the holdings."""
    lake = Lake(tmp_path / "lake")
    signals = pd.DataFrame(
        {
            "date": DAYS.repeat(2),
            "symbol": ["A", "B"] * 4,
            "strategy": "demo",
            "score": [0.3, -0.3, 0.1, np.nan, 0.2, -0.2, 0.4, 0.0],
            # rebalances on the first and the last session only
            "target_weight": [0.6, 0.4, np.nan, np.nan, np.nan, np.nan, 1.0, 0.0],
        }
    )
    lake.write("signals_demo", signals, DAYS)
    con = query.connect(lake.root)
    for source in ("signals_demo", "signals"):
        assert_sql_nulls(con, source, signals, "target_weight")
        assert_sql_nulls(con, source, signals, "score")
    rows = con.execute(
        "select date, count(target_weight), sum(target_weight) from signals group by date "
        "order by date"
    ).fetchall()
    assert [(r[1], r[2]) for r in rows] == [(2, 1.0), (0, None), (0, None), (2, 1.0)]
    assert con.execute("select count(*) from signals where target_weight > 0.5").fetchone()[0] == 2
    pd.testing.assert_frame_equal(lake.read("signals_demo"), signals)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(st.none(), st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)),
        min_size=1,
        max_size=12,
    )
)
def test_lake_aggregates_follow_sql_null_semantics(values: list[float | None]) -> None:
    frame = pd.DataFrame(
        {
            "date": pd.Timestamp("2024-01-02").as_unit("ns"),
            "symbol": [f"S{i:02d}" for i in range(len(values))],
            "x": np.array([np.nan if v is None else v for v in values], dtype=np.float64),
        }
    )
    with duckdb.connect() as con, tempfile.TemporaryDirectory() as tmp:
        lake = Lake(tmp)
        lake.write("t", frame, ["2024-01-02"])
        view = file_source(lake.path("t") / "date=2024-01-02" / "data.parquet")
        assert_sql_nulls(con, view, frame, "x")
        pd.testing.assert_frame_equal(lake.read("t"), frame)


# ---------------------------------------------------------------------- single-file stores


def _backtest() -> tuple:
    """A backtest over a rising market where B lists on the fourth session: the benchmark (B)
    is NaN before it, and sortino and calmar are NaN (no losing day, no drawdown)."""
    dates = pd.bdate_range("2024-01-02", periods=10, name="date")
    close = np.array([[10.0, np.nan]] * 3 + [[10.0 + i, 20.0 + i] for i in range(7)])
    dims = ("date", "symbol")
    bars = xr.Dataset(
        {"open": (dims, close), "close": (dims, close), "volume": (dims, np.full((10, 2), 1e6))},
        coords={"date": dates, "symbol": ["A", "B"]},
    )
    w = np.full((10, 2), np.nan)
    w[0] = [0.0, 0.0]
    w[4] = [0.5, 0.5]
    result = BacktestEngine(BacktestConfig()).run(
        bars, xr.DataArray(w, coords=bars.coords, dims=dims)
    )
    benchmark = pd.Series(close[:, 1], index=dates, name="B")
    return result, benchmark


def test_backtest_daily_and_metrics_are_null_in_sql(tmp_path: Path) -> None:
    result, benchmark = _backtest()
    assert np.isnan(result.metrics["sortino"]) and np.isnan(result.metrics["calmar"])
    save_result(tmp_path, "demo", result, benchmark)
    con = query.connect(tmp_path)
    daily = load_output(tmp_path, "demo", "daily")
    assert daily["benchmark"].isna().sum() == 3  # B listed on the fourth session
    assert_sql_nulls(con, "backtest_daily", daily, "benchmark")
    metrics = pd.DataFrame({"value": [float(v) for v in result.metrics.values()]})
    assert_sql_nulls(con, "backtest_metrics", metrics, "value")
    nulls = con.execute("select metric from backtest_metrics where value is null order by 1")
    assert [r[0] for r in nulls.fetchall()] == ["calmar", "sortino"]
    path = backtest_dir(tmp_path, "demo") / "daily.parquet"
    assert_sql_nulls(con, file_source(path), daily, "benchmark")

    back, back_benchmark = load_result(tmp_path, "demo")
    pd.testing.assert_frame_equal(back.daily, result.daily, check_freq=False)
    pd.testing.assert_series_equal(
        back_benchmark, benchmark.rename("benchmark").rename_axis("date"), check_freq=False
    )
    assert back.metrics == pytest.approx(result.metrics, nan_ok=True)


def test_factor_report_is_null_in_sql(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2024-01-02", periods=30)
    prices = 10 * np.exp(np.cumsum(rng.normal(0, 0.02, (30, 6)), axis=0))
    prices[:12, 5] = np.nan  # a late listing
    factor = rng.normal(size=(30, 6))
    factor[:5] = np.nan  # a window still filling
    tables = report_tables({"f": factor}, prices, dates, horizons=(1, 5), quantiles=2)
    save_report(tmp_path, tables)
    with duckdb.connect() as con:
        for name in TABLES:
            saved = load_table(tmp_path, name)
            pd.testing.assert_frame_equal(saved, tables[name].reset_index(drop=True))
            path = tmp_path / "factor_report" / f"{name}.parquet"
            floats = [c for c in saved.columns if saved[c].dtype == np.float64]
            for column in floats:
                assert_sql_nulls(con, file_source(path), saved, column)
        ic = load_table(tmp_path, "ic")
        assert ic["ic"].isna().any()  # the first sessions and the last horizon's
        nulls = con.execute(
            f"select count(*) from {file_source(tmp_path / 'factor_report' / 'ic.parquet')} "
            "where ic is null"
        ).fetchone()[0]
        assert nulls == int(ic["ic"].isna().sum())


def test_journal_floats_are_null_in_sql(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    snapshot = pd.DataFrame(
        {
            "symbol": ["A", "B", "C"],
            "held": [10.0, 0.0, 5.0],
            "avg_cost": [12.5, np.nan, 7.0],  # B not held: no cost
            "price": [13.0, 20.0, np.nan],  # C halted: no quote
            "target_weight": [0.5, 0.5, np.nan],  # C held but not targeted
        }
    )
    journal.record("snapshot", snapshot, run_id="r1", session="2024-01-02")
    journal.record("snapshot", snapshot.iloc[:2], run_id="r2", session="2024-01-03")
    both = pd.concat([snapshot, snapshot.iloc[:2]], ignore_index=True)
    path = tmp_path / "live" / "journal" / "snapshot.parquet"
    with duckdb.connect() as con:
        for column in ("avg_cost", "price", "target_weight"):
            assert_sql_nulls(con, file_source(path), both, column)
    back = journal.read("snapshot")
    pd.testing.assert_frame_equal(back[list(snapshot.columns)], both)


def test_write_frame_writes_missing_values_as_nulls(tmp_path: Path) -> None:
    frame = pd.DataFrame(
        {
            "x": [1.0, np.nan, 3.0],
            "n": pd.array([1.0, None, 2.0], dtype="Float64"),
            "t": pd.to_datetime(["2024-01-02", None, "2024-01-04"]),
            "s": ["a", None, "c"],
        }
    )
    path = write_frame(frame, tmp_path / "f.parquet")
    with duckdb.connect() as con:
        row = con.execute(
            f"select count(x), count(n), count(t), count(s), count(*) filter (where x is null) "
            f"from {file_source(path)}"
        ).fetchone()
    assert row == (2, 2, 2, 2, 1)
    back = pd.read_parquet(path)
    assert back["x"].isna().tolist() == [False, True, False]
    assert back["t"].isna().tolist() == [False, True, False]


def test_date_column_is_unaffected(tmp_path: Path) -> None:
    """The partition date lives in the path; a frame's missing values never touch it."""
    lake = Lake(tmp_path / "lake")
    frame = pd.DataFrame({"date": DAYS[:1], "symbol": ["A"], "x": [np.nan]})
    lake.write("t", frame, DAYS[:1])
    assert lake.dates("t") == [dt.date(2024, 1, 2)]
    con = query.connect(lake.root)
    assert con.execute("select date, x is null from t").fetchone() == (dt.date(2024, 1, 2), True)

"""DuckDB views over the lake agree with Lake.read and work on an empty lake."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qpipe.data import query
from qpipe.data.lake import Lake
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS

DAYS = [dt.date(2024, 1, 2), dt.date(2024, 1, 3), dt.date(2024, 1, 4)]


def as_lake_frame(result: pd.DataFrame) -> pd.DataFrame:
    """A DuckDB result with the lake's dtypes (DuckDB returns dates as datetime64[us])."""
    return result.assign(date=result["date"].astype("datetime64[ns]"))


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    rng = np.random.default_rng(7)
    symbols = ["AAPL", "IBM", "MSFT", "SPY"]
    bars = pd.DataFrame(
        {
            "date": np.repeat(pd.to_datetime(DAYS).values, len(symbols)),
            "symbol": symbols * len(DAYS),
        }
    )
    for column in BAR_COLUMNS[2:]:
        bars[column] = rng.uniform(10, 20, len(bars))
    bars.loc[3, "volume"] = np.nan
    lake.write("bars", bars.sample(frac=1, random_state=1), DAYS)
    actions = pd.DataFrame(
        {"date": [pd.Timestamp(DAYS[1])], "symbol": ["AAPL"], "split_ratio": [4.0]}
        | {"dividend": [0.0], "factor": [0.25]}
    )
    lake.write("corporate_actions", actions, DAYS)
    factors = bars[["date", "symbol"]].assign(momentum=np.arange(len(bars)), label="x")
    lake.write("factors", factors, DAYS)
    return lake


def test_views_agree_with_lake_read(lake: Lake) -> None:
    con = query.connect(lake.root)
    for table in ("bars", "corporate_actions", "factors"):
        got = con.sql(f"select * from {table} order by date, symbol").df()
        pd.testing.assert_frame_equal(as_lake_frame(got), lake.read(table))
    got = con.sql(
        "select date, symbol, close from bars where date between DATE '2024-01-03' "
        "and DATE '2024-01-04' and symbol in ('IBM', 'SPY') order by date, symbol"
    ).df()
    want = lake.read("bars", DAYS[1], DAYS[2], columns=["close"], symbols=["IBM", "SPY"])
    pd.testing.assert_frame_equal(as_lake_frame(got), want)


def test_cross_section_query_matches_lake(lake: Lake) -> None:
    con = query.connect(lake.root)
    got = con.sql("select * from bars where date = DATE '2024-01-03' order by symbol").df()
    pd.testing.assert_frame_equal(as_lake_frame(got), lake.cross_section("bars", DAYS[1]))


def test_table_macro_reads_one_session(lake: Lake) -> None:
    con = query.connect(lake.root)
    for day in (f"'{DAYS[1]}'", f"DATE '{DAYS[1]}'"):
        got = con.sql(f"select * from bars_on({day}) order by symbol").df()
        pd.testing.assert_frame_equal(as_lake_frame(got), lake.cross_section("bars", DAYS[1]))
    got = con.sql(f"select * from corporate_actions_on('{DAYS[1]}')").df()
    assert list(got["symbol"]) == ["AAPL"] and list(got["split_ratio"]) == [4.0]


def test_date_is_a_date_column_and_first(lake: Lake) -> None:
    con = query.connect(lake.root)
    described = con.sql("describe bars").fetchall()
    assert [(row[0], row[1]) for row in described] == [
        ("date", "DATE"),
        ("symbol", "VARCHAR"),
        *[(name, "DOUBLE") for name in BAR_COLUMNS[2:]],
    ]
    assert con.sql("select min(date), count(*) from bars").fetchall() == [(DAYS[0], 12)]
    tables = {row[0] for row in con.sql("show tables").fetchall()}
    assert tables == {"bars", "corporate_actions", "factors", "adjusted_bars"}


def test_empty_lake_has_typed_empty_views(tmp_path: Path) -> None:
    con = query.connect(tmp_path / "nothing-here")
    assert con.sql("select count(*) from bars").fetchall() == [(0,)]
    assert con.sql("select count(*) from corporate_actions").fetchall() == [(0,)]
    assert [r[:2] for r in con.sql("describe corporate_actions").fetchall()] == [
        ("date", "DATE"),
        ("symbol", "VARCHAR"),
        *[(name, "DOUBLE") for name in ACTION_COLUMNS[2:]],
    ]
    result = con.sql("select * from bars").df()
    assert result.empty and list(result.columns) == list(BAR_COLUMNS)
    assert query.sql(tmp_path / "nothing-here", "select count(*) as n from bars")["n"].tolist() == [
        0
    ]
    assert not (tmp_path / "nothing-here").exists()


def test_views_see_new_partitions_and_skip_temporaries(lake: Lake) -> None:
    con = query.connect(lake.root)
    (lake.root / "bars" / f"date={DAYS[0]}" / ".data.parquet.dead.tmp").write_bytes(b"junk")
    day = dt.date(2024, 1, 5)
    lake.write("bars", lake.cross_section("bars", DAYS[0]).assign(date=pd.Timestamp(day)), [day])
    assert con.sql("select count(*) from bars").fetchall() == [(16,)]


def test_nothing_is_written_to_disk(lake: Lake, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    result = query.sql(lake.root, "select symbol, avg(close) as c from bars group by symbol")
    assert sorted(result["symbol"]) == ["AAPL", "IBM", "MSFT", "SPY"]
    con = query.connect(lake.root)
    assert con.sql("select current_setting('temp_directory')").fetchall() == [("",)]
    assert con.sql(
        "select database_name from duckdb_databases() where not internal"
    ).fetchall() == [("memory",)]
    assert sorted(tmp_path.rglob("*")) == before


def test_key_value_directories_above_the_lake_add_no_columns(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "run=7" / "lake")
    frame = pd.DataFrame({"date": [pd.Timestamp(DAYS[0])], "symbol": ["A"], "score": [1.5]})
    lake.write("factors", frame, DAYS[:1])
    con = query.connect(lake.root)
    assert [r[0] for r in con.sql("describe factors").fetchall()] == ["date", "symbol", "score"]
    assert con.sql("select * from factors").fetchall() == [(DAYS[0], "A", 1.5)]


def test_adjusted_bars_view_matches_the_python_adjustment(lake: Lake) -> None:
    from qpipe.data.adjustments import adjusted_prices

    con = query.connect(lake.root)
    got = con.sql("select * from adjusted_bars order by date, symbol").df()
    want = adjusted_prices(lake.read("bars"), lake.read("corporate_actions"))
    pd.testing.assert_frame_equal(as_lake_frame(got), want.reset_index(drop=True))
    # AAPL's 4-for-1 split on the second day divides its first-day prices by four.
    first = got[(got["symbol"] == "AAPL")].iloc[0]
    raw = lake.read("bars", symbols=["AAPL"]).iloc[0]
    assert first["close"] == raw["close"] / 4 and first["volume"] == raw["volume"] * 4


def test_adjusted_bars_on_an_empty_lake(tmp_path: Path) -> None:
    con = query.connect(tmp_path / "lake")
    assert con.execute("select count(*) from adjusted_bars").fetchall() == [(0,)]

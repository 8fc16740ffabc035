"""FilesSource: the user's CSV/Parquet files, both layouts, and validation messages."""

from __future__ import annotations

import datetime as dt
import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from qpipe.calendars import TradingCalendar
from qpipe.data.files import FilesSource
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, INSTRUMENT_COLUMNS
from qpipe.errors import DataValidationError
from qpipe.settings import ColumnMap, FilesSourceConfig

# XNYS sessions: 2001-01-01 is New Year's Day, 2001-01-06/07 a weekend.
GOOD_CSV = """\
date,symbol,open,high,low,close,volume
2001-01-02,AAA,10.0,11.0,9.5,10.5,1000
2001-01-02,BBB,20.0,21.0,19.0,20.0,2000
2001-01-03,AAA,10.5,12.0,10.0,11.5,1100
2001-01-03,BBB,20.0,22.0,19.5,21.0,2100
2001-01-04,AAA,11.5,12.5,11.0,12.0,1200
2001-01-04,BBB,21.0,21.5,20.0,20.5,2200
"""


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar("XNYS", "2000-01-03")


def good_frame() -> pd.DataFrame:
    from io import StringIO

    return pd.read_csv(StringIO(GOOD_CSV))


def source_for(
    calendar: TradingCalendar, path: Path, fill: str | None = None, **config: object
) -> FilesSource:
    return FilesSource(calendar, FilesSourceConfig(path=path, **config), fill=fill)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def load_error(calendar: TradingCalendar, path: Path, **config: object) -> str:
    """The validation message raised when the source is first used."""
    source = source_for(calendar, path, **config)
    with pytest.raises(DataValidationError) as info:
        source.fetch("2000-01-03", "2001-12-31")
    return str(info.value)


def bad_csv(
    tmp_path: Path, lines: list[str], header: str = "date,symbol,open,high,low,close,volume"
):
    return write(tmp_path / "prices.csv", "\n".join([header, *lines]) + "\n")


# -- reading ---------------------------------------------------------------------------------------


def test_long_csv_is_read_into_contract_frames(calendar, tmp_path):
    path = write(tmp_path / "prices.csv", GOOD_CSV)
    data = source_for(calendar, path).fetch("2001-01-01", "2001-01-31")
    bars = data.bars
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert str(bars["date"].dtype) == "datetime64[ns]"
    assert bars["symbol"].tolist() == ["AAA", "BBB"] * 3
    assert bars["close"].tolist() == [10.5, 20.0, 11.5, 21.0, 12.0, 20.5]
    assert bars["volume"].dtype == np.float64
    assert list(data.actions.columns) == list(ACTION_COLUMNS)
    assert data.actions.empty  # no adj_close mapped


def test_long_parquet_gives_the_same_frames_as_csv(calendar, tmp_path):
    csv = write(tmp_path / "prices.csv", GOOD_CSV)
    frame = good_frame()
    frame["date"] = pd.to_datetime(frame["date"])
    frame.to_parquet(tmp_path / "prices.parquet")
    from_csv = source_for(calendar, csv).fetch("2001-01-01", "2001-01-31")
    from_pq = source_for(calendar, tmp_path / "prices.parquet").fetch("2001-01-01", "2001-01-31")
    pd.testing.assert_frame_equal(from_csv.bars, from_pq.bars)


def test_parquet_with_string_dates_and_date_index(calendar, tmp_path):
    frame = good_frame()
    frame.to_parquet(tmp_path / "strings.pq")  # dates as strings, extension .pq
    frame.set_index("date").to_parquet(tmp_path / "indexed.parquet")
    a = source_for(calendar, tmp_path / "strings.pq").fetch("2001-01-01", "2001-01-31")
    b = source_for(calendar, tmp_path / "indexed.parquet").fetch("2001-01-01", "2001-01-31")
    assert len(a.bars) == len(b.bars) == 6
    pd.testing.assert_frame_equal(a.bars, b.bars)


def test_per_symbol_csv_directory(calendar, tmp_path):
    frame = good_frame()
    folder = tmp_path / "bars"
    folder.mkdir()
    frame[frame.symbol == "AAA"].drop(columns="symbol").to_csv(folder / "AAA.csv", index=False)
    with gzip.open(folder / "BBB.csv.gz", "wt") as fh:
        frame[frame.symbol == "BBB"].drop(columns="symbol").to_csv(fh, index=False)
    write(folder / "README.md", "not data")
    source = source_for(calendar, folder, layout="per_symbol")
    bars = source.fetch("2001-01-01", "2001-01-31").bars
    assert sorted(set(bars["symbol"])) == ["AAA", "BBB"]
    expected = source_for(calendar, write(tmp_path / "long.csv", GOOD_CSV)).fetch(
        "2001-01-01", "2001-01-31"
    )
    pd.testing.assert_frame_equal(bars, expected.bars)


def test_per_symbol_parquet_directory_keeps_dots_in_symbols(calendar, tmp_path):
    frame = good_frame()
    folder = tmp_path / "bars"
    folder.mkdir()
    frame[frame.symbol == "AAA"].drop(columns="symbol").to_parquet(folder / "BRK.B.parquet")
    frame[frame.symbol == "BBB"].drop(columns="symbol").to_parquet(folder / "BBB.pq")
    source = source_for(calendar, folder, layout="per_symbol", format="parquet")
    bars = source.fetch("2001-01-01", "2001-01-31").bars
    assert bars["symbol"].tolist() == ["BBB", "BRK.B"] * 3
    assert source.instruments()["symbol"].tolist() == ["BBB", "BRK.B"]


def test_custom_column_names_and_date_format(calendar, tmp_path):
    path = write(
        tmp_path / "mine.csv",
        "Day,Ticker,Last,Extra\n03/01/2001,XYZ,5.0,a\n02/01/2001,XYZ,4.0,b\n",
    )
    columns = ColumnMap(
        date="Day", symbol="Ticker", close="Last", open=None, high=None, low=None, volume=None
    )
    with pytest.warns(UserWarning):
        bars = (
            source_for(calendar, path, columns=columns, date_format="%d/%m/%Y")
            .fetch("2001-01-01", "2001-01-31")
            .bars
        )
    assert bars["date"].tolist() == [pd.Timestamp("2001-01-02"), pd.Timestamp("2001-01-03")]
    assert bars["close"].tolist() == [4.0, 5.0]


def test_close_only_data_gives_nan_columns_and_a_warning(calendar, tmp_path):
    path = write(tmp_path / "close.csv", "date,symbol,close\n2001-01-02,AAA,1.5\n")
    source = source_for(calendar, path)
    with pytest.warns(UserWarning) as record:
        bars = source.fetch("2001-01-01", "2001-01-31").bars
    message = str(record[0].message)
    for name in ("open", "high", "low", "volume"):
        assert name in message
    assert "close.csv" in message
    assert "factors that need them will be NaN" in message
    assert bars[["open", "high", "low", "volume"]].isna().all().all()
    assert bars["close"].tolist() == [1.5]
    with warnings.catch_warnings():  # cached: no second read, no second warning
        warnings.simplefilter("error")
        source.fetch("2001-01-01", "2001-01-31")


def test_complete_data_reads_without_warnings(calendar, tmp_path):
    path = write(tmp_path / "prices.csv", GOOD_CSV)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        source_for(calendar, path).coverage()


def test_empty_optional_cells_stay_nan(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,,11,9,10,", "2001-01-03,AAA,10,,,10.5,5"])
    bars = source_for(calendar, path).fetch("2001-01-01", "2001-01-31").bars
    assert np.isnan(bars["open"].iloc[0]) and np.isnan(bars["volume"].iloc[0])
    assert np.isnan(bars["high"].iloc[1]) and np.isnan(bars["low"].iloc[1])


def test_adj_close_gives_actions(calendar, tmp_path):
    # A 2-for-1 split on 2001-01-04 and a $0.10 dividend on 2001-01-05.
    f = 1 - 0.1 / 51.19
    path = write(
        tmp_path / "adj.csv",
        "date,symbol,close,adj\n"
        f"2001-01-02,AAA,100.25,{100.25 / 2 * f}\n"
        f"2001-01-03,AAA,102.37,{102.37 / 2 * f}\n"
        f"2001-01-04,AAA,51.19,{51.19 * f}\n"
        "2001-01-05,AAA,50.07,50.07\n",
    )
    columns = ColumnMap(adj_close="adj")
    with pytest.warns(UserWarning, match="open"):
        data = source_for(calendar, path, columns=columns).fetch("2001-01-01", "2001-01-31")
    actions = data.actions
    assert actions["date"].tolist() == [pd.Timestamp("2001-01-04"), pd.Timestamp("2001-01-05")]
    assert actions["split_ratio"].tolist() == [2.0, 1.0]
    assert actions["dividend"].tolist() == pytest.approx([0.0, 0.1], abs=1e-9)
    assert "adj" not in data.bars.columns


def test_blank_lines_are_skipped(calendar, tmp_path):
    path = write(
        tmp_path / "prices.csv", GOOD_CSV.replace("\n2001-01-03,AAA", "\n\n2001-01-03,AAA")
    )
    assert len(source_for(calendar, path).fetch("2001-01-01", "2001-01-31").bars) == 6


# -- serving ---------------------------------------------------------------------------------------


def test_fetch_slices_by_date_and_symbols(calendar, tmp_path):
    source = source_for(calendar, write(tmp_path / "prices.csv", GOOD_CSV))
    one_day = source.fetch("2001-01-03", dt.date(2001, 1, 3)).bars
    assert one_day["date"].unique().tolist() == [pd.Timestamp("2001-01-03")]
    assert len(one_day) == 2
    only_b = source.fetch("2001-01-01", "2001-01-31", symbols=["BBB"]).bars
    assert only_b["symbol"].unique().tolist() == ["BBB"]
    assert only_b.index.tolist() == [0, 1, 2]
    assert source.fetch("2001-01-01", "2001-01-31", symbols="AAA").bars["symbol"].nunique() == 1
    assert source.fetch("2001-01-01", "2001-01-31", symbols=["ZZZ"]).bars.empty
    assert source.fetch("2002-01-01", "2002-01-31").bars.empty
    # A day's rows do not depend on the range asked for.
    wide = source.fetch("2000-06-01", "2001-06-01").bars
    pd.testing.assert_frame_equal(wide[wide.date == "2001-01-03"].reset_index(drop=True), one_day)
    with pytest.raises(ValueError, match="after end"):
        source.fetch("2001-01-05", "2001-01-02")


def test_coverage_and_instruments(calendar, tmp_path):
    text = GOOD_CSV + "2001-01-05,AAA,12,13,11,12.5,1300\n"
    source = source_for(calendar, write(tmp_path / "prices.csv", text))
    assert source.coverage() == (dt.date(2001, 1, 2), dt.date(2001, 1, 5))
    inst = source.instruments()
    assert list(inst.columns) == list(INSTRUMENT_COLUMNS)
    assert inst["symbol"].tolist() == ["AAA", "BBB"]
    assert inst["kind"].tolist() == ["stock", "stock"]
    assert inst["sector"].isna().all()
    assert inst["first_date"].tolist() == [pd.Timestamp("2001-01-02")] * 2
    # Where the data ends is not a delisting: none is declared.
    assert inst["last_date"].isna().all()
    assert source.name == "files"


def test_data_is_read_once_and_cached(calendar, tmp_path):
    path = write(tmp_path / "prices.csv", GOOD_CSV)
    source = source_for(calendar, path)
    first = source.fetch("2001-01-01", "2001-01-31").bars
    path.write_text("garbage")
    pd.testing.assert_frame_equal(source.fetch("2001-01-01", "2001-01-31").bars, first)


def test_rows_before_the_calendar_start_are_checked_but_not_served(tmp_path):
    late = TradingCalendar("XNYS", "2001-01-03")
    source = source_for(late, write(tmp_path / "prices.csv", GOOD_CSV))
    assert source.coverage() == (dt.date(2001, 1, 3), dt.date(2001, 1, 4))
    assert source.fetch("2000-01-01", "2001-12-31").bars["date"].min() == pd.Timestamp("2001-01-03")
    bad = write(tmp_path / "bad.csv", GOOD_CSV + "2000-12-31,AAA,1,1,1,1,1\n")
    message = load_error(late, bad)
    assert "line 8" in message and "2000-12-31 is not an XNYS session" in message


# -- validation: files ----------------------------------------------------------------------------


def test_missing_file(calendar, tmp_path):
    message = load_error(calendar, tmp_path / "nope.csv")
    assert "nope.csv" in message and "file not found" in message


def test_missing_directory(calendar, tmp_path):
    message = load_error(calendar, tmp_path / "nodir", layout="per_symbol")
    assert "nodir" in message and "directory not found" in message


def test_directory_with_long_layout(calendar, tmp_path):
    message = load_error(calendar, tmp_path)
    assert str(tmp_path) in message and "is a directory" in message


def test_file_with_per_symbol_layout(calendar, tmp_path):
    path = write(tmp_path / "prices.csv", GOOD_CSV)
    message = load_error(calendar, path, layout="per_symbol")
    assert "prices.csv" in message and "reads a directory" in message


def test_directory_without_data_files(calendar, tmp_path):
    write(tmp_path / "notes.txt", "hello")
    message = load_error(calendar, tmp_path, layout="per_symbol")
    assert "no CSV or Parquet files" in message


def test_two_files_for_one_symbol(calendar, tmp_path):
    write(tmp_path / "AAA.csv", "date,close\n2001-01-02,1\n")
    good_frame().head(1).to_parquet(tmp_path / "AAA.parquet")
    message = load_error(calendar, tmp_path, layout="per_symbol")
    assert "two files for symbol AAA" in message
    assert "AAA.csv" in message and "AAA.parquet" in message


def test_unknown_extension(calendar, tmp_path):
    path = write(tmp_path / "prices.txt", GOOD_CSV)
    message = load_error(calendar, path)
    assert "prices.txt" in message and "cannot tell the format" in message
    # An explicit format reads it.
    assert len(source_for(calendar, path, format="csv").fetch("2001-01-01", "2001-01-31").bars)


def test_empty_file(calendar, tmp_path):
    message = load_error(calendar, write(tmp_path / "prices.csv", ""))
    assert "prices.csv" in message and "file is empty" in message


def test_empty_gzip_file(calendar, tmp_path):
    with gzip.open(tmp_path / "prices.csv.gz", "wt") as fh:
        fh.write("")
    message = load_error(calendar, tmp_path / "prices.csv.gz")
    assert "prices.csv.gz" in message and "file is empty" in message


def test_header_only(calendar, tmp_path):
    message = load_error(calendar, bad_csv(tmp_path, []))
    assert "prices.csv" in message and "no data rows" in message


def test_corrupt_gzip(calendar, tmp_path):
    (tmp_path / "prices.csv.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    message = load_error(calendar, tmp_path / "prices.csv.gz")
    assert "prices.csv.gz" in message and "cannot read as CSV" in message


def test_corrupt_parquet(calendar, tmp_path):
    (tmp_path / "prices.parquet").write_bytes(b"not parquet at all")
    message = load_error(calendar, tmp_path / "prices.parquet")
    assert "prices.parquet" in message and "cannot read as Parquet" in message


def test_missing_required_column(calendar, tmp_path):
    path = write(tmp_path / "prices.csv", "Date,Ticker,Price\n2001-01-02,AAA,1\n")
    columns = ColumnMap(date="Date", symbol="Ticker", close="Close")
    message = load_error(calendar, path, columns=columns)
    assert "prices.csv" in message
    assert "missing column 'Close'" in message
    assert "'Date', 'Ticker', 'Price'" in message


def test_missing_symbol_column_in_long_layout(calendar, tmp_path):
    path = write(tmp_path / "prices.csv", "date,close\n2001-01-02,1\n")
    message = load_error(calendar, path)
    assert "missing column 'symbol'" in message and "'date', 'close'" in message


def test_mapped_adj_close_must_exist(calendar, tmp_path):
    path = write(tmp_path / "prices.csv", GOOD_CSV)
    message = load_error(calendar, path, columns=ColumnMap(adj_close="Adj Close"))
    assert "missing column 'Adj Close'" in message


# -- validation: rows -----------------------------------------------------------------------------


def test_non_numeric_price(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100", "2001-01-03,AAA,10,11,9,abc,100"])
    message = load_error(calendar, path)
    assert "prices.csv" in message and "line 3" in message
    assert "non-numeric value 'abc' in column 'close'" in message
    assert "rows have this problem" not in message


def test_non_numeric_counts_offending_rows(calendar, tmp_path):
    path = bad_csv(
        tmp_path,
        [
            "2001-01-02,AAA,10,11,9,10,100",
            "2001-01-03,AAA,10,11,9,10,1e",
            "2001-01-04,AAA,10,11,9,10,n/a?",
            "2001-01-05,AAA,10,11,9,10,x",
        ],
    )
    message = load_error(calendar, path)
    assert "line 3" in message and "'1e'" in message and "column 'volume'" in message
    assert "3 rows have this problem" in message


def test_infinite_value_is_not_a_number(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,inf,9,10,100"])
    message = load_error(calendar, path)
    assert "line 2" in message and "non-numeric value 'inf' in column 'high'" in message


def test_unparseable_date(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100", "2001-13-45,AAA,10,11,9,10,100"])
    message = load_error(calendar, path)
    assert "prices.csv, line 3" in message
    assert "unparseable date '2001-13-45' in column 'date'" in message


def test_unparseable_date_with_format(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100"])
    message = load_error(calendar, path, date_format="%d/%m/%Y")
    assert "line 2" in message and "'%d/%m/%Y'" in message


def test_missing_date(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100", ",AAA,10,11,9,10,100"])
    message = load_error(calendar, path)
    assert "line 3" in message and "missing date" in message


def test_missing_symbol(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,,10,11,9,10,100"])
    message = load_error(calendar, path)
    assert "line 2" in message and "missing symbol in column 'symbol'" in message


def test_missing_close(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100", "2001-01-03,AAA,10,11,9,,100"])
    message = load_error(calendar, path)
    assert "line 3" in message and "missing close in column 'close'" in message


def test_zero_price(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,0,10,100"])
    message = load_error(calendar, path)
    assert "line 2" in message and "price must be positive: 0 in column 'low'" in message


def test_negative_price(calendar, tmp_path):
    path = bad_csv(
        tmp_path,
        ["2001-01-02,AAA,10,11,9,10,100", "2001-01-03,AAA,-1,11,9,-2,100"],
    )
    message = load_error(calendar, path)
    assert "line 3" in message and "price must be positive: -1 in column 'open'" in message


def test_high_below_low(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100", "2001-01-03,AAA,10,9,11,10,100"])
    message = load_error(calendar, path)
    assert "line 3" in message and "high 9 is below low 11" in message


def test_close_above_high(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,12,100"])
    message = load_error(calendar, path)
    assert "line 2" in message
    assert "close 12 is outside the day's range [low 9, high 11]" in message


def test_open_below_low(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,8,11,9,10,100"])
    message = load_error(calendar, path)
    assert "line 2" in message and "open 8 is outside" in message


def test_range_is_not_checked_against_missing_bounds(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,8,,9,10,100", "2001-01-03,AAA,8,11,,12,100"])
    assert len(source_for(calendar, path).fetch("2001-01-01", "2001-01-31").bars) == 2


def test_negative_volume(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,-5"])
    message = load_error(calendar, path)
    assert "line 2" in message and "negative volume -5 in column 'volume'" in message


def test_duplicate_date_and_symbol(calendar, tmp_path):
    path = bad_csv(
        tmp_path,
        [
            "2001-01-02,AAA,10,11,9,10,100",
            "2001-01-02,BBB,10,11,9,10,100",
            "2001-01-02,AAA,10,11,9,10.5,100",
        ],
    )
    message = load_error(calendar, path)
    assert "prices.csv, line 4" in message
    assert "duplicate row for AAA on 2001-01-02 (first at line 2)" in message


def test_holiday_is_not_a_session(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100", "2001-01-01,AAA,10,11,9,10,100"])
    message = load_error(calendar, path)
    assert "line 3" in message and "2001-01-01 is not an XNYS session" in message


def test_weekend_is_not_a_session_and_rows_are_counted(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-06,AAA,10,11,9,10,100", "2001-01-07,AAA,10,11,9,10,100"])
    message = load_error(calendar, path)
    assert "line 2" in message and "2001-01-06 is not an XNYS session" in message
    assert "2 rows have this problem" in message


def test_line_numbers_count_blank_lines(calendar, tmp_path):
    path = bad_csv(tmp_path, ["2001-01-02,AAA,10,11,9,10,100", "", "2001-01-03,AAA,10,11,9,x,1"])
    message = load_error(calendar, path)
    assert "line 4" in message


def test_parquet_rows_are_zero_based(calendar, tmp_path):
    frame = good_frame()
    frame.loc[2, "close"] = -1.0
    frame.to_parquet(tmp_path / "prices.parquet")
    message = load_error(calendar, tmp_path / "prices.parquet")
    assert "prices.parquet, row 2 (0-based)" in message
    assert "price must be positive: -1 in column 'close'" in message


def test_parquet_non_numeric_strings(calendar, tmp_path):
    frame = good_frame().astype({"volume": str})
    frame.loc[4, "volume"] = "lots"
    frame.to_parquet(tmp_path / "prices.parquet")
    message = load_error(calendar, tmp_path / "prices.parquet")
    assert "row 4 (0-based)" in message and "non-numeric value 'lots'" in message


def test_per_symbol_error_names_the_file(calendar, tmp_path):
    write(tmp_path / "AAA.csv", "date,close\n2001-01-02,1\n")
    write(tmp_path / "BBB.csv", "date,close\n2001-01-02,1\n2001-01-03,0\n")
    message = load_error(calendar, tmp_path, layout="per_symbol")
    assert "BBB.csv, line 3" in message and "price must be positive" in message


def test_per_symbol_warning_counts_files_without_optional_columns(calendar, tmp_path):
    write(tmp_path / "AAA.csv", "date,close\n2001-01-02,1\n")
    write(tmp_path / "BBB.csv", "date,close,volume\n2001-01-02,1,5\n")
    source = source_for(calendar, tmp_path, layout="per_symbol")
    with pytest.warns(UserWarning) as record:
        bars = source.fetch("2001-01-01", "2001-01-31").bars
    assert len(record) == 1
    message = str(record[0].message)
    assert "open ('open') in 2 of 2 files" in message
    assert "volume ('volume') in 1 of 2 files" in message
    assert bars["volume"].tolist()[1] == 5.0 and np.isnan(bars["volume"].iloc[0])


# -- ragged rows and delimiters --------------------------------------------------------------------


def test_a_row_with_extra_fields_is_refused_not_shifted(calendar, tmp_path):
    # 9 fields under a 7-column header: once stored as open 1, high 2, low 0.5, close 1.5.
    path = bad_csv(
        tmp_path, ["2001-01-02,AAA,10,11,9,10,100", "2001-01-03,AAA,1,2,0.5,1.5,100,7,8"]
    )
    message = load_error(calendar, path)
    assert "prices.csv, line 3: 9 fields, but the header has 7 columns" in message
    assert "rows have this problem" not in message


def test_short_rows_are_refused_and_counted(calendar, tmp_path):
    path = bad_csv(
        tmp_path,
        [
            "2001-01-02,AAA,10,11,9,10,100",
            "",
            "2001-01-03,AAA,10,11,9,10",
            "2001-01-04,AAA,10,11,9,10,100",
            "2001-01-05,AAA,10,11",
        ],
    )
    message = load_error(calendar, path)
    assert "line 4: 6 fields, but the header has 7 columns" in message
    assert "(2 rows have this problem)" in message


def test_quoted_delimiters_and_empty_trailing_cells_are_fields_not_extra(calendar, tmp_path):
    path = bad_csv(
        tmp_path,
        ['2001-01-02,"A,B",10,11,9,10,100', "2001-01-03,A,10,11,9,10,"],
    )
    bars = source_for(calendar, path).fetch("2001-01-01", "2001-01-31").bars
    assert bars["symbol"].tolist() == ["A,B", "A"]
    assert np.isnan(bars["volume"].iloc[1])


def test_a_semicolon_file_is_refused_for_its_delimiter(calendar, tmp_path):
    text = GOOD_CSV.replace(",", ";")
    path = write(tmp_path / "prices.csv", text)
    message = load_error(calendar, path)
    assert "the header line 'date;symbol;open;high;low;close;volume' does not split" in message
    assert "at the delimiter ','" in message
    assert "it looks ';'-delimited: set files.delimiter" in message
    assert "missing column" not in message
    bars = source_for(calendar, path, delimiter=";").fetch("2001-01-01", "2001-01-31").bars
    expected = source_for(calendar, write(tmp_path / "good.csv", GOOD_CSV)).fetch(
        "2001-01-01", "2001-01-31"
    )
    pd.testing.assert_frame_equal(bars, expected.bars)


def test_tab_delimited_per_symbol_files(calendar, tmp_path):
    folder = tmp_path / "bars"
    folder.mkdir()
    frame = good_frame()
    frame[frame.symbol == "AAA"].drop(columns="symbol").to_csv(
        folder / "AAA.csv", sep="\t", index=False
    )
    source = source_for(calendar, folder, layout="per_symbol", delimiter="\t")
    bars = source.fetch("2001-01-01", "2001-01-31").bars
    assert bars["close"].tolist() == [10.5, 11.5, 12.0]
    message = load_error(calendar, folder, layout="per_symbol")
    assert "AAA.csv" in message and "it looks '\\t'-delimited" in message


def test_a_binary_file_is_refused_as_binary(calendar, tmp_path):
    good_frame().to_parquet(tmp_path / "prices.csv")  # Parquet under a CSV name
    message = load_error(calendar, tmp_path / "prices.csv")
    assert "prices.csv: binary content (NUL bytes), not CSV text" in message
    (tmp_path / "noise.csv").write_bytes(bytes(range(1, 256)) * 8)
    message = load_error(calendar, tmp_path / "noise.csv")
    assert "noise.csv: the header line '\\x01\\x02" in message
    assert "control characters, so this is no CSV text (a binary file?)" in message
    (tmp_path / "latin.csv").write_bytes("date,symbol,close\n2001-01-02,É,1\n".encode("latin-1"))
    message = load_error(calendar, tmp_path / "latin.csv")
    assert "latin.csv: cannot read as CSV: not UTF-8 text (byte 0xc9" in message
    assert "missing column" not in message


# -- fill prices -----------------------------------------------------------------------------------


def test_close_only_file_cannot_serve_a_next_open_fill(calendar, tmp_path):
    # Formerly the opens were NaN with a warning, and every order of the backtest was skipped.
    path = write(tmp_path / "close.csv", "date,symbol,close\n2001-01-02,AAA,1.5\n")
    message = load_error(calendar, path, fill="next_open")
    assert "close.csv: no column 'open' (files.columns.open)" in message
    assert "backtest.fill is 'next_open'" in message
    assert "set backtest.fill to next_close or close" in message
    unmapped = ColumnMap(open=None)
    message = load_error(calendar, path, fill="next_open", columns=unmapped)
    assert "files.columns.open is null" in message
    for fill in ("next_close", "close"):
        with pytest.warns(UserWarning, match="open"):
            bars = source_for(calendar, path, fill=fill).fetch("2001-01-01", "2001-01-31").bars
        assert bars["open"].isna().all()


def test_per_symbol_file_without_opens_is_named(calendar, tmp_path):
    write(tmp_path / "AAA.csv", "date,open,close\n2001-01-02,1,1\n")
    write(tmp_path / "BBB.csv", "date,close\n2001-01-02,1\n")
    message = load_error(calendar, tmp_path, layout="per_symbol", fill="next_open")
    assert "BBB.csv: no column 'open'" in message


def test_the_project_passes_the_fill_mode_to_the_files_source(tmp_path):
    from qpipe.project import build_source
    from qpipe.settings import parse_settings

    path = write(tmp_path / "close.csv", "date,symbol,close\n2001-01-02,AAA,1.5\n")
    raw = {
        "calendar": {"start": "2001-01-02"},
        "data": {"source": "files", "files": {"path": str(path)}},
    }
    settings = parse_settings(raw)
    source = build_source(settings, TradingCalendar("XNYS", "2001-01-02"))
    with pytest.raises(DataValidationError, match=r"backtest\.fill is 'next_open'"):
        source.coverage()


# -- corporate actions: precision, warnings, the actions file -------------------------------------


def test_rounded_adj_close_file_gives_the_planted_actions(calendar, tmp_path):
    from qpipe_tests.data.test_adjustments import plant, planted_facts, random_market

    days = calendar.sessions_index("2001-01-02")[:250]
    for decimals in (2, 6):
        bars, planted = random_market(seed=decimals + 10, days=days)
        bars = plant(bars, planted, decimals)
        path = tmp_path / f"adj{decimals}.csv"
        bars.to_csv(path, index=False)  # floats as Python writes them: 10.5, not 10.50
        source = source_for(calendar, path, columns=ColumnMap(adj_close="adj_close"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # close-only
            found = source.fetch(days[0], days[-1]).actions
        facts = planted_facts(bars, planted).sort_values(["date", "symbol"])
        assert list(zip(found["date"], found["symbol"], strict=True)) == list(
            zip(facts["date"], facts["symbol"], strict=True)
        )
        assert found["split_ratio"].tolist() == facts["split_ratio"].tolist()
        half = 0.5 * 10.0**-decimals
        bound = (
            facts["prev_close"]
            * facts["factor"]
            * (half / facts["prev_adj"] + half / facts["adj_close"])
        )
        error = (found["dividend"].to_numpy() - facts["dividend"].to_numpy()).__abs__()
        assert (error <= bound.to_numpy() * 1.01).all()


def test_a_falling_adjusted_ratio_warns_with_the_file_and_row(calendar, tmp_path):
    path = write(
        tmp_path / "adj.csv",
        "date,symbol,close,adj\n"
        "2001-01-02,AAA,40.13,20.07\n"
        "2001-01-03,AAA,40.55,20.28\n"
        "2001-01-04,AAA,39.87,19.74\n"  # 0.4951 of the close after 0.5001: -1%
        "2001-01-05,AAA,40.02,19.81\n",
    )
    source = source_for(calendar, path, columns=ColumnMap(adj_close="adj"))
    with pytest.warns(UserWarning) as record:
        actions = source.fetch("2001-01-01", "2001-01-31").actions
    assert actions.empty
    messages = [str(w.message) for w in record if "negative dividend" in str(w.message)]
    assert len(messages) == 1
    assert "adj.csv, line 4: AAA on 2001-01-04: 'adj' / 'close' falls 1.0" in messages[0]
    assert "from line 3" in messages[0]
    # A split whose adjusted ratio falls short of it: the split alone is recorded.
    path = write(
        tmp_path / "split.csv",
        "date,symbol,close,adj\n"
        "2001-01-02,AAA,40.13,20.07\n"
        "2001-01-03,AAA,40.55,20.28\n"
        "2001-01-04,AAA,20.02,19.95\n"  # 0.9965 of the close after 0.5001 x 2: 0.4% short
        "2001-01-05,AAA,20.11,20.04\n",
    )
    source = source_for(calendar, path, columns=ColumnMap(adj_close="adj"))
    with pytest.warns(UserWarning, match="negative dividend") as record:
        actions = source.fetch("2001-01-01", "2001-01-31").actions
    assert actions[["split_ratio", "dividend", "factor"]].values.tolist() == [[2.0, 0.0, 0.5]]
    message = next(str(w.message) for w in record if "negative dividend" in str(w.message))
    assert "split.csv, line 4: AAA on 2001-01-04: a split of 2 new shares per old is " in message
    assert (
        "recorded, but 'adj' / 'close' falls 0.3" in message
        and "short of it from line 3" in message
    )


ACTIONS_BARS = """\
date,symbol,close,adj
2001-01-02,AAA,100.25,50.10
2001-01-03,AAA,102.37,51.16
2001-01-04,AAA,51.19,51.19
2001-01-05,AAA,50.07,50.07
2001-01-02,BBB,20.01,19.01
2001-01-03,BBB,20.03,19.03
2001-01-04,BBB,20.07,20.07
2001-01-05,BBB,19.52,19.52
"""


def test_an_actions_file_wins_over_derivation(calendar, tmp_path):
    bars = write(tmp_path / "bars.csv", ACTIONS_BARS)
    # AAA's adjusted close says a split with a dividend on 2001-01-04; the file says the split
    # alone, and a dividend on 2001-01-05 that the adjusted close does not show. BBB has no
    # row in the file: its 5% dividend on 2001-01-04 is derived.
    actions_file = write(
        tmp_path / "actions.csv",
        "date,symbol,split_ratio,dividend\n"
        "2001-01-04,AAA,2,\n"
        "2001-01-05,AAA,,0.25\n"
        "2000-12-29,AAA,3,\n"  # before the first bar: adjusts nothing
        "2001-01-03,ZZZ,2,\n",  # no bars
    )
    source = source_for(calendar, bars, columns=ColumnMap(adj_close="adj"), actions=actions_file)
    with pytest.warns(UserWarning) as record:
        actions = source.fetch("2000-01-03", "2001-01-31").actions
    assert any("actions.csv: no bars for ZZZ" in str(w.message) for w in record)
    rows = list(actions.itertuples(index=False, name=None))
    assert rows[0][:4] == (pd.Timestamp("2001-01-04"), "AAA", 2.0, 0.0)
    assert rows[0][4] == 0.5
    assert rows[1][:2] == (pd.Timestamp("2001-01-04"), "BBB")
    assert rows[1][2] == 1.0
    assert rows[1][3] == pytest.approx(20.03 * (1 - (19.03 / 20.03)), rel=1e-9)
    assert rows[2][:4] == (pd.Timestamp("2001-01-05"), "AAA", 1.0, 0.25)
    assert rows[2][4] == pytest.approx(1 - 0.25 / 51.19, rel=1e-15)
    assert len(rows) == 3
    # A symbol the file names has only the file's actions, even when none of them is in range.
    only_old = write(tmp_path / "old.csv", "date,symbol,split_ratio,dividend\n2000-12-29,BBB,3,\n")
    source = source_for(calendar, bars, columns=ColumnMap(adj_close="adj"), actions=only_old)
    with pytest.warns(UserWarning):
        assert source.fetch("2000-01-03", "2001-01-31").actions["symbol"].tolist() == ["AAA"]
    # Without adj_close mapped the file alone gives the actions.
    alone = source_for(calendar, bars, actions=actions_file)
    with pytest.warns(UserWarning):
        assert alone.fetch("2000-01-03", "2001-01-31").actions["symbol"].tolist() == ["AAA", "AAA"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("2001-01-04,AAA,0,", "line 2: split_ratio must be positive (new shares per old): 0"),
        ("2001-01-04,AAA,,-0.1", "line 2: dividend must not be negative: -0.1"),
        ("2001-01-06,AAA,2,", "line 2: date 2001-01-06 is not an XNYS session"),
        ("2001-01-04,AAA,,abc", "line 2: non-numeric value 'abc' in column 'dividend'"),
        ("2001-01-04,AAA,,120", "line 2: dividend 120 of AAA is not below the previous close"),
        ("2001-01-04,,2,", "line 2: missing symbol in column 'symbol'"),
    ],
)
def test_bad_actions_file_rows_are_named(calendar, tmp_path, line, expected):
    bars = write(tmp_path / "bars.csv", ACTIONS_BARS)
    actions_file = write(tmp_path / "actions.csv", f"date,symbol,split_ratio,dividend\n{line}\n")
    message = load_error(calendar, bars, actions=actions_file)
    assert f"actions.csv, {expected}" in message


def test_actions_file_needs_its_columns_and_unique_rows(calendar, tmp_path):
    bars = write(tmp_path / "bars.csv", ACTIONS_BARS)
    actions_file = write(tmp_path / "actions.csv", "date,symbol,split\n2001-01-04,AAA,2\n")
    message = load_error(calendar, bars, actions=actions_file)
    assert "actions.csv: missing column 'split_ratio'" in message
    actions_file = write(
        tmp_path / "actions.csv",
        "date,symbol,split_ratio,dividend\n2001-01-04,AAA,2,\n2001-01-04,AAA,,0.1\n",
    )
    message = load_error(calendar, bars, actions=actions_file)
    assert (
        "actions.csv, line 3: duplicate action for AAA on 2001-01-04 (first at line 2)" in message
    )


# -- instruments: declared delistings --------------------------------------------------------------

# AAA: halted on 2001-01-04, data ends 2001-01-08, not delisted. BBB: delisted 2001-01-05.
LISTING_CSV = """\
date,symbol,close
2001-01-02,AAA,10.5
2001-01-03,AAA,11.5
2001-01-05,AAA,12.0
2001-01-08,AAA,12.5
2001-01-03,BBB,20.0
2001-01-04,BBB,21.0
2001-01-05,BBB,20.5
"""


def close_only(calendar, path, **config):
    source = source_for(calendar, path, **config)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no column for open")
        return source.instruments()


def test_instruments_file_declares_delisting_kind_and_sector(calendar, tmp_path):
    from qpipe.data.universe import listed_on

    bars = write(tmp_path / "bars.csv", LISTING_CSV)
    meta = write(
        tmp_path / "instruments.csv",
        "symbol,delisted,kind,sector\nBBB,2001-01-05,ETF, Bonds \nAAA,,,\n",
    )
    inst = close_only(calendar, bars, instruments=meta).set_index("symbol")
    assert inst.loc["AAA", "kind"] == "stock" and inst.loc["BBB", "kind"] == "etf"
    assert inst.loc["AAA", "sector"] is None and inst.loc["BBB", "sector"] == "Bonds"
    assert inst.loc["BBB", "first_date"] == pd.Timestamp("2001-01-03")
    assert inst.loc["BBB", "last_date"] == pd.Timestamp("2001-01-05")
    assert pd.isna(inst.loc["AAA", "last_date"])  # its data ends, it is not delisted
    # Membership follows the declaration: AAA stays listed after its data ends.
    frame = inst.reset_index()
    assert listed_on(frame, pd.Timestamp("2001-01-05")) == {"AAA", "BBB"}
    assert listed_on(frame, pd.Timestamp("2001-01-09")) == {"AAA"}
    assert listed_on(frame, pd.Timestamp("2001-01-02")) == {"AAA"}


def test_instruments_parquet_with_date_objects(calendar, tmp_path):
    bars = write(tmp_path / "bars.csv", LISTING_CSV)
    pd.DataFrame({"symbol": ["BBB", "AAA"], "delisted": [dt.date(2001, 1, 5), None]}).to_parquet(
        tmp_path / "instruments.parquet"
    )
    inst = close_only(calendar, bars, instruments=tmp_path / "instruments.parquet")
    assert inst["last_date"].tolist()[1] == pd.Timestamp("2001-01-05")
    assert pd.isna(inst["last_date"].iloc[0]) and (inst["kind"] == "stock").all()


def test_delisted_column_in_the_bars_file(calendar, tmp_path):
    text = LISTING_CSV.replace("date,symbol,close", "date,symbol,close,gone")
    text = "\n".join(
        line + ("" if i == 0 else (",2001-01-05" if "BBB" in line and "01-04" in line else ","))
        for i, line in enumerate(text.strip().split("\n"))
    )
    bars = write(tmp_path / "bars.csv", text + "\n")
    inst = close_only(calendar, bars, columns=ColumnMap(delisted="gone")).set_index("symbol")
    assert inst.loc["BBB", "last_date"] == pd.Timestamp("2001-01-05")
    assert pd.isna(inst.loc["AAA", "last_date"])
    message = load_error(calendar, bars, columns=ColumnMap(delisted="delisted"))
    assert "missing column 'delisted' (files.columns.delisted)" in message


def test_delisting_errors_name_the_file_symbol_and_dates(calendar, tmp_path):
    bars = write(tmp_path / "bars.csv", LISTING_CSV)
    meta = tmp_path / "instruments.csv"

    def error(text: str, path=bars, **config) -> str:
        write(meta, text)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return load_error(calendar, path, instruments=meta, **config)

    message = error("symbol,delisted\nAAA,2001-01-04\n")
    assert (
        "bars.csv, line 4: bar of AAA on 2001-01-05, after its delisting on 2001-01-04" in message
    )
    assert "instruments.csv, line 2" in message and "(2 rows have this problem)" in message
    message = error("symbol,delisted\nBBB,2001-01-02\n")
    assert (
        "instruments.csv, line 2: BBB delisted on 2001-01-02, before its first bar on " in message
    )
    assert "2001-01-03 (" in message and "bars.csv, line 6" in message
    message = error("symbol,delisted\nBBB,2001-01-06\n")
    assert "delisting date 2001-01-06 of BBB is not an XNYS session" in message
    message = error("symbol,delisted,kind\nBBB,,bond\n")
    assert "instruments.csv, line 2: kind must be stock or etf, not 'bond'" in message
    message = error("symbol,delisted\nBBB,\nBBB,2001-01-05\n")
    assert "instruments.csv, line 3: second row for BBB (first at line 2)" in message
    message = error("symbol,gone\nBBB,2001-01-05\n")
    assert "instruments.csv: missing column 'delisted'" in message
    message = error("symbol,delisted\nBBB,05/01/2001\n")
    assert "line 2: unparseable date '05/01/2001' in column 'delisted'" in message


def test_delisting_sources_must_agree(calendar, tmp_path):
    text = LISTING_CSV.replace("date,symbol,close", "date,symbol,close,gone")
    lines = text.strip().split("\n")
    lines = [lines[0]] + [line + (",2001-01-05" if "BBB" in line else ",") for line in lines[1:]]
    lines[-1] = lines[-1].replace(",2001-01-05", ",2001-01-08")
    bars = write(tmp_path / "bars.csv", "\n".join(lines) + "\n")
    message = load_error(calendar, bars, columns=ColumnMap(delisted="gone"))
    assert "bars.csv, line 8: delisting date 2001-01-08 of BBB in column 'gone' differs" in message
    assert "from 2001-01-05 at line 6" in message
    lines[-1] = lines[-1].replace(",2001-01-08", ",2001-01-05")
    write(bars, "\n".join(lines) + "\n")
    meta = write(tmp_path / "instruments.csv", "symbol,delisted\nBBB,2001-01-04\n")
    message = load_error(calendar, bars, columns=ColumnMap(delisted="gone"), instruments=meta)
    assert "instruments.csv, line 2: BBB delisted on 2001-01-04, but " in message
    assert "bars.csv, line 6 says 2001-01-05" in message


def test_instruments_file_symbols_without_bars_warn(calendar, tmp_path):
    bars = write(tmp_path / "bars.csv", LISTING_CSV)
    meta = write(tmp_path / "instruments.csv", "symbol,delisted\nZZZ,2001-01-05\nBBB,\n")
    source = source_for(calendar, bars, instruments=meta)
    with pytest.warns(UserWarning) as record:
        inst = source.instruments()
    assert any("instruments.csv: no bars for ZZZ" in str(w.message) for w in record)
    assert inst["symbol"].tolist() == ["AAA", "BBB"]

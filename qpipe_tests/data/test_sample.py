"""SampleSource: the vendored real sample and the corporate actions recovered from it."""

from __future__ import annotations

import datetime as dt
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from qpipe.calendars import TradingCalendar
from qpipe.data.adjustments import adjusted_prices
from qpipe.data.files import FilesSource
from qpipe.data.sample import SAMPLE_PATH, SampleSource
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, INSTRUMENT_COLUMNS, MarketData
from qpipe.settings import SampleSourceConfig

FIRST, LAST = dt.date(2000, 3, 1), dt.date(2013, 3, 1)


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar("XNYS", "2000-01-03")


@pytest.fixture(scope="module")
def source(calendar: TradingCalendar) -> SampleSource:
    return SampleSource(calendar)


@pytest.fixture(scope="module")
def everything(source: SampleSource) -> MarketData:
    return source.fetch(FIRST, LAST)


@pytest.fixture(scope="module")
def raw_file() -> pd.DataFrame:
    """The file as pandas reads it, independently of qpipe."""
    raw = pd.read_csv(SAMPLE_PATH)
    raw["date"] = pd.to_datetime(raw["Date"]).astype("datetime64[ns]")
    raw["symbol"] = raw["Ticker"].astype(object)
    return raw


def test_sample_is_a_files_source_named_sample(source):
    assert isinstance(source, FilesSource)
    assert source.name == "sample"
    assert SAMPLE_PATH.is_file()


def test_coverage_and_row_count(source, everything):
    assert source.coverage() == (FIRST, LAST)
    assert len(everything.bars) == 12_154
    assert list(everything.bars.columns) == list(BAR_COLUMNS)
    assert list(everything.actions.columns) == list(ACTION_COLUMNS)
    assert not everything.bars[["open", "high", "low", "close", "volume"]].isna().any().any()


def test_loads_without_warnings(calendar):
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        SampleSource(calendar).coverage()


def test_instruments(source):
    inst = source.instruments().set_index("symbol")
    assert list(source.instruments().columns) == list(INSTRUMENT_COLUMNS)
    assert sorted(inst.index) == ["AAPL", "FB", "GOOG", "IBM", "MSFT"]
    assert (inst["kind"] == "stock").all()
    assert inst.loc["GOOG", "first_date"] == pd.Timestamp("2004-08-19")
    assert inst.loc["FB", "first_date"] == pd.Timestamp("2012-05-18")
    assert inst.loc["IBM", "first_date"] == pd.Timestamp(FIRST)
    assert inst["last_date"].isna().all()  # the sample declares no delisting
    assert inst.loc["MSFT", "sector"] == "Information Technology"


def test_raw_prices_are_as_traded(everything, raw_file):
    bars = everything.bars.merge(raw_file, on=["date", "symbol"], validate="one_to_one")
    assert len(bars) == len(raw_file)
    assert (bars["close"] == bars["Close"]).all()
    assert (bars["volume"] == bars["Volume"]).all()


def test_known_splits_are_found(everything):
    actions = everything.actions
    splits = actions[actions["split_ratio"] != 1.0]
    found = set(zip(splits["symbol"], splits["date"].dt.strftime("%Y-%m-%d"), strict=True))
    assert found == {("AAPL", "2000-06-21"), ("AAPL", "2005-02-28"), ("MSFT", "2003-02-18")}
    assert (splits["split_ratio"] == 2.0).all()
    assert (splits["dividend"] == 0.0).all()


def test_msft_special_dividend(everything):
    actions = everything.actions.set_index(["symbol", "date"])
    special = actions.loc[("MSFT", pd.Timestamp("2004-11-15"))]
    assert special["split_ratio"] == 1.0
    assert 2.9 < special["dividend"] < 3.1


def test_regular_dividends_are_small_cash_amounts(everything):
    dividends = everything.actions[everything.actions["split_ratio"] == 1.0]
    assert set(dividends["symbol"]) == {"AAPL", "IBM", "MSFT"}
    assert (dividends["dividend"] > 0).all()
    regular = dividends.drop(
        dividends.index[(dividends.symbol == "MSFT") & (dividends.date == "2004-11-15")]
    )
    assert regular["dividend"].max() < 3.0
    assert (dividends.groupby("symbol").size() >= 3).all()


def test_round_trip_rebuilds_adj_close(everything, raw_file):
    rebuilt = adjusted_prices(everything.bars, everything.actions)
    both = rebuilt.merge(raw_file, on=["date", "symbol"], validate="one_to_one")
    # The file's Adj Close is adjusted for actions after 2013-03-01 too: divide out the ratio
    # of each symbol's last day, where our backward adjustment is 1.
    last_ratio = (both["Adj Close"] / both["Close"]).groupby(both["symbol"]).transform("last")
    expected = both["Adj Close"] / last_ratio
    np.testing.assert_allclose(both["close"], expected, rtol=1e-6)
    # Volume is restated in post-split shares: AAPL before 2000-06-21 is doubled twice.
    early = both[(both.symbol == "AAPL") & (both.date == "2000-03-01")].iloc[0]
    assert early["volume"] == early["Volume"] * 4


def test_fetch_slices_and_a_day_does_not_depend_on_the_range(source, everything):
    day = pd.Timestamp("2004-11-15")
    one = source.fetch(day, day)
    assert sorted(one.bars["symbol"]) == ["AAPL", "GOOG", "IBM", "MSFT"]
    assert one.actions["symbol"].tolist() == ["MSFT"]
    wide = everything.bars[everything.bars["date"] == day].reset_index(drop=True)
    pd.testing.assert_frame_equal(one.bars, wide)
    fb = source.fetch("2012-01-01", "2012-12-31", symbols=["FB"]).bars
    assert fb["date"].min() == pd.Timestamp("2012-05-18")
    assert set(fb["symbol"]) == {"FB"}


def test_config_path_override(calendar, tmp_path, everything):
    copy = tmp_path / "prices.csv.gz"
    shutil.copy(SAMPLE_PATH, copy)
    other = SampleSource(calendar, SampleSourceConfig(path=copy))
    assert other.config.path == copy
    pd.testing.assert_frame_equal(other.fetch(FIRST, LAST).bars, everything.bars)
    assert len(SampleSource(calendar, SampleSourceConfig()).fetch(FIRST, FIRST).bars) == 3

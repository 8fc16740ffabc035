import numpy as np
import pandas as pd
import pytest

from qpipe.data.quality import (
    check_extreme_returns,
    check_ohlc,
    check_stale_bars,
    check_unique_keys,
    check_universe_coverage,
    run_all,
)
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, empty_frame

T = pd.Timestamp


def bars(rows):
    return pd.DataFrame(rows, columns=list(BAR_COLUMNS)).astype({"date": "datetime64[ns]"})


GOOD = bars(
    [
        (T("2024-01-02"), "A", 10.0, 11.0, 9.5, 10.5, 1000.0),
        (T("2024-01-02"), "B", 20.0, 20.5, 19.0, 19.5, 500.0),
        (T("2024-01-03"), "A", 10.5, 10.8, 10.1, 10.2, 900.0),
        (T("2024-01-03"), "B", 19.5, 20.0, 19.2, 19.8, 700.0),
    ]
)

INSTRUMENTS = pd.DataFrame(
    {
        "symbol": ["A", "B", "C"],
        "kind": ["stock"] * 3,
        "sector": ["x"] * 3,
        "first_date": [T("2020-01-02"), T("2020-01-02"), T("2024-01-03")],
        "last_date": [pd.NaT, pd.NaT, pd.NaT],
    }
)


def test_clean_bars_pass_every_check():
    outcomes = run_all(
        GOOD, empty_frame(ACTION_COLUMNS), INSTRUMENTS.iloc[:2], [T("2024-01-02"), T("2024-01-03")]
    )
    assert [o.name for o in outcomes] == [
        "ohlc_sanity", "unique_keys", "universe_coverage", "stale_bars", "extreme_returns",
    ]  # fmt: skip
    assert all(o.passed for o in outcomes), [o.description for o in outcomes if not o.passed]


@pytest.mark.parametrize(
    ("column", "value"),
    [("high", 9.0), ("low", 10.9), ("close", 11.5), ("open", 0.0), ("close", -1.0)],
)
def test_ohlc_violations(column, value):
    frame = GOOD.copy()
    frame.loc[2, column] = value
    out = check_ohlc(frame)
    assert not out.passed and out.severity == "error" and out.failures == 1
    assert out.examples == ["2024-01-03 A"]


def test_close_only_bars_are_not_ohlc_failures():
    frame = GOOD.copy()
    frame[["open", "high", "low"]] = np.nan
    assert check_ohlc(frame).passed
    frame.loc[0, "close"] = np.nan
    assert check_ohlc(frame).failures == 1


def test_duplicates():
    out = check_unique_keys(pd.concat([GOOD, GOOD.iloc[[1]]], ignore_index=True))
    assert not out.passed and out.failures == 1 and out.examples == ["2024-01-02 B"]


def test_universe_coverage_respects_listing_dates():
    sessions = [T("2024-01-02"), T("2024-01-03")]
    out = check_universe_coverage(GOOD, INSTRUMENTS, sessions)
    # C lists on 2024-01-03 and has no bar then; on 2024-01-02 it was not listed yet.
    assert not out.passed and out.severity == "warn"
    assert out.failures == 1 and out.examples == ["2024-01-03 C"]


def test_zero_volume_and_flat_repeated_bars_are_stale():
    frame = GOOD.copy()
    frame.loc[1, "volume"] = 0.0
    frame.loc[2, ["open", "high", "low", "close"]] = 10.5  # flat, equal to the previous close
    out = check_stale_bars(frame)
    assert out.failures == 2 and out.severity == "warn"
    # A flat bar that differs from the previous close is not stale.
    frame.loc[2, ["open", "high", "low", "close"]] = 10.4
    assert check_stale_bars(frame).failures == 1


def test_extreme_return_unless_explained_by_a_split():
    frame = GOOD.copy()
    frame.loc[2, ["open", "high", "low", "close"]] = [5.2, 5.4, 5.0, 5.25]  # halves overnight
    out = check_extreme_returns(frame, empty_frame(ACTION_COLUMNS))
    assert not out.passed and out.examples == ["2024-01-03 A"]
    split = pd.DataFrame([(T("2024-01-03"), "A", 2.0, 0.0, 0.5)], columns=list(ACTION_COLUMNS))
    assert check_extreme_returns(frame, split).passed


def test_extreme_return_against_the_previous_close_before_the_range():
    first_day = GOOD.iloc[:2]
    prev = pd.Series({"A": 30.0, "B": 19.0})
    out = check_extreme_returns(first_day, empty_frame(ACTION_COLUMNS), prev)
    assert out.failures == 1 and out.examples == ["2024-01-02 A"]

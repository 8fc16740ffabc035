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
    line = (
        "2024-01-03 A -50.0% (close 10.5 -> 5.25; before/after 2.0000, like an unadjusted "
        "2-for-1 split)"
    )
    assert not out.passed and out.examples == [line] and out.details == [line]
    assert out.description == f"1 unexplained move beyond 50%: {line}"
    split = pd.DataFrame([(T("2024-01-03"), "A", 2.0, 0.0, 0.5)], columns=list(ACTION_COLUMNS))
    assert check_extreme_returns(frame, split).passed


def test_extreme_return_against_the_previous_close_before_the_range():
    first_day = GOOD.iloc[:2]
    prev = pd.Series({"A": 30.0, "B": 19.0})
    out = check_extreme_returns(first_day, empty_frame(ACTION_COLUMNS), prev)
    assert out.failures == 1 and out.examples == ["2024-01-02 A -65.0% (close 30 -> 10.5)"]


def messy_bars() -> pd.DataFrame:
    """Three symbols over 6 sessions: RRC with an unadjusted 3-for-1 split, halted on 01-05
    and back with a crash on 01-08; NEW listing on 01-04 (its first bar has no move) and
    swinging after; OLD with an unadjusted 1-for-10 reverse split and a drop of 56.1% on 01-08
    (a 2-for-1 split that day explains it when the actions have it). Hand-computed: 9 moves
    beyond 50% without actions."""
    days = [T(d) for d in ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05",
                           "2024-01-08", "2024-01-09")]  # fmt: skip
    closes = {
        "RRC": [30.01, 10.0, 10.2, None, 4.0, 12.5],  # -66.7%, halt, -60.8%, +212.5%
        "NEW": [None, None, 5.0, 11.0, 5.4, 12.0],  # listing, +120%, -50.9%, +122.2%
        "OLD": [1.0, 10.0, 10.1, 20.5, 9.0, 9.1],  # +900%, +103.0%, -56.1% (factor 0.5)
    }
    rows = []
    for symbol, values in closes.items():
        for day, close in zip(days, values, strict=True):
            if close is not None:
                rows.append((day, symbol, close, close, close, close, 100.0))
    return bars(rows)


def test_extreme_returns_name_every_move_with_its_size():
    frame = messy_bars()
    actions = pd.DataFrame([(T("2024-01-08"), "OLD", 2.0, 0.0, 0.5)], columns=list(ACTION_COLUMNS))
    out = check_extreme_returns(frame, actions)
    expected = [
        "2024-01-05 NEW +120.0% (close 5 -> 11)",
        "2024-01-08 NEW -50.9% (close 11 -> 5.4)",
        "2024-01-09 NEW +122.2% (close 5.4 -> 12)",
        "2024-01-03 OLD +900.0% (close 1 -> 10; before/after 0.1000, like an unadjusted "
        "1-for-10 split)",
        "2024-01-05 OLD +103.0% (close 10.1 -> 20.5)",
        # OLD on 01-08: 9 / (20.5 * 0.5) - 1 = -12.2%, explained by the split.
        "2024-01-03 RRC -66.7% (close 30.01 -> 10; before/after 3.0010, like an unadjusted "
        "3-for-1 split)",
        "2024-01-08 RRC -60.8% (close 10.2 -> 4)",
        "2024-01-09 RRC +212.5% (close 4 -> 12.5)",
    ]
    assert out.failures == 8 and out.details == expected
    assert out.examples == expected[:5]
    assert out.description == (
        "8 unexplained moves beyond 50%: " + "; ".join(expected[:3])
        + "; and 5 more (the check's details list them all)"
    )  # fmt: skip


def test_extreme_returns_details_are_capped(monkeypatch):
    import qpipe.data.quality as quality

    monkeypatch.setattr(quality, "MAX_DETAILS", 2)
    out = check_extreme_returns(messy_bars(), empty_frame(ACTION_COLUMNS))
    assert out.failures == 9
    assert out.details == [
        "2024-01-05 NEW +120.0% (close 5 -> 11)",
        "2024-01-08 NEW -50.9% (close 11 -> 5.4)",
    ]
    assert out.description.endswith("; and 6 more (the check's details list the first 2)")

"""Rebalance schedules: hand-checked XNYS month and week ends, errors, calendar (not data)
dependence."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.calendars import TradingCalendar
from qpipe.strategies.schedule import next_rebalance, rebalance_mask


@pytest.fixture(scope="module")
def xnys() -> TradingCalendar:
    return TradingCalendar("XNYS", "2020-12-01")


def days(*values: str) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(values)


def masks(dates: pd.DatetimeIndex, calendar: TradingCalendar) -> dict[str, np.ndarray]:
    return {f: rebalance_mask(dates, f, calendar) for f in ("daily", "weekly", "monthly")}


def assert_masks(
    dates: pd.DatetimeIndex,
    calendar: TradingCalendar,
    weekly: list[bool],
    monthly: list[bool],
) -> None:
    got = masks(dates, calendar)
    for frequency, mask in got.items():
        assert isinstance(mask, np.ndarray), frequency
        assert mask.dtype == bool, frequency
    np.testing.assert_array_equal(got["daily"], np.ones(len(dates), dtype=bool))
    np.testing.assert_array_equal(got["weekly"], np.array(weekly))
    np.testing.assert_array_equal(got["monthly"], np.array(monthly))


T, F = True, False


def test_good_friday_2024_thursday_ends_week_and_month(xnys: TradingCalendar) -> None:
    # 2024-03-29 (Good Friday) is a holiday: Thursday 03-28 ends both its week and March.
    dates = days(
        "2024-03-25", "2024-03-26", "2024-03-27", "2024-03-28",
        "2024-04-01", "2024-04-02", "2024-04-03", "2024-04-04", "2024-04-05",
    )  # fmt: skip
    assert_masks(
        dates,
        xnys,
        weekly=[F, F, F, T, F, F, F, F, T],
        monthly=[F, F, F, T, F, F, F, F, F],
    )


def test_may_2024_month_end_after_memorial_day(xnys: TradingCalendar) -> None:
    # Memorial Day 2024-05-27 is a holiday; Friday 05-31 ends May and its week.
    dates = days(
        "2024-05-28", "2024-05-29", "2024-05-30", "2024-05-31",
        "2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06", "2024-06-07",
    )  # fmt: skip
    assert_masks(
        dates,
        xnys,
        weekly=[F, F, F, T, F, F, F, F, T],
        monthly=[F, F, F, T, F, F, F, F, F],
    )


def test_thanksgiving_2024_half_day_friday_still_ends_week(xnys: TradingCalendar) -> None:
    # Thanksgiving 2024-11-28 is a holiday but Friday 11-29 is a half-day *session*:
    # Wednesday 11-27 does not end the week; Friday 11-29 ends the week and November.
    dates = days(
        "2024-11-25", "2024-11-26", "2024-11-27", "2024-11-29",
        "2024-12-02", "2024-12-03", "2024-12-04", "2024-12-05", "2024-12-06",
    )  # fmt: skip
    assert_masks(
        dates,
        xnys,
        weekly=[F, F, F, T, F, F, F, F, T],
        monthly=[F, F, F, T, F, F, F, F, F],
    )


def test_thursday_before_friday_holiday_ends_week(xnys: TradingCalendar) -> None:
    # Independence Day 2025-07-04 is a Friday: Thursday 07-03 (a half day) ends the week.
    # 2025-06-30 (Monday) ends June.
    dates = days(
        "2025-06-27", "2025-06-30", "2025-07-01", "2025-07-02", "2025-07-03",
        "2025-07-07", "2025-07-08",
    )  # fmt: skip
    assert_masks(
        dates,
        xnys,
        weekly=[T, F, F, F, T, F, F],
        monthly=[F, T, F, F, F, F, F],
    )


def test_july_4th_2023_on_a_tuesday(xnys: TradingCalendar) -> None:
    # 2023-07-03 (half day) and 07-05 are in the same week: neither ends it.
    dates = days("2023-06-29", "2023-06-30", "2023-07-03", "2023-07-05", "2023-07-07")
    assert_masks(dates, xnys, weekly=[F, T, F, F, T], monthly=[F, T, F, F, F])


def test_december_to_january_2024_2025(xnys: TradingCalendar) -> None:
    # 2024-12-31 (Tuesday) ends December but not its ISO week (2025-W01, with Jan 2 and 3);
    # Friday 12-27 and Friday 2025-01-03 end their weeks. 12-25 and 01-01 are holidays.
    dates = days(
        "2024-12-23", "2024-12-24", "2024-12-26", "2024-12-27",
        "2024-12-30", "2024-12-31", "2025-01-02", "2025-01-03",
    )  # fmt: skip
    assert_masks(
        dates,
        xnys,
        weekly=[F, F, F, T, F, F, F, T],
        monthly=[F, F, F, F, F, T, F, F],
    )


def test_december_to_january_across_iso_year_53_weeks(xnys: TradingCalendar) -> None:
    # 2020-12-31 (Thursday, 2020-W53) before the 2021-01-01 holiday: ends week, month, year;
    # 2021-01-04 starts 2021-W01. Same pattern for 2026-12-31 (2026-W53) and 2027-01-01.
    dates = days("2020-12-29", "2020-12-30", "2020-12-31", "2021-01-04", "2021-01-08")
    assert_masks(dates, xnys, weekly=[F, F, T, F, T], monthly=[F, F, T, F, F])
    dates = days("2026-12-29", "2026-12-30", "2026-12-31", "2027-01-04")
    assert_masks(dates, xnys, weekly=[F, F, T, F], monthly=[F, F, T, F])


def test_month_ends_of_2024(xnys: TradingCalendar) -> None:
    dates = xnys.sessions_index("2024-01-02", "2024-12-31")
    mask = rebalance_mask(dates, "monthly", xnys)
    expected = [
        "2024-01-31", "2024-02-29", "2024-03-28", "2024-04-30", "2024-05-31", "2024-06-28",
        "2024-07-31", "2024-08-30", "2024-09-30", "2024-10-31", "2024-11-29", "2024-12-31",
    ]  # fmt: skip
    assert list(dates[mask].strftime("%Y-%m-%d")) == expected


def test_week_ends_of_march_2024(xnys: TradingCalendar) -> None:
    dates = xnys.sessions_index("2024-03-01", "2024-04-12")
    mask = rebalance_mask(dates, "weekly", xnys)
    expected = [
        "2024-03-01", "2024-03-08", "2024-03-15", "2024-03-22", "2024-03-28", "2024-04-05",
        "2024-04-12",
    ]  # fmt: skip
    assert list(dates[mask].strftime("%Y-%m-%d")) == expected


@pytest.mark.parametrize("frequency", ["daily", "weekly", "monthly"])
@pytest.mark.parametrize(
    ("dates", "bad"),
    [
        (("2024-03-27", "2024-03-28", "2024-03-29", "2024-04-01"), "2024-03-29"),  # holiday
        (("2024-03-28", "2024-03-30"), "2024-03-30"),  # Saturday
        (("2024-11-28", "2024-11-29"), "2024-11-28"),  # the first date is a holiday
    ],
)
def test_date_that_is_not_a_session_raises(
    xnys: TradingCalendar, frequency: str, dates: tuple[str, ...], bad: str
) -> None:
    with pytest.raises(ValueError, match=bad):
        rebalance_mask(pd.DatetimeIndex(dates), frequency, xnys)  # type: ignore[arg-type]


@pytest.mark.parametrize("frequency", ["quarterly", "Monthly", "", "month"])
def test_unknown_frequency_raises(xnys: TradingCalendar, frequency: str) -> None:
    with pytest.raises(ValueError, match=f"got {frequency!r}"):
        rebalance_mask(days("2024-03-28"), frequency, xnys)  # type: ignore[arg-type]


@pytest.mark.parametrize("frequency", ["daily", "weekly", "monthly"])
def test_no_dates_gives_an_empty_mask(xnys: TradingCalendar, frequency: str) -> None:
    mask = rebalance_mask(pd.DatetimeIndex([]), frequency, xnys)  # type: ignore[arg-type]
    assert mask.shape == (0,)
    assert mask.dtype == bool


def test_last_date_of_the_data_is_not_a_rebalance_because_it_is_last(
    xnys: TradingCalendar,
) -> None:
    # The data stopping mid-month/mid-week does not make its last date a rebalance session.
    dates = days("2024-03-25", "2024-03-26", "2024-03-27")
    np.testing.assert_array_equal(rebalance_mask(dates, "monthly", xnys), [F, F, F])
    np.testing.assert_array_equal(rebalance_mask(dates, "weekly", xnys), [F, F, F])
    np.testing.assert_array_equal(rebalance_mask(days("2024-03-28"), "monthly", xnys), [T])
    np.testing.assert_array_equal(rebalance_mask(days("2024-11-27"), "weekly", xnys), [F])


_CALENDAR = TradingCalendar("XNYS", "2023-12-01")
_YEAR = _CALENDAR.sessions_index("2024-01-02", "2025-03-31")


@settings(max_examples=60, deadline=None)
@given(
    frequency=st.sampled_from(["daily", "weekly", "monthly"]),
    bounds=st.tuples(st.integers(0, len(_YEAR) - 1), st.integers(0, len(_YEAR) - 1)).map(sorted),
)
def test_mask_of_a_slice_is_the_slice_of_the_mask(frequency: str, bounds: list[int]) -> None:
    # The schedule comes from the calendar, not from the data: any contiguous run of the
    # sessions (a prefix, a suffix, a single day) gets the matching part of the full mask.
    full = rebalance_mask(_YEAR, frequency, _CALENDAR)  # type: ignore[arg-type]
    lo, hi = bounds
    part = rebalance_mask(_YEAR[lo : hi + 1], frequency, _CALENDAR)  # type: ignore[arg-type]
    np.testing.assert_array_equal(part, full[lo : hi + 1])


@pytest.mark.parametrize("frequency", ["weekly", "monthly"])
def test_every_prefix_gives_the_prefix_of_the_mask(xnys: TradingCalendar, frequency: str) -> None:
    dates = xnys.sessions_index("2024-03-01", "2024-06-28")
    full = rebalance_mask(dates, frequency, xnys)  # type: ignore[arg-type]
    for n in range(1, len(dates) + 1):
        part = rebalance_mask(dates[:n], frequency, xnys)  # type: ignore[arg-type]
        np.testing.assert_array_equal(part, full[:n], err_msg=f"prefix of {n} dates")


def test_non_contiguous_sessions_use_the_calendar_next_session(xnys: TradingCalendar) -> None:
    # Sparse dates: each date is judged against the calendar's next session, not the next
    # date passed (2024-03-27 is followed by 03-28 in the calendar, so it ends nothing).
    dates = days("2024-03-27", "2024-05-31", "2024-11-27", "2024-11-29")
    np.testing.assert_array_equal(rebalance_mask(dates, "monthly", xnys), [F, T, F, T])
    np.testing.assert_array_equal(rebalance_mask(dates, "weekly", xnys), [F, T, F, T])


def test_next_rebalance_by_hand(xnys):
    # 2024-05-21 is a Tuesday: the week ends Friday 05-24, May ends Friday 05-31; the week of
    # Memorial Day (05-27, closed) ends 05-31; Good Friday 2024-03-29 is closed: March ends
    # Thursday 03-28, as does that week.
    cases = {
        ("2024-05-21", "daily"): "2024-05-21",
        ("2024-05-21", "weekly"): "2024-05-24",
        ("2024-05-21", "monthly"): "2024-05-31",
        ("2024-05-28", "weekly"): "2024-05-31",
        ("2024-05-24", "weekly"): "2024-05-24",
        ("2024-03-25", "weekly"): "2024-03-28",
        ("2024-03-01", "monthly"): "2024-03-28",
    }
    for (day, frequency), want in cases.items():
        assert next_rebalance(day, frequency, xnys) == pd.Timestamp(want), (day, frequency)


def test_next_rebalance_at_the_calendar_end():
    cal = TradingCalendar("XNYS", "2020-12-01")
    last = pd.Timestamp(cal.end)
    assert next_rebalance(last, "daily", cal) == last
    assert next_rebalance(last, "monthly", cal) is None  # its month's end cannot be told


@settings(max_examples=60, deadline=None)
@given(offset=st.integers(0, 900), frequency=st.sampled_from(["daily", "weekly", "monthly"]))
def test_next_rebalance_is_the_first_period_end(xnys, offset, frequency):
    sessions = xnys.sessions("2021-01-04", "2024-12-31")
    session = sessions[offset]

    def period(day):  # the week (ISO year and week) or the month of a date
        if frequency == "weekly":
            return tuple(day.isocalendar())[:2]
        return (day.year, day.month) if frequency == "monthly" else day

    i = offset
    while period(sessions[i + 1]) == period(sessions[i]):  # walk to the period's last session
        i += 1
    assert next_rebalance(session, frequency, xnys) == pd.Timestamp(sessions[i])

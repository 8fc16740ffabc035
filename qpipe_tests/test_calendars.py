import datetime as dt

import pandas as pd
import pytest

from qpipe.calendars import TradingCalendar, to_date

D = dt.date


@pytest.fixture(scope="module")
def nyse() -> TradingCalendar:
    return TradingCalendar("XNYS", "2023-01-03")


@pytest.fixture(scope="module")
def shanghai() -> TradingCalendar:
    return TradingCalendar("XSHG", "2023-01-03")


def ny(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="America/New_York")


def test_nyse_holidays_2024(nyse):
    assert nyse.holidays("2024-01-01", "2024-12-31") == [
        D(2024, 1, 1), D(2024, 1, 15), D(2024, 2, 19), D(2024, 3, 29), D(2024, 5, 27),
        D(2024, 6, 19), D(2024, 7, 4), D(2024, 9, 2), D(2024, 11, 28), D(2024, 12, 25),
    ]  # fmt: skip


def test_sessions_are_weekdays_without_holidays(nyse):
    sessions = nyse.sessions("2024-01-01", "2024-12-31")
    assert len(sessions) == 252
    assert all(s.weekday() < 5 for s in sessions)
    assert not set(sessions) & set(nyse.holidays("2024-01-01", "2024-12-31"))
    assert sessions[0] == D(2024, 1, 2) and sessions[-1] == D(2024, 12, 31)


def test_regular_and_early_closes(nyse):
    # 16:00 New York: 21:00 UTC in winter, 20:00 UTC in summer.
    assert nyse.session_close("2024-01-02") == pd.Timestamp("2024-01-02 21:00", tz="UTC")
    assert nyse.session_close("2024-06-03") == pd.Timestamp("2024-06-03 20:00", tz="UTC")
    # Half days close at 13:00 New York.
    assert nyse.session_close("2024-11-29") == pd.Timestamp("2024-11-29 18:00", tz="UTC")
    assert nyse.session_close("2024-07-03") == pd.Timestamp("2024-07-03 17:00", tz="UTC")
    assert nyse.is_early_close("2024-11-29") and not nyse.is_early_close("2024-11-27")


def test_close_of_a_non_session_is_an_error(nyse):
    with pytest.raises(ValueError, match="2024-11-28 is not an XNYS session"):
        nyse.session_close("2024-11-28")


def test_previous_and_next_session_skip_weekends_and_holidays(nyse):
    assert nyse.previous_session("2024-11-29") == D(2024, 11, 27)
    assert nyse.next_session("2024-11-27") == D(2024, 11, 29)
    assert nyse.next_session("2024-11-29") == D(2024, 12, 2)
    assert nyse.previous_session("2024-12-02") == D(2024, 11, 29)


@pytest.mark.parametrize(
    ("now", "delay_min", "expected"),
    [
        ("2024-11-22 15:59", 0, D(2024, 11, 21)),  # Friday before the close
        ("2024-11-22 16:00", 0, D(2024, 11, 22)),  # Friday at the close
        ("2024-11-22 16:30", 60, D(2024, 11, 21)),  # Friday, inside the delay
        ("2024-11-22 18:00", 60, D(2024, 11, 22)),  # Friday evening
        ("2024-11-23 10:00", 60, D(2024, 11, 22)),  # Saturday
        ("2024-11-25 09:00", 60, D(2024, 11, 22)),  # Monday morning
        ("2024-11-27 17:30", 60, D(2024, 11, 27)),  # the day before Thanksgiving
        ("2024-11-28 20:00", 60, D(2024, 11, 27)),  # Thanksgiving itself
        ("2024-11-29 13:30", 0, D(2024, 11, 29)),  # after the 13:00 early close
        ("2024-11-29 13:30", 60, D(2024, 11, 27)),  # early close, inside the delay
    ],
)
def test_latest_closed_session(nyse, now, delay_min, expected):
    got = nyse.latest_closed_session(ny(now), dt.timedelta(minutes=delay_min))
    assert got == expected


def test_latest_closed_session_needs_an_aware_time(nyse):
    with pytest.raises(ValueError, match="time-zone aware"):
        nyse.latest_closed_session(dt.datetime(2024, 11, 22, 18))


def test_shanghai_sessions_and_close(shanghai):
    assert shanghai.tz == "Asia/Shanghai"
    # Spring Festival 2024: closed 9-16 February.
    feb = shanghai.sessions("2024-02-05", "2024-02-23")
    assert D(2024, 2, 8) in feb and D(2024, 2, 19) in feb
    assert not any(D(2024, 2, 9) <= s <= D(2024, 2, 16) for s in feb)
    assert shanghai.session_close("2024-02-08") == pd.Timestamp("2024-02-08 07:00", tz="UTC")
    assert D(2024, 10, 1) in shanghai.holidays("2024-09-30", "2024-10-08")


def test_unknown_exchange():
    with pytest.raises(ValueError, match="unknown exchange calendar 'XXXX'"):
        TradingCalendar("XXXX")


def test_to_date():
    assert to_date("2024-03-01") == D(2024, 3, 1)
    assert to_date(pd.Timestamp("2024-03-01 15:00")) == D(2024, 3, 1)
    with pytest.raises(ValueError, match="not a date"):
        to_date("03/01/2024")


def test_from_start_shares_the_sessions_when_they_reach_back():
    wide = TradingCalendar("XNYS", "2015-01-02")
    view = wide.from_start("2019-01-02")
    fresh = TradingCalendar("XNYS", "2019-01-02")
    assert view._cal is wide._cal and view.start == fresh.start and view.end == fresh.end
    assert view.sessions("2018-12-01", "2019-01-10") == fresh.sessions("2018-12-01", "2019-01-10")
    assert view.sessions()[0] == dt.date(2019, 1, 2)
    assert view.previous_session("2019-01-02") == fresh.previous_session("2019-01-02")
    earlier = view.from_start("2010-01-04")  # before the shared data: built anew
    assert earlier._cal is not wide._cal and earlier.sessions()[0] == dt.date(2010, 1, 4)


def full_year_counts(exchange: str, first_year: int) -> pd.Series:
    """Sessions per calendar year from exchange_calendars itself, for the years from
    ``first_year`` that end before the schedule's last session does (complete years)."""
    import exchange_calendars as xcals

    cal = xcals.get_calendar(exchange, start=f"{first_year - 1}-12-01")
    sessions = cal.sessions
    counts = pd.Series(1, index=sessions).groupby(sessions.year).sum()
    return counts.loc[first_year : cal.last_session.year - 1]


@pytest.mark.parametrize(("exchange", "expected"), [("XNYS", 252.0), ("XSHG", 243.0)])
def test_sessions_per_year_is_the_exchange_s_rounded_mean_over_the_reference_years(
    exchange, expected
):
    counts = full_year_counts(exchange, 2010).loc[2010:2019]
    assert len(counts) == 10
    assert round(counts.mean()) == expected  # counted from exchange_calendars here
    got = TradingCalendar(exchange, "2019-01-02").sessions_per_year
    assert got == expected


def test_sessions_per_year_does_not_depend_on_the_start():
    # A figure that moved with the calendar's start (or a new year entering the schedule)
    # would change stored factors and metrics when nothing in the data changed.
    figures = {
        TradingCalendar("XNYS", start).sessions_per_year
        for start in ("2001-01-02", "2019-03-01", "2024-06-03")
    }
    figures.add(TradingCalendar("XNYS", "2015-01-02").from_start("2019-03-01").sessions_per_year)
    assert figures == {252.0}

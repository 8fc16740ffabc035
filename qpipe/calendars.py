"""Trading calendars: sessions, holidays and close times from ``exchange_calendars``.

Everything that walks through time (sources, partitions, schedules, the sync) asks a
``TradingCalendar`` which days are sessions, so a partition is always a trading session.
"""

from __future__ import annotations

import datetime as dt
from functools import cache, cached_property

import exchange_calendars as xcals
import pandas as pd

SUPPORTED_EXCHANGES = ("XNYS", "XSHG")

DEFAULT_SESSIONS_PER_YEAR = 252.0
"""Sessions per year where no calendar is given: the conventional 252 (XNYS averages about
252, XSHG about 242: a configured project annualises with its calendar's
:attr:`TradingCalendar.sessions_per_year`)."""

REFERENCE_YEARS = (2010, 2019)
"""The calendar years (inclusive) over which an exchange's sessions per year are averaged."""

DateLike = str | dt.date | dt.datetime | pd.Timestamp


@cache
def exchange_sessions_per_year(exchange: str) -> float:
    """``exchange``'s mean sessions per calendar year over :data:`REFERENCE_YEARS`, rounded to
    a whole session."""
    first, last = REFERENCE_YEARS
    cal = xcals.get_calendar(exchange, start=f"{first}-01-01", end=f"{last}-12-31")
    return float(round(len(cal.sessions) / (last - first + 1)))


def to_date(value: DateLike) -> dt.date:
    """Parse ``value`` (``YYYY-MM-DD`` string, date, datetime or Timestamp) into a date."""
    if isinstance(value, pd.Timestamp):
        return value.date()
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ValueError(f"not a date (expected YYYY-MM-DD): {value!r}") from exc


class TradingCalendar:
    """Sessions of one exchange between ``start`` and the calendar's end (about a year ahead).

    Session dates are ``datetime.date`` objects; close times are time-zone-aware UTC timestamps
    and honour early closes (half days).
    """

    def __init__(self, exchange: str = "XNYS", start: DateLike = "2000-01-03") -> None:
        self.exchange = exchange
        self.start = to_date(start)
        try:
            # Ask for a few extra days before ``start`` so previous_session(start) works.
            self._cal = xcals.get_calendar(
                exchange, start=pd.Timestamp(self.start) - pd.Timedelta(days=14)
            )
        except xcals.errors.InvalidCalendarName as exc:
            raise ValueError(f"unknown exchange calendar {exchange!r}") from exc
        self.end = self._cal.last_session.date()

    def __repr__(self) -> str:
        return f"TradingCalendar({self.exchange!r}, start={self.start}, end={self.end})"

    def from_start(self, start: DateLike) -> TradingCalendar:
        """The same exchange's calendar from ``start``: it shares this one's session data when
        that reaches back far enough (building a calendar is the slow part), else it is built
        anew."""
        first = to_date(start)
        if pd.Timestamp(first) - pd.Timedelta(days=14) < self._cal.first_session:
            return TradingCalendar(self.exchange, first)
        view = object.__new__(TradingCalendar)
        view.exchange, view.start, view._cal, view.end = self.exchange, first, self._cal, self.end
        return view

    @property
    def tz(self) -> str:
        """The exchange's IANA time zone, e.g. ``America/New_York``."""
        return str(self._cal.tz)

    @cached_property
    def _sessions(self) -> pd.DatetimeIndex:
        s = self._cal.sessions
        return s[s >= pd.Timestamp(self.start)]

    @cached_property
    def sessions_per_year(self) -> float:
        """The annualisation factor of daily figures (volatility x sqrt of it, mean return x
        it, CAGR over sessions / it years): the exchange's mean number of sessions per
        calendar year over the reference years :data:`REFERENCE_YEARS`, rounded to a whole
        session (252 for XNYS, 243 for XSHG). A fixed figure per exchange, so stored factors
        and metrics never change when the calendar's start moves or a new year begins."""
        return exchange_sessions_per_year(self.exchange)

    def sessions(self, start: DateLike | None = None, end: DateLike | None = None) -> list[dt.date]:
        """Sessions in the closed interval ``[start, end]`` (defaults: the calendar's bounds)."""
        return [ts.date() for ts in self.sessions_index(start, end)]

    def sessions_index(
        self, start: DateLike | None = None, end: DateLike | None = None
    ) -> pd.DatetimeIndex:
        """Like :meth:`sessions` as a ``DatetimeIndex`` of midnights (no time zone)."""
        s = self._sessions
        lo = pd.Timestamp(to_date(start)) if start is not None else s[0]
        hi = pd.Timestamp(to_date(end)) if end is not None else s[-1]
        return s[(s >= lo) & (s <= hi)]

    def is_session(self, day: DateLike) -> bool:
        return self._cal.is_session(pd.Timestamp(to_date(day)))

    def holidays(self, start: DateLike | None = None, end: DateLike | None = None) -> list[dt.date]:
        """Weekdays in ``[start, end]`` that are not sessions (exchange holidays)."""
        lo = to_date(start) if start is not None else self.start
        hi = to_date(end) if end is not None else self.end
        weekdays = pd.bdate_range(lo, hi)
        sessions = self.sessions_index(lo, hi)
        return [ts.date() for ts in weekdays.difference(sessions)]

    def previous_session(self, day: DateLike) -> dt.date:
        """The last session strictly before ``day`` (``day`` need not be a session)."""
        ts = pd.Timestamp(to_date(day))
        s = self._cal.sessions
        i = s.searchsorted(ts, side="left")
        if i == 0:
            raise ValueError(f"no session before {ts.date()} in the {self.exchange} calendar")
        return s[i - 1].date()

    def next_session(self, day: DateLike) -> dt.date:
        """The first session strictly after ``day``."""
        ts = pd.Timestamp(to_date(day))
        s = self._cal.sessions
        i = s.searchsorted(ts, side="right")
        if i >= len(s):
            raise ValueError(f"no session after {ts.date()} within the {self.exchange} calendar")
        return s[i].date()

    def session_close(self, day: DateLike) -> pd.Timestamp:
        """Close time of session ``day`` in UTC (early closes included)."""
        d = to_date(day)
        if not self.is_session(d):
            raise ValueError(f"{d} is not an {self.exchange} session")
        return self._cal.session_close(pd.Timestamp(d))

    def session_open(self, day: DateLike) -> pd.Timestamp:
        """Open time of session ``day`` in UTC."""
        d = to_date(day)
        if not self.is_session(d):
            raise ValueError(f"{d} is not an {self.exchange} session")
        return self._cal.session_open(pd.Timestamp(d))

    def is_early_close(self, day: DateLike) -> bool:
        d = pd.Timestamp(to_date(day))
        return bool(d in self._cal.early_closes)

    def latest_closed_session(
        self, now: dt.datetime | pd.Timestamp, delay: dt.timedelta = dt.timedelta(0)
    ) -> dt.date:
        """The most recent session whose close plus ``delay`` is at or before ``now``.

        ``now`` must be time-zone aware. On a Friday evening this is that Friday; on a holiday
        or a weekend it is the session before; before today's close it is the previous session.
        """
        now_ts = pd.Timestamp(now)
        if now_ts.tzinfo is None:
            raise ValueError("now must be time-zone aware")
        today = now_ts.tz_convert(self.tz).date()
        candidate = today if self.is_session(today) else self.previous_session(today)
        if self.session_close(candidate) + delay > now_ts:
            candidate = self.previous_session(candidate)
        return candidate

"""When the market-close rebalance runs: a fixed number of minutes before each session's
close (early closes included), on sessions only."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from qpipe.calendars import TradingCalendar

TICK_MINUTES = 5
"""The schedule's granularity: it is evaluated every ``TICK_MINUTES`` minutes."""


def rebalance_time(
    calendar: TradingCalendar, session: dt.date, minutes_before: int
) -> pd.Timestamp:
    """The UTC time of ``session``'s rebalance: its close minus ``minutes_before``, rounded
    down to the schedule's tick."""
    at = calendar.session_close(session) - pd.Timedelta(minutes=minutes_before)
    return at.floor(f"{TICK_MINUTES}min")


def due_session(
    calendar: TradingCalendar, now: dt.datetime | pd.Timestamp, minutes_before: int
) -> dt.date | None:
    """The session whose rebalance falls in the tick starting at ``now`` (aware), else None
    (not a session, or not its time)."""
    stamp = pd.Timestamp(now).tz_convert("UTC").floor(f"{TICK_MINUTES}min")
    today = stamp.tz_convert(calendar.tz).date()
    if not calendar.is_session(today):
        return None
    return today if rebalance_time(calendar, today, minutes_before) == stamp else None

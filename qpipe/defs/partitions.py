"""Daily partitions over trading sessions, built from the project's exchange calendar."""

from __future__ import annotations

import datetime as dt

from dagster import TimeWindowPartitionsDefinition

from qpipe.project import Project

SESSION_FMT = "%Y-%m-%d"


def session_partitions(project: Project) -> TimeWindowPartitionsDefinition:
    """One partition per session from the history start: a weekday cron with the exchange's
    weekday holidays excluded, in the exchange's time zone.

    Open-ended histories use ``end_offset=1`` so today's partition exists before midnight
    (a weekday partition's window only ends at the next cron tick, so without it Friday's
    partition would appear on Monday). Which session is *ready* is decided by the calendar
    (:meth:`~qpipe.calendars.TradingCalendar.latest_closed_session`), never by Dagster's
    notion of the last complete window, which around holidays can run a session ahead.
    """
    cal = project.calendar
    start = project.history_start
    end = project.history_end
    # Exclude holidays through the calendar's end even for a bounded history: the last
    # partition's window runs to the next session, across any holiday before it.
    holidays = cal.holidays(start, cal.end)
    return TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * 1-5",
        fmt=SESSION_FMT,
        timezone=cal.tz,
        start=start.strftime(SESSION_FMT),
        end=cal.next_session(end).strftime(SESSION_FMT) if end else None,
        end_offset=0 if end else 1,
        exclusions=[dt.datetime.combine(h, dt.time()) for h in holidays],
    )

"""Rebalance schedules on exchange sessions.

A strategy decides at the close of a rebalance session (and the engine fills at the next open
or close). ``weekly`` and ``monthly`` rebalance on the *last* session of each week or month of
the exchange calendar: a session is the last of its month when the calendar's next session is
in another month, which is known in advance (holidays included), so the schedule never depends
on how far the data reaches.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from qpipe.calendars import DateLike, TradingCalendar

Frequency = Literal["daily", "weekly", "monthly"]
FREQUENCIES: tuple[str, ...] = ("daily", "weekly", "monthly")


def rebalance_mask(
    dates: pd.DatetimeIndex, frequency: Frequency, calendar: TradingCalendar
) -> np.ndarray:
    """Which of ``dates`` (sessions of ``calendar``) are rebalance sessions: every session
    (``daily``), the last session of each ISO week (``weekly``) or of each month
    (``monthly``)."""
    if frequency not in FREQUENCIES:
        raise ValueError(f"rebalance must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")
    if len(dates) == 0:
        return np.ones(0, dtype=bool)
    sessions = calendar.sessions_index(dates.min(), None)
    position = sessions.get_indexer(dates)
    if (position < 0).any():
        bad = dates[position < 0][0]
        raise ValueError(f"{bad.date()} is not a {calendar.exchange} session")
    if frequency == "daily":
        return np.ones(len(dates), dtype=bool)
    following = position + 1
    if following.max() >= len(sessions):
        raise ValueError(
            f"the {calendar.exchange} calendar ends {calendar.end}: cannot tell whether "
            f"{dates[-1].date()} ends its {frequency[:-2]}"
        )
    after = sessions[following]
    if frequency == "monthly":
        return np.asarray((after.year != dates.year) | (after.month != dates.month))
    week = dates.isocalendar()
    after_week = after.isocalendar()
    return np.asarray(
        (after_week["week"].to_numpy() != week["week"].to_numpy())
        | (after_week["year"].to_numpy() != week["year"].to_numpy())
    )


def next_rebalance(
    session: DateLike, frequency: Frequency, calendar: TradingCalendar
) -> pd.Timestamp | None:
    """The first rebalance session (:func:`rebalance_mask`) on or after ``session`` (a
    session of ``calendar``); None when the calendar ends before one can be told."""
    start = pd.Timestamp(session)
    ahead = calendar.sessions_index(start, start + pd.Timedelta(days=45))  # > a month
    while len(ahead):
        try:
            mask = rebalance_mask(ahead, frequency, calendar)
        except ValueError:  # the calendar ends: its last session cannot be told
            ahead = ahead[:-1]
            continue
        hits = ahead[mask]
        return hits[0] if len(hits) else None
    return None

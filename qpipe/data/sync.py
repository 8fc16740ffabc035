"""Bringing the lake up to date: which sessions to sync, and fetching them checked.

The Dagster ``bars`` asset and the CLI call these; nothing here writes to the lake (the IO
manager does), so a run that fails leaves the lake as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pandas as pd

from qpipe.calendars import DateLike, to_date
from qpipe.data.quality import CheckOutcome, run_all
from qpipe.errors import DataValidationError
from qpipe.progress import report
from qpipe.project import Project


@dataclass(frozen=True)
class SyncPlan:
    """Sessions to materialise, as one contiguous range ``[first, last]`` of sessions."""

    sessions: list[dt.date]
    missing: int
    """How many of ``sessions`` are not in the lake yet."""

    @property
    def first(self) -> dt.date:
        return self.sessions[0]

    @property
    def last(self) -> dt.date:
        return self.sessions[-1]

    def __bool__(self) -> bool:
        return bool(self.sessions)


def default_end(project: Project, now: dt.datetime | None = None) -> dt.date:
    """The last session a sync should reach: the latest session closed for at least the
    configured delay, capped at the partitions' end and the source's last day."""
    now = now or dt.datetime.now(dt.UTC)
    end = project.calendar.latest_closed_session(now, project.sync_delay)
    caps = [project.history_end, project.source.coverage()[1]]
    return min([end, *[c for c in caps if c is not None]])


def plan_sync(
    project: Project,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    refresh: bool = False,
    now: dt.datetime | None = None,
) -> SyncPlan:
    """Sessions in ``[start, end]`` to sync (defaults: the history start and
    :func:`default_end`). Without ``refresh`` only the span from the first to the last
    session missing from the lake is returned (empty when the lake is complete)."""
    lo = max(to_date(start), project.history_start) if start else project.history_start
    hi = to_date(end) if end else default_end(project, now)
    if project.history_end is not None:
        hi = min(hi, project.history_end)
    if start and end and to_date(start) > to_date(end):
        raise ValueError(f"start {to_date(start)} is after end {to_date(end)}")
    return plan_missing(project.calendar.sessions(lo, hi), project.lake.dates("bars"), refresh)


def plan_missing(
    candidates: Sequence[dt.date], present: Iterable[dt.date], refresh: bool = False
) -> SyncPlan:
    """The span of ``candidates`` (sorted sessions) from the first to the last one not in
    ``present``; all of them with ``refresh``."""
    have = set(present)
    missing = [s for s in candidates if s not in have]
    if refresh:
        return SyncPlan(list(candidates), len(missing))
    if not missing:
        return SyncPlan([], 0)
    i, j = candidates.index(missing[0]), candidates.index(missing[-1])
    return SyncPlan(list(candidates[i : j + 1]), len(missing))


@dataclass
class SyncBatch:
    """Checked market data for a run of sessions, ready to be written to the lake."""

    sessions: list[dt.date]
    bars: pd.DataFrame
    actions: pd.DataFrame
    checks: list[CheckOutcome] = field(default_factory=list)


def fetch_sessions(project: Project, sessions: Sequence[DateLike]) -> SyncBatch:
    """Fetch bars and corporate actions for ``sessions`` from the project's source, keep the
    universe, and run the quality checks. An error-severity check failure raises
    :class:`DataValidationError` (nothing is returned, so nothing reaches the lake)."""
    days = sorted(to_date(s) for s in sessions)
    if not days:
        raise ValueError("no sessions to fetch")
    not_sessions = [d for d in days if not project.calendar.is_session(d)]
    if not_sessions:
        raise ValueError(
            f"not {project.calendar.exchange} sessions: {', '.join(map(str, not_sessions[:5]))}"
        )
    report("fetch", 0, 1)
    try:
        before = project.calendar.previous_session(days[0])
    except ValueError:
        before = days[0]
    data = project.source.fetch(before, days[-1], list(project.instruments["symbol"]))
    report("fetch", 1, 1)

    wanted = pd.DatetimeIndex(pd.to_datetime(days))
    bars, actions = data.bars, data.actions
    in_range = bars["date"].isin(wanted)
    earlier = bars.loc[bars["date"] < wanted[0]]
    previous_close = earlier.groupby("symbol")["close"].last() if len(earlier) else None
    bars = bars.loc[in_range].reset_index(drop=True)
    actions = actions.loc[actions["date"].isin(wanted)].reset_index(drop=True)

    report("checks", 0, 1)
    checks = run_all(bars, actions, project.instruments, list(wanted), previous_close)
    report("checks", 1, 1)
    errors = [c for c in checks if not c.passed and c.severity == "error"]
    if errors:
        detail = "; ".join(
            f"{c.name}: {c.description} (e.g. {', '.join(c.examples)})" for c in errors
        )
        raise DataValidationError(f"{project.source.name} data failed checks: {detail}")
    return SyncBatch(days, bars, actions, checks)

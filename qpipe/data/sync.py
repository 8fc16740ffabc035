"""Bringing the lake up to date: which sessions to sync, fetching them checked, and what of
them is written.

A session counts as synced when the lake's ``bars`` table has a partition for it holding the
bars the source has for it:

- a session the source returns no bars for is never written (:func:`write_market_data`), so it
  stays missing, is named in the run's log and metadata, and the next sync asks for it again;
- where the source's rows are at hand (:attr:`~qpipe.data.source.DataSource.rows_at_hand`, the
  files source), a partition holding fewer bars than the source now has is synced again, and a
  missing session the source still has no bars for is named but not planned;
- no session after the latest closed session is planned, fetched or written, whatever the
  source holds; the rows dated after it are counted and ignored.

Asking what is present stays cheap: the partition list, plus (only where the source's rows are
at hand) each partition's row count from its Parquet footer. The Dagster ``bars`` asset and the
CLI call these; the IO manager writes a run's data with :func:`write_market_data` only after the
fetch and its checks succeeded, so a run that fails leaves the lake as it was.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from qpipe.calendars import DateLike, TradingCalendar, to_date
from qpipe.data.lake import Lake, WriteSummary
from qpipe.data.quality import CheckOutcome, run_all
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, MarketData, empty_frame
from qpipe.data.source import DataSource
from qpipe.errors import DataValidationError, name_some
from qpipe.progress import report

NAMED_SESSIONS = 10
"""How many sessions a note names before it only counts the rest."""


class SyncTarget(Protocol):
    """What a sync reads of the project (:class:`qpipe.project.Project` is one): the
    calendar, the source and its universe's instruments, the lake, the partitions' first and
    last session (None: open-ended) and how long after the close a session counts as closed.
    Declared here so the data layer never imports the project, which is built on it."""

    @property
    def calendar(self) -> TradingCalendar: ...
    @property
    def source(self) -> DataSource: ...
    @property
    def lake(self) -> Lake: ...
    @property
    def instruments(self) -> pd.DataFrame: ...
    @property
    def history_start(self) -> dt.date: ...
    @property
    def history_end(self) -> dt.date | None: ...
    @property
    def sync_delay(self) -> dt.timedelta: ...


def name_sessions(days: Sequence[dt.date], detail: dict[dt.date, str] | None = None) -> str:
    """``days`` as ISO dates (with ``detail`` in brackets), the first :data:`NAMED_SESSIONS`
    of them named and the rest counted."""
    shown = [f"{d} ({detail[d]})" if detail and d in detail else str(d) for d in days]
    return name_some(shown, NAMED_SESSIONS)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True)
class SyncPlan:
    """Sessions to materialise, as one contiguous range ``[first, last]`` of sessions, and what
    the plan found on the way."""

    sessions: list[dt.date]
    missing: int
    """How many of ``sessions`` the lake lacks: no partition, or fewer bars than the source."""
    short: dict[dt.date, tuple[int, int]] = field(default_factory=dict)
    """Sessions in range whose partition holds fewer bars than the source has: (lake, source)
    bars. They are in ``sessions`` (synced again)."""
    unavailable: list[dt.date] = field(default_factory=list)
    """Sessions in range missing from the lake that the source has no bars for: not planned
    for themselves; the next sync asks again."""
    future_rows: int = 0
    """Rows of the source in the range asked for dated after ``latest_closed``: ignored."""
    latest_closed: dt.date | None = None
    """The latest closed session when the plan was made: nothing after it is planned."""
    source: str = "source"

    @property
    def first(self) -> dt.date:
        return self.sessions[0]

    @property
    def last(self) -> dt.date:
        return self.sessions[-1]

    def __bool__(self) -> bool:
        return bool(self.sessions)

    def notes(self) -> list[str]:
        """What a person should know about the plan beyond its range, one line each."""
        out = []
        if self.short:
            detail = {d: f"{held} of {offered} bars" for d, (held, offered) in self.short.items()}
            out.append(
                f"{_count(len(self.short), 'session')} in the lake with fewer bars than the "
                f"{self.source} source has, synced again: "
                f"{name_sessions(sorted(self.short), detail)}"
            )
        if self.unavailable:
            out.append(
                f"{_count(len(self.unavailable), 'session')} missing from the lake without bars in "
                f"the {self.source} source (the next sync asks again): "
                f"{name_sessions(self.unavailable)}"
            )
        if self.future_rows:
            out.append(
                f"{_count(self.future_rows, 'row')} dated after {self.latest_closed}, the latest "
                "closed session, ignored"
            )
        return out


def default_end(project: SyncTarget, now: dt.datetime | None = None) -> dt.date:
    """The last session a sync should reach: the latest session closed for at least the
    configured delay, capped at the partitions' end and the source's last day."""
    now = now or dt.datetime.now(dt.UTC)
    end = project.calendar.latest_closed_session(now, project.sync_delay)
    caps = [project.history_end, project.source.coverage()[1]]
    return min([end, *[c for c in caps if c is not None]])


def plan_sync(
    project: SyncTarget,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    refresh: bool = False,
    now: dt.datetime | None = None,
) -> SyncPlan:
    """Sessions in ``[start, end]`` to sync (defaults: the history start, or the source's
    first session if later, and :func:`default_end`; never after the latest closed session at
    ``now``). Without ``refresh`` only the span from the first to the last session the lake
    lacks is returned (empty when the lake is complete); a session lacks when it has no
    partition or, where the source's rows are at hand, fewer bars than the source has. Missing
    sessions the source has no bars for are listed in ``unavailable``, not planned."""
    if start and end and to_date(start) > to_date(end):
        raise ValueError(f"start {to_date(start)} is after end {to_date(end)}")
    now = now or dt.datetime.now(dt.UTC)
    latest = project.calendar.latest_closed_session(now)
    source = project.source
    first_data, last_data = source.coverage()
    lo = max(to_date(start), project.history_start) if start else project.history_start
    lo = max(lo, first_data)
    hi = to_date(end) if end else default_end(project, now)
    asked = to_date(end) if end else (last_data or latest)  # the latest date the range covers
    if project.history_end is not None:
        hi, asked = min(hi, project.history_end), min(asked, project.history_end)
    hi = min(hi, latest)
    candidates = project.calendar.sessions(lo, hi) if lo <= hi else []

    short: dict[dt.date, tuple[int, int]] = {}
    unavailable: list[dt.date] = []
    future_rows = 0
    if source.rows_at_hand and lo <= max(hi, asked):
        symbols = list(project.instruments["symbol"])
        counts = source.bars_per_session(lo, max(hi, asked), symbols)
        offered = {ts.date(): int(n) for ts, n in counts.items()}
        future_rows = sum(n for day, n in offered.items() if day > latest)
        held = project.lake.row_counts("bars", lo, hi) if candidates else {}
        short, unavailable = compare_bars(candidates, held, offered)
        present: Iterable[dt.date] = (set(held) - set(short)) | set(unavailable)
    else:
        present = project.lake.dates("bars")
    plan = plan_missing(candidates, present, refresh)
    return SyncPlan(
        plan.sessions, plan.missing, short, unavailable, future_rows, latest, source.name
    )


def compare_bars(
    candidates: Sequence[dt.date], held: dict[dt.date, int], offered: dict[dt.date, int]
) -> tuple[dict[dt.date, tuple[int, int]], list[dt.date]]:
    """Sessions of ``candidates`` whose lake partition holds fewer bars (``held``) than the
    source has (``offered``), as ``{day: (held, offered)}``, and those with no partition that
    the source has no bars for either. A session absent from a mapping has no partition / no
    bars."""
    short = {
        day: (held[day], offered[day])
        for day in candidates
        if day in held and held[day] < offered.get(day, 0)
    }
    unavailable = [day for day in candidates if day not in held and not offered.get(day, 0)]
    return short, unavailable


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
    """The sessions fetched: those asked for up to the latest closed session."""
    bars: pd.DataFrame
    actions: pd.DataFrame
    checks: list[CheckOutcome] = field(default_factory=list)
    future: list[dt.date] = field(default_factory=list)
    """Sessions asked for after ``latest_closed``: neither fetched nor written."""
    future_rows: int = 0
    """Rows of the source on the ``future`` sessions (counted where its rows are at hand)."""
    latest_closed: dt.date | None = None
    source: str = "source"

    @property
    def empty(self) -> list[dt.date]:
        """Sessions fetched without a single bar: not written, so the next sync asks again."""
        have = set(pd.DatetimeIndex(self.bars["date"]).date)
        return [d for d in self.sessions if d not in have]

    def notes(self) -> list[str]:
        """Sessions of the run that will not be written and why, one line each."""
        out = []
        empty = self.empty
        if empty:
            out.append(
                f"no bars from the {self.source} source for {_count(len(empty), 'session')}, "
                f"not written (the next sync asks again): {name_sessions(empty)}"
            )
        if self.future:
            rows = (
                f"; {_count(self.future_rows, 'row')} dated on them ignored"
                if self.future_rows
                else ""
            )
            out.append(
                f"{_count(len(self.future), 'session')} after {self.latest_closed}, the latest "
                f"closed session, not fetched or written: {name_sessions(self.future)}{rows}"
            )
        return out

    def metadata(self) -> dict[str, object]:
        """Run metadata: counts of the sessions not written, and the notes naming them."""
        out: dict[str, object] = {
            "sessions_without_bars": len(self.empty),
            "future_sessions": len(self.future),
            "future_rows_ignored": self.future_rows,
        }
        notes = self.notes()
        if notes:
            out["sync_notes"] = "\n".join(notes)
        return out


def fetch_sessions(
    project: SyncTarget, sessions: Sequence[DateLike], *, now: dt.datetime | None = None
) -> SyncBatch:
    """Fetch bars and corporate actions for ``sessions`` from the project's source, keep the
    universe, and run the quality checks. Sessions after the latest closed session at ``now``
    (default: the current time) are not fetched (``future``). An error-severity check failure
    raises :class:`DataValidationError` (nothing is returned, so nothing reaches the lake)."""
    asked = sorted(to_date(s) for s in sessions)
    if not asked:
        raise ValueError("no sessions to fetch")
    not_sessions = [d for d in asked if not project.calendar.is_session(d)]
    if not_sessions:
        raise ValueError(
            f"not {project.calendar.exchange} sessions: {', '.join(map(str, not_sessions[:5]))}"
        )
    latest = project.calendar.latest_closed_session(now or dt.datetime.now(dt.UTC))
    days = [d for d in asked if d <= latest]
    future = [d for d in asked if d > latest]
    symbols = list(project.instruments["symbol"])
    future_rows = 0
    if future and project.source.rows_at_hand:
        future_rows = int(project.source.bars_per_session(future[0], future[-1], symbols).sum())

    wanted = pd.DatetimeIndex(pd.to_datetime(days))
    previous_close = None
    if days:
        report("fetch", 0, 1)
        try:
            before = project.calendar.previous_session(days[0])
        except ValueError:
            before = days[0]
        data = project.source.fetch(before, days[-1], symbols)
        report("fetch", 1, 1)
        bars, actions = data.bars, data.actions
        in_range = bars["date"].isin(wanted)
        earlier = bars.loc[bars["date"] < wanted[0]]
        previous_close = earlier.groupby("symbol")["close"].last() if len(earlier) else None
        bars = bars.loc[in_range].reset_index(drop=True)
        actions = actions.loc[actions["date"].isin(wanted)].reset_index(drop=True)
    else:
        bars, actions = empty_frame(BAR_COLUMNS), empty_frame(ACTION_COLUMNS)

    report("checks", 0, 1)
    checks = run_all(bars, actions, project.instruments, list(wanted), previous_close)
    report("checks", 1, 1)
    errors = [c for c in checks if not c.passed and c.severity == "error"]
    if errors:
        detail = "; ".join(
            f"{c.name}: {c.description} (e.g. {', '.join(c.examples)})" for c in errors
        )
        raise DataValidationError(f"{project.source.name} data failed checks: {detail}")
    return SyncBatch(days, bars, actions, checks, future, future_rows, latest, project.source.name)


def write_market_data(
    lake: Lake, data: MarketData, sessions: Iterable[DateLike], table: str = "bars"
) -> WriteSummary:
    """Write a sync's data for ``sessions``: corporate actions first, then bars (to ``table``).

    Only sessions with bars are written to ``table`` (actions: those and any session with
    actions). A session without bars keeps whatever the lake has: a missing one stays missing
    and the next sync asks for it again, and a source that returns nothing never empties a
    partition. Returns the summary of the bars write (its ``partitions``: sessions written).
    """
    days = {to_date(s) for s in sessions}
    with_bars = days & set(pd.DatetimeIndex(data.bars["date"]).date)
    with_actions = with_bars | (days & set(pd.DatetimeIndex(data.actions["date"]).date))
    # Actions first: a session present in the bars table (what a sync looks for) then always
    # has its corporate actions too, even if the bars write fails.
    lake.write("corporate_actions", data.actions, sorted(with_actions))
    return lake.write(table, data.bars, sorted(with_bars))

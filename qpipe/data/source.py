"""The one interface every market-data source implements, and the factory that picks one."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence

import pandas as pd

from qpipe.calendars import DateLike, TradingCalendar, to_date
from qpipe.data.schema import MarketData


class DataSource(ABC):
    """Returns raw bars and corporate actions for symbols and a date range.

    Contract of :meth:`fetch`: only sessions of ``calendar`` inside ``[start, end]``; frames
    follow :mod:`qpipe.data.schema` (sorted, unique ``(date, symbol)``); the same request
    always returns the same data, and a day's rows do not depend on the range asked for.
    """

    name: str = "source"

    rows_at_hand: bool = False
    """True when the source holds its rows in memory (files read once): asking how many bars
    it has per session is then cheap, so a sync compares that with the lake (a session the lake
    holds fewer bars of is synced again) and counts rows dated after the latest closed session.
    False when the source is complete by construction (synthetic) or asking means fetching
    (IB)."""

    def __init__(self, calendar: TradingCalendar) -> None:
        self.calendar = calendar

    @abstractmethod
    def instruments(self) -> pd.DataFrame:
        """Instruments on offer (columns :data:`~qpipe.data.schema.INSTRUMENT_COLUMNS`)."""

    def instruments_key(self) -> str | None:
        """A key under which :meth:`instruments` may be cached on disk: the same key, the same
        instruments. None (the default): not cacheable, ask the source each time."""
        return None

    @abstractmethod
    def fetch(
        self, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> MarketData:
        """Bars and corporate actions with dates in ``[start, end]`` for ``symbols`` (None: all)."""

    def bars_per_session(
        self, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> pd.Series:
        """How many bars the source has on each date in ``[start, end]`` for ``symbols`` (None:
        all), indexed by date (Timestamp); dates without bars are absent. Fetches the range:
        cheap only where :attr:`rows_at_hand`."""
        return self.fetch(start, end, symbols).bars.groupby("date").size()

    @abstractmethod
    def coverage(self) -> tuple[dt.date, dt.date | None]:
        """First and last session with data; ``None`` as last means open-ended (up to today)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.calendar.exchange})"


def clip_range(source: DataSource, start: DateLike, end: DateLike) -> tuple[dt.date, dt.date]:
    """``[start, end]`` as dates; raises ``ValueError`` if ``start`` is after ``end``."""
    s, e = to_date(start), to_date(end)
    if s > e:
        raise ValueError(f"start {s} is after end {e}")
    return s, e

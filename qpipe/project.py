"""A configured qpipe project: settings, trading calendar, data source and lake in one place.

Every shell (Dagster definitions, the CLI, tests) builds one :class:`Project` and calls core
functions with it, so they all agree on the calendar, the source and where the lake is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from qpipe.calendars import TradingCalendar
from qpipe.data.lake import Lake, write_frame
from qpipe.data.source import DataSource
from qpipe.data.universe import select_instruments
from qpipe.settings import Settings, data_dir, load_settings

if TYPE_CHECKING:
    from qpipe.strategies.base import BaseStrategy

EARLIEST_HISTORY = dt.date(1990, 1, 2)
"""How far back the calendar reaches before a source tells its own first session."""


def build_source(settings: Settings, calendar: TradingCalendar) -> DataSource:
    """The data source named by ``settings.data.source``."""
    kind = settings.data.source
    if kind == "synthetic":
        from qpipe.data.synthetic import SyntheticSource

        return SyntheticSource(calendar, settings.data.synthetic)
    if kind == "sample":
        from qpipe.data.sample import SampleSource

        return SampleSource(calendar, settings.data.sample)
    if kind == "files":
        from qpipe.data.files import FilesSource

        assert settings.data.files is not None  # guaranteed by DataConfig validation
        return FilesSource(calendar, settings.data.files, fill=settings.backtest.fill)
    if kind == "ib":
        from qpipe.data.ib_source import IBSource

        assert settings.data.ib is not None  # guaranteed by DataConfig validation
        return IBSource(calendar, settings.data.ib, settings.live)
    raise ValueError(f"unknown data source {kind!r}")


@dataclass
class Project:
    """Settings plus everything derived from them; cheap to build, parts made on first use."""

    settings: Settings
    root: Path
    """The data directory (lake and Dagster instance live under it)."""

    @classmethod
    def load(cls, config: str | Path | None = None, root: str | Path | None = None) -> Project:
        """Load ``config`` (see :func:`qpipe.settings.load_settings`) with data under ``root``
        (default: :func:`qpipe.settings.data_dir`)."""
        return cls(load_settings(config), Path(root).resolve() if root else data_dir())

    @cached_property
    def calendar(self) -> TradingCalendar:
        start = self.settings.calendar.start
        exchange = self.settings.calendar.exchange
        if self.settings.data.source == "synthetic":
            simulated = self.settings.data.synthetic.start
            if start is None or simulated < start:
                # One calendar reaching back to the simulation's start serves both.
                return TradingCalendar(exchange, simulated).from_start(start or simulated)
        return TradingCalendar(exchange, start or EARLIEST_HISTORY)

    @cached_property
    def source(self) -> DataSource:
        return build_source(self.settings, self.calendar)

    @cached_property
    def lake(self) -> Lake:
        return Lake(self.root / "lake")

    @cached_property
    def instruments(self) -> pd.DataFrame:
        """The source's instruments restricted to the configured universe (the source's list
        cached under ``<data>/cache/`` when the source says it may be)."""
        return select_instruments(self._source_instruments(), self.settings.universe)

    def _source_instruments(self) -> pd.DataFrame:
        key = self.source.instruments_key()
        if key is None:
            return self.source.instruments()
        cache = self.root / "cache"
        path = cache / f"instruments-{key}.parquet"
        if path.exists():
            try:
                cached = pd.read_parquet(path)
                text = [c for c in cached.columns if pd.api.types.is_string_dtype(cached[c])]
                texts = cached[text].astype(object)  # as the source returns them: None, not NaN
                cached[text] = texts.where(texts.notna(), None)
                return cached
            except (OSError, ValueError):
                pass  # unreadable: rebuild it
        frame = self.source.instruments()
        try:
            write_frame(frame, path)
            stem = key.rsplit("-", 1)[0]
            for old in cache.glob(f"instruments-{stem}-*.parquet"):
                if old != path:
                    old.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only data directory only loses the cache
        return frame

    @cached_property
    def sectors(self) -> dict[str, str]:
        """Sector label of each universe symbol (None where the source has none)."""
        return dict(zip(self.instruments["symbol"], self.instruments["sector"], strict=True))

    @cached_property
    def history_start(self) -> dt.date:
        """First session of the partitions: ``calendar.start`` or the source's first session."""
        start = self.settings.calendar.start or self.source.coverage()[0]
        sessions = self.calendar.sessions(start)
        if not sessions:
            raise ValueError(f"no {self.calendar.exchange} session on or after {start}")
        return sessions[0]

    @cached_property
    def history_end(self) -> dt.date | None:
        """Last session of the partitions, or None when open-ended."""
        if self.settings.calendar.end is not None:
            return self.settings.calendar.end
        if self.settings.data.source == "sample":
            return self.source.coverage()[1]
        return None

    @cached_property
    def factor_names(self) -> list[str]:
        """The factors this configuration computes (the ``factors`` table's columns)."""
        from qpipe.factors.factory import library_for, selected_names

        return selected_names(self.settings.factors, library_for(self.settings.factors))

    @cached_property
    def strategies(self) -> dict[str, BaseStrategy]:
        """The configured strategies, checked against the factors and the instruments."""
        if not self.settings.strategies:
            return {}  # no need to ask the source for its instruments
        from qpipe.strategies.factory import build_strategies

        return build_strategies(self.settings, self.factor_names, self.instruments)

    @property
    def sync_delay(self) -> dt.timedelta:
        return dt.timedelta(minutes=self.settings.calendar.sync_delay_minutes)

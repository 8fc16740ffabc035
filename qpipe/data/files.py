"""The user's own daily bars from CSV or Parquet files, validated before anything is served.

Two layouts: ``long`` (one table with a symbol column) and ``per_symbol`` (a directory with one
file per symbol; the symbol is the file name without its extension, ``AAPL.csv.gz`` -> ``AAPL``).
Everything is read and checked once, on first use; a problem raises
:class:`~qpipe.errors.DataValidationError` naming the file, the first bad row (CSV: 1-based line
number with the header as line 1; Parquet: 0-based row index), how many rows share the problem,
and what is wrong.
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pyarrow as pa

from qpipe.calendars import DateLike, TradingCalendar
from qpipe.data.adjustments import actions_from_adjusted
from qpipe.data.schema import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    INSTRUMENT_COLUMNS,
    MarketData,
    empty_frame,
    normalize,
)
from qpipe.data.source import DataSource, clip_range
from qpipe.errors import DataValidationError
from qpipe.settings import ColumnMap, FilesSourceConfig

SUFFIXES: dict[str, tuple[str, ...]] = {
    "csv": (".csv.gz", ".csv"),
    "parquet": (".parquet", ".pq"),
}
"""File name endings of each format (matched case-insensitively)."""

OPTIONAL_FIELDS: tuple[str, ...] = ("open", "high", "low", "volume")
"""Bar columns that may be unmapped or absent: they are then NaN (with a warning)."""
PRICE_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "adj_close")
NUMERIC_FIELDS: tuple[str, ...] = ("open", "high", "low", "close", "volume", "adj_close")

_READ_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    ValueError,
    EOFError,
    zlib.error,
    pa.ArrowException,
)


def format_of(path: Path) -> str | None:
    """``csv`` or ``parquet`` from the file name's ending, None if it is neither."""
    name = path.name.lower()
    for fmt, suffixes in SUFFIXES.items():
        if name.endswith(suffixes):
            return fmt
    return None


def symbol_of(path: Path) -> str:
    """The symbol of a per-symbol file: its name without the format ending (``BRK.B.csv``)."""
    name = path.name
    for suffix in (s for suffixes in SUFFIXES.values() for s in suffixes):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


@dataclass(frozen=True)
class _Table:
    """One file's rows (index: position in the file) and which bar fields it lacks."""

    frame: pd.DataFrame
    missing: tuple[str, ...]


class FilesSource(DataSource):
    """Daily bars from the user's CSV or Parquet files (see :class:`FilesSourceConfig`).

    Prices are as traded. If ``columns.adj_close`` is set, corporate actions are derived from
    ``adj_close / close`` (:func:`~qpipe.data.adjustments.actions_from_adjusted`); otherwise
    there are none. Unmapped or absent open/high/low/volume columns become NaN with a
    ``UserWarning``. Rows before ``calendar.start`` are validated but not served.
    """

    name = "files"
    rows_at_hand = True

    def __init__(self, calendar: TradingCalendar, config: FilesSourceConfig) -> None:
        super().__init__(calendar)
        self.config = config
        self._lock = threading.Lock()
        self._data: MarketData | None = None
        self._sessions: pd.DatetimeIndex | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.calendar.exchange}, {self.config.path})"

    # -- DataSource ---------------------------------------------------------------------------

    def instruments(self) -> pd.DataFrame:
        """One ``stock`` per symbol with its first and last date of data; sector unknown."""
        bars = self._load().bars
        if bars.empty:
            return empty_frame(INSTRUMENT_COLUMNS)
        span = bars.groupby("symbol", sort=True)["date"].agg(["min", "max"])
        out = pd.DataFrame(
            {
                "symbol": span.index.astype(str).astype(object),
                "kind": pd.Series(["stock"] * len(span), dtype=object),
                "sector": pd.Series([None] * len(span), dtype=object),
                "first_date": span["min"].to_numpy(dtype="datetime64[ns]"),
                "last_date": span["max"].to_numpy(dtype="datetime64[ns]"),
            }
        )
        return out.loc[:, list(INSTRUMENT_COLUMNS)]

    def fetch(
        self, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> MarketData:
        """Bars and actions dated in ``[start, end]`` for ``symbols`` (None: all; unknown: none)."""
        lo, hi = (pd.Timestamp(d) for d in clip_range(self, start, end))
        wanted = [symbols] if isinstance(symbols, str) else symbols
        data = self._load()

        def cut(frame: pd.DataFrame) -> pd.DataFrame:
            mask = frame["date"].between(lo, hi)
            if wanted is not None:
                mask &= frame["symbol"].isin(list(wanted))
            return frame.loc[mask].reset_index(drop=True)

        return MarketData(cut(data.bars), cut(data.actions))

    def coverage(self) -> tuple[dt.date, dt.date | None]:
        """First and last date with data (from ``calendar.start`` on)."""
        bars = self._load().bars
        if bars.empty:
            raise DataValidationError(
                f"{self.config.path}: no data on or after the calendar start {self.calendar.start}"
            )
        return bars["date"].iloc[0].date(), bars["date"].iloc[-1].date()

    # -- loading ------------------------------------------------------------------------------

    def _load(self) -> MarketData:
        with self._lock:
            if self._data is None:
                self._data = self._read_all()
            return self._data

    def _read_all(self) -> MarketData:
        tables = [self._read_file(path, fmt, symbol) for path, fmt, symbol in self._list_files()]
        self._warn_missing(tables)
        frame = pd.concat([t.frame for t in tables], ignore_index=True)
        bars = normalize(frame, BAR_COLUMNS)
        if self.config.columns.adj_close is not None:
            actions = actions_from_adjusted(frame)
        else:
            actions = empty_frame(ACTION_COLUMNS)
        lo, hi = pd.Timestamp(self.calendar.start), pd.Timestamp(self.calendar.end)
        bars = bars.loc[bars["date"].between(lo, hi)].reset_index(drop=True)
        actions = actions.loc[actions["date"].between(lo, hi)].reset_index(drop=True)
        return MarketData(bars, actions)

    def _list_files(self) -> list[tuple[Path, str, str | None]]:
        """``(path, format, symbol)`` of every file to read; symbol is None for layout long."""
        cfg = self.config
        path = Path(cfg.path)
        if cfg.layout == "long":
            if not path.exists():
                raise DataValidationError(f"{path}: file not found")
            if path.is_dir():
                raise DataValidationError(
                    f"{path}: is a directory, but layout 'long' reads one file "
                    "(use layout 'per_symbol' for one file per symbol)"
                )
            fmt = cfg.format if cfg.format != "auto" else format_of(path)
            if fmt is None:
                raise DataValidationError(
                    f"{path}: cannot tell the format from the file name; use an ending "
                    ".csv, .csv.gz, .parquet or .pq, or set files.format"
                )
            return [(path, fmt, None)]

        if not path.exists():
            raise DataValidationError(f"{path}: directory not found")
        if not path.is_dir():
            raise DataValidationError(
                f"{path}: is a file, but layout 'per_symbol' reads a directory of files "
                "(use layout 'long' for one table)"
            )
        formats = ("csv", "parquet") if cfg.format == "auto" else (cfg.format,)
        try:
            entries = sorted(path.iterdir())
        except OSError as exc:
            raise DataValidationError(f"{path}: cannot list directory: {exc.strerror}") from None
        files: list[tuple[Path, str, str | None]] = []
        seen: dict[str, Path] = {}
        for entry in entries:
            fmt = format_of(entry)
            if entry.name.startswith(".") or not entry.is_file() or fmt not in formats:
                continue
            symbol = symbol_of(entry)
            if symbol in seen:
                raise DataValidationError(
                    f"{path}: two files for symbol {symbol}: {seen[symbol].name} and {entry.name}"
                )
            seen[symbol] = entry
            files.append((entry, fmt, symbol))
        if not files:
            kinds = " or ".join(f.upper() if f == "csv" else "Parquet" for f in formats)
            raise DataValidationError(f"{path}: no {kinds} files in the directory")
        return files

    def _read_file(self, path: Path, fmt: str, symbol: str | None) -> _Table:
        checker = _FileChecker(path, fmt, self.config.columns, self.config.date_format)
        raw, missing = checker.read(need_symbol=symbol is None)
        frame = checker.validate(raw, symbol)
        dates = frame["date"]
        checker.check_sessions(dates, self._sessions_covering(dates.min()), self.calendar)
        return _Table(frame, missing)

    def _sessions_covering(self, first: pd.Timestamp) -> pd.DatetimeIndex:
        """Exchange sessions from ``first`` (or earlier) to the calendar's end, cached."""
        cal_start = pd.Timestamp(self.calendar.start)
        if self._sessions is None:
            self._sessions = self.calendar.sessions_index()
        if first < self._sessions[0]:
            # Data before the calendar's start: ask the exchange for the earlier sessions.
            try:
                earlier = TradingCalendar(self.calendar.exchange, first.date())
            except Exception as exc:  # exchange_calendars refuses dates it has no rules for
                raise DataValidationError(
                    f"{self.config.path}: dates from {first:%Y-%m-%d} cannot be checked against "
                    f"the {self.calendar.exchange} calendar: {exc}"
                ) from None
            before = earlier.sessions_index(first.date(), cal_start.date())
            self._sessions = before.union(self._sessions)
        return self._sessions

    def _warn_missing(self, tables: list[_Table]) -> None:
        """One warning naming the optional bar columns some files lack (they are NaN)."""
        cols = self.config.columns
        parts = []
        for name in OPTIONAL_FIELDS:
            lacking = sum(1 for t in tables if name in t.missing)
            if not lacking:
                continue
            mapped = getattr(cols, name)
            part = f"{name} ({mapped!r})" if mapped else f"{name} (not mapped)"
            if len(tables) > 1:
                part += f" in {lacking} of {len(tables)} files"
            parts.append(part)
        if parts:
            warnings.warn(
                f"{self.config.path}: no column for {', '.join(parts)}; these bar columns are "
                "NaN, so factors that need them will be NaN",
                UserWarning,
                stacklevel=5,  # the caller of fetch/coverage/instruments
            )


class _FileChecker:
    """Reads one file and checks its rows, raising on the first problem found."""

    def __init__(self, path: Path, fmt: str, columns: ColumnMap, date_format: str | None) -> None:
        self.path = path
        self.fmt = fmt
        self.columns = columns
        self.date_format = date_format

    # -- messages -----------------------------------------------------------------------------

    def fail(self, problem: str) -> NoReturn:
        raise DataValidationError(f"{self.path}: {problem}")

    def where(self, position: int) -> str:
        if self.fmt == "csv":
            return f"line {position + 2}"
        return f"row {position} (0-based)"

    def check_rows(self, bad: pd.Series, describe: Callable[[Any], str]) -> None:
        """Raise naming the first row flagged in ``bad`` (and how many there are)."""
        flags = bad.fillna(False).to_numpy(dtype=bool)
        if not flags.any():
            return
        rows = bad.index[flags]
        message = f"{self.path}, {self.where(rows[0])}: {describe(rows[0])}"
        if len(rows) > 1:
            message += f" ({len(rows)} rows have this problem)"
        raise DataValidationError(message)

    # -- reading ------------------------------------------------------------------------------

    def read(self, need_symbol: bool) -> tuple[pd.DataFrame, tuple[str, ...]]:
        """The file's rows restricted to mapped columns, and the optional fields it lacks."""
        if not self.path.is_file():
            self.fail("file not found")
        try:
            if self.path.stat().st_size == 0:
                self.fail("file is empty")
            raw, present = self._read_csv() if self.fmt == "csv" else self._read_parquet()
        except DataValidationError:
            raise
        except _READ_ERRORS as exc:
            kind = "CSV" if self.fmt == "csv" else "Parquet"
            self.fail(f"cannot read as {kind}: {exc}")

        cols = self.columns
        required = ["date", "close"]
        if need_symbol:
            required.insert(1, "symbol")
        if cols.adj_close is not None:
            required.append("adj_close")
        for field in required:
            name = getattr(cols, field)
            if name not in present:
                shown = ", ".join(repr(c) for c in present)
                self.fail(
                    f"missing column {name!r} (files.columns.{field}); the file has columns {shown}"
                )
        missing = tuple(f for f in OPTIONAL_FIELDS if getattr(cols, f) not in present)
        used = [getattr(cols, f) for f in ("date", "symbol", *NUMERIC_FIELDS)]
        keep = list(dict.fromkeys(c for c in used if c is not None and c in present))
        raw = raw.loc[:, keep]
        if self.fmt == "csv":
            raw = raw.loc[~raw.isna().all(axis=1)]  # blank lines
        if raw.empty:
            self.fail("no data rows")
        return raw, missing

    def _read_csv(self) -> tuple[pd.DataFrame, list[str]]:
        """All cells as strings (empty cells NaN), and the header's column names."""
        options: dict[str, Any] = {"dtype": str, "skipinitialspace": True}
        try:
            header = pd.read_csv(self.path, nrows=0, **options)
        except pd.errors.EmptyDataError:
            self.fail("file is empty")
        present = [str(c) for c in header.columns]
        wanted = {getattr(self.columns, f) for f in ("date", "symbol", *NUMERIC_FIELDS)}
        usecols = [c for c in present if c in wanted]
        if not usecols:
            return header, present
        # Blank lines are kept (and dropped later) so that row i is line i + 2 of the file.
        frame = pd.read_csv(self.path, usecols=usecols, skip_blank_lines=False, **options)
        return frame, present

    def _read_parquet(self) -> tuple[pd.DataFrame, list[str]]:
        """The table as pandas (a non-default index becomes columns), and its column names."""
        frame = pd.read_parquet(self.path)
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()  # e.g. a date index written by DataFrame.to_parquet
        frame = frame.reset_index(drop=True)
        return frame, [str(c) for c in frame.columns]

    # -- checks -------------------------------------------------------------------------------

    def validate(self, raw: pd.DataFrame, symbol: str | None) -> pd.DataFrame:
        """Typed rows (``date``, ``symbol``, prices, volume, ``adj_close``), index = position."""
        cols = self.columns
        out = pd.DataFrame(index=raw.index)
        out["date"] = self._dates(raw[cols.date])

        if symbol is None:
            names = raw[cols.symbol].astype(str).str.strip()
            blank = raw[cols.symbol].isna() | (names == "")
            self.check_rows(blank, lambda i: f"missing symbol in column {cols.symbol!r}")
            out["symbol"] = names.astype(object)
        else:
            out["symbol"] = symbol

        for field in NUMERIC_FIELDS:
            name = getattr(cols, field)
            if name is not None and name in raw.columns:
                out[field] = self._numbers(raw[name])
            else:
                out[field] = np.nan

        self.check_rows(out["close"].isna(), lambda i: f"missing close in column {cols.close!r}")
        for field in PRICE_FIELDS:
            name = getattr(cols, field)
            values = out[field]
            self.check_rows(
                values <= 0,
                lambda i, name=name, values=values: (
                    f"price must be positive: {values.loc[i]:g} in column {name!r}"
                ),
            )
        high, low = out["high"], out["low"]
        self.check_rows(
            high < low,
            lambda i: (
                f"high {high.loc[i]:g} is below low {low.loc[i]:g} "
                f"(columns {cols.high!r}, {cols.low!r})"
            ),
        )
        both_bounds = high.notna() & low.notna()
        for field in ("open", "close"):
            values = out[field]
            self.check_rows(
                both_bounds & ((values < low) | (values > high)),
                lambda i, field=field, values=values: (
                    f"{field} {values.loc[i]:g} is outside the day's range "
                    f"[low {low.loc[i]:g}, high {high.loc[i]:g}]"
                ),
            )
        volume = out["volume"]
        self.check_rows(
            volume < 0, lambda i: f"negative volume {volume.loc[i]:g} in column {cols.volume!r}"
        )

        duplicated = out.duplicated(["date", "symbol"], keep="first")

        def describe_duplicate(i: Any) -> str:
            day, sym = out.at[i, "date"], out.at[i, "symbol"]
            same = (out["date"] == day) & (out["symbol"] == sym)
            earlier = self.where(out.index[same.to_numpy()][0])
            return f"duplicate row for {sym} on {day:%Y-%m-%d} (first at {earlier})"

        self.check_rows(duplicated, describe_duplicate)
        return out

    def check_sessions(
        self, dates: pd.Series, sessions: pd.DatetimeIndex, calendar: TradingCalendar
    ) -> None:
        """Every date must be a session of the calendar's exchange."""
        end = pd.Timestamp(calendar.end)

        def describe(i: Any) -> str:
            day = dates.loc[i]
            if day > end:
                return (
                    f"date {day:%Y-%m-%d} is after {end:%Y-%m-%d}, the last "
                    f"{calendar.exchange} session the calendar knows"
                )
            return f"date {day:%Y-%m-%d} is not an {calendar.exchange} session"

        self.check_rows(~dates.isin(sessions), describe)

    def _dates(self, raw: pd.Series) -> pd.Series:
        name = self.columns.date
        self.check_rows(raw.isna(), lambda i: f"missing date in column {name!r}")
        parsed = _parse_dates(raw, self.date_format)
        if self.date_format:
            hint = f"expected format {self.date_format!r}"
        else:
            hint = "expected YYYY-MM-DD; set files.date_format for other formats"
        self.check_rows(
            parsed.isna(), lambda i: f"unparseable date {raw.loc[i]!r} in column {name!r} ({hint})"
        )
        return parsed.dt.normalize().astype("datetime64[ns]")

    def _numbers(self, raw: pd.Series) -> pd.Series:
        """Cells as float64; a cell that is present but not a finite number is an error."""
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            values = raw.astype(np.float64)
        else:
            values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        bad = raw.notna() & ~np.isfinite(values)
        self.check_rows(bad, lambda i: f"non-numeric value {raw.loc[i]!r} in column {raw.name!r}")
        return values


def _parse_dates(raw: pd.Series, date_format: str | None) -> pd.Series:
    """Session dates (time of day and time zone dropped); NaT where unparseable."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        parsed = raw
    else:
        sample = raw.dropna()
        if len(sample) and isinstance(sample.iloc[0], dt.date):  # date objects (Parquet)
            parsed = pd.to_datetime(raw, errors="coerce")
        else:
            text = raw.astype(str).str.strip().where(raw.notna())
            try:
                parsed = pd.to_datetime(text, format=date_format or "ISO8601", errors="coerce")
            except ValueError:  # mixed time zones: parse one by one, keep local dates
                parsed = text.map(lambda v: _parse_one(v, date_format))
                parsed = pd.to_datetime(parsed)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _parse_one(value: Any, date_format: str | None) -> pd.Timestamp:
    try:
        ts = pd.to_datetime(value, format=date_format or "ISO8601")
    except (ValueError, TypeError):
        return pd.NaT
    return ts.tz_localize(None) if ts.tzinfo is not None else ts

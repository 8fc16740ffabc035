"""The user's own daily bars from CSV or Parquet files, validated before anything is served.

Two layouts: ``long`` (one table with a symbol column) and ``per_symbol`` (a directory with one
file per symbol; the symbol is the file name without its extension, ``AAPL.csv.gz`` -> ``AAPL``).
Beside the bars, an optional actions file (splits and dividends) and an optional instruments
file (delisting dates, kind, sector). Everything is read and checked once, on first use; a
problem raises :class:`~qpipe.errors.DataValidationError` naming the file, the first bad row
(CSV: 1-based line number with the header as line 1; Parquet: 0-based row index), how many rows
share the problem, and what is wrong.
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
import pyarrow.csv as pa_csv

from qpipe.calendars import DateLike, TradingCalendar
from qpipe.data.adjustments import derive_actions
from qpipe.data.schema import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    INSTRUMENT_COLUMNS,
    MarketData,
    empty_frame,
    normalize,
)
from qpipe.data.source import DataSource, clip_range
from qpipe.errors import DataValidationError, name_some
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
ACTION_FILE_COLUMNS: tuple[str, ...] = ("date", "symbol", "split_ratio", "dividend")
"""Columns of the actions file (``files.actions``)."""
INSTRUMENT_FILE_COLUMNS: tuple[str, ...] = ("symbol", "delisted", "kind", "sector")
"""Columns of the instruments file (``files.instruments``); kind and sector are optional."""
KINDS: tuple[str, ...] = ("stock", "etf")
OTHER_DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
"""Delimiters named as the likely one when a header does not split at the configured one."""
MAX_NAMED = 5
"""How many symbols a message names before it counts the rest."""

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


def _named(symbols: Sequence[str]) -> str:
    return name_some(symbols, MAX_NAMED)


@dataclass(frozen=True)
class _Table:
    """One bars file: its rows (index: position in the file), the optional bar fields it
    lacks, and the checker that read it (to name its rows)."""

    frame: pd.DataFrame
    missing: tuple[str, ...]
    checker: _BarFile


@dataclass(frozen=True)
class _Contents:
    """Everything the source serves: bars and actions from the calendar's start, and per
    symbol with bars its kind, sector and declared delisting (``last_date``)."""

    data: MarketData
    listing: pd.DataFrame


class FilesSource(DataSource):
    """Daily bars from the user's CSV or Parquet files (see :class:`FilesSourceConfig`).

    Prices are as traded. Corporate actions come from the actions file (``config.actions``)
    for the symbols it names, else, if ``columns.adj_close`` is set, are derived from
    ``adj_close / close`` (:func:`~qpipe.data.adjustments.derive_actions`; a jump no action
    explains is a ``UserWarning`` naming the file and row); otherwise there are none. A symbol's
    ``last_date`` is its declared delisting (``config.instruments`` or ``columns.delisted``),
    NaT when none is declared: where its data ends says nothing about it. Unmapped or absent
    high/low/volume columns become NaN with a ``UserWarning``; so do opens, unless ``fill`` is
    ``next_open`` (the backtest fills at the open), which makes their absence an error. Rows
    before ``calendar.start`` are validated but not served.
    """

    name = "files"
    rows_at_hand = True

    def __init__(
        self, calendar: TradingCalendar, config: FilesSourceConfig, fill: str | None = None
    ) -> None:
        super().__init__(calendar)
        self.config = config
        self.fill = fill
        self._lock = threading.Lock()
        self._contents: _Contents | None = None
        self._sessions: pd.DatetimeIndex | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.calendar.exchange}, {self.config.path})"

    # -- DataSource ---------------------------------------------------------------------------

    def instruments(self) -> pd.DataFrame:
        """One row per symbol with bars: kind (default ``stock``) and sector (default none) from
        the instruments file, ``first_date`` the first bar, ``last_date`` the declared
        delisting or NaT."""
        contents = self._load()
        bars = contents.data.bars
        if bars.empty:
            return empty_frame(INSTRUMENT_COLUMNS)
        first = bars.groupby("symbol", sort=True)["date"].min()
        listing = contents.listing.set_index("symbol").reindex(first.index)
        sector = listing["sector"].astype(object)
        out = pd.DataFrame(
            {
                "symbol": first.index.astype(str).astype(object),
                "kind": pd.Series(listing["kind"].to_numpy(), dtype=object),
                "sector": pd.Series(sector.where(sector.notna(), None).to_numpy(), dtype=object),
                "first_date": first.to_numpy(dtype="datetime64[ns]"),
                "last_date": listing["last_date"].to_numpy(dtype="datetime64[ns]"),
            }
        )
        return out.loc[:, list(INSTRUMENT_COLUMNS)]

    def fetch(
        self, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> MarketData:
        """Bars and actions dated in ``[start, end]`` for ``symbols`` (None: all; unknown: none)."""
        lo, hi = (pd.Timestamp(d) for d in clip_range(self, start, end))
        wanted = [symbols] if isinstance(symbols, str) else symbols
        data = self._load().data

        def cut(frame: pd.DataFrame) -> pd.DataFrame:
            mask = frame["date"].between(lo, hi)
            if wanted is not None:
                mask &= frame["symbol"].isin(list(wanted))
            return frame.loc[mask].reset_index(drop=True)

        return MarketData(cut(data.bars), cut(data.actions))

    def coverage(self) -> tuple[dt.date, dt.date | None]:
        """First and last date with data (from ``calendar.start`` on)."""
        bars = self._load().data.bars
        if bars.empty:
            raise DataValidationError(
                f"{self.config.path}: no data on or after the calendar start {self.calendar.start}"
            )
        return bars["date"].iloc[0].date(), bars["date"].iloc[-1].date()

    # -- loading ------------------------------------------------------------------------------

    def _load(self) -> _Contents:
        with self._lock:
            if self._contents is None:
                self._contents = self._read_all()
            return self._contents

    def _read_all(self) -> _Contents:
        tables = [self._read_file(path, fmt, symbol) for path, fmt, symbol in self._list_files()]
        self._warn_missing(tables)
        frame = pd.concat([t.frame for t in tables], ignore_index=True)  # every row, any date
        bars = normalize(frame, BAR_COLUMNS)

        parts, named = [], set()
        if self.config.actions is not None:
            given, named = self._read_actions(bars)
            parts.append(given)
        if self.config.columns.adj_close is not None:
            for table in tables:
                parts.append(self._derive_actions(table, named))
        actions = (
            normalize(pd.concat(parts, ignore_index=True), ACTION_COLUMNS)
            if parts
            else empty_frame(ACTION_COLUMNS)
        )
        listing = self._listing(tables, bars)

        lo, hi = pd.Timestamp(self.calendar.start), pd.Timestamp(self.calendar.end)
        bars = bars.loc[bars["date"].between(lo, hi)].reset_index(drop=True)
        actions = actions.loc[actions["date"].between(lo, hi)].reset_index(drop=True)
        return _Contents(MarketData(bars, actions), listing)

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
        checker = _BarFile(path, fmt, self.config)
        raw, missing = checker.read(need_symbol=symbol is None)
        if self.fill == "next_open" and "open" in missing:
            mapped = self.config.columns.open
            what = (
                f"no column {mapped!r} (files.columns.open)"
                if mapped
                else "no open prices (files.columns.open is null)"
            )
            checker.fail(
                f"{what}, but backtest.fill is 'next_open', which fills orders at the next "
                "session's open, so no order would ever fill: map the open column, or set "
                "backtest.fill to next_close or close"
            )
        frame = checker.validate(raw, symbol)
        dates = frame["date"]
        checker.check_sessions(dates, self._sessions_covering(dates.min()), self.calendar)
        return _Table(frame, missing, checker)

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

    # -- corporate actions --------------------------------------------------------------------

    def _derive_actions(self, table: _Table, skip: set[str]) -> pd.DataFrame:
        """Actions derived from one file's adjusted close (symbols in ``skip`` left out); a
        warning names the first jump no action explains and counts the rest."""
        frame = table.frame.loc[~table.frame["symbol"].isin(skip)]
        derived = derive_actions(frame)
        odd = derived.unexplained
        if len(odd):
            where = table.checker.where
            row = odd.iloc[0]
            label = odd.index[0]
            cols = self.config.columns
            ratio = f"{cols.adj_close!r} / {cols.close!r}"
            if row["split_ratio"] != 1.0:
                jump = (
                    f"a split of {row['split_ratio']:g} new shares per old is recorded, but "
                    f"{ratio} falls {row['fall']:.4%} short of it from {where(row['previous'])}"
                )
            else:
                jump = f"{ratio} falls {row['fall']:.4%} from {where(row['previous'])}"
            message = (
                f"{table.checker.path}, {where(label)}: {row['symbol']} on "
                f"{row['date']:%Y-%m-%d}: {jump}, more than the written decimals explain; that "
                "would be a negative dividend, so none is recorded"
            )
            if len(odd) > 1:
                message += f" ({len(odd)} rows like this)"
            warnings.warn(message, UserWarning, stacklevel=5)
        return derived.actions

    def _read_actions(self, bars: pd.DataFrame) -> tuple[pd.DataFrame, set[str]]:
        """The actions file as contract rows, ``factor = 1/split_ratio - dividend/previous
        close`` with the symbol's last close before the ex-date, and every symbol it names.
        Actions dated on or before a symbol's first bar adjust nothing and are dropped; symbols
        without bars are dropped with a warning."""
        assert self.config.actions is not None
        checker = self._side_file(self.config.actions, "files.actions")
        raw = checker.read_required(ACTION_FILE_COLUMNS, ())
        rows = pd.DataFrame(index=raw.index)
        rows["date"] = checker.dates(raw["date"], "date")
        rows["symbol"] = checker.symbols(raw["symbol"], "symbol")
        split = checker.numbers(raw["split_ratio"])
        dividend = checker.numbers(raw["dividend"])
        checker.check_rows(
            split <= 0,
            lambda i: f"split_ratio must be positive (new shares per old): {split.loc[i]:g}",
        )
        checker.check_rows(
            dividend < 0, lambda i: f"dividend must not be negative: {dividend.loc[i]:g}"
        )
        rows["split_ratio"] = split.fillna(1.0)
        rows["dividend"] = dividend.fillna(0.0)
        checker.check_sessions(
            rows["date"], self._sessions_covering(rows["date"].min()), self.calendar
        )
        checker.check_duplicates(rows, "action")

        named = set(rows["symbol"])
        rows = _known_rows(rows, set(bars["symbol"]), checker.path, "actions", stacklevel=6)
        rows["_row"] = rows.index
        previous = pd.merge_asof(
            rows.sort_values("date"),
            bars.loc[:, ["date", "symbol", "close"]].sort_values("date"),
            on="date",
            by="symbol",
            direction="backward",
            allow_exact_matches=False,
        ).set_index("_row")
        previous = previous.loc[previous["close"].notna()]  # after the symbol's first bar
        factor = 1.0 / previous["split_ratio"] - previous["dividend"] / previous["close"]
        checker.check_rows(
            factor <= 0,
            lambda i: (
                f"dividend {previous.at[i, 'dividend']:g} of {previous.at[i, 'symbol']} is not "
                f"below the previous close {previous.at[i, 'close']:g} divided by split_ratio "
                f"{previous.at[i, 'split_ratio']:g}: the price factor would not be positive"
            ),
        )
        return previous.assign(factor=factor).loc[:, list(ACTION_COLUMNS)], named

    # -- instruments --------------------------------------------------------------------------

    def _listing(self, tables: list[_Table], bars: pd.DataFrame) -> pd.DataFrame:
        """Per symbol with bars: kind, sector and declared delisting (``last_date``), checked
        against the symbol's bars."""
        symbols = sorted(set(bars["symbol"]))
        listing = pd.DataFrame(
            {
                "symbol": pd.Series(symbols, dtype=object),
                "kind": pd.Series(["stock"] * len(symbols), dtype=object),
                "sector": pd.Series([None] * len(symbols), dtype=object),
                "last_date": pd.Series(pd.NaT, index=range(len(symbols)), dtype="datetime64[ns]"),
            }
        ).set_index("symbol")
        declared: dict[str, tuple[pd.Timestamp, str]] = {}  # symbol -> (date, where it is said)
        if self.config.columns.delisted is not None:
            for table in tables:
                declared.update(_declared_in_bars(table))
        if self.config.instruments is not None:
            meta, where = self._read_instruments(set(symbols))
            listing.loc[meta.index, "kind"] = meta["kind"]
            listing.loc[meta.index, "sector"] = meta["sector"]
            for symbol, day in meta["delisted"].dropna().items():
                said = where[symbol]
                if symbol in declared and declared[symbol][0] != day:
                    other_day, other = declared[symbol]
                    raise DataValidationError(
                        f"{said}: {symbol} delisted on {day:%Y-%m-%d}, but {other} says "
                        f"{other_day:%Y-%m-%d}"
                    )
                declared[symbol] = (day, said)
        if declared:
            self._check_delistings(declared, tables)
            for symbol, (day, _) in declared.items():
                listing.at[symbol, "last_date"] = day
        return listing.reset_index()

    def _check_delistings(
        self, declared: dict[str, tuple[pd.Timestamp, str]], tables: list[_Table]
    ) -> None:
        """A delisting is a session, not before the symbol's first bar, with no bar after it."""
        days = pd.Series({s: d for s, (d, _) in declared.items()}, dtype="datetime64[ns]")
        sessions = self._sessions_covering(days.min())
        for symbol, (day, said) in declared.items():
            if day not in sessions:
                raise DataValidationError(
                    f"{said}: delisting date {day:%Y-%m-%d} of {symbol} is not an "
                    f"{self.calendar.exchange} session (give the last session it trades)"
                )
        for table in tables:
            frame = table.frame
            limit = frame["symbol"].map(days)
            first = frame.groupby("symbol")["date"].transform("min")
            early = limit.notna() & (limit < first) & (frame["date"] == first)
            if early.any():
                i = early.idxmax()
                symbol = frame.at[i, "symbol"]
                day, said = declared[symbol]
                raise DataValidationError(
                    f"{said}: {symbol} delisted on {day:%Y-%m-%d}, before its first bar on "
                    f"{first.loc[i]:%Y-%m-%d} ({table.checker.path}, {table.checker.where(i)})"
                )

            def after(i: Any, frame: pd.DataFrame = frame) -> str:
                symbol = frame.at[i, "symbol"]
                day, said = declared[symbol]
                return (
                    f"bar of {symbol} on {frame.at[i, 'date']:%Y-%m-%d}, after its delisting "
                    f"on {day:%Y-%m-%d} ({said})"
                )

            table.checker.check_rows(limit.notna() & (frame["date"] > limit), after)

    def _read_instruments(self, known: set[str]) -> tuple[pd.DataFrame, dict[str, str]]:
        """The instruments file indexed by symbol (kind, sector, delisted) for symbols with
        bars, and where each symbol's row is; symbols without bars are dropped with a warning."""
        assert self.config.instruments is not None
        checker = self._side_file(self.config.instruments, "files.instruments")
        raw = checker.read_required(("symbol", "delisted"), ("kind", "sector"))
        rows = pd.DataFrame(index=raw.index)
        rows["symbol"] = checker.symbols(raw["symbol"], "symbol")
        rows["delisted"] = checker.dates(raw["delisted"], "delisted", required=False)
        if "kind" in raw.columns:
            kind = raw["kind"].astype(str).str.strip().str.lower().where(raw["kind"].notna())
            kind = kind.where(kind.notna() & (kind != ""), "stock")
            checker.check_rows(
                ~kind.isin(KINDS),
                lambda i: f"kind must be stock or etf, not {raw.at[i, 'kind']!r}",
            )
            rows["kind"] = kind.astype(object)
        else:
            rows["kind"] = "stock"
        if "sector" in raw.columns:
            sector = raw["sector"].astype(str).str.strip().where(raw["sector"].notna())
            rows["sector"] = sector.where(sector.notna() & (sector != ""), None).astype(object)
        else:
            rows["sector"] = None
        duplicated = rows.duplicated("symbol", keep="first")
        checker.check_rows(
            duplicated,
            lambda i: (
                f"second row for {rows.at[i, 'symbol']} (first at "
                f"{checker.where(rows.index[(rows['symbol'] == rows.at[i, 'symbol'])][0])})"
            ),
        )
        rows = _known_rows(rows, known, checker.path, "rows", stacklevel=7)
        where = {s: f"{checker.path}, {checker.where(i)}" for i, s in rows["symbol"].items()}
        return rows.set_index("symbol"), where

    def _side_file(self, path: Path, key: str) -> _FileChecker:
        """A checker for the actions or instruments file (format from its name)."""
        fmt = format_of(path)
        if fmt is None:
            raise DataValidationError(
                f"{path}: cannot tell the format of {key} from the file name; use an ending "
                ".csv, .csv.gz, .parquet or .pq"
            )
        return _FileChecker(path, fmt, self.config.date_format, self.config.delimiter)


def _declared_in_bars(table: _Table) -> dict[str, tuple[pd.Timestamp, str]]:
    """Delisting dates given in a bars file's ``delisted`` column, one per symbol (rows of a
    symbol that give two different dates are an error naming both)."""
    checker, frame = table.checker, table.frame
    given = frame.loc[frame["delisted"].notna(), ["symbol", "delisted"]]
    first = given.drop_duplicates("symbol", keep="first")
    per_symbol = given["symbol"].map(first.set_index("symbol")["delisted"])
    name = checker.columns.delisted

    def describe(i: Any) -> str:
        symbol = given.at[i, "symbol"]
        j = first.index[first["symbol"] == symbol][0]
        return (
            f"delisting date {given.at[i, 'delisted']:%Y-%m-%d} of {symbol} in column {name!r} "
            f"differs from {first.at[j, 'delisted']:%Y-%m-%d} at {checker.where(j)}"
        )

    checker.check_rows(given["delisted"] != per_symbol, describe)
    return {
        s: (d, f"{checker.path}, {checker.where(i)}")
        for i, s, d in zip(first.index, first["symbol"], first["delisted"], strict=True)
    }


class _FileChecker:
    """Reads one CSV or Parquet file and checks its rows, raising on the first problem found."""

    def __init__(self, path: Path, fmt: str, date_format: str | None, delimiter: str = ",") -> None:
        self.path = path
        self.fmt = fmt
        self.date_format = date_format
        self.delimiter = delimiter

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

    def read_columns(
        self, wanted: Sequence[str], required: Sequence[tuple[str, str | None]] = ()
    ) -> tuple[pd.DataFrame, list[str]]:
        """The file's rows restricted to the ``wanted`` columns it has (blank CSV lines
        dropped; index: position in the file), and all its column names. Each ``(column,
        setting)`` of ``required`` must be there (the setting that names it, if any, is named
        in the error)."""
        if not self.path.is_file():
            self.fail("file not found")
        try:
            if self.path.stat().st_size == 0:
                self.fail("file is empty")
            if self.fmt == "csv":
                raw, present = self._read_csv(wanted)
            else:
                raw, present = self._read_parquet()
        except DataValidationError:
            raise
        except UnicodeDecodeError as exc:
            self.fail(
                f"cannot read as CSV: not UTF-8 text (byte {exc.object[exc.start]:#04x} at "
                f"position {exc.start})"
            )
        except _READ_ERRORS as exc:
            kind = "CSV" if self.fmt == "csv" else "Parquet"
            self.fail(f"cannot read as {kind}: {exc}")
        for name, key in required:
            if name not in present:
                self.missing_column(name, present, key)
        keep = list(dict.fromkeys(c for c in wanted if c in present))
        raw = raw.loc[:, keep]
        if self.fmt == "csv":
            raw = raw.loc[~raw.isna().all(axis=1)]  # blank lines
        if raw.empty:
            self.fail("no data rows")
        return raw, present

    def read_required(self, required: Sequence[str], optional: Sequence[str]) -> pd.DataFrame:
        """:meth:`read_columns` of a file with fixed column names: each ``required`` one must
        be there, ``optional`` ones are kept when present."""
        raw, _ = self.read_columns([*required, *optional], [(name, None) for name in required])
        return raw

    def missing_column(self, name: str, present: list[str], key: str | None = None) -> NoReturn:
        shown = ", ".join(repr(c) for c in present)
        setting = f" ({key})" if key else ""
        self.fail(f"missing column {name!r}{setting}; the file has columns {shown}")

    def _read_csv(self, wanted: Sequence[str]) -> tuple[pd.DataFrame, list[str]]:
        """All cells as strings (empty cells NaN), and the header's column names. The file
        must be text, its header must split at the delimiter, and every row must have as many
        fields as the header."""
        self._check_text()
        options: dict[str, Any] = {
            "dtype": str,
            "skipinitialspace": True,
            "sep": self.delimiter,
        }
        try:
            header = pd.read_csv(self.path, nrows=0, **options)
        except pd.errors.EmptyDataError:
            self.fail("file is empty")
        present = [str(c) for c in header.columns]
        if len(present) == 1:
            self._fail_unsplit(present[0])
        self._check_field_counts(len(present))
        usecols = [c for c in present if c in set(wanted)]
        if not usecols:
            return header, present
        # Blank lines are kept (and dropped later) so that row i is line i + 2 of the file.
        frame = pd.read_csv(self.path, usecols=usecols, skip_blank_lines=False, **options)
        return frame, present

    def _check_text(self) -> None:
        """A CSV file is text: NUL bytes at its start mean a binary file."""
        with pa.input_stream(str(self.path), compression="detect") as stream:
            start = stream.read(1 << 16)
        if b"\x00" in start:
            self.fail("binary content (NUL bytes), not CSV text")

    def _fail_unsplit(self, header: str) -> NoReturn:
        shown = header if len(header) <= 80 else header[:77] + "..."
        message = (
            f"the header line {shown!r} does not split into columns at the delimiter "
            f"{self.delimiter!r}"
        )
        others = [d for d in OTHER_DELIMITERS if d != self.delimiter and d in header]
        if not header.replace("\t", "").isprintable():
            message += "; it has control characters, so this is no CSV text (a binary file?)"
        elif others:
            message += f"; it looks {others[0]!r}-delimited: set files.delimiter"
        self.fail(message)

    def _check_field_counts(self, expected: int) -> None:
        """Every non-blank line has ``expected`` fields (quoted delimiters do not count)."""
        first: list[Any] = []
        count = 0

        def on_invalid(row: Any) -> str:
            nonlocal count
            if row.actual_columns == 1 and not row.text.strip():
                return "skip"  # a blank line
            count += 1
            if not first:
                first.append(row)
            return "skip"

        pa_csv.read_csv(
            self.path,
            read_options=pa_csv.ReadOptions(
                use_threads=False,  # row numbers are known only without threads
                skip_rows=1,
                column_names=[f"f{i}" for i in range(expected)],
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=self.delimiter, invalid_row_handler=on_invalid, ignore_empty_lines=False
            ),
            convert_options=pa_csv.ConvertOptions(
                include_columns=["f0"], column_types={"f0": pa.string()}, check_utf8=False
            ),
        )
        if first:
            row = first[0]
            where = f"line {row.number}" if row.number is not None else f"row {row.text!r}"
            message = (
                f"{self.path}, {where}: {row.actual_columns} fields, but the header has "
                f"{expected} columns (delimiter {self.delimiter!r})"
            )
            if count > 1:
                message += f" ({count} rows have this problem)"
            raise DataValidationError(message)

    def _read_parquet(self) -> tuple[pd.DataFrame, list[str]]:
        """The table as pandas (a non-default index becomes columns), and its column names."""
        frame = pd.read_parquet(self.path)
        if not isinstance(frame.index, pd.RangeIndex):
            frame = frame.reset_index()  # e.g. a date index written by DataFrame.to_parquet
        frame = frame.reset_index(drop=True)
        return frame, [str(c) for c in frame.columns]

    # -- typed columns ------------------------------------------------------------------------

    def dates(self, raw: pd.Series, name: str, required: bool = True) -> pd.Series:
        """Session dates of column ``name`` (NaT for empty cells unless ``required``)."""
        if required:
            self.check_rows(raw.isna(), lambda i: f"missing date in column {name!r}")
        parsed = _parse_dates(raw, self.date_format)
        if self.date_format:
            hint = f"expected format {self.date_format!r}"
        else:
            hint = "expected YYYY-MM-DD; set files.date_format for other formats"
        self.check_rows(
            raw.notna() & parsed.isna(),
            lambda i: f"unparseable date {raw.loc[i]!r} in column {name!r} ({hint})",
        )
        return parsed.dt.normalize().astype("datetime64[ns]")

    def symbols(self, raw: pd.Series, name: str) -> pd.Series:
        """Symbols of column ``name``, stripped; an empty cell is an error."""
        names = raw.astype(str).str.strip()
        blank = raw.isna() | (names == "")
        self.check_rows(blank, lambda i: f"missing symbol in column {name!r}")
        return names.astype(object)

    def numbers(self, raw: pd.Series) -> pd.Series:
        """Cells as float64; a cell that is present but not a finite number is an error."""
        if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
            values = raw.astype(np.float64)
        else:
            values = pd.to_numeric(raw, errors="coerce").astype(np.float64)
        bad = raw.notna() & ~np.isfinite(values)
        self.check_rows(bad, lambda i: f"non-numeric value {raw.loc[i]!r} in column {raw.name!r}")
        return values

    # -- checks -------------------------------------------------------------------------------

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

    def check_duplicates(self, rows: pd.DataFrame, what: str) -> None:
        """No two rows for one (date, symbol)."""
        duplicated = rows.duplicated(["date", "symbol"], keep="first")

        def describe(i: Any) -> str:
            day, sym = rows.at[i, "date"], rows.at[i, "symbol"]
            same = (rows["date"] == day) & (rows["symbol"] == sym)
            earlier = self.where(rows.index[same.to_numpy()][0])
            return f"duplicate {what} for {sym} on {day:%Y-%m-%d} (first at {earlier})"

        self.check_rows(duplicated, describe)


class _BarFile(_FileChecker):
    """A bars file: its columns named by :class:`ColumnMap`, its rows checked as bars."""

    def __init__(self, path: Path, fmt: str, config: FilesSourceConfig) -> None:
        super().__init__(path, fmt, config.date_format, config.delimiter)
        self.columns: ColumnMap = config.columns

    def read(self, need_symbol: bool) -> tuple[pd.DataFrame, tuple[str, ...]]:
        """The file's rows restricted to mapped columns, and the optional fields it lacks."""
        cols = self.columns
        fields = ("date", "symbol", *NUMERIC_FIELDS, "delisted")
        wanted = [name for f in fields if (name := getattr(cols, f)) is not None]
        required = ["date", "close"]
        if need_symbol:
            required.insert(1, "symbol")
        required += [f for f in ("adj_close", "delisted") if getattr(cols, f) is not None]
        raw, present = self.read_columns(
            wanted, [(getattr(cols, f), f"files.columns.{f}") for f in required]
        )
        missing = tuple(f for f in OPTIONAL_FIELDS if getattr(cols, f) not in present)
        return raw, missing

    def validate(self, raw: pd.DataFrame, symbol: str | None) -> pd.DataFrame:
        """Typed rows (``date``, ``symbol``, prices, volume, ``adj_close``, ``delisted``),
        index = position."""
        cols = self.columns
        out = pd.DataFrame(index=raw.index)
        out["date"] = self.dates(raw[cols.date], cols.date)
        out["symbol"] = self.symbols(raw[cols.symbol], cols.symbol) if symbol is None else symbol

        for field in NUMERIC_FIELDS:
            name = getattr(cols, field)
            if name is not None and name in raw.columns:
                out[field] = self.numbers(raw[name])
            else:
                out[field] = np.nan
        if cols.delisted is not None:
            out["delisted"] = self.dates(raw[cols.delisted], cols.delisted, required=False)

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
        self.check_duplicates(out, "row")
        return out


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


def _known_rows(
    rows: pd.DataFrame, known: set[str], path: Path, what: str, stacklevel: int
) -> pd.DataFrame:
    """``rows`` of the symbols in ``known``, with a warning naming ``path`` and the others
    (``stacklevel`` points it at the caller of the source)."""
    unknown = sorted(set(rows["symbol"]) - known)
    if unknown:
        warnings.warn(
            f"{path}: no bars for {_named(unknown)}; their {what} are ignored",
            UserWarning,
            stacklevel=stacklevel,
        )
    return rows.loc[rows["symbol"].isin(known)]

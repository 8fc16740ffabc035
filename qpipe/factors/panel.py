"""Factor panels: bars in, one ``xarray.Dataset`` of factors out, on adjusted prices.

``compute`` is the notebook-friendly entry point. Everything is strictly windowed, so computing
sessions ``[a, b]`` needs only the bars of ``[a - lookback, b]`` (plus every corporate action
up to ``b``, which forward adjustment accumulates) and gives exactly the values of a full
computation.

Windows count calendar sessions: given the trading calendar, the panels' dates are all of its
sessions from the first to the last bar, so a session missing from the data is an all-NaN row
inside every window that spans it (like a halted symbol's missing day), never skipped.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR, DateLike, TradingCalendar, to_date
from qpipe.data.schema import ACTION_COLUMNS, MarketData, empty_frame
from qpipe.factors.inputs import FactorInputs
from qpipe.factors.registry import Factor, FactorLibrary


def _pivot(
    frame: pd.DataFrame, column: str, cells: tuple[np.ndarray, np.ndarray], shape: tuple[int, int]
) -> np.ndarray:
    """``frame[column]`` as a dense (date, symbol) float64 array at ``cells`` (the row and
    column of each frame row), NaN where no row."""
    out = np.full(shape, np.nan)
    out[cells] = frame[column].to_numpy(dtype=np.float64)
    return out


def _action_steps(
    actions: pd.DataFrame, dates: pd.DatetimeIndex, symbols: pd.Index
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The columns with actions up to the last of ``dates``, and per (date, such column) the
    log price and log share multipliers ``sum(-log factor_e)`` and ``sum(log split_ratio_e)``
    over ex-dates ``e <= date``."""
    none = np.empty(0, np.intp), np.zeros((len(dates), 0)), np.zeros((len(dates), 0))
    if len(actions) == 0 or len(dates) == 0:
        return none
    acts = actions.loc[actions["symbol"].isin(symbols) & (actions["date"] <= dates[-1])]
    if len(acts) == 0:
        return none
    # Row of the first grid date on or after each ex-date.
    rows = dates.searchsorted(acts["date"].to_numpy(), side="left")
    columns, which = np.unique(symbols.get_indexer(acts["symbol"]), return_inverse=True)
    step_price = np.zeros((len(dates), len(columns)))
    step_shares = np.zeros_like(step_price)
    np.add.at(step_price, (rows, which), -np.log(acts["factor"].to_numpy(dtype=np.float64)))
    np.add.at(step_shares, (rows, which), np.log(acts["split_ratio"].to_numpy(dtype=np.float64)))
    return columns, np.cumsum(step_price, axis=0), np.cumsum(step_shares, axis=0)


def forward_multipliers(
    actions: pd.DataFrame, dates: pd.DatetimeIndex, symbols: pd.Index
) -> tuple[np.ndarray, np.ndarray]:
    """Per (date, symbol): the price multiplier ``prod(1 / factor_e)`` and the share multiplier
    ``prod(split_ratio_e)`` over every ex-date ``e <= date`` in ``actions``.

    Actions dated before the first of ``dates`` count from the start (they are folded into the
    first row); actions between grid dates count from the next grid date on.
    """
    price = np.ones((len(dates), len(symbols)))
    shares = np.ones((len(dates), len(symbols)))
    columns, log_price, log_shares = _action_steps(actions, dates, symbols)
    price[:, columns] = np.exp(log_price)
    shares[:, columns] = np.exp(log_shares)
    return price, shares


def session_grid(
    dates: pd.Series | pd.DatetimeIndex, calendar: TradingCalendar | None
) -> tuple[pd.DatetimeIndex, np.ndarray]:
    """The date axis of panels over bars dated ``dates``, and each date's row on it.

    With ``calendar``, the axis is every session of the calendar from the first to the last
    of ``dates`` (sessions without a bar included); a date that is not a session is an error
    naming it. Without, the axis is the distinct ``dates`` themselves (right only for data
    with no missing session).
    """
    codes, values = pd.factorize(dates, sort=True)
    if (codes < 0).any():
        raise ValueError(f"{int((codes < 0).sum())} bars have no date")
    seen = pd.DatetimeIndex(values, name="date")
    if calendar is None or len(seen) == 0:
        return seen, codes
    first, last = seen[0].date(), seen[-1].date()
    if first < calendar.start:
        calendar = calendar.from_start(first)
    sessions = pd.DatetimeIndex(calendar.sessions_index(first, last), name="date")
    rows = sessions.get_indexer(seen)
    if (rows < 0).any():
        bad = seen[rows < 0]
        shown = ", ".join(f"{d:%Y-%m-%d}" for d in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        raise ValueError(
            f"bars dated {shown}{more}: not {calendar.exchange} sessions "
            f"(the calendar's sessions run {calendar.start} to {calendar.end})"
        )
    return sessions, rows[codes]


def build_inputs(
    bars: pd.DataFrame,
    actions: pd.DataFrame | None = None,
    sectors: Mapping[str, str] | None = None,
    *,
    calendar: TradingCalendar | None = None,
    sessions_per_year: float | None = None,
) -> FactorInputs:
    """Forward-adjusted input panels on the grid of ``bars``' sessions and symbols.

    ``bars`` has the contract columns (open/high/low/volume may be NaN; an optional ``vwap``
    column is used when present). ``actions`` may reach further back than ``bars``. The dates
    are ``calendar``'s sessions from the first to the last bar (see :func:`session_grid`; a
    session with no bar is a row of NaN, so windows count calendar sessions), or the bars' own
    dates when ``calendar`` is None. ``sessions_per_year`` annualises the factors' volatilities
    (None: the calendar's :attr:`~qpipe.calendars.TradingCalendar.sessions_per_year`, else
    :data:`~qpipe.calendars.DEFAULT_SESSIONS_PER_YEAR`).
    """
    dates, date_codes = session_grid(bars["date"], calendar)
    symbol_codes, symbol_values = pd.factorize(bars["symbol"].astype(str), sort=True)
    symbols = pd.Index(symbol_values, name="symbol")
    cells, shape = (date_codes, symbol_codes), (len(dates), len(symbols))
    actions = empty_frame(ACTION_COLUMNS) if actions is None else actions
    # Only the columns with actions are multiplied (in place): no dense multiplier panels.
    columns, log_price, log_shares = _action_steps(actions, dates, symbols)
    price_mult, share_mult = np.exp(log_price), np.exp(log_shares)

    def adjusted(column: str) -> np.ndarray:
        values = _pivot(bars, column, cells, shape)
        values[:, columns] *= price_mult
        return values

    o, h, lo = adjusted("open"), adjusted("high"), adjusted("low")
    raw_close = _pivot(bars, "close", cells, shape)
    c = raw_close.copy()
    c[:, columns] *= price_mult
    volume = _pivot(bars, "volume", cells, shape)
    dollar_volume = np.multiply(raw_close, volume, out=raw_close)
    volume[:, columns] /= share_mult
    if "vwap" in bars.columns and bars["vwap"].notna().any():
        vwap = adjusted("vwap")
    else:
        vwap = np.add(h, lo)
        vwap += c
        vwap /= 3.0
    returns = np.empty_like(c)
    returns[0] = np.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        np.divide(c[1:], c[:-1], out=returns[1:])
    returns[1:] -= 1.0
    labels = np.array([(sectors or {}).get(s) or "" for s in symbols], dtype=object)
    coords = {"date": dates, "symbol": symbols}

    def panel(values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values, coords=coords, dims=("date", "symbol"))

    return FactorInputs(
        open=panel(o),
        high=panel(h),
        low=panel(lo),
        close=panel(c),
        volume=panel(volume),
        vwap=panel(vwap),
        returns=panel(returns),
        dollar_volume=panel(dollar_volume),
        sector=xr.DataArray(labels, coords={"symbol": symbols}, dims=("symbol",)),
        sessions_per_year=_sessions_per_year(sessions_per_year, calendar),
    )


def _sessions_per_year(given: float | None, calendar: TradingCalendar | None) -> float:
    if given is not None:
        return given
    return calendar.sessions_per_year if calendar is not None else DEFAULT_SESSIONS_PER_YEAR


def default_library() -> FactorLibrary:
    """Every built-in factor: the classic ones and the Alpha101 subset."""
    from qpipe.factors.alpha101 import ALPHA101
    from qpipe.factors.classic import CLASSIC

    return CLASSIC.merged(ALPHA101)


def compute(
    bars: pd.DataFrame | MarketData,
    names: Sequence[str] | None = None,
    start: DateLike | None = None,
    end: DateLike | None = None,
    *,
    actions: pd.DataFrame | None = None,
    library: FactorLibrary | None = None,
    sectors: Mapping[str, str] | None = None,
    workers: int | None = None,
    calendar: TradingCalendar | None = None,
    sessions_per_year: float | None = None,
) -> xr.Dataset:
    """Factor panels for ``names`` (None: the whole library) on dates ``[start, end]``.

    ``bars`` is a long frame (or :class:`MarketData` with its actions); the history before
    ``start`` that it holds is used as look-back (each factor reads only its own declared
    look-back of it, rounded up to a power of two), and a look-back longer than the history
    gives NaN. The result has one float64 variable per factor over dims ``(date, symbol)``;
    its dates are ``calendar``'s sessions from the first to the last bar (None: the bars' own
    dates), so windows count calendar sessions and a session without bars is a NaN row.

    ``sessions_per_year`` annualises volatilities (None: the calendar's
    :attr:`~qpipe.calendars.TradingCalendar.sessions_per_year`, else 252).

    Factors run on ``workers`` threads (None: one per available core; the kernels release
    the GIL), so factor functions must not modify their inputs; results do not depend on
    ``workers``.
    """
    if isinstance(bars, MarketData):
        bars, actions = bars.bars, bars.actions if actions is None else actions
    library = library or default_library()
    chosen = list(names) if names is not None else library.names()
    factors = [library[n] for n in chosen]
    inputs = build_inputs(
        bars, actions, sectors, calendar=calendar, sessions_per_year=sessions_per_year
    )
    lo = pd.Timestamp(to_date(start)) if start is not None else None
    hi = pd.Timestamp(to_date(end)) if end is not None else None

    first = 0 if lo is None else int(inputs.close.indexes["date"].searchsorted(lo))

    def one(factor: Factor) -> xr.DataArray:
        # History from a power of two at least the look-back: few distinct input slices.
        history = 1 << max(0, factor.lookback - 1).bit_length() if factor.lookback else 0
        values = factor.fn(inputs.since(first - history))
        return values.astype(np.float64, copy=False).sel(date=slice(lo, hi))

    n_workers = min(len(factors), workers or available_cores())
    # Panels of one computation share their grid: no silent alignment (and no alignment cost).
    with xr.set_options(arithmetic_join="exact"):
        if n_workers <= 1:
            results = [one(f) for f in factors]
        else:
            with ThreadPoolExecutor(n_workers, thread_name_prefix="qpipe-factor") as pool:
                results = list(pool.map(one, factors))
    return xr.Dataset({f.name: r for f, r in zip(factors, results, strict=True)})


def available_cores() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_lookback(library: FactorLibrary, names: Iterable[str] | None = None) -> int:
    """The longest look-back among ``names`` (None: all)."""
    chosen = library.names() if names is None else list(names)
    return max((library[n].lookback for n in chosen), default=0)

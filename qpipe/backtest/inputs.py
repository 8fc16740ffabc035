"""The engine's inputs from lake frames: raw bars with corporate actions as a Dataset, and
target weights from a strategy's signal rows."""

from __future__ import annotations

from collections.abc import Mapping

import bottleneck as bn
import numpy as np
import pandas as pd
import xarray as xr

from qpipe.data.schema import MarketData

BAR_FIELDS = ("open", "high", "low", "close", "volume")


def bars_dataset(market: MarketData) -> xr.Dataset:
    """Raw (as traded) bars on a ``(date, symbol)`` grid, NaN where no bar, with
    ``split_ratio`` (1 = none) and ``dividend`` (0 = none) on each ex-date of the grid
    (actions between grid dates count on the next grid date)."""
    bars = market.bars
    date_codes, date_values = pd.factorize(bars["date"], sort=True)
    symbol_codes, symbol_values = pd.factorize(bars["symbol"].astype(str), sort=True)
    dates = pd.DatetimeIndex(date_values, name="date")
    symbols = pd.Index(symbol_values, name="symbol")
    shape = (len(dates), len(symbols))
    data = {}
    for field in BAR_FIELDS:
        values = np.full(shape, np.nan)
        values[date_codes, symbol_codes] = bars[field].to_numpy(dtype=np.float64)
        data[field] = (("date", "symbol"), values)
    split = np.ones(shape)
    dividend = np.zeros(shape)
    acts = market.actions
    if len(acts) and len(dates):
        acts = acts.loc[acts["symbol"].isin(symbols) & (acts["date"] <= dates[-1])]
        acts = acts.loc[acts["date"] > dates[0]]  # the grid starts after earlier actions
        rows = dates.searchsorted(acts["date"].to_numpy(), side="left")
        cols = symbols.get_indexer(acts["symbol"])
        np.multiply.at(split, (rows, cols), acts["split_ratio"].to_numpy(dtype=np.float64))
        np.add.at(dividend, (rows, cols), acts["dividend"].to_numpy(dtype=np.float64))
    data["split_ratio"] = (("date", "symbol"), split)
    data["dividend"] = (("date", "symbol"), dividend)
    return xr.Dataset(data, coords={"date": dates, "symbol": symbols})


def weights_panel(signals: pd.DataFrame) -> xr.DataArray:
    """The ``target_weight`` column of signal rows (unique per date and symbol) as a
    ``(date, symbol)`` panel (NaN where no row or no decision)."""
    date_codes, date_values = pd.factorize(signals["date"], sort=True)
    symbol_codes, symbol_values = pd.factorize(signals["symbol"].astype(str), sort=True)
    values = np.full((len(date_values), len(symbol_values)), np.nan)
    values[date_codes, symbol_codes] = signals["target_weight"].to_numpy(dtype=np.float64)
    return xr.DataArray(
        values,
        coords={
            "date": pd.DatetimeIndex(date_values, name="date"),
            "symbol": pd.Index(symbol_values, dtype=object, name="symbol"),
        },
        dims=("date", "symbol"),
    )


def delisting_dates(instruments: pd.DataFrame) -> pd.Series:
    """The declared delistings of an instruments frame: its ``last_date`` (the last session
    the instrument trades) by symbol, for the symbols that have one (NaT = none declared)."""
    declared = instruments.loc[instruments["last_date"].notna(), ["symbol", "last_date"]]
    return pd.Series(
        pd.DatetimeIndex(declared["last_date"]).to_numpy(),
        index=pd.Index(declared["symbol"].astype(str), name="symbol"),
        name="last_date",
    )


def after_delisting(
    dates: pd.DatetimeIndex, symbols: pd.Index, delistings: pd.Series | Mapping[str, object] | None
) -> np.ndarray:
    """``(date, symbol)`` mask of the sessions after each symbol's declared delisting
    (``delistings``: date by symbol; missing or NaT = none declared)."""
    after = np.zeros((len(dates), len(symbols)), dtype=bool)
    if delistings is None or len(delistings) == 0:
        return after
    last = pd.Series(delistings, dtype=object).reindex(symbols)
    last = pd.to_datetime(last, errors="raise").to_numpy(dtype="datetime64[ns]")
    after[:] = dates.to_numpy()[:, None] > last[None, :]  # NaT compares False: never
    return after


def total_return_index(
    bars: xr.Dataset, delistings: pd.Series | Mapping[str, object] | None = None
) -> xr.DataArray:
    """Per symbol, the value of one share bought at its first close with every dividend
    reinvested, on the ``(date, symbol)`` grid of ``bars`` (raw ``close``, ``split_ratio``
    and ``dividend`` by ex-date, as :func:`bars_dataset` gives them).

    - NaN before the symbol's first bar; the first bar's close there.
    - From then on defined on every session: on a session with a close ``t`` whose last
      earlier close was at ``s`` (``s = t - 1`` without a halt),
      ``TR_t = TR_s x S(s, t] x (close_t + sum_{u in (s, t]} dividend_u / S(u, t]) /
      close_s``, where ``S(a, b] = prod_{v in (a, b]} split_ratio_v`` is the split ratio
      of the ex-dates in ``(a, b]`` (1 when none): splits during a halt are applied, and the
      dividends of the halt's ex-dates (each per share of its ex-date) are expressed per
      share of the resumption day and reinvested at its close. Without a halt this is
      ``TR_t = TR_{t-1} x split_t x (close_t + dividend_t) / close_{t-1}``: dividends are
      reinvested at the close of their ex-date (the engine's accounting; it differs from the
      backward adjustment of ``adjusted_prices``, which reinvests at ``previous close -
      dividend``).
    - On a session without a close (a halt, or after the last bar with no delisting
      declared) it carries the last value; actions on those sessions count at the next close.
    - After a declared delisting (``delistings``: date by symbol, the last session it
      trades; NaT or missing = none) it is NaN.
    """
    close = np.asarray(bars["close"].transpose("date", "symbol").values, dtype=np.float64)
    split = _grid(bars, "split_ratio", 1.0, close.shape)
    dividend = _grid(bars, "dividend", 0.0, close.shape)
    traded = ~np.isnan(close)
    # Shares held per share held at the start, and the cash their dividends paid so far.
    shares = np.cumprod(split, axis=0)
    paid = np.cumsum(dividend * shares, axis=0)
    value = shares * close  # NaN without a close
    # The value and the dividends paid at the last close before each session.
    last_value = np.full_like(value, np.nan)
    last_value[1:] = bn.push(value, axis=0)[:-1]
    last_paid = np.full_like(paid, np.nan)
    last_paid[1:] = bn.push(np.where(traded, paid, np.nan), axis=0)[:-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        growth = (value + (paid - last_paid)) / last_value
    growth = np.where(traded & ~np.isnan(last_value), growth, 1.0)
    listed = np.cumsum(traded, axis=0) > 0  # from the first bar on
    index = np.where(listed, _first_rows(close, traded), np.nan) * np.cumprod(growth, axis=0)
    dates = pd.DatetimeIndex(bars.indexes["date"])
    symbols = pd.Index(bars.indexes["symbol"])
    index[after_delisting(dates, symbols, delistings)] = np.nan
    return xr.DataArray(index, coords={"date": dates, "symbol": symbols}, dims=("date", "symbol"))


def _grid(bars: xr.Dataset, name: str, default: float, shape: tuple[int, int]) -> np.ndarray:
    """Variable ``name`` of ``bars`` as a ``(date, symbol)`` array (``default`` where it is
    absent or NaN)."""
    if name not in bars:
        return np.full(shape, default)
    values = np.asarray(bars[name].transpose("date", "symbol").values, dtype=np.float64)
    return np.where(np.isnan(values), default, values)


def _first_rows(close: np.ndarray, traded: np.ndarray) -> np.ndarray:
    """Each column's first close (NaN for a column without one), broadcast to every row."""
    first = np.argmax(traded, axis=0)
    values = close[first, np.arange(close.shape[1])]
    return np.broadcast_to(values, close.shape)

"""The engine's inputs from lake frames: raw bars with corporate actions as a Dataset, and
target weights from a strategy's signal rows."""

from __future__ import annotations

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


def total_return_index(bars: xr.Dataset) -> xr.DataArray:
    """Per symbol, the value of one share bought at the first close with every dividend
    reinvested at the close of its ex-date: ``TR_t = TR_{t-1} x split_t x (close_t +
    dividend_t) / close_{t-1}`` (the engine's accounting; it differs from the backward
    adjustment of ``adjusted_prices``, which reinvests at ``previous close - dividend``)."""
    close = bars["close"].transpose("date", "symbol").values
    growth = np.ones_like(close)
    growth[1:] = (
        bars["split_ratio"].values[1:] * (close[1:] + bars["dividend"].values[1:]) / close[:-1]
    )
    index = np.cumprod(growth, axis=0) * close[0]
    return xr.DataArray(index, coords=bars["close"].transpose("date", "symbol").coords,
                        dims=("date", "symbol"))  # fmt: skip

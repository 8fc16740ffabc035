"""The engine started from given positions and cash (``run(initial_positions=...,
initial_cash=...)``), checked against hand-computed books."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine

DATES = pd.DatetimeIndex(["2024-01-02", "2024-01-03"], name="date")
SYMBOLS = pd.Index(["A", "B", "C"], name="symbol")


def _bars(close: list[list[float]]) -> xr.Dataset:
    values = np.array(close, dtype=np.float64)
    panel = (("date", "symbol"), values)
    return xr.Dataset(
        {"open": panel, "close": panel, "volume": (("date", "symbol"), np.full_like(values, 1e6))},
        coords={"date": DATES, "symbol": SYMBOLS},
    )


def _weights(row: list[float]) -> xr.DataArray:
    values = np.full((2, 3), np.nan)
    values[1] = row
    return xr.DataArray(values, coords={"date": DATES, "symbol": SYMBOLS}, dims=("date", "symbol"))


def test_starts_from_the_given_book_and_trades_at_the_close():
    # C is halted on the second session: held 4 shares, marked at its first close 5.
    bars = _bars([[10.0, 20.0, 5.0], [12.0, 20.0, np.nan]])
    cfg = BacktestConfig(fill="close", commission_bps=10.0, slippage_bps=0.0)
    result = BacktestEngine(cfg).run(
        bars, _weights([0.5, 0.25, np.nan]), initial_positions={"A": 10.0, "C": 4.0},
        initial_cash=100.0,
    )  # fmt: skip
    # Session 1: nothing decided; NAV = 100 + 10 x 10 + 4 x 5.
    assert result.equity.iloc[0] == pytest.approx(220.0)
    # Session 2: V = 100 + 10 x 12 + 4 x 5 = 240; A -> 120 / 12 = 10 shares (no order),
    # B -> 60 / 20 = 3 shares bought for 60 + 0.06 fee.
    pos = result.positions.iloc[-1]
    assert pos["A"] == pytest.approx(10.0)
    assert pos["B"] == pytest.approx(3.0)
    assert pos["C"] == pytest.approx(4.0)
    assert result.daily["cash"].iloc[-1] == pytest.approx(100.0 - 60.0 - 0.06)
    assert result.equity.iloc[-1] == pytest.approx(240.0 - 0.06)


def test_default_is_all_cash_and_bad_positions_are_refused():
    bars = _bars([[10.0, 20.0, 5.0], [12.0, 20.0, 5.0]])
    engine = BacktestEngine(BacktestConfig(fill="close", initial_cash=1000.0))
    plain = engine.run(bars, _weights([0.5, 0.5, 0.0]))
    same = engine.run(bars, _weights([0.5, 0.5, 0.0]), initial_positions={}, initial_cash=1000.0)
    pd.testing.assert_series_equal(plain.equity, same.equity)
    with pytest.raises(ValueError, match="initial_positions: symbols not in the bars: Z"):
        engine.run(bars, _weights([0.5, 0.5, 0.0]), initial_positions={"Z": 1.0})
    with pytest.raises(ValueError, match="initial_positions: shares must be finite"):
        engine.run(bars, _weights([0.5, 0.5, 0.0]), initial_positions={"A": np.nan})

"""Saved backtests: what is written to the lake reads back as the same result."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.store import load_output, load_result, save_result
from qpipe.data.query import connect
from qpipe.strategies.risk import StopLoss


def _result():
    rng = np.random.default_rng(3)
    dates = pd.bdate_range("2024-01-02", periods=40, name="date")
    close = 20 * np.exp(np.cumsum(rng.normal(0, 0.04, (40, 4)), axis=0))
    dims = ("date", "symbol")
    bars = xr.Dataset(
        {"open": (dims, close), "close": (dims, close), "volume": (dims, np.full((40, 4), 1e6))},
        coords={"date": dates, "symbol": ["A", "B", "C", "D"]},
    )
    w = np.full((40, 4), np.nan)
    w[::5] = [0.3, 0.3, 0.3, 0.0]
    weights = xr.DataArray(w, coords=bars.coords, dims=dims)
    result = BacktestEngine(BacktestConfig(commission_bps=10)).run(
        bars, weights, stop_loss=StopLoss(stop=0.05)
    )
    return result, pd.Series(close[:, 0], index=dates, name="A")


def test_saved_result_reads_back(tmp_path):
    result, bench = _result()
    assert not result.risk_events.empty  # the stop fired: its events are saved too
    save_result(tmp_path, "s", result, bench)
    back, back_bench = load_result(tmp_path, "s")
    pd.testing.assert_series_equal(back.equity, result.equity, check_freq=False)
    pd.testing.assert_series_equal(
        back_bench, bench.rename("benchmark").rename_axis("date"), check_freq=False
    )
    held = result.positions.loc[:, (result.positions != 0).any()]
    pd.testing.assert_frame_equal(
        back.positions, held, check_freq=False, check_names=False, check_column_type=False
    )
    pd.testing.assert_frame_equal(
        back.fills.astype({c: str for c in ("symbol", "side", "reason")}),
        result.fills.astype({c: str for c in ("symbol", "side", "reason")}),
    )
    pd.testing.assert_frame_equal(back.daily, result.daily, check_freq=False)
    assert back.metrics == pytest.approx(result.metrics, nan_ok=True)
    assert list(back.risk_events["reason"]) == list(result.risk_events["reason"])
    assert back.warnings == result.warnings == []
    con = connect(tmp_path)
    rows = con.execute("select count(*) from backtest_risk_events").fetchone()[0]
    con.close()
    assert rows == len(result.risk_events)


def test_warnings_are_saved_read_back_and_queryable(tmp_path):
    # Close-only bars: every next_open order finds no price, the backtest never trades.
    dates = pd.bdate_range("2024-01-02", periods=5, name="date")
    dims = ("date", "symbol")
    bars = xr.Dataset(
        {
            "open": (dims, np.full((5, 2), np.nan)),
            "close": (dims, np.full((5, 2), 10.0)),
            "volume": (dims, np.full((5, 2), 1e6)),
        },
        coords={"date": dates, "symbol": ["A", "B"]},
    )
    weights = xr.DataArray(np.full((5, 2), 0.5), coords=bars.coords, dims=dims)
    result = BacktestEngine().run(bars, weights)
    assert result.warnings == [
        "no fills: 8 orders found no next_open price (the data has no opens? use "
        "backtest.fill: next_close or close)"
    ]
    save_result(tmp_path, "s", result)
    back, _ = load_result(tmp_path, "s")
    assert back.warnings == result.warnings
    pd.testing.assert_frame_equal(back.daily, result.daily, check_freq=False)
    con = connect(tmp_path)
    rows = con.execute("select strategy, warning from backtest_warnings").fetchall()
    con.close()
    assert rows == [("s", result.warnings[0])]


def test_missing_backtest_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="qpipe backtest"):
        load_result(tmp_path, "nope")
    with pytest.raises(ValueError, match="unknown backtest output"):
        load_output(tmp_path, "nope", "trades")


def test_a_result_saved_without_warnings_reads_back_with_none(tmp_path):
    # Results saved before backtests kept warnings have no warnings file: they still load.
    dates = pd.bdate_range("2024-01-02", periods=3, name="date")
    dims = ("date", "symbol")
    price = np.full((3, 1), 10.0)
    bars = xr.Dataset(
        {"open": (dims, price), "close": (dims, price), "volume": (dims, price * 1e6)},
        coords={"date": dates, "symbol": ["A"]},
    )
    weights = xr.DataArray([[1.0], [np.nan], [np.nan]], coords=bars.coords, dims=dims)
    result = BacktestEngine().run(bars, weights)
    folder = save_result(tmp_path, "s", result)
    (folder / "warnings.parquet").unlink()
    back, _ = load_result(tmp_path, "s")
    assert back.warnings == []
    pd.testing.assert_series_equal(back.equity, result.equity, check_freq=False)
    with pytest.raises(FileNotFoundError, match="no backtest of 'other'"):
        load_result(tmp_path, "other")

"""The tear sheet: one self-contained HTML file with every chart, the metrics and the trades."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.analytics.charts import equity_chart, monthly_heatmap
from qpipe.analytics.report import write_report
from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine


def small_result():
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2023-01-02", periods=300)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (300, 3)), axis=0))
    dims = ("date", "symbol")
    bars = xr.Dataset(
        {
            "open": (dims, close),
            "close": (dims, close),
            "volume": (dims, np.full(close.shape, 1e6)),
        },
        coords={"date": dates, "symbol": ["A", "B", "C"]},
    )
    weights = xr.DataArray(np.full(close.shape, 0.3), coords=bars.coords, dims=dims)
    result = BacktestEngine(BacktestConfig(commission_bps=10)).run(bars, weights)
    return result, pd.Series(close[:, 0], index=dates, name="A")


def test_tear_sheet_is_self_contained_with_every_section(tmp_path):
    result, benchmark = small_result()
    path = write_report(tmp_path / "out" / "r.html", "demo", result, benchmark)
    text = path.read_text()
    assert text.startswith("<!DOCTYPE html>")
    assert len(re.findall(r'class="plotly-graph-div"', text)) == 5
    for title in ("Equity", "Drawdown", "Monthly returns", "Rolling Sharpe", "Exposure"):
        assert title in text
    assert "<h2>Metrics</h2>" in text and "sharpe" in text and "<h2>Largest trades</h2>" in text
    # Offline: plotly.js is inlined once, nothing is fetched.
    assert "<script src=" not in text
    assert text.count("plotly.js v") >= 1


def test_charts_hold_the_numbers():
    result, benchmark = small_result()
    fig = equity_chart(result.equity, benchmark, log=True)
    assert fig.layout.yaxis.type == "log"
    np.testing.assert_allclose(fig.data[0].y, result.equity.to_numpy())
    rebased = fig.data[1].y
    assert rebased[0] == result.equity.iloc[0]  # the benchmark starts where the equity does
    heat = monthly_heatmap(result.equity)
    eq = result.equity
    first = eq[(eq.index.year == 2023) & (eq.index.month == 1)]
    assert np.isclose(heat.data[0].z[0][0], (first.iloc[-1] / first.iloc[0] - 1) * 100)


def test_eda_charts_hold_the_numbers():
    from qpipe.analytics.charts import (
        correlation_heatmap,
        decay_chart,
        ic_chart,
        quantile_chart,
        turnover_chart,
    )
    from qpipe.analytics.factor_eda import factor_report

    rng = np.random.default_rng(1)
    dates = pd.bdate_range("2024-01-02", periods=80)
    prices = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, (80, 15)), axis=0))
    report = factor_report(rng.normal(size=(80, 15)), prices, dates, quantiles=3, lags=(1, 5))
    fig = ic_chart(report.rank_ic, window=10)
    assert len(fig.data) == 2 * 3  # points and rolling mean per horizon
    np.testing.assert_allclose(fig.data[0].y, report.rank_ic[1].to_numpy())
    np.testing.assert_allclose(
        fig.data[1].y, report.rank_ic[1].rolling(10, min_periods=5).mean().to_numpy()
    )
    bars = quantile_chart(report.quantile_mean)
    np.testing.assert_allclose(bars.data[1].y, report.quantile_mean[5].to_numpy() * 1e4)
    assert list(bars.data[0].x) == ["1", "2", "3"]
    decay = decay_chart(report.autocorrelation)
    assert list(decay.data[0].x) == [1, 5]
    matrix = pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=["a", "b"], columns=["a", "b"])
    heat = correlation_heatmap(matrix)
    assert heat.data[0].zmin == -1.0 and list(heat.data[0].x) == ["a", "b"]
    result, _ = small_result()
    turn = turnover_chart(result.daily)
    np.testing.assert_allclose(turn.data[0].y, result.daily["turnover"].to_numpy())

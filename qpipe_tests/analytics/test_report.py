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

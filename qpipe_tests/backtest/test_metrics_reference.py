"""qpipe's performance metrics against an independent library, empyrical (empyrical-reloaded),
on a backtest's daily returns over messy data and on random curves, with 252 and an
XSHG-like 242 sessions a year. Where the conventions differ, the comparison states it:
empyrical's maximum drawdown is negative (qpipe's a positive fraction), its ``excess_sharpe``
is the information ratio before annualisation, and it has no tracking error (the
annualised volatility of the active returns)."""

from __future__ import annotations

import empyrical as ep
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.metrics import performance_metrics
from qpipe.backtest.runner import EQUAL_WEIGHT, benchmark_series

TOL = {"rel": 1e-9, "abs": 1e-12}
RETURNS = st.floats(-0.2, 0.2).filter(lambda x: x == 0 or abs(x) > 1e-6)
"""Daily returns, none within rounding of zero (a drawdown of 1e-16 makes Calmar a ratio of
rounding errors)."""


def messy_bars(seed: int = 5, days: int = 300, names: int = 8) -> xr.Dataset:
    """Random walks with halts mid-history and across the last sessions, a late listing, a
    name whose bars end early, splits and dividends."""
    rng = np.random.default_rng(seed)
    close = 30 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (days, names)), axis=0))
    close[rng.random(close.shape) < 0.03] = np.nan  # halts
    close[:60, 1] = np.nan  # listed late
    close[200:, 2] = np.nan  # bars end early
    close[-5:, 3] = np.nan  # halted across the last sessions
    split = np.ones_like(close)
    dividend = np.zeros_like(close)
    split[100, 4] = 2.0
    close[100:, 4] /= 2.0
    dividend[rng.random(close.shape) < 0.01] = 0.2
    dims = ("date", "symbol")
    return xr.Dataset(
        {
            "open": (dims, close * (1 + rng.normal(0, 0.003, close.shape))),
            "close": (dims, close),
            "volume": (dims, np.full(close.shape, 1e6)),
            "split_ratio": (dims, split),
            "dividend": (dims, dividend),
        },
        coords={
            "date": pd.bdate_range("2022-01-03", periods=days, name="date"),
            "symbol": [f"S{i}" for i in range(names)],
        },
    )


def monthly_weights(bars: xr.Dataset, seed: int = 6) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    w = np.full((bars.sizes["date"], bars.sizes["symbol"]), np.nan)
    for t in range(0, len(w), 21):
        row = rng.random(w.shape[1])
        w[t] = row / row.sum() * 0.95
    return xr.DataArray(w, coords=bars["close"].coords, dims=("date", "symbol"))


def empyrical_metrics(r: np.ndarray, b: np.ndarray, year: float) -> dict[str, float]:
    """The metrics empyrical has, by qpipe's names and sign conventions."""
    return {
        "sharpe": ep.sharpe_ratio(r, annualization=year),
        "sortino": ep.sortino_ratio(r, annualization=year),
        "volatility": ep.annual_volatility(r, annualization=year),
        "max_drawdown": -ep.max_drawdown(r),
        "cagr": ep.cagr(r, annualization=year),
        "calmar": ep.calmar_ratio(r, annualization=year),
        "beta": ep.beta(r, b),
        "alpha": ep.alpha(r, b, annualization=year),
        "tracking_error": ep.annual_volatility(r - b, annualization=year),
        "information_ratio": ep.excess_sharpe(r, b) * np.sqrt(year),
    }


@pytest.mark.parametrize("year", [252, 242])
def test_backtest_metrics_match_empyrical(year):
    bars = messy_bars()
    benchmark = benchmark_series(bars, EQUAL_WEIGHT, list(bars.indexes["symbol"]))
    config = BacktestConfig(commission_bps=10, slippage_bps=5, periods_per_year=year)
    result = BacktestEngine(config).run(bars, monthly_weights(bars), benchmark=benchmark)
    assert result.metrics["periods_per_year"] == year
    r = result.equity.to_numpy()
    r = r[1:] / r[:-1] - 1.0
    b = benchmark.to_numpy()
    b = b[1:] / b[:-1] - 1.0
    want = empyrical_metrics(r, b, year)
    for name, value in want.items():
        assert np.isfinite(value), name
        assert result.metrics[name] == pytest.approx(value, **TOL), name
    assert ep.sharpe_ratio(r - b, annualization=year) == pytest.approx(
        result.metrics["information_ratio"], **TOL
    )


@settings(max_examples=60, deadline=None)
@given(
    returns=st.lists(RETURNS, min_size=3, max_size=60),
    noise=st.lists(st.floats(-0.05, 0.05), min_size=60, max_size=60),
    year=st.sampled_from([252.0, 242.0, 251.375]),
)
def test_metrics_match_empyrical_on_random_curves(returns, noise, year):
    """Random returns (constant ones included) against a benchmark that moves (empyrical
    calls a benchmark variance under 1e-30 undefined, qpipe only an exactly constant one)."""
    r = np.array(returns)
    b = 0.5 * r + np.array(noise[: len(r)]) + 0.01 * np.sin(np.arange(len(r)))
    dates = pd.bdate_range("2024-01-02", periods=len(r) + 1)
    equity = pd.Series(100 * np.cumprod(np.r_[1.0, 1 + r]), index=dates)
    bench = pd.Series(50 * np.cumprod(np.r_[1.0, 1 + b]), index=dates)
    got = performance_metrics(equity, benchmark=bench, periods_per_year=year)
    # Returns recovered from the curve (what both compute from).
    r = equity.to_numpy()[1:] / equity.to_numpy()[:-1] - 1
    b = bench.to_numpy()[1:] / bench.to_numpy()[:-1] - 1
    with np.errstate(all="ignore"):
        want = empyrical_metrics(r, b, year)
    for name, value in want.items():
        # Undefined (NaN) in qpipe where empyrical gives NaN or an infinity.
        assert bool(np.isfinite(got[name])) == bool(np.isfinite(value)), name
        if np.isfinite(value):
            assert got[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name

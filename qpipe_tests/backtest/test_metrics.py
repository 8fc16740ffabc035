"""Performance metrics on hand-computed equity curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qpipe.backtest.metrics import (
    max_drawdown_duration,
    monthly_returns,
    performance_metrics,
    relative_metrics,
    sample_std,
    yearly_returns,
)


def curve(values: list[float], start: str = "2024-01-01") -> pd.Series:
    return pd.Series(values, index=pd.bdate_range(start, periods=len(values)), dtype=float)


def test_hand_computed_curve():
    eq = curve([100, 110, 99, 108.9, 120])
    r = np.array([0.10, -0.10, 0.10, 120 / 108.9 - 1])
    m = performance_metrics(eq)
    assert m["total_return"] == pytest.approx(0.20)
    assert m["cagr"] == pytest.approx(1.2 ** (252 / 4) - 1)
    assert m["volatility"] == pytest.approx(r.std(ddof=1) * np.sqrt(252))
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * np.sqrt(252))
    downside = np.sqrt(np.mean(np.minimum(r, 0) ** 2))  # only the -10%: sqrt(0.01 / 4) = 0.05
    assert downside == pytest.approx(0.05)
    assert m["sortino"] == pytest.approx(r.mean() / 0.05 * np.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(0.10)  # 110 -> 99
    assert m["max_drawdown_duration"] == 2  # 99 and 108.9 are below the 110 peak
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.10)
    assert m["hit_rate"] == pytest.approx(0.75)


def test_drawdown_duration_runs_to_the_end_when_not_recovered():
    assert max_drawdown_duration(curve([1, 2, 1.5, 1.8, 2.5, 2.4, 2.3, 2.2])) == 3
    assert max_drawdown_duration(curve([1, 2, 3])) == 0


def test_turnover_and_costs_from_daily():
    eq = curve([100, 101, 102])
    daily = pd.DataFrame({"turnover": [1.0, 0.1, 0.1], "costs": [0.5, 0.1, 0.1]}, index=eq.index)
    m = performance_metrics(eq, daily)
    assert m["avg_turnover"] == pytest.approx(0.4)
    assert m["annual_turnover"] == pytest.approx(0.4 * 252)
    assert m["total_costs"] == pytest.approx(0.7)


def test_relative_metrics_against_an_ols_reference():
    rng = np.random.default_rng(1)
    b = rng.normal(0.0004, 0.01, 300)
    r = 0.0002 + 1.5 * b + rng.normal(0, 0.002, 300)
    bench = curve(list(100 * np.cumprod(np.r_[1.0, 1 + b])))
    returns = pd.Series(r, index=bench.index[1:])
    got = relative_metrics(returns, bench)
    slope, intercept = np.polyfit(b, r, 1)
    assert got["beta"] == pytest.approx(slope, rel=1e-9)
    # The daily intercept compounded to a year (like CAGR), not multiplied by 252.
    assert got["alpha"] == pytest.approx((1 + intercept) ** 252 - 1, rel=1e-9)
    active = r - b
    assert got["tracking_error"] == pytest.approx(active.std(ddof=1) * np.sqrt(252))
    assert got["information_ratio"] == pytest.approx(
        active.mean() * 252 / (active.std(ddof=1) * np.sqrt(252))
    )


def test_annualisation_follows_periods_per_year():
    """A 242-session year (XSHG) annualises every figure with 242, not 252."""
    eq = curve([100, 101, 99.5, 102, 101, 103.5])
    r = np.array([101 / 100, 99.5 / 101, 102 / 99.5, 101 / 102, 103.5 / 101]) - 1
    bench = curve([50, 50.2, 50.1, 50.6, 50.3, 50.9])
    b = bench.to_numpy()[1:] / bench.to_numpy()[:-1] - 1
    daily = pd.DataFrame({"turnover": [1.0, 0, 0.2, 0, 0, 0.3], "costs": 0.0}, index=eq.index)
    m = performance_metrics(eq, daily, bench, periods_per_year=242)
    assert m["periods_per_year"] == 242
    mean, std = sum(r) / 5, np.sqrt(sum((x - sum(r) / 5) ** 2 for x in r) / 4)
    assert m["sharpe"] == pytest.approx(mean / std * np.sqrt(242), rel=1e-12)
    assert m["volatility"] == pytest.approx(std * np.sqrt(242), rel=1e-12)
    assert m["cagr"] == pytest.approx(1.035 ** (242 / 5) - 1, rel=1e-12)
    downside = np.sqrt(((99.5 / 101 - 1) ** 2 + (101 / 102 - 1) ** 2) / 5)
    assert m["sortino"] == pytest.approx(mean / downside * np.sqrt(242), rel=1e-12)
    assert m["annual_turnover"] == pytest.approx(1.5 / 6 * 242)
    active = r - b
    te = active.std(ddof=1)
    assert m["tracking_error"] == pytest.approx(te * np.sqrt(242), rel=1e-12)
    assert m["information_ratio"] == pytest.approx(active.mean() / te * np.sqrt(242), rel=1e-12)
    _, intercept = np.polyfit(b, r, 1)
    assert m["alpha"] == pytest.approx((1 + intercept) ** 242 - 1, rel=1e-9)
    default = performance_metrics(eq, daily, bench)
    assert default["periods_per_year"] == 252
    assert default["sharpe"] == pytest.approx(m["sharpe"] * np.sqrt(252 / 242))
    with pytest.raises(ValueError, match="periods_per_year"):
        performance_metrics(eq, periods_per_year=0)


def test_constant_curve_has_undefined_ratios():
    m = performance_metrics(curve([5, 5, 5, 5]))
    assert m["total_return"] == 0 and m["max_drawdown"] == 0
    assert np.isnan(m["sharpe"]) and np.isnan(m["sortino"]) and np.isnan(m["calmar"])
    assert np.isnan(m["hit_rate"])


def test_identical_values_have_no_dispersion():
    """pandas leaves a rounding residue on some constant series (0.1 three times gives about
    1.7e-17), which would make ratios over them arbitrary and huge."""
    same = pd.Series([0.1, 0.1, 0.1])
    assert same.std(ddof=1) != 0.0  # the residue this guards against
    assert sample_std(same) == 0.0
    assert np.isnan(sample_std(pd.Series([0.1])))
    assert sample_std(pd.Series([0.1, 0.3])) == pytest.approx(np.sqrt(0.02))
    # Beating the benchmark by exactly 0.1 every session: no tracking error, and so no
    # information ratio (not 0.1 / 1.7e-17).
    bench = curve([10, 11, 12, 13])
    b = bench.pct_change().iloc[1:]
    returns = b + 0.1
    assert ((returns - b) == 0.1).all()
    got = relative_metrics(returns, bench)
    assert got["tracking_error"] == 0.0 and np.isnan(got["information_ratio"])


def test_monthly_and_yearly_tables():
    idx = pd.to_datetime(["2023-12-28", "2023-12-29", "2024-01-31", "2024-02-29", "2024-03-01"])
    eq = pd.Series([100.0, 102.0, 96.9, 106.59, 100.0], index=idx)
    table = monthly_returns(eq)
    assert table.loc[2023, 12] == pytest.approx(0.02)  # from the first NAV
    assert table.loc[2024, 1] == pytest.approx(96.9 / 102 - 1)
    assert table.loc[2024, 2] == pytest.approx(0.10)
    assert table.loc[2024, 3] == pytest.approx(100 / 106.59 - 1)
    years = yearly_returns(eq)
    assert years[2023] == pytest.approx(0.02) and years[2024] == pytest.approx(100 / 102 - 1)

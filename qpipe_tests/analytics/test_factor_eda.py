"""Factor EDA against a plain pandas reference, date by date, on small panels with gaps and
ties, and on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from qpipe.analytics.factor_eda import (
    ICSummary,
    coverage,
    factor_report,
    forward_returns,
    information_coefficient,
    quantile_labels,
    quantile_returns,
    quantile_turnover,
    rank_autocorrelation,
    rank_correlation_matrix,
)


def panel(seed: int, days: int = 30, names: int = 12, ties: bool = False):
    rng = np.random.default_rng(seed)
    prices = 50 * np.exp(np.cumsum(rng.normal(0, 0.02, (days, names)), axis=0))
    shape = (days, names)
    factor = rng.integers(0, 4, shape).astype(float) if ties else rng.normal(size=shape)
    factor[rng.random(factor.shape) < 0.15] = np.nan
    prices[rng.random(prices.shape) < 0.05] = np.nan
    return factor, prices


def ref_corr(a: np.ndarray, b: np.ndarray, method: str) -> list[float]:
    out = []
    for x, y in zip(a, b, strict=True):
        frame = pd.DataFrame({"x": x, "y": y}).dropna()
        if len(frame) < 3 or frame["x"].nunique() < 2 or frame["y"].nunique() < 2:
            out.append(np.nan)
        elif method == "spearman":
            out.append(frame["x"].rank().corr(frame["y"].rank()))
        else:
            out.append(frame["x"].corr(frame["y"]))
    return out


def test_forward_returns_by_hand():
    prices = np.array([[10.0, 20.0], [11.0, np.nan], [12.1, 22.0]])
    np.testing.assert_allclose(
        forward_returns(prices, 1), [[0.1, np.nan], [0.1, np.nan], [np.nan, np.nan]]
    )
    two = forward_returns(prices, 2)
    np.testing.assert_allclose(two, [[0.21, 0.1], [np.nan] * 2, [np.nan] * 2])
    with pytest.raises(ValueError, match="horizon"):
        forward_returns(prices, 0)


def test_ic_by_hand():
    # A factor that orders the next returns exactly, then exactly backwards.
    factor = np.array([[1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]])
    fwd = np.array([[0.01, 0.02, 0.05, 0.09], [0.01, 0.02, 0.05, 0.09]])
    np.testing.assert_allclose(information_coefficient(factor, fwd), [1.0, -1.0])
    pearson = information_coefficient(factor, fwd, rank=False)
    assert 0.9 < pearson[0] < 1.0 and pearson[1] == pytest.approx(-pearson[0])
    summary = ICSummary.of(np.array([0.1, 0.3, np.nan]))
    assert summary.mean == pytest.approx(0.2) and summary.n == 2
    assert summary.std == pytest.approx(math.sqrt(0.02))
    assert summary.t_stat == pytest.approx(0.2 / math.sqrt(0.02) * math.sqrt(2))


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ic_matches_pandas(seed, ties):
    factor, prices = panel(seed, ties=ties)
    fwd = forward_returns(prices, 5)
    np.testing.assert_allclose(
        information_coefficient(factor, fwd), ref_corr(factor, fwd, "spearman"), atol=1e-12
    )
    np.testing.assert_allclose(
        information_coefficient(factor, fwd, rank=False),
        ref_corr(factor, fwd, "pearson"),
        atol=1e-12,
    )


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("seed", [3, 4])
def test_quantiles_and_turnover_match_pandas(seed, ties):
    q = 4
    factor, prices = panel(seed, ties=ties)
    fwd = forward_returns(prices, 1)
    got = quantile_returns(factor, fwd, q)
    labels = quantile_labels(factor, fwd, q)
    members = []
    for t in range(len(factor)):
        frame = pd.DataFrame({"f": factor[t], "r": fwd[t]}).dropna()
        bucket = np.ceil(frame["f"].rank(pct=True) * q - 1e-9).astype(int)
        want = frame["r"].groupby(bucket).mean().reindex(range(1, q + 1))
        np.testing.assert_allclose(got[t], want.to_numpy(), atol=1e-12, err_msg=f"day {t}")
        members.append(set(frame.index[bucket == q]))
        assert set(np.flatnonzero(labels[t] == q)) == members[-1]
    turnover = quantile_turnover(labels, q)
    assert np.isnan(turnover[0])
    for t in range(1, len(factor)):
        now, before = members[t], members[t - 1]
        want = len(now - before) / len(now) if now else np.nan
        np.testing.assert_allclose(turnover[t], want, atol=1e-12)


def test_rank_autocorrelation_and_coverage_match_pandas():
    factor, prices = panel(5)
    lag = 3
    got = rank_autocorrelation(factor, lag)
    assert np.isnan(got[:lag]).all()
    want = ref_corr(factor[lag:], factor[:-lag], "spearman")
    np.testing.assert_allclose(got[lag:], want, atol=1e-12)
    cov = coverage(factor, prices)
    priced = ~np.isnan(prices)
    np.testing.assert_allclose(cov, (priced & ~np.isnan(factor)).sum(axis=1) / priced.sum(axis=1))


def test_rank_correlation_matrix_matches_pandas():
    rng = np.random.default_rng(6)
    a, _ = panel(7)
    b = a * 0.5 + rng.normal(size=a.shape)  # related to a
    c, _ = panel(8, ties=True)
    got = rank_correlation_matrix([a, b, c], ["a", "b", "c"])
    ranks = [pd.DataFrame(p).rank(axis=1, pct=True).to_numpy() for p in (a, b, c)]
    want = np.eye(3)
    for i in range(3):
        for j in range(3):
            if i != j:
                want[i, j] = np.nanmean(ref_corr(ranks[i], ranks[j], "pearson"))
    np.testing.assert_allclose(got.to_numpy(), want, atol=1e-12)
    assert got.loc["a", "b"] > 0.3


def test_factor_report_holds_every_section():
    factor, prices = panel(9, days=60)
    dates = pd.bdate_range("2024-01-02", periods=60)
    report = factor_report(factor, prices, dates, quantiles=4, lags=(1, 5))
    assert list(report.ic.columns) == [1, 5, 20] and len(report.ic) == 60
    fwd = forward_returns(prices, 5)
    np.testing.assert_allclose(report.rank_ic[5], information_coefficient(factor, fwd))
    row = report.summary.loc[(5, "rank_ic")]
    assert row["mean"] == pytest.approx(np.nanmean(report.rank_ic[5]))
    assert list(report.quantile_mean.index) == [1, 2, 3, 4]
    per_q = quantile_returns(factor, fwd, 4)
    np.testing.assert_allclose(report.spread[5], per_q[:, 3] - per_q[:, 0])
    assert list(report.autocorrelation.index) == [1, 5]
    assert set(report.turnover.columns) == {"top", "bottom"}
    with pytest.raises(ValueError, match="do not align"):
        factor_report(factor, prices[:, :3], dates)

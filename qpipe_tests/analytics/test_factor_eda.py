"""Factor EDA against a plain pandas reference, date by date, on small panels with gaps and
ties, on hand-computed cases, and on a messy market's total-return index (halts, a late
listing, delistings): every listed name counts."""

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
from qpipe.analytics.factor_store import lake_factor_report
from qpipe.backtest.inputs import bars_dataset, total_return_index
from qpipe.data.lake import Lake
from qpipe_tests.backtest.test_total_return import messy_market, reference_index


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
    fwd = forward_returns(prices, 2)
    cov = coverage(factor, prices, fwd)
    for t in range(len(factor)):
        frame = pd.DataFrame({"p": prices[t], "f": factor[t], "r": fwd[t]})
        listed = frame.loc[frame["p"].notna()]
        want = listed.notna().all(axis=1).mean() if t < len(factor) - 2 else np.nan
        np.testing.assert_allclose(cov[t], want, err_msg=f"day {t}")


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


def test_messy_market_coverage_counts_every_listed_name(tmp_path):
    """Halted names (their index carried) keep a forward return, a late listing counts from
    its first bar and a delisted name stops counting after its delisting; coverage is over
    the listed names, the rank IC over the names with both values."""
    market, delistings = messy_market()
    bars = bars_dataset(market)
    prices = total_return_index(bars, delistings).transpose("date", "symbol")
    dates = pd.DatetimeIndex(prices.indexes["date"])
    symbols = list(prices.indexes["symbol"])
    rng = np.random.default_rng(11)
    factor = rng.normal(size=prices.shape)
    factor[rng.random(factor.shape) < 0.2] = np.nan
    report = factor_report(factor, prices.values, dates, horizons=(1, 2), quantiles=2, lags=(1,))
    # The reference: listing from the bars' first dates and the declared delistings, forward
    # returns from the holding loop.
    first_bar = market.bars.groupby("symbol")["date"].min()
    held = reference_index(market, delistings)
    forward = held.shift(-1) / held - 1.0
    for t, day in enumerate(dates):
        listed = [
            s
            for s in symbols
            if first_bar[s] <= day and not (s in delistings and day > delistings[s])
        ]
        valid = [s for s in listed if not np.isnan(factor[t, symbols.index(s)])]
        valid = [s for s in valid if not np.isnan(forward.at[day, s])]
        want = len(valid) / len(listed) if t < len(dates) - 1 else np.nan
        np.testing.assert_allclose(report.coverage.iloc[t], want, err_msg=f"{day.date()}")
        frame = pd.DataFrame({"f": factor[t], "r": forward.loc[day].to_numpy()}).dropna()
        ic = frame["f"].rank().corr(frame["r"].rank()) if len(frame) >= 3 else np.nan
        np.testing.assert_allclose(report.rank_ic[1].iloc[t], ic, atol=1e-12)
    # Halted B (days 2-4) and C (day 8) have a forward return; delisted D and F are listed
    # through their delisting session (day 6) only.
    assert np.isfinite(forward.loc[dates[2], "B"]) and np.isfinite(forward.loc[dates[8], "C"])
    assert np.isfinite(prices.sel(symbol="D").values[6]) and np.isnan(
        prices.sel(symbol="D").values[7]
    )


def test_lake_factor_report_ends_at_declared_delistings(tmp_path):
    """The report from a lake uses the index with the instruments' delistings: a name with a
    factor value after its delisting is not counted (it is not listed)."""
    market, delistings = messy_market()
    lake = Lake(tmp_path / "lake")
    days = sorted(market.bars["date"].unique())
    lake.write("bars", market.bars, days)
    lake.write("corporate_actions", market.actions, days)
    # A factor on every (date, symbol) of the grid, delisted names included.
    grid = pd.MultiIndex.from_product([days, sorted(market.bars["symbol"].unique())])
    factors = pd.DataFrame({"date": grid.get_level_values(0), "symbol": grid.get_level_values(1)})
    factors["f"] = np.arange(len(factors), dtype=float) % 7
    lake.write("factors", factors, days)
    tables = lake_factor_report(lake, ["f"], pd.Series(delistings), horizons=(1,), quantiles=2)
    listed = reference_index(market, delistings).notna()
    forward_known = listed & listed.shift(-1, fill_value=False)
    want = (forward_known.sum(axis=1) / listed.sum(axis=1)).iloc[:-1].mean()
    assert tables["summary"].loc[0, "coverage"] == pytest.approx(want)
    assert want < 1.0  # names delisted within the next session do not have a forward return

"""LinearWeightedStrategy: winsorize -> z-score per factor and date, signed combination
re-normalised over the factors available for a name."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpipe.strategies.base import StrategyData, Universe
from qpipe.strategies.linear import LinearWeightedStrategy
from qpipe.strategies.portfolio import EqualWeight, Portfolio, TopK

SYMBOLS = ["A", "B", "C", "D"]
DATES = pd.DatetimeIndex(["2024-03-27", "2024-03-28"], name="date")


def panel(rows: list[list[float]]) -> xr.DataArray:
    return xr.DataArray(
        np.array(rows, dtype=float),
        coords={"date": DATES, "symbol": pd.Index(SYMBOLS, name="symbol")},
        dims=("date", "symbol"),
    )


def data(**factors: xr.DataArray) -> StrategyData:
    """Bars are only a grid here (the linear score reads factors only)."""
    from qpipe.factors.inputs import FactorInputs

    close = panel([[10.0] * 4, [10.0] * 4])
    bars = FactorInputs(
        open=close, high=close, low=close, close=close, volume=close, vwap=close,
        returns=close * 0.0, dollar_volume=close,
        sector=xr.DataArray(np.array([""] * 4, dtype=object), coords={"symbol": SYMBOLS},
                            dims=("symbol",)),
    )  # fmt: skip
    instruments = pd.DataFrame({"symbol": [*SYMBOLS, "ETF"], "kind": ["stock"] * 4 + ["etf"]})
    return StrategyData(bars=bars, factors=xr.Dataset(factors), instruments=instruments)


def strategy(weights: dict[str, float], **kw: object) -> LinearWeightedStrategy:
    return LinearWeightedStrategy(
        "lin",
        weights,
        universe=Universe(kinds=("stock",)),
        portfolio=Portfolio((TopK(2), EqualWeight())),
        winsorize_q=kw.pop("winsorize_q", 0.0),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def z(values: list[float]) -> np.ndarray:
    v = np.array(values, dtype=float)
    ok = ~np.isnan(v)
    out = np.full(len(v), np.nan)
    out[ok] = (v[ok] - v[ok].mean()) / v[ok].std(ddof=0)
    return out


def test_single_factor_score_is_its_cross_sectional_zscore():
    f = panel([[1.0, 2.0, 3.0, 4.0], [4.0, 4.0, 1.0, 3.0]])
    score = strategy({"f": 1.0}).score(data(f=f))
    np.testing.assert_allclose(score.values[0], z([1, 2, 3, 4]))  # [-1.342, -0.447, ...]
    np.testing.assert_allclose(score.values[1], z([4, 4, 1, 3]))
    # A negative weight reverses the order; the magnitude of a lone weight does not matter.
    flipped = strategy({"f": -3.0}).score(data(f=f))
    np.testing.assert_allclose(flipped.values, -score.values)


def test_combination_renormalises_over_the_factors_a_name_has():
    f = panel([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0]])
    g = panel([[4.0, 3.0, np.nan, 1.0], [10.0, 10.0, 10.0, 10.0]])
    score = strategy({"f": 2.0, "g": -1.0}).score(data(f=f, g=g))
    zf, zg = z([1, 2, 3, 4]), z([4, 3, np.nan, 1])
    expected0 = (2 * zf - zg) / 3.0
    expected0[2] = zf[2]  # C has no g that day: its f z-score alone (2 * zf / 2)
    np.testing.assert_allclose(score.values[0], expected0)
    # Day 2: g is constant, so its z-score is NaN for everyone: f alone.
    np.testing.assert_allclose(score.values[1], zf)


def test_min_factors_and_universe():
    f = panel([[1.0, 2.0, np.nan, 4.0], [1.0, 2.0, 3.0, 4.0]])
    g = panel([[1.0, np.nan, np.nan, 2.0], [1.0, 2.0, 3.0, 5.0]])
    score = strategy({"f": 1.0, "g": 1.0}, min_factors=2).score(data(f=f, g=g))
    assert np.isnan(score.values[0, 1]) and np.isnan(score.values[0, 2])  # one / no factor
    assert not np.isnan(score.values[0, [0, 3]]).any()
    assert list(score.indexes["symbol"]) == SYMBOLS  # ETF is not in the universe (no data)


def test_winsorize_clips_the_outlier_before_zscoring():
    f = panel([[1.0, 2.0, 3.0, 1000.0], [1.0, 2.0, 3.0, 4.0]])
    s = strategy({"f": 1.0}, winsorize_q=0.25)
    score = s.score(data(f=f))
    # 25%/75% quantiles of [1, 2, 3, 1000] (linear): 1.75 and 252.25 -> clipped values
    np.testing.assert_allclose(score.values[0], z([1.75, 2.0, 3.0, 252.25]))


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ({}, "needs at least one factor weight"),
        ({"f": "1"}, "weight of 'f' must be a number"),
        ({"f": True}, "weight of 'f' must be a number"),
        ({"f": float("nan")}, "weight of 'f' must be a number"),
        ({"f": 0.0}, "every factor weight is 0"),
    ],
)
def test_bad_weights(weights, message):
    with pytest.raises(ValueError, match=message):
        strategy(weights)

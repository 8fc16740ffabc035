"""Operators on (date, symbol) panels: hand-computed cases, pandas references, properties."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from qpipe.factors import operators as op
from qpipe.factors.operators import OPERATORS, OperatorSpec

NAN = np.nan

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def panel(values: object, symbols: list[str] | None = None) -> xr.DataArray:
    """A (date, symbol) panel over business days from 2024-01-01; a 1-D input is one symbol."""
    a = np.asarray(values, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    symbols = symbols or [f"s{i}" for i in range(a.shape[1])]
    dates = pd.bdate_range("2024-01-01", periods=a.shape[0])
    return xr.DataArray(a, dims=("date", "symbol"), coords={"date": dates, "symbol": symbols})


def frame(x: xr.DataArray) -> pd.DataFrame:
    return x.to_pandas()


def check(
    got: xr.DataArray, like: xr.DataArray, expected: object, rtol: float = 1e-12, atol: float = 0
) -> None:
    """``got`` has the grid of ``like`` (no name/attrs) and the values of ``expected``."""
    assert got.dims == ("date", "symbol")
    assert got.dtype == np.float64
    assert got.name is None and got.attrs == {}
    xr.testing.assert_identical(got.coords.to_dataset(), like.coords.to_dataset())
    exp = np.asarray(expected, dtype=np.float64).reshape(got.shape)
    np.testing.assert_array_equal(np.isnan(got.values), np.isnan(exp), err_msg="NaN pattern")
    np.testing.assert_allclose(got.values, exp, rtol=rtol, atol=atol, equal_nan=True)


def prices(n: int = 260, m: int = 6, seed: int = 0, nan_frac: float = 0.02) -> xr.DataArray:
    """Price-like random walks (levels 5..500) with a few missing values."""
    rng = np.random.default_rng(seed)
    a = np.exp(np.cumsum(rng.normal(0, 0.02, (n, m)), axis=0)) * rng.uniform(5, 500, m)
    a[rng.random(a.shape) < nan_frac] = NAN
    return panel(a)


def rolling_apply(x: xr.DataArray, d: int, fn: Callable[[np.ndarray], float]) -> pd.DataFrame:
    return frame(x).rolling(d).apply(fn, raw=True)


# ------------------------------------------------------------------ conventions


def test_rejects_transposed_and_bad_windows() -> None:
    x = prices(20, 3)
    with pytest.raises(ValueError, match="transpose"):
        op.ts_mean(x.T, 3)
    with pytest.raises(ValueError, match="transpose"):
        op.rank(x.T)
    with pytest.raises(ValueError, match=r"ts_sum.*>= 1"):
        op.ts_sum(x, 0)
    with pytest.raises(ValueError, match="decay_linear"):
        op.decay_linear(x, 0.9)  # floors to 0
    with pytest.raises(ValueError, match="delay"):
        op.delay(x, -1)
    with pytest.raises(TypeError, match="ts_max"):
        op.ts_max(x, True)
    with pytest.raises(TypeError):
        op.ts_mean(x.values, 3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="coordinates"):
        op.ts_corr(x, x.assign_coords(symbol=["a", "b", "c"]), 3)


def test_float_window_is_floored_and_long_window_is_all_nan() -> None:
    x = prices(30, 3)
    xr.testing.assert_identical(op.ts_mean(x, 3.9), op.ts_mean(x, 3))
    xr.testing.assert_identical(op.delay(x, 2.5), op.delay(x, 2))
    for fn in (op.ts_mean, op.ts_rank, op.decay_linear, op.ts_product, op.ts_zscore, op.delay):
        assert bool(fn(x, 31).isnull().all())
    assert bool(op.ts_corr(x, x, 40).isnull().all())


def test_result_has_input_grid_no_name_and_input_untouched() -> None:
    x = prices(30, 3).rename("close")
    x.attrs["units"] = "USD"
    before = x.copy(deep=True)
    for out in (op.ts_mean(x, 5), op.rank(x), op.delay(x, 1), op.log(x), op.ts_corr(x, x, 5)):
        assert out.name is None and out.attrs == {}
        assert out.indexes["date"].equals(x.indexes["date"])
        assert out.indexes["symbol"].equals(x.indexes["symbol"])
    xr.testing.assert_identical(x, before)


def test_inf_is_missing_for_windows_and_does_not_poison_later_values() -> None:
    a = np.arange(1.0, 13.0)
    a[3] = np.inf
    x = panel(a)
    expected = pd.Series(np.where(np.isinf(a), NAN, a)).rolling(3).sum()
    check(op.ts_sum(x, 3), x, expected)
    check(op.ts_corr(x, x * 2 + 1, 3), x, np.where(expected.isna(), NAN, 1.0), rtol=1e-12)
    assert np.isnan(op.rank(x).values[3, 0])


# ------------------------------------------------------------------ shifts


def test_delay_delta_returns_by_hand() -> None:
    x = panel([10.0, 11.0, NAN, 12.0, 0.0, 6.0])
    check(op.delay(x, 2), x, [NAN, NAN, 10, 11, NAN, 12])
    check(op.delta(x, 1), x, [NAN, 1, NAN, NAN, -12, 6])
    check(op.returns(x), x, [NAN, 0.1, NAN, NAN, -1, NAN])  # 6 / 0 - 1 -> NaN
    check(op.returns(x, 3), x, [NAN, NAN, NAN, 0.2, -1, NAN])
    check(op.delay(x, 6), x, [NAN] * 6)


# ------------------------------------------------------------------ windows vs pandas

TS_REFERENCES: dict[str, Callable[[pd.DataFrame, int], pd.DataFrame]] = {
    "ts_sum": lambda df, d: df.rolling(d).sum(),
    "ts_mean": lambda df, d: df.rolling(d).mean(),
    "ts_std": lambda df, d: df.rolling(d).std(ddof=1),
    "ts_min": lambda df, d: df.rolling(d).min(),
    "ts_max": lambda df, d: df.rolling(d).max(),
    "ts_rank": lambda df, d: df.rolling(d).rank(method="average", pct=True),
    "ts_product": lambda df, d: df.rolling(d).apply(np.prod, raw=True),
    "ts_zscore": lambda df, d: (df - df.rolling(d).mean()) / df.rolling(d).std(ddof=1),
    # position 1 = oldest; ties -> most recent: last index of the max
    "ts_argmax": lambda df, d: df.rolling(d).apply(lambda v: d - np.argmax(v[::-1]), raw=True),
    "ts_argmin": lambda df, d: df.rolling(d).apply(lambda v: d - np.argmin(v[::-1]), raw=True),
    "decay_linear": lambda df, d: df.rolling(d).apply(
        lambda v: v @ np.arange(1, d + 1) / (d * (d + 1) / 2), raw=True
    ),
}


@pytest.mark.parametrize("name", sorted(TS_REFERENCES))
@pytest.mark.parametrize("d", [2, 5, 10])
def test_time_series_matches_pandas(name: str, d: int) -> None:
    x = prices(120, 5, seed=d)
    if name in ("ts_rank", "ts_argmax", "ts_argmin"):
        x = np.round(x / 20)  # many ties
    if name == "ts_product":
        x = x / x.mean()  # keep products moderate
    expected = TS_REFERENCES[name](frame(x), d)
    check(OPERATORS[name].fn(x, d), x, expected, rtol=1e-9, atol=1e-12)


def test_strict_window_warm_up_and_nan_spread() -> None:
    a = np.arange(1.0, 13.0)
    a[6] = NAN
    x = panel(a)
    d = 3
    strict = pd.Series(a).rolling(d).sum().isna().to_numpy()  # NaN at 0, 1 and 6, 7, 8
    assert strict.tolist() == [i in (0, 1, 6, 7, 8) for i in range(12)]
    for name, spec in OPERATORS.items():
        if spec.kind != "time_series" or spec.lookback_offset != -1:
            continue
        out = spec.fn(*([x] * spec.n_panels), d)
        np.testing.assert_array_equal(np.isnan(out.values[:, 0]), strict, err_msg=name)


def test_ts_std_is_ddof_1() -> None:
    x = panel([1.0, 2.0, 3.0, 4.0])
    check(op.ts_std(x, 4), x, [NAN, NAN, NAN, np.sqrt(5 / 3)])
    check(op.ts_std(x, 1), x, [NAN] * 4)
    check(op.ts_zscore(x, 4), x, [NAN, NAN, NAN, 1.5 / np.sqrt(5 / 3)])


def test_ts_zscore_is_nan_for_constant_window() -> None:
    a = np.r_[np.linspace(1, 2, 37), np.full(6, 0.1)]
    out = op.ts_zscore(panel(a), 5).values[:, 0]
    assert np.isnan(out[-2:]).all()
    assert np.isfinite(out[4:37]).all()


def test_constant_windows_are_exact_inside_varying_data() -> None:
    """Running kernels leave rounding noise in a constant window; the operators do not."""
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1e4, 300)
    a[140:150] = 0.1
    a[200:210] = 0.0
    x, y = panel(a), panel(rng.normal(size=300))
    rows = np.r_[144:150, 204:210]
    assert (op.ts_std(x, 5).values[rows] == 0.0).all()
    assert np.isnan(op.ts_zscore(x, 5).values[rows]).all()
    assert np.isnan(op.ts_corr(x, y, 5).values[rows]).all()
    assert (op.ts_cov(x, y, 5).values[rows] == 0.0).all()
    assert np.isfinite(op.ts_zscore(x, 5).values[150:200]).all()


def test_moments_stay_accurate_after_a_jump_in_scale() -> None:
    """Running sums carry the rounding of large values into later small ones; such windows
    are recomputed exactly (pandas' compensated sums are the reference here)."""
    rng = np.random.default_rng(0)
    x = panel(np.r_[100 + rng.normal(0, 1, 50), 1e-3 * (1 + rng.normal(0, 0.01, 200))])
    y = panel(np.r_[50 + rng.normal(0, 1, 50), 2e-3 * (1 + rng.normal(0, 0.01, 200))])
    px, py = frame(x), frame(y)
    for d in (5, 20):
        std = px.rolling(d).std()
        check(op.ts_std(x, d), x, std, rtol=1e-9)
        check(op.ts_zscore(x, d), x, (px - px.rolling(d).mean()) / std, rtol=1e-7, atol=1e-9)
        check(op.ts_corr(x, y, d), x, px.rolling(d).corr(py), atol=1e-9)
        check(op.ts_cov(x, y, d), x, px.rolling(d).cov(py), rtol=1e-7, atol=1e-15)


def test_ts_argmax_argmin_positions_and_ties() -> None:
    x = panel([3.0, 1.0, 3.0, 2.0, 3.0, 1.0, 1.0])
    # windows: [3,1,3] [1,3,2] [3,2,3] [2,3,1] [3,1,1]; 1 = oldest, 3 = today
    check(op.ts_argmax(x, 3), x, [NAN, NAN, 3, 2, 3, 2, 1])
    check(op.ts_argmin(x, 3), x, [NAN, NAN, 2, 1, 2, 3, 3])
    check(op.ts_argmax(x, 1), x, [1.0] * 7)


def test_ts_rank_fraction_and_ties() -> None:
    x = panel([1.0, 3.0, 2.0, 2.0, 5.0, 5.0])
    # [1,3,2]: 1 below, today alone -> (1 + 1)/3; [3,2,2]: 0 below, 2 equal -> 1.5/3;
    # [2,2,5]: max -> 1; [2,5,5]: 1 below, 2 equal -> (1 + 1.5)/3
    check(op.ts_rank(x, 3), x, [NAN, NAN, 2 / 3, 0.5, 1.0, 2.5 / 3])
    check(op.ts_rank(x, 1), x, [1.0] * 6)


def test_decay_linear_gives_today_weight_d() -> None:
    x = panel([1.0, 2.0, 3.0, 0.0, 0.0, 1.0, NAN, 1.0, 1.0, 1.0])
    # today weight 3, yesterday 2, oldest 1, over 6 (a reversed port gives 10/6 first)
    expected = [NAN, NAN, 14 / 6, 8 / 6, 3 / 6, 3 / 6, NAN, NAN, NAN, 1.0]
    check(op.decay_linear(x, 3), x, expected)
    check(op.decay_linear(x, 1), x, x.values)


def test_ts_product_zeros_and_negatives() -> None:
    x = panel([2.0, -1.0, 0.0, 3.0, -2.0, -2.0, 0.5, NAN, 1.0, 1.0, 1.0])
    check(op.ts_product(x, 3), x, [NAN, NAN, -0.0, 0, 0, 12, 2, NAN, NAN, NAN, 1])


def test_ts_product_long_window_uses_logs_exactly_enough(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(op, "_PROD_DIRECT_MAX", 50)  # windows above it use sums of logs
    rng = np.random.default_rng(3)
    a = rng.uniform(0.8, 1.25, (200, 4)) * rng.choice([-1.0, 1.0], (200, 4))
    a[150, 1] = 0.0
    a[60, 2] = NAN
    x = panel(a)
    expected = rolling_apply(x, 70, np.prod)
    check(op.ts_product(x, 70), x, expected, rtol=1e-11, atol=1e-300)
    assert (op.ts_product(x, 70).values[150:200, 1] == 0).all()


# ------------------------------------------------------------------ correlation


@pytest.mark.parametrize("d", [5, 10, 30])
def test_ts_corr_cov_match_pandas_on_price_like_data(d: int) -> None:
    x = prices(800, 6, seed=1)
    rng = np.random.default_rng(2)
    volume = np.exp(np.cumsum(rng.normal(0, 0.03, x.shape), axis=0)) * rng.uniform(1e5, 1e7, 6)
    y = x.copy(data=volume)
    y[100:103, 2] = NAN
    px, py = frame(x), frame(y)
    check(op.ts_corr(x, y, d), x, px.rolling(d).corr(py), rtol=0, atol=1e-8)
    check(op.ts_cov(x, y, d), x, px.rolling(d).cov(py), rtol=1e-7)
    # the same NaN pattern from either side (a joint window)
    check(op.ts_corr(y, x, d), x, px.rolling(d).corr(py), rtol=0, atol=1e-8)


def test_ts_corr_cov_by_hand() -> None:
    x = panel([1.0, 2.0, 3.0, 4.0, 4.0, 4.0, 4.0, 5.0])
    y = panel([2.0, 4.0, 6.0, 5.0, 1.0, 0.0, 7.0, 7.0])
    # cov([1,2,3],[2,4,6]) = 2; the windows [4,4,4] have zero variance -> corr NaN, cov 0
    check(op.ts_cov(x, y, 3), x, [NAN, NAN, 2, 0.5, -1, 0, 0, 7 / 6], atol=1e-12)
    corr = op.ts_corr(x, y, 3).values[:, 0]
    assert corr[2] == pytest.approx(1.0)
    assert np.isnan(corr[[0, 1, 5, 6]]).all()
    # strict joint windows: a NaN in y hides a constant x window too
    y[5] = NAN
    check(op.ts_cov(x, y, 3), x, [NAN, NAN, 2, 0.5, -1, NAN, NAN, NAN], atol=1e-12)
    assert np.isnan(op.ts_corr(x, y, 3).values[5:]).all()
    assert np.isnan(op.ts_corr(x, y, 1).values).all()
    assert np.isnan(op.ts_cov(x, y, 1).values).all()


# ------------------------------------------------------------------ cross-section


def cross_section() -> xr.DataArray:
    rng = np.random.default_rng(5)
    a = np.round(rng.normal(0, 2, (40, 9)))  # ties
    a[rng.random(a.shape) < 0.15] = NAN
    a[3] = NAN  # an empty date
    a[4] = 2.0  # a constant date
    return panel(a)


def test_rank_matches_pandas_pct() -> None:
    x = cross_section()
    check(op.rank(x), x, frame(x).rank(axis=1, pct=True, method="average"))


def test_rank_by_hand() -> None:
    x = panel([[3.0, 1.0, NAN, 3.0, 2.0]])
    check(op.rank(x), x, [[3.5 / 4, 1 / 4, NAN, 3.5 / 4, 2 / 4]])


def test_zscore_demean_scale() -> None:
    x = cross_section()
    df = frame(x)
    mean = df.mean(axis=1)
    zs = df.sub(mean, axis=0).div(df.std(axis=1, ddof=0), axis=0)
    zs.iloc[4] = NAN  # constant date: std 0
    check(op.zscore(x), x, zs, rtol=1e-12)
    check(op.demean(x), x, df.sub(mean, axis=0), atol=1e-12)
    scaled = op.scale(x, 2.0)
    sums = np.nansum(np.abs(scaled.values), axis=1)
    valid = ~np.isnan(x.values).all(axis=1)
    np.testing.assert_allclose(sums[valid], 2.0)


def test_scale_by_hand() -> None:
    x = panel([[1.0, -3.0, NAN], [0.0, 0.0, NAN]])
    check(op.scale(x), x, [[0.25, -0.75, NAN], [NAN, NAN, NAN]])
    check(op.scale(x, 4), x, [[1.0, -3.0, NAN], [NAN, NAN, NAN]])


def test_winsorize_quantiles() -> None:
    x = panel(np.vstack([np.arange(1.0, 11.0), np.full(10, NAN)]))  # dates: 1..10, empty
    expected = np.vstack([np.r_[1.9, np.arange(2.0, 10.0), 9.1], np.full(10, NAN)])
    check(op.winsorize(x, 0.1), x, expected, rtol=1e-12)
    y = cross_section()
    df = frame(y)
    low, high = df.quantile(0.2, axis=1), df.quantile(0.8, axis=1)
    check(op.winsorize(y, 0.2), y, df.clip(low, high, axis=0), rtol=1e-12)
    check(op.winsorize(y, 0.0), y, df)
    with pytest.raises(ValueError, match="winsorize"):
        op.winsorize(y, 0.7)


def test_winsorize_mad() -> None:
    x = panel([[1.0, 2.0, 3.0, 4.0, 100.0, NAN], [5.0, 5.0, 5.0, 9.0, -50.0, 5.0]])
    # date 0: median 3, MAD 1 -> [3 - 3 * 1.4826, 3 + 3 * 1.4826]; date 1: MAD 0 -> unchanged
    high = 3 + 3 * 1.4826
    check(op.winsorize_mad(x), x, [[1, 2, 3, 4, high, NAN], [5, 5, 5, 9, -50, 5]])
    check(op.winsorize_mad(x, k=1.0), x, [[1.5174, 2, 3, 4, 4.4826, NAN], x.values[1]])
    with pytest.raises(ValueError, match="winsorize_mad"):
        op.winsorize_mad(x, 0)


def test_neutralize_by_group() -> None:
    x = panel([[1.0, 2.0, 3.0, 10.0, NAN, 7.0], [4.0, 0.0, 1.0, 1.0, 2.0, 3.0]])
    groups = xr.DataArray(
        np.array(["A", "A", "B", "B", "A", ""], dtype=object),
        dims="symbol",
        coords={"symbol": x.symbol.values},
    )
    expected = [[-0.5, 0.5, -3.5, 3.5, NAN, NAN], [2.0, -2.0, 0.0, 0.0, 0.0, NAN]]
    check(op.neutralize(x, groups), x, expected)
    # labels are aligned by symbol, not position
    check(op.neutralize(x, groups.isel(symbol=slice(None, None, -1))), x, expected)
    # per-date labels: date 1 moves s2 into group A
    dated = xr.DataArray(
        np.array([["A", "A", "B", "B", "A", None], ["A", "A", "A", "B", "A", None]], dtype=object),
        dims=("date", "symbol"),
        coords=x.coords,
    )
    check(op.neutralize(x, dated), x, [expected[0], [2.25, -1.75, -0.75, 0.0, 0.25, NAN]])
    # numpy strings ("" is missing, as FactorInputs.sector uses it)
    strings = groups.copy(data=groups.values.astype(str))
    check(op.neutralize(x, strings), x, expected)
    # numeric labels work too
    codes = xr.DataArray([0.0, 0.0, 1.0, 1.0, 0.0, NAN], dims="symbol", coords=groups.coords)
    check(op.neutralize(x, codes), x, expected)


def test_residualize_by_hand() -> None:
    y = panel([[1.0, 3.0, 2.0, 5.0, NAN, 1.0], [1.0, 2.0, NAN, NAN, NAN, NAN]])
    x = panel([[0.0, 1.0, 2.0, 3.0, 4.0, NAN], [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]])
    # date 0 uses names 0..3: y = 1.1 + 1.1 x, residuals -0.1, 0.8, -1.3, 0.6
    # date 1 has 2 names = regressors + 1: an exact fit
    check(
        op.residualize(y, x), y, [[-0.1, 0.8, -1.3, 0.6, NAN, NAN], [0, 0, NAN, NAN, NAN, NAN]],
        atol=1e-12,
    )  # fmt: skip
    one = panel([[1.0, 2.0, NAN, NAN, NAN, NAN], [1.0, 2.0, NAN, NAN, NAN, NAN]])
    assert np.isnan(op.residualize(one, x, x * x).values).all()  # 2 names < 3
    check(op.residualize(y), y, op.demean(y).values)
    # a regressor constant across names is dropped: residuals of y on a constant only
    check(op.residualize(y, y * 0 + 7), y, op.demean(y).values, atol=1e-12)


def test_residualize_matches_lstsq() -> None:
    rng = np.random.default_rng(9)
    n, m = 30, 25
    x1, x2 = rng.normal(size=(n, m)), rng.lognormal(20, 1, size=(n, m))  # market-cap scale
    yv = 0.3 * x1 - 2e-9 * x2 + rng.normal(size=(n, m))
    x1[rng.random(x1.shape) < 0.1] = NAN
    yv[rng.random(yv.shape) < 0.1] = NAN
    expected = np.full((n, m), NAN)
    for t in range(n):
        ok = ~np.isnan(yv[t]) & ~np.isnan(x1[t])
        # x2 rescaled: the same column space, a well-conditioned reference
        design = np.column_stack([np.ones(ok.sum()), x1[t, ok], x2[t, ok] / 1e9])
        beta = np.linalg.lstsq(design, yv[t, ok], rcond=None)[0]
        expected[t, ok] = yv[t, ok] - design @ beta
    y = panel(yv)
    check(op.residualize(y, panel(x1), panel(x2)), y, expected, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------ element-wise


def test_elementwise_helpers() -> None:
    x = panel([[-2.0, 0.0, 3.0, NAN]])
    y = panel([[1.0, -1.0, NAN, 5.0]])
    check(op.sign(x), x, [[-1, 0, 1, NAN]])
    check(op.log(x), x, [[NAN, NAN, np.log(3), NAN]])
    check(op.abs_(x), x, [[2, 0, 3, NAN]])
    check(op.signed_power(x, 2), x, [[-4, 0, 9, NAN]])
    check(op.signed_power(x, 0.5), x, [[-np.sqrt(2), 0, np.sqrt(3), NAN]])
    check(op.min_(x, y), x, [[-2, -1, NAN, NAN]])
    check(op.max_(x, y), x, [[1, 0, NAN, NAN]])
    cond = panel([[1.0, 0.0, NAN, 1.0]])
    check(op.where(cond, x, y), x, [[-2, -1, NAN, NAN]])
    check(op.where(cond, 1, -1), x, [[1, -1, NAN, 1]])
    check(op.where(x > 0, x, 0.0), x, [[0, 0, 3, 0]])  # a boolean condition has no NaN
    check(op.where(1, x, y), x, x.values)
    with pytest.raises(TypeError, match="where"):
        op.where(1, 2, 3)
    with pytest.raises(TypeError, match="ts_min"):
        op.min_(x, 5)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        op.signed_power(x, y)  # type: ignore[arg-type]


# ------------------------------------------------------------------ the registry


def call(spec: OperatorSpec, panels: list[xr.DataArray], params: tuple[float, ...]) -> xr.DataArray:
    args: list[object] = list(panels[: spec.n_panels])
    if spec.group:
        groups = np.array(["a", "b"] * panels[0].sizes["symbol"])[: panels[0].sizes["symbol"]]
        args.append(xr.DataArray(groups, dims="symbol", coords={"symbol": panels[0].symbol}))
    return spec.fn(*args, *params)


def params_for(spec: OperatorSpec, d: int = 4) -> tuple[float, ...]:
    if spec.window is not None:
        return (d,)[: spec.n_params] if spec.n_params else ()
    return (2.0,) * spec.n_params


def test_registry_names_and_shapes() -> None:
    expected = {
        "delay", "delta", "returns", "ts_sum", "ts_mean", "ts_std", "ts_zscore", "ts_min",
        "ts_max", "ts_argmax", "ts_argmin", "ts_rank", "ts_product", "decay_linear", "ts_corr",
        "ts_cov", "rank", "zscore", "demean", "scale", "winsorize", "winsorize_mad",
        "neutralize", "residualize", "sign", "log", "abs", "signed_power", "where", "min", "max",
    }  # fmt: skip
    assert set(OPERATORS) == expected
    assert OPERATORS["abs"].fn is op.abs_ and OPERATORS["min"].fn is op.min_
    assert all(spec.name == name for name, spec in OPERATORS.items())
    assert all(a in OPERATORS for a in op.ALIASES.values())
    assert OPERATORS["ts_corr"].arity == (3, 3)
    assert OPERATORS["scale"].arity == (1, 2)
    assert OPERATORS["winsorize"].arity == (1, 2)
    assert OPERATORS["neutralize"].arity == (2, 2) and OPERATORS["neutralize"].group
    assert OPERATORS["residualize"].arity == (1, None)
    assert OPERATORS["where"].arity == (3, 3)
    assert OPERATORS["returns"].arity == (1, 2)
    assert OPERATORS["signed_power"].arity == (2, 2)


def test_registry_lookbacks() -> None:
    assert OPERATORS["delay"].lookback(5) == 5
    assert OPERATORS["delta"].lookback(3.7) == 3
    assert OPERATORS["returns"].lookback() == 1
    assert OPERATORS["returns"].lookback(20) == 20
    assert OPERATORS["ts_mean"].lookback(5) == 4
    assert OPERATORS["decay_linear"].lookback(10.5) == 9
    assert OPERATORS["ts_corr"].lookback(10) == 9
    assert OPERATORS["rank"].lookback() == 0
    assert OPERATORS["scale"].lookback(3.0) == 0
    assert OPERATORS["signed_power"].lookback(2.0) == 0
    with pytest.raises(ValueError, match="ts_mean"):
        OPERATORS["ts_mean"].lookback()
    with pytest.raises(ValueError, match="ts_mean"):
        OPERATORS["ts_mean"].lookback(0.5)


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_registry_lookback_is_exact(name: str) -> None:
    """A value needs exactly ``lookback`` earlier sessions: with them it is the full-history
    value, with one fewer it cannot be computed (windowed operators)."""
    spec = OPERATORS[name]
    rng = np.random.default_rng(4)
    xs = [panel(rng.uniform(1, 2, (30, 4))) for _ in range(max(spec.n_panels, 2))]
    params = params_for(spec)
    lb = spec.lookback(*params)
    full = call(spec, xs, params).values[-1]
    trimmed = call(spec, [x.isel(date=slice(-1 - lb, None)) for x in xs], params)
    np.testing.assert_allclose(trimmed.values[-1], full, rtol=1e-12)
    if spec.window is not None:
        short = call(spec, [x.isel(date=slice(-lb, None)) for x in xs], params)
        assert np.isnan(short.values[-1]).all()


# ------------------------------------------------------------------ properties

values = st.one_of(
    st.integers(-4, 4).map(float),  # ties and zeros
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False),
    st.just(NAN),
)
panels = hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.integers(1, 3)), elements=values)
TIME_SERIES = sorted(n for n, s in OPERATORS.items() if s.kind == "time_series")
CROSS_SECTION = sorted(n for n, s in OPERATORS.items() if s.kind == "cross_section")


@settings(max_examples=60, deadline=None)
@given(a=panels, b=panels, d=st.integers(1, 6), cut=st.integers(1, 30))
def test_time_series_have_no_look_ahead(a: np.ndarray, b: np.ndarray, d: int, cut: int) -> None:
    """Each operator on the first ``cut`` dates equals its full result on those dates."""
    xs = [panel(a), panel(np.resize(b, a.shape))]
    heads = [x.isel(date=slice(None, cut)) for x in xs]
    for name in TIME_SERIES:
        spec = OPERATORS[name]
        full = spec.fn(*xs[: spec.n_panels], d).values[:cut]
        head = spec.fn(*heads[: spec.n_panels], d).values
        np.testing.assert_array_equal(np.isnan(head), np.isnan(full), err_msg=name)
        np.testing.assert_allclose(head, full, rtol=1e-12, atol=1e-12, err_msg=name)


@settings(max_examples=60, deadline=None)
@given(a=panels, b=panels, seed=st.integers(0, 2**16))
def test_cross_sections_commute_with_symbol_permutation(
    a: np.ndarray, b: np.ndarray, seed: int
) -> None:
    a = np.round(a)  # integer-valued: sums are exact whatever the order
    b = np.round(np.resize(b, a.shape))
    perm = np.random.default_rng(seed).permutation(a.shape[1])
    x, z = panel(a), panel(b)
    labels = xr.DataArray(
        np.array(["g", "h", "g"] * a.shape[1])[: a.shape[1]],
        dims="symbol",
        coords={"symbol": x.symbol},
    )

    def run(spec: OperatorSpec, x: xr.DataArray, z: xr.DataArray) -> xr.DataArray:
        if spec.group:
            return spec.fn(x, labels)  # aligned by symbol
        return spec.fn(x, z) if spec.variadic else spec.fn(x)

    xp, zp = x.isel(symbol=perm), z.isel(symbol=perm)
    for name in CROSS_SECTION:
        spec = OPERATORS[name]
        expected = run(spec, x, z).isel(symbol=perm).values
        got = run(spec, xp, zp).values
        np.testing.assert_array_equal(np.isnan(got), np.isnan(expected), err_msg=name)
        np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9, err_msg=name)

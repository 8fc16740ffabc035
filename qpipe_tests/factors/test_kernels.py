"""The compiled kernels against pandas / numpy references, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from qpipe.factors.kernels import cross_rank, move_rank, window_comoments, window_sums

# Values drawn from a small pool (many exact ties), with NaN, signed zeros, and neighbours a
# few units in the last place apart (the case the sorted keys get wrong and must repair).
POOL = [np.nan, -0.0, 0.0, 1.0, -1.0, 2.5, 1e-300, -1e-300, 0.1 + 0.2, 0.3, 0.30000000000000004]
NEAR = [np.nextafter(1.0, 2.0), np.nextafter(np.nextafter(1.0, 2.0), 2.0), 1.0 + 2**-44]
values = st.one_of(st.sampled_from(POOL + NEAR), st.floats(-1e6, 1e6, allow_nan=False))


def panels(max_rows: int = 12, max_cols: int = 40) -> st.SearchStrategy[np.ndarray]:
    shape = st.tuples(st.integers(1, max_rows), st.integers(1, max_cols))
    return shape.flatmap(lambda s: arrays(np.float64, s, elements=values))


@settings(max_examples=200, deadline=None)
@given(panels())
def test_cross_rank_equals_pandas_percentile_rank(a: np.ndarray) -> None:
    expected = pd.DataFrame(a).rank(axis=1, pct=True).to_numpy()
    np.testing.assert_array_equal(cross_rank(a), expected)


def test_cross_rank_hand_case() -> None:
    a = np.array([[3.0, 1.0, np.nan, 1.0, 2.0], [np.nan] * 5, [-0.0, 0.0, 5.0, np.nan, -1.0]])
    expected = [
        [1.0, 0.375, np.nan, 0.375, 0.75],  # ties 1,1 -> rank 1.5 of 4
        [np.nan] * 5,
        [0.625, 0.625, 1.0, np.nan, 0.25],  # -0.0 == 0.0
    ]
    np.testing.assert_array_equal(cross_rank(a), expected)


def test_cross_rank_wide_rows_with_near_ties() -> None:
    """Thousands of columns (more key bits) and price differences equal in cents only."""
    rng = np.random.default_rng(3)
    cents = rng.integers(-300, 300, (30, 3000)) / 100.0
    a = (cents + rng.integers(1, 500, cents.shape)) - rng.integers(1, 500, cents.shape) * 1.0
    a[rng.random(a.shape) < 0.05] = np.nan
    expected = pd.DataFrame(a).rank(axis=1, pct=True).to_numpy()
    np.testing.assert_array_equal(cross_rank(a), expected)


@settings(max_examples=150, deadline=None)
@given(panels(max_rows=30, max_cols=6), st.integers(1, 8))
def test_move_rank_equals_pandas_rolling_rank(a: np.ndarray, w: int) -> None:
    expected = pd.DataFrame(a).rolling(w).rank(pct=True).to_numpy()
    got = move_rank(a, w)
    # pandas ranks -0.0 and 0.0 alike, as here; it needs the whole window present too.
    np.testing.assert_array_equal(got, expected)


def test_move_rank_hand_case() -> None:
    a = np.array([[1.0], [3.0], [2.0], [2.0], [np.nan], [5.0], [4.0], [6.0]])
    got = move_rank(a, 3)[:, 0]
    # [1,3,2]: 2 is 2nd of 3; [3,2,2]: 2 ties 1st-2nd -> 1.5/3; three windows with the NaN;
    # [5,4,6]: 6 is the largest
    np.testing.assert_array_equal(got, [np.nan, np.nan, 2 / 3, 0.5, np.nan, np.nan, np.nan, 1.0])


@settings(max_examples=100, deadline=None)
@given(panels(max_rows=25, max_cols=5), st.integers(1, 7))
def test_window_sums_add_oldest_to_newest(a: np.ndarray, w: int) -> None:
    expected = np.full(a.shape, np.nan)
    for t in range(w - 1, a.shape[0]):
        acc = a[t - w + 1].copy()
        for k in range(t - w + 2, t + 1):
            acc += a[k]
        expected[t] = acc
    np.testing.assert_array_equal(window_sums(a, w), expected)


def test_window_comoments_against_two_pass_numpy() -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(100.0, 5.0, (40, 7))
    b = rng.normal(0.0, 1.0, (40, 7))
    a[10, 2] = np.nan
    b[20, 4] = np.nan
    a[25:35, 6] = 42.1  # a constant stretch: exactly zero deviations
    w = 6
    sab, saa, sbb = window_comoments(a, b, w)
    for t in range(a.shape[0]):
        for j in range(a.shape[1]):
            wa, wb = a[t - w + 1 : t + 1, j], b[t - w + 1 : t + 1, j]
            if t < w - 1 or np.isnan(wa).any() or np.isnan(wb).any():
                assert np.isnan(sab[t, j]) and np.isnan(saa[t, j]) and np.isnan(sbb[t, j])
                continue
            da, db = wa - wa.mean(), wb - wb.mean()
            assert np.isclose(sab[t, j], (da * db).sum(), rtol=1e-9, atol=1e-9)
            assert np.isclose(saa[t, j], (da * da).sum(), rtol=1e-9, atol=1e-9)
            assert np.isclose(sbb[t, j], (db * db).sum(), rtol=1e-9, atol=1e-9)
    assert (saa[30:35, 6] == 0.0).all() and (sab[30:35, 6] == 0.0).all()


def test_window_comoments_depend_on_the_window_only() -> None:
    """The same window gives the same bits whatever history precedes it."""
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(60, 9)), rng.normal(size=(60, 9))
    full = window_comoments(a, b, 5)
    tail = window_comoments(a[37:], b[37:], 5)
    for f, t in zip(full, tail, strict=True):
        np.testing.assert_array_equal(f[41:], t[4:])

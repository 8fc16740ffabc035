"""Operators on ``(date, symbol)`` panels: time-series, cross-sectional and element-wise.

Conventions shared by every operator:

- A panel is an :class:`xarray.DataArray` with dims exactly ``("date", "symbol")``, date first,
  read as float64; NaN means missing. A panel with the dims the other way round is rejected
  with a ValueError (transpose it first). Panels combined in one call must share shape and
  ``date``/``symbol`` coordinates (no silent alignment).
- Results have the coords and dims of the (first) panel argument, dtype float64, no name and
  no attrs; inputs are never modified.
- Time-series operators work along ``date`` (axis 0) with compiled kernels (bottleneck, and
  qpipe's own numba kernels in ``qpipe.factors.kernels``). The window of a
  date is that date and the ``d - 1`` before it. Windows are *strict*: the value is NaN unless
  all ``d`` values of the window are non-NaN, so the first ``d - 1`` dates are NaN and one
  missing value makes ``d`` results NaN. A value therefore depends on its window only (the
  shifts ``delay``/``delta``/``returns`` on dates ``t - d`` and ``t``), so computing a date
  range from ``OperatorSpec.lookback`` earlier sessions gives the full-history values: bit
  for bit for the window-by-window kernels (``ts_sum``/``ts_mean`` up to 64 dates,
  ``ts_rank``, ``ts_min``/``ts_max``/``ts_arg*``, ``decay_linear``, ``ts_product``), to
  rounding for the running moments (they depend on where they start; a prefix of a panel
  gives bit-identical values).
- ``ts_std``/``ts_zscore``/``ts_corr``/``ts_cov`` run their kernels on blocks of rows centred
  on a local reference (cache-friendly, and running sums restart); windows whose spread is
  tiny against the block's values, constant windows included, are recomputed exactly
  (two-pass), so a constant window has a std of exactly 0.
- ``d`` is an int >= 1; a float is floored (the paper's convention: 9.5 -> 9); ``d < 1``
  after flooring is a ValueError naming the operator. A window longer than the panel gives
  all NaN.
- Cross-sectional operators work per date over the non-NaN names; NaN stays NaN.
- ``±inf`` is treated as missing (NaN) by the ``ts_*``/``decay_linear`` and cross-sectional
  operators (one inf would otherwise poison every later running sum of its column);
  ``delay``/``delta``/``returns`` and the element-wise helpers follow IEEE arithmetic.

Alpha101 (Kakushadze 2016) ambiguities, as decided here: ``rank`` is the percentile rank in
(0, 1]; ``ts_rank`` the average rank of today / d; ``decay_linear`` gives today weight d;
``ts_argmax``/``ts_argmin`` count 1 = oldest .. d = today, ties to the most recent;
``ts_std``/``ts_cov`` use ddof=1; ``scale`` and ``neutralize`` (``indneutralize``) work per
date; ``min``/``max`` are element-wise (the paper's ``min(x, d)`` with a number is ``ts_min``).

:data:`OPERATORS` describes every public operator (arity, parameters, look-back) for the
expression parser; :data:`ALIASES` maps the paper's spellings to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

import bottleneck as bn
import numpy as np
import pandas as pd
import xarray as xr
from numpy.lib.stride_tricks import sliding_window_view

from qpipe.factors.kernels import cross_rank, move_rank, window_sums

__all__ = [
    "ALIASES",
    "DIMS",
    "OPERATORS",
    "OperatorSpec",
    "abs_",
    "decay_linear",
    "delay",
    "delta",
    "demean",
    "log",
    "max_",
    "min_",
    "neutralize",
    "rank",
    "residualize",
    "returns",
    "scale",
    "sign",
    "signed_power",
    "ts_argmax",
    "ts_argmin",
    "ts_corr",
    "ts_cov",
    "ts_max",
    "ts_mean",
    "ts_min",
    "ts_product",
    "ts_rank",
    "ts_std",
    "ts_sum",
    "ts_zscore",
    "where",
    "winsorize",
    "winsorize_mad",
    "zscore",
]

DIMS: tuple[str, str] = ("date", "symbol")
"""The dims of every panel, in this order."""

_TINY_VAR = 1e-14
"""A variance <= ``_TINY_VAR`` x the mean square of the same values counts as zero."""

_BLOCK_ROWS = 128
_BLOCK_CELLS = 1 << 16
"""Rows and cells (512 KiB of float64) per block in ``ts_std``/``ts_zscore``/``ts_corr``/
``ts_cov``."""

_EXACT_BELOW = 1e-6
"""A rolling sum of squared deviations below this fraction of ``d`` x the largest squared
(centred) value of its block may have lost digits to the running sums (after a jump in
scale, say): such windows are recomputed exactly, two-pass."""

_EXACT_SUM_MAX = 64
"""``ts_sum``/``ts_mean`` add each window of up to this many dates on its own (faster than
running sums there, and independent of where the history starts); longer windows use
bottleneck's running sums."""

_PROD_DIRECT_MAX = 400
"""``ts_product`` multiplies each window directly (O(d) per cell) up to this ``d``; above it
sums of logs are faster (measured crossover about 360 on 2,520 x 500)."""

_MAD_SCALE = 1.4826
"""MAD -> standard deviation for normal data."""

Number = int | float


# --------------------------------------------------------------------------- helpers


def _check_panel(x: object, op: str) -> xr.DataArray:
    if not isinstance(x, xr.DataArray):
        raise TypeError(f"{op}: expected an xarray.DataArray panel, got {type(x).__name__}")
    if x.dims != DIMS:
        if set(x.dims) == set(DIMS):
            raise ValueError(
                f"{op}: panel dims are {x.dims}, expected ('date', 'symbol'); "
                "use x.transpose('date', 'symbol')"
            )
        raise ValueError(f"{op}: panel dims are {x.dims}, expected ('date', 'symbol')")
    return x


def _values(x: object, op: str, *, finite: bool = True) -> np.ndarray:
    """The panel's float64 values (no copy when already float64 and finite); with ``finite``,
    ±inf becomes NaN."""
    a = np.asarray(_check_panel(x, op).values, dtype=np.float64)
    if finite and np.isinf(a).any():
        a = np.where(np.isinf(a), np.nan, a)
    return a


def _check_same_grid(x: xr.DataArray, y: xr.DataArray, op: str) -> None:
    if x.shape != y.shape:
        raise ValueError(f"{op}: panels have shapes {x.shape} and {y.shape}")
    for dim in DIMS:
        ix, iy = x.indexes.get(dim), y.indexes.get(dim)
        if ix is iy:
            continue
        if ix is None or iy is None or not ix.equals(iy):
            raise ValueError(f"{op}: panels have different {dim!r} coordinates")


def _wrap(x: xr.DataArray, a: np.ndarray) -> xr.DataArray:
    """``a`` with the coords and dims of ``x``; no name, attrs or encoding (a shallow copy:
    3x cheaper than the DataArray constructor)."""
    out = x.copy(deep=False, data=a)
    out.name = None
    out.attrs = {}
    out.encoding = {}
    return out


def _number(v: object, op: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: expected a number, got {type(v).__name__}")
    return float(v)


def _window(d: object, op: str) -> int:
    """``floor(d)`` checked to be >= 1."""
    if isinstance(d, bool) or not isinstance(d, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: window d must be a number, got {type(d).__name__}")
    if not math.isfinite(d):
        raise ValueError(f"{op}: window d must be finite, got {d!r}")
    w = math.floor(d)
    if w < 1:
        raise ValueError(f"{op}: window d must be >= 1, got {d!r}")
    return int(w)


def _nan_panel(shape: tuple[int, ...]) -> np.ndarray:
    return np.full(shape, np.nan)


def _nan_head(shape: tuple[int, ...], rows: int) -> np.ndarray:
    """An uninitialised panel whose first ``rows`` rows are NaN (the caller fills the rest)."""
    out = np.empty(shape)
    out[:rows] = np.nan
    return out


def _move(kernel: Callable[..., np.ndarray], a: np.ndarray, w: int, **kw: object) -> np.ndarray:
    """``kernel`` along axis 0 with a strict window (all NaN if the panel is shorter than w)."""
    if w > a.shape[0] or a.size == 0:
        return _nan_panel(a.shape)
    return kernel(a, w, min_count=w, axis=0, **kw)


def _is_tiny(var: np.ndarray, mean_square: np.ndarray) -> np.ndarray:
    """Where a variance is zero up to rounding (NaN compares False)."""
    return var <= _TINY_VAR * mean_square


# --------------------------------------------------------------------------- time series


def _shifted(x: xr.DataArray, d: Number, op: str) -> tuple[np.ndarray, np.ndarray, int]:
    """The values, a panel to fill from row ``w`` on (NaN before), and ``w = floor(d)``."""
    a = _values(x, op, finite=False)
    w = _window(d, op)
    return a, _nan_head(a.shape, w), w


def delay(x: xr.DataArray, d: Number) -> xr.DataArray:
    """``x`` of ``d`` sessions earlier: ``delay(x, d)[t] = x[t - d]``, NaN for the first
    ``d`` dates. Values (inf included) are moved unchanged."""
    a, out, w = _shifted(x, d, "delay")
    if w < a.shape[0]:
        out[w:] = a[:-w]
    return _wrap(x, out)


def delta(x: xr.DataArray, d: Number) -> xr.DataArray:
    """``x - delay(x, d)``: change over ``d`` sessions (NaN for the first ``d`` dates or
    where either value is NaN)."""
    a, out, w = _shifted(x, d, "delta")
    if w < a.shape[0]:
        np.subtract(a[w:], a[:-w], out=out[w:])
    return _wrap(x, out)


def returns(x: xr.DataArray, d: Number = 1) -> xr.DataArray:
    """``x / delay(x, d) - 1``: simple return over ``d`` sessions (NaN for the first ``d``
    dates, where either value is NaN, and where the earlier value is 0)."""
    a, out, w = _shifted(x, d, "returns")
    if w < a.shape[0]:
        now, then = a[w:], a[:-w]
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            np.divide(now, then, out=out[w:])
        out[w:] -= 1.0
        out[w:][then == 0] = np.nan
    return _wrap(x, out)


def _window_sums(a: np.ndarray, w: int) -> np.ndarray:
    """Strict window sums: window by window up to ``_EXACT_SUM_MAX`` rows (each value a
    function of its window alone, and faster there), running sums above."""
    if w > a.shape[0] or a.size == 0:
        return _nan_panel(a.shape)
    if w <= _EXACT_SUM_MAX:
        return window_sums(np.ascontiguousarray(a), w)
    return bn.move_sum(a, w, min_count=w, axis=0)


def ts_sum(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Sum over the strict window of ``d`` dates (today included), added oldest to newest
    window by window for ``d <= 64`` (bit for bit the same whatever history precedes the
    window), with running sums above."""
    w = _window(d, "ts_sum")
    return _wrap(x, _window_sums(_values(x, "ts_sum"), w))


def ts_mean(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Mean over the strict window of ``d`` dates (today included): ``ts_sum(x, d) / d``."""
    w = _window(d, "ts_mean")
    out = _window_sums(_values(x, "ts_mean"), w)
    out /= w
    return _wrap(x, out)


def _centre_block(a: np.ndarray, w: int) -> np.ndarray:
    """``a`` minus a per-column reference: the mean of the block's first ``w`` rows (none
    later than the block's first output row; 0 for a column with none of them). Running
    moments of values near zero lose far less to rounding."""
    ref = bn.nanmean(a[:w], axis=0)
    ref[np.isnan(ref)] = 0.0
    return a - ref


def _windows(a: np.ndarray, rows: np.ndarray, cols: np.ndarray, w: int) -> np.ndarray:
    """The ``w`` values ending at each ``(rows[i], cols[i])``, one window per row."""
    return a[rows[:, None] + np.arange(1 - w, 1), cols[:, None]]


def _flat(win: np.ndarray) -> np.ndarray:
    """Which windows (rows of ``win``) hold a single value: their variance is exactly 0."""
    return (win == win[:, :1]).all(axis=1)


def _suspect(ssd: np.ndarray, centred: np.ndarray, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Cells whose running sum of squared deviations ``ssd`` may be inexact, as (rows, cols):
    ``ssd`` below ``_EXACT_BELOW * w`` x the square of the largest ``|centred|`` so far in the
    block (so the choice never depends on later dates). A constant window always qualifies:
    running kernels leave rounding noise there instead of 0."""
    limit = np.abs(centred)
    factor = _EXACT_BELOW * w
    block_max = np.fmax.reduce(limit, axis=0)
    if not (ssd < factor * block_max * block_max).any():  # the usual case, and cheap
        return np.empty(0, np.intp), np.empty(0, np.intp)
    np.fmax.accumulate(limit, axis=0, out=limit)
    limit *= limit
    limit *= factor
    return np.nonzero(ssd < limit)


def _std_block(a: np.ndarray, w: int) -> np.ndarray:
    centred = _centre_block(a, w)
    std = bn.move_std(centred, w, min_count=w, axis=0, ddof=1)
    rows, cols = _suspect(std * std * (w - 1), centred, w)
    if rows.size:  # two-pass on the raw windows
        win = _windows(a, rows, cols, w)
        sd = win.std(axis=1, ddof=1)
        sd[_flat(win)] = 0.0
        std[rows, cols] = sd
    return std


def ts_std(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Sample standard deviation (ddof=1) over the strict window of ``d`` dates (today
    included); exactly 0 for a constant window; ``d = 1`` gives NaN everywhere."""
    w = _window(d, "ts_std")
    a = _values(x, "ts_std")
    if w == 1:
        return _wrap(x, _nan_panel(a.shape))
    return _wrap(x, _by_blocks(_std_block, (a,), w))


def _zscore_block(a: np.ndarray, w: int) -> np.ndarray:
    centred = _centre_block(a, w)
    mean = bn.move_mean(centred, w, min_count=w, axis=0)
    std = bn.move_std(centred, w, min_count=w, axis=0, ddof=1)
    rows, cols = _suspect(std * std * (w - 1), centred, w)
    np.copyto(std, np.nan, where=std == 0.0)  # also an underflow (values near 1e-300)
    out = np.subtract(centred, mean, out=centred)
    out /= std
    if rows.size:  # two-pass on the raw windows
        win = _windows(a, rows, cols, w)
        sd = win.std(axis=1, ddof=1)
        sd[(sd == 0.0) | _flat(win)] = np.nan
        out[rows, cols] = (win[:, -1] - win.mean(axis=1)) / sd
    return out


def ts_zscore(x: xr.DataArray, d: Number) -> xr.DataArray:
    """``(x - ts_mean(x, d)) / ts_std(x, d)`` (ddof=1, strict window, today included); NaN
    where the window is constant (std 0) and for ``d = 1``."""
    w = _window(d, "ts_zscore")
    a = _values(x, "ts_zscore")
    if w == 1:
        return _wrap(x, _nan_panel(a.shape))
    return _wrap(x, _by_blocks(_zscore_block, (a,), w))


def ts_min(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Minimum over the strict window of ``d`` dates (today included)."""
    w = _window(d, "ts_min")
    return _wrap(x, _move(bn.move_min, _values(x, "ts_min"), w))


def ts_max(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Maximum over the strict window of ``d`` dates (today included)."""
    w = _window(d, "ts_max")
    return _wrap(x, _move(bn.move_max, _values(x, "ts_max"), w))


def ts_argmax(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Position of the window maximum, 1 = oldest date of the window, ``d`` = today (float;
    strict window). Ties: the most recent occurrence (the largest position)."""
    w = _window(d, "ts_argmax")
    out = _move(bn.move_argmax, _values(x, "ts_argmax"), w)  # 0 = today
    np.subtract(w, out, out=out)
    return _wrap(x, out)


def ts_argmin(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Position of the window minimum, 1 = oldest date of the window, ``d`` = today (float;
    strict window). Ties: the most recent occurrence (the largest position)."""
    w = _window(d, "ts_argmin")
    out = _move(bn.move_argmin, _values(x, "ts_argmin"), w)  # 0 = today
    np.subtract(w, out, out=out)
    return _wrap(x, out)


def ts_rank(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Rank of today's value within its strict window of ``d`` dates, as a fraction in
    ``(0, 1]``: ``(#window values < today + (#values == today, today included, + 1) / 2) / d``
    (average rank of ties / d; 1.0 when today is the strict maximum; ``d = 1`` gives 1.0).
    Same as pandas ``rolling(d).rank(pct=True)``."""
    w = _window(d, "ts_rank")
    a = _values(x, "ts_rank")
    r = _nan_panel(a.shape) if w > a.shape[0] else move_rank(np.ascontiguousarray(a), w)
    return _wrap(x, r)


def ts_product(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Product over the strict window of ``d`` dates (today included); zeros and negative
    values are exact (direct product for ``d <= 400``; above, ``exp(sum log|x|)`` with the
    sign from the count of negatives and 0 where the window holds a zero)."""
    w = _window(d, "ts_product")
    a = _values(x, "ts_product")
    n = a.shape[0]
    if w > n or a.size == 0:
        return _wrap(x, _nan_panel(a.shape))
    if w <= _PROD_DIRECT_MAX:
        out = _nan_head(a.shape, w - 1)
        with np.errstate(over="ignore", under="ignore"):
            np.prod(sliding_window_view(a, w, axis=0), axis=-1, out=out[w - 1 :])
        return _wrap(x, out)
    absa = np.abs(a)
    is_zero = absa == 0.0
    with np.errstate(divide="ignore"):
        logs = np.log(np.where(is_zero, 1.0, absa))
    total = bn.move_sum(logs, w, min_count=w, axis=0)
    n_neg = bn.move_sum((a < 0).astype(np.float64), w, axis=0)
    n_zero = bn.move_sum(is_zero.astype(np.float64), w, axis=0)
    with np.errstate(over="ignore", under="ignore"):
        out = np.exp(total)
    out[np.fmod(n_neg, 2.0) == 1.0] *= -1.0
    out[(n_zero > 0) & ~np.isnan(total)] = 0.0
    return _wrap(x, out)


def decay_linear(x: xr.DataArray, d: Number) -> xr.DataArray:
    """Linearly decaying weighted mean over the strict window of ``d`` dates: today has
    weight ``d``, yesterday ``d - 1``, ..., the oldest date 1, weights normalised to sum 1
    (``sum_k (d - k) x[t - k] / (d (d + 1) / 2)``). Any NaN in the window gives NaN."""
    w = _window(d, "decay_linear")
    a = _values(x, "decay_linear")
    if w > a.shape[0] or a.size == 0:
        return _wrap(x, _nan_panel(a.shape))
    out = _nan_head(a.shape, w - 1)
    weights = np.arange(1.0, w + 1.0)  # oldest ... today
    weights /= weights.sum()
    # (n - w + 1, symbol, window) view, window axis oldest -> today; matmul is a BLAS dot per
    # window, and NaN propagates (the weights are all non-zero).
    np.matmul(sliding_window_view(a, w, axis=0), weights, out=out[w - 1 :])
    return _wrap(x, out)


def _pair_block(a: np.ndarray, b: np.ndarray, w: int, *, corr: bool) -> np.ndarray:
    """``ts_corr``/``ts_cov`` on one block of rows (the first ``w - 1`` are warm-up).

    Rolling sums of x, y, xy, x², y² after masking both where either is NaN and centring each
    column on its first jointly valid value in the block: a constant within the block, so the
    sums stay rolling sums; close to the block's values, so ``Sxy - Sx Sy / w`` cancels little;
    and never later than the start of any window with a (strict, non-NaN) result. Windows
    whose variances are tiny against the block's scale are recomputed exactly.
    """
    missing = np.isnan(a)
    missing |= np.isnan(b)
    first = np.argmin(missing, axis=0)
    cols = np.arange(a.shape[1])
    has = ~missing[first, cols]
    xc = a - np.where(has, a[first, cols], 0.0)
    yc = b - np.where(has, b[first, cols], 0.0)
    if missing.any():
        np.copyto(xc, np.nan, where=missing)
        np.copyto(yc, np.nan, where=missing)
    sx = bn.move_sum(xc, w, min_count=w, axis=0)
    sy = bn.move_sum(yc, w, min_count=w, axis=0)
    sxy = bn.move_sum(np.multiply(xc, yc), w, min_count=w, axis=0)
    cov = _centred(sxy, sx, sy, w)  # sum of co-deviations
    sxx = bn.move_sum(np.multiply(xc, xc), w, min_count=w, axis=0)
    syy = bn.move_sum(np.multiply(yc, yc), w, min_count=w, axis=0)
    vx = _centred(sxx, sx, sx, w)  # sums of squared deviations
    vy = _centred(syy, sy, sy, w)
    rows_x, cols_x = _suspect(vx, xc, w)
    rows_y, cols_y = _suspect(vy, yc, w)
    rows, cols = np.r_[rows_x, rows_y], np.r_[cols_x, cols_y]
    if rows.size:  # two-pass on the raw windows (both fully valid there)
        wx, wy = _windows(a, rows, cols, w), _windows(b, rows, cols, w)
        flat = _flat(wx) | _flat(wy)
        sxx[rows, cols] = (wx * wx).sum(axis=1)  # scales for the zero-variance test
        syy[rows, cols] = (wy * wy).sum(axis=1)
        wx -= wx.mean(axis=1, keepdims=True)
        wy -= wy.mean(axis=1, keepdims=True)
        cov[rows, cols] = np.where(flat, 0.0, (wx * wy).sum(axis=1))
        vx[rows, cols] = np.where(flat, 0.0, (wx * wx).sum(axis=1))
        vy[rows, cols] = np.where(flat, 0.0, (wy * wy).sum(axis=1))
    if not corr:
        cov /= w - 1
        return cov
    sxx *= _TINY_VAR
    syy *= _TINY_VAR
    zero = vx <= sxx
    zero |= vy <= syy
    np.copyto(vx, np.nan, where=zero)
    np.copyto(vy, np.nan, where=zero)
    np.sqrt(vx, out=vx)
    vx *= np.sqrt(vy, out=vy)  # sqrt first: no under/overflow of vx * vy
    np.copyto(vx, np.nan, where=vx == 0.0)
    cov /= vx
    return np.clip(cov, -1.0, 1.0, out=cov)


def _centred(s2: np.ndarray, s: np.ndarray, t: np.ndarray, w: int) -> np.ndarray:
    """``s2 - s * t / w`` in a new array: ``w`` x the population (co)variance."""
    out = np.multiply(s, t)
    out /= w
    return np.subtract(s2, out, out=out)


def _by_blocks(
    block_fn: Callable[..., np.ndarray], arrays: Sequence[np.ndarray], w: int
) -> np.ndarray:
    """``block_fn(*blocks, w)`` over blocks of rows, concatenated: each block carries the
    ``w - 1`` rows before it as warm-up, so the result equals one pass over the whole panel
    (up to rounding; the first ``w - 1`` rows are NaN).

    Blocks of at most ``_BLOCK_ROWS`` rows and about ``_BLOCK_CELLS`` cells keep the
    temporaries in cache and restart running sums (bounding their rounding drift). Block
    edges depend only on ``w`` and the number of symbols, so any prefix of the panel gives
    exactly the same values.
    """
    n, m = arrays[0].shape
    if w > n or n * m == 0:
        return _nan_panel((n, m))
    out = _nan_head((n, m), w - 1)
    rows = max(4 * w, min(_BLOCK_ROWS, _BLOCK_CELLS // m))
    for start in range(w - 1, n, rows):  # output rows [start, stop)
        stop = min(start + rows, n)
        lo = start - w + 1
        out[start:stop] = block_fn(*(v[lo:stop] for v in arrays), w)[w - 1 :]
    return out


def _pair_panels(
    x: xr.DataArray, y: xr.DataArray, d: Number, op: str
) -> tuple[np.ndarray, np.ndarray, int]:
    a = _values(x, op)
    b = _values(y, op)
    _check_same_grid(x, y, op)
    return a, b, _window(d, op)


def ts_cov(x: xr.DataArray, y: xr.DataArray, d: Number) -> xr.DataArray:
    """Sample covariance (ddof=1) of ``x`` and ``y`` over the strict joint window of ``d``
    dates (NaN if either has a NaN in the window); exactly 0 where either window is constant;
    ``d = 1`` gives NaN."""
    a, b, w = _pair_panels(x, y, d, "ts_cov")
    if w == 1:
        return _wrap(x, _nan_panel(a.shape))
    return _wrap(x, _by_blocks(partial(_pair_block, corr=False), (a, b), w))


def ts_corr(x: xr.DataArray, y: xr.DataArray, d: Number) -> xr.DataArray:
    """Pearson correlation of ``x`` and ``y`` over the strict joint window of ``d`` dates
    (NaN if either has a NaN in the window), clipped to [-1, 1]; NaN where either window has
    zero variance: constant, or variance <= 1e-14 x the mean square of its values about a
    local reference (zero up to rounding); ``d = 1`` gives NaN."""
    a, b, w = _pair_panels(x, y, d, "ts_corr")
    if w == 1:
        return _wrap(x, _nan_panel(a.shape))
    return _wrap(x, _by_blocks(partial(_pair_block, corr=True), (a, b), w))


# --------------------------------------------------------------------------- cross-section


def _row(v: np.ndarray) -> np.ndarray:
    return v[:, None]


def rank(x: xr.DataArray) -> xr.DataArray:
    """Cross-sectional percentile rank per date in ``(0, 1]``: average rank of ties (1 =
    smallest) divided by the number of non-NaN names that date; NaN stays NaN. Same as pandas
    ``rank(axis=1, pct=True)``."""
    a = _values(x, "rank")
    r = cross_rank(a)
    return _wrap(x, r)


def zscore(x: xr.DataArray) -> xr.DataArray:
    """Cross-sectional ``(x - mean) / std`` per date over the non-NaN names, std with ddof=0;
    NaN where the std is zero (variance <= 1e-14 x mean square) or the date has no names."""
    a = _values(x, "zscore")
    if a.size == 0:
        return _wrap(x, a.copy())
    mean = _row(bn.nanmean(a, axis=1))
    std = _row(bn.nanstd(a, axis=1, ddof=0))
    zero = _is_tiny(std * std, std * std + mean * mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (a - mean) / std
    out[np.broadcast_to(zero, a.shape)] = np.nan
    return _wrap(x, out)


def demean(x: xr.DataArray) -> xr.DataArray:
    """``x`` minus its cross-sectional mean per date over the non-NaN names."""
    a = _values(x, "demean")
    if a.size == 0:
        return _wrap(x, a.copy())
    return _wrap(x, a - _row(bn.nanmean(a, axis=1)))


def scale(x: xr.DataArray, a: Number = 1.0) -> xr.DataArray:
    """``x * a / sum(|x|)`` per date over the non-NaN names, so that ``sum(|result|) = a``;
    NaN for a date whose absolute sum is 0."""
    v = _values(x, "scale")
    if v.size == 0:
        return _wrap(x, v.copy())
    total = _row(bn.nansum(np.abs(v), axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = v * (_number(a, "scale") / np.where(total > 0, total, np.nan))
    return _wrap(x, out)


def _lerp(lo: np.ndarray, hi: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's linear interpolation (the form ``np.quantile`` uses)."""
    diff = hi - lo
    return np.where(t >= 0.5, hi - diff * (1.0 - t), lo + diff * t)


def _row_quantiles(a: np.ndarray, qs: Sequence[float]) -> list[np.ndarray]:
    """Per-row quantiles over the non-NaN values, linear interpolation (numpy/pandas
    default), as ``(n_rows, 1)`` columns; NaN for an all-NaN row."""
    s = np.sort(a, axis=1)  # NaN last
    count = a.shape[1] - np.isnan(a).sum(axis=1)
    rows = np.arange(a.shape[0])
    out = []
    for q in qs:
        h = (count - 1) * q
        lo = np.clip(np.floor(h), 0, None).astype(np.intp)
        hi = np.minimum(lo + 1, np.maximum(count - 1, 0))
        value = _lerp(s[rows, lo], s[rows, hi], h - lo)
        value[count == 0] = np.nan
        out.append(_row(value))
    return out


def winsorize(x: xr.DataArray, q: float = 0.01) -> xr.DataArray:
    """Clip each date's values to its ``q`` and ``1 - q`` quantiles over the non-NaN names
    (linear interpolation, as ``np.nanquantile``/pandas); ``0 <= q <= 0.5``."""
    if not 0.0 <= _number(q, "winsorize") <= 0.5:
        raise ValueError(f"winsorize: q must be in [0, 0.5], got {q!r}")
    a = _values(x, "winsorize")
    if a.size == 0:
        return _wrap(x, a.copy())
    lower, upper = _row_quantiles(a, (q, 1.0 - q))
    return _wrap(x, np.minimum(np.maximum(a, lower), upper))


def winsorize_mad(x: xr.DataArray, k: float = 3.0) -> xr.DataArray:
    """Clip each date's values to ``median ± k * 1.4826 * MAD`` over the non-NaN names (MAD
    = median absolute deviation from the median). A date whose MAD is 0 is left unchanged
    (clipping would collapse it onto the median); ``k > 0``."""
    if not _number(k, "winsorize_mad") > 0:
        raise ValueError(f"winsorize_mad: k must be > 0, got {k!r}")
    a = _values(x, "winsorize_mad")
    if a.size == 0:
        return _wrap(x, a.copy())
    med = _row(bn.nanmedian(a, axis=1))
    mad = _row(bn.nanmedian(np.abs(a - med), axis=1))
    half = k * _MAD_SCALE * np.where(mad > 0, mad, np.inf)
    return _wrap(x, np.minimum(np.maximum(a, med - half), med + half))


def _group_codes(groups: xr.DataArray, x: xr.DataArray) -> tuple[np.ndarray, int]:
    """Integer codes of ``groups`` on the grid of ``x`` (broadcastable to its shape; -1 for
    a missing label: None, NaN or ""), and the number of groups."""
    if not isinstance(groups, xr.DataArray):
        raise TypeError(f"neutralize: groups must be a DataArray, got {type(groups).__name__}")
    if groups.dims not in (("symbol",), DIMS):
        raise ValueError(
            f"neutralize: groups dims are {groups.dims}, expected ('symbol',) or ('date', 'symbol')"
        )
    for dim in groups.dims:
        ix, ig = x.indexes.get(dim), groups.indexes.get(dim)
        if ix is not None and ig is not None:
            if not ig.equals(ix):
                groups = groups.reindex({dim: ix})  # labels of absent symbols are missing
        elif groups.sizes[dim] != x.sizes[dim]:
            raise ValueError(f"neutralize: groups and panel differ in {dim!r}")
    labels = groups.values
    flat = labels.ravel()
    if flat.dtype.kind in "OUS":
        flat = flat.astype(object)
        flat[flat == ""] = None
    codes, uniques = pd.factorize(flat, use_na_sentinel=True)
    return codes.reshape(labels.shape), len(uniques)


def neutralize(x: xr.DataArray, groups: xr.DataArray) -> xr.DataArray:
    """``x`` minus its group mean per date (the paper's ``indneutralize``): the mean over the
    non-NaN names of the same group that date. ``groups`` holds one label per symbol (dim
    ``symbol``) or per date and symbol (dims ``("date", "symbol")``), aligned to ``x`` by
    coordinate; a name with a missing label (None, NaN or "") gives NaN."""
    a = _values(x, "neutralize")
    codes, n_groups = _group_codes(groups, x)
    n_dates = a.shape[0]
    if a.size == 0 or n_groups == 0:
        return _wrap(x, _nan_panel(a.shape))
    codes = np.broadcast_to(codes, a.shape)
    valid = (codes >= 0) & ~np.isnan(a)
    cell = codes + n_groups * np.arange(n_dates)[:, None]  # (date, group) bin of each cell
    size = n_dates * n_groups
    sums = np.bincount(cell[valid], weights=a[valid], minlength=size)
    counts = np.bincount(cell[valid], minlength=size)
    with np.errstate(divide="ignore", invalid="ignore"):
        means = sums / counts
    out = a - means[np.where(codes >= 0, cell, 0)]
    out[codes < 0] = np.nan
    return _wrap(x, out)


def residualize(y: xr.DataArray, *xs: xr.DataArray) -> xr.DataArray:
    """Per-date OLS residuals of ``y`` on a constant and the ``xs``. Only names where ``y``
    and every ``x`` are non-NaN take part (the others are NaN); a date with fewer such names
    than ``len(xs) + 1`` is all NaN. A regressor that is constant across the names of a date
    (or collinear with the others) is dropped (minimum-norm least squares). With no ``xs``
    this is :func:`demean`."""
    yv = _values(y, "residualize")
    regressors = []
    for x in xs:
        regressors.append(_values(x, "residualize"))
        _check_same_grid(y, x, "residualize")
    k = len(regressors)
    valid = ~np.isnan(yv)
    for r in regressors:
        valid &= ~np.isnan(r)
    count = valid.sum(axis=1)
    n = _row(np.where(count > 0, count, 1)).astype(np.float64)

    def centred(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``v`` minus its mean over the valid names, 0 elsewhere; and that mean."""
        out = np.where(valid, v, 0.0)
        mean = out.sum(axis=1, keepdims=True) / n
        out -= mean
        out *= valid
        return out, mean

    res, _ = centred(yv)
    if k:
        cols = []
        for r in regressors:
            xc, mean = centred(r)
            # Standardise per date; a (numerically) constant regressor becomes 0 (dropped).
            var = np.einsum("tn,tn->t", xc, xc)[:, None] / n
            tiny = _is_tiny(var, var + mean * mean)
            xc *= np.where(tiny, 0.0, 1.0 / np.sqrt(np.where(tiny, 1.0, var)))
            cols.append(xc)
        gram = np.empty((yv.shape[0], k, k))
        xty = np.empty((yv.shape[0], k))
        for i, xi in enumerate(cols):
            xty[:, i] = np.einsum("tn,tn->t", xi, res)
            for j in range(i + 1):
                gram[:, i, j] = gram[:, j, i] = np.einsum("tn,tn->t", xi, cols[j])
        inv = np.linalg.pinv(gram, rcond=1e-10, hermitian=True)
        beta = np.einsum("tkl,tl->tk", inv, xty)
        for i, xi in enumerate(cols):
            res -= beta[:, i : i + 1] * xi
    res[~valid] = np.nan
    res[count < k + 1] = np.nan
    return _wrap(y, res)


# --------------------------------------------------------------------------- element-wise


def _operand(v: object, op: str) -> np.ndarray | float:
    """A panel's values or a number."""
    if isinstance(v, xr.DataArray):
        return _values(v, op, finite=False)
    return _number(v, op)


def sign(x: xr.DataArray) -> xr.DataArray:
    """-1, 0 or 1 by the sign of ``x``; NaN stays NaN."""
    return _wrap(x, np.sign(_values(x, "sign", finite=False)))


def log(x: xr.DataArray) -> xr.DataArray:
    """Natural log; NaN where ``x <= 0`` or NaN."""
    a = _values(x, "log", finite=False)
    return _wrap(x, np.log(np.where(a > 0, a, np.nan)))


def abs_(x: xr.DataArray) -> xr.DataArray:
    """``|x|`` (public name ``abs``)."""
    return _wrap(x, np.abs(_values(x, "abs", finite=False)))


def signed_power(x: xr.DataArray, a: Number) -> xr.DataArray:
    """``sign(x) * |x| ** a`` (the paper's ``SignedPower``); NaN stays NaN."""
    p = _number(a, "signed_power")
    v = _values(x, "signed_power", finite=False)
    with np.errstate(divide="ignore", invalid="ignore"):
        return _wrap(x, np.sign(v) * np.abs(v) ** p)


def where(
    cond: xr.DataArray | Number, a: xr.DataArray | Number, b: xr.DataArray | Number
) -> xr.DataArray:
    """``a`` where ``cond`` is true (non-zero), else ``b``; NaN where ``cond`` is NaN (the
    paper's ``cond ? a : b``). ``cond`` may be boolean or float. Any argument may be a number
    if at least one is a panel; panels must share the grid, and the result has the grid of
    the first panel."""
    args = (cond, a, b)
    grid = next((v for v in args if isinstance(v, xr.DataArray)), None)
    if grid is None:
        raise TypeError("where: at least one argument must be a panel")
    values = [_operand(v, "where") for v in args]
    for v in args:
        if isinstance(v, xr.DataArray):
            _check_same_grid(grid, v, "where")
    c = np.broadcast_to(values[0], grid.shape)
    out = np.where(c != 0, values[1], values[2]).astype(np.float64)
    out[np.isnan(c)] = np.nan
    return _wrap(grid, out)


def _pairwise(
    ufunc: np.ufunc, a: xr.DataArray, b: xr.DataArray, op: str, paper: str
) -> xr.DataArray:
    for v in (a, b):
        if not isinstance(v, xr.DataArray):
            raise TypeError(
                f"{op}: both arguments must be panels, got {type(v).__name__} (the paper's "
                f"{op}(x, d) with a number d is {paper}(x, d))"
            )
    va, vb = _values(a, op, finite=False), _values(b, op, finite=False)
    _check_same_grid(a, b, op)
    return _wrap(a, ufunc(va, vb))


def min_(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """Element-wise minimum of two panels, NaN if either is NaN (public name ``min``). The
    paper's ``min(x, d)`` with a number ``d`` means :func:`ts_min`; a number raises."""
    return _pairwise(np.minimum, a, b, "min", "ts_min")


def max_(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """Element-wise maximum of two panels, NaN if either is NaN (public name ``max``). The
    paper's ``max(x, d)`` with a number ``d`` means :func:`ts_max`; a number raises."""
    return _pairwise(np.maximum, a, b, "max", "ts_max")


# --------------------------------------------------------------------------- registry


Kind = Literal["elementwise", "time_series", "cross_section"]


@dataclass(frozen=True)
class OperatorSpec:
    """How an expression may call an operator: ``fn(*panels, [group], *params)``.

    - ``n_panels``: panel operands first (the minimum if ``variadic``: more may follow).
    - ``scalar_operands``: any panel operand may be a plain number, as long as one is a
      panel (``where``).
    - ``group``: one group-label panel follows the panels (``neutralize``: the parser
      resolves a name such as ``sector`` to that panel).
    - ``n_params`` required then ``len(defaults)`` optional numeric parameters.
    - ``window``: index into the numeric parameters of the window ``d``, or None. The
      operator looks back ``floor(d) + lookback_offset`` sessions before a date: 0 for
      ``delay``/``delta``/``returns`` (they read ``x[t - d]``), -1 for ``ts_*`` and
      ``decay_linear`` (the window is ``t - d + 1 .. t``); operators without a window add 0.
    """

    name: str
    fn: Callable[..., xr.DataArray]
    kind: Kind
    n_panels: int
    n_params: int = 0
    defaults: tuple[float, ...] = ()
    window: int | None = None
    lookback_offset: int = 0
    variadic: bool = False
    group: bool = False
    scalar_operands: bool = False

    @property
    def n_optional(self) -> int:
        """Numeric parameters that may be left out (they take ``defaults``)."""
        return len(self.defaults)

    @property
    def arity(self) -> tuple[int, int | None]:
        """(fewest, most) positional arguments in total; most is None if variadic."""
        low = self.n_panels + int(self.group) + self.n_params
        return low, None if self.variadic else low + self.n_optional

    def lookback(self, *params: float) -> int:
        """Sessions before a date that the result may read, given the numeric parameters
        as written (defaults fill the optional ones); 0 without a window."""
        given = len(params) - self.n_params
        if not 0 <= given <= self.n_optional:
            raise ValueError(
                f"{self.name}: takes {self.n_params} to {self.n_params + self.n_optional} "
                f"numeric parameters, got {len(params)}"
            )
        if self.window is None:
            return 0
        values = (*params, *self.defaults[given:])
        return _window(values[self.window], self.name) + self.lookback_offset


def _ts(name: str, fn: Callable[..., xr.DataArray], n_panels: int = 1) -> OperatorSpec:
    """A windowed operator: ``fn(*panels, d)``, look-back ``d - 1``."""
    return OperatorSpec(name, fn, "time_series", n_panels, n_params=1, window=0, lookback_offset=-1)


def _shift(
    name: str, fn: Callable[..., xr.DataArray], defaults: tuple[float, ...] = ()
) -> OperatorSpec:
    """A shift: ``fn(x, d)``, look-back ``d`` (``d`` optional if ``defaults``)."""
    n_params = 1 - len(defaults)
    return OperatorSpec(name, fn, "time_series", 1, n_params, defaults, window=0)


OPERATORS: dict[str, OperatorSpec] = {
    spec.name: spec
    for spec in (
        # time series: look back d (shifts) or d - 1 (windows)
        _shift("delay", delay),
        _shift("delta", delta),
        _shift("returns", returns, defaults=(1,)),
        _ts("ts_sum", ts_sum),
        _ts("ts_mean", ts_mean),
        _ts("ts_std", ts_std),
        _ts("ts_zscore", ts_zscore),
        _ts("ts_min", ts_min),
        _ts("ts_max", ts_max),
        _ts("ts_argmax", ts_argmax),
        _ts("ts_argmin", ts_argmin),
        _ts("ts_rank", ts_rank),
        _ts("ts_product", ts_product),
        _ts("decay_linear", decay_linear),
        _ts("ts_corr", ts_corr, n_panels=2),
        _ts("ts_cov", ts_cov, n_panels=2),
        # cross-section: per date, no look-back
        OperatorSpec("rank", rank, "cross_section", 1),
        OperatorSpec("zscore", zscore, "cross_section", 1),
        OperatorSpec("demean", demean, "cross_section", 1),
        OperatorSpec("scale", scale, "cross_section", 1, defaults=(1.0,)),
        OperatorSpec("winsorize", winsorize, "cross_section", 1, defaults=(0.01,)),
        OperatorSpec("winsorize_mad", winsorize_mad, "cross_section", 1, defaults=(3.0,)),
        OperatorSpec("neutralize", neutralize, "cross_section", 1, group=True),
        OperatorSpec("residualize", residualize, "cross_section", 1, variadic=True),
        # element-wise
        OperatorSpec("sign", sign, "elementwise", 1),
        OperatorSpec("log", log, "elementwise", 1),
        OperatorSpec("abs", abs_, "elementwise", 1),
        OperatorSpec("signed_power", signed_power, "elementwise", 1, n_params=1),
        OperatorSpec("where", where, "elementwise", 3, scalar_operands=True),
        OperatorSpec("min", min_, "elementwise", 2),
        OperatorSpec("max", max_, "elementwise", 2),
    )
}
"""Every public operator by the name expressions use."""

ALIASES: dict[str, str] = {
    "correlation": "ts_corr",
    "covariance": "ts_cov",
    "stddev": "ts_std",
    "sum": "ts_sum",
    "product": "ts_product",
    "indneutralize": "neutralize",
    "signedpower": "signed_power",
}
"""Kakushadze (2016) spellings -> names in :data:`OPERATORS` (compare lower-cased). The
paper's ``min(x, d)``/``max(x, d)`` with a number ``d`` mean ``ts_min``/``ts_max``; the parser
must route those by argument type (``min``/``max`` with two panels are element-wise)."""

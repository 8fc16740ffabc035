"""Compiled (numba) kernels on float64 ``(date, symbol)`` arrays that bottleneck lacks or runs
slowly: the cross-sectional percentile rank, the rank of today within its window, and
window-by-window sums and co-moments whose value depends on the window's values only (so a
value is bit-identical whatever history precedes its window).

Every kernel releases the GIL (``nogil``), so factors computed on several threads run on
several cores; compiled code is cached on disk beside this module (or in numba's user cache
when that is read-only). Windows are strict: NaN unless all ``w`` values are non-NaN.
"""

from __future__ import annotations

import numba as nb
import numpy as np

_JIT = {"cache": True, "nogil": True, "error_model": "numpy"}

_INT64_MAX = np.int64(0x7FFFFFFFFFFFFFFF)


# --------------------------------------------------------------------------- cross-section


@nb.njit(**_JIT)
def _rank_keys(bits: np.ndarray, low_bits: int) -> np.ndarray:  # pragma: no cover - compiled
    """Order-preserving int64 keys of float64 bit patterns, with the column index in the low
    ``low_bits`` bits (NaN after +inf)."""
    n, m = bits.shape
    low = (np.int64(1) << low_bits) - 1
    high = ~low
    nan_key = _INT64_MAX & high
    exp_mask = np.int64(0x7FF0000000000000)
    frac_mask = np.int64(0x000FFFFFFFFFFFFF)
    keys = np.empty((n, m), np.int64)
    for i in range(n):
        for j in range(m):
            k = bits[i, j]
            if (k & exp_mask) == exp_mask and (k & frac_mask) != 0:  # NaN
                keys[i, j] = nan_key | j
            else:
                keys[i, j] = ((k ^ ((k >> 63) & _INT64_MAX)) & high) | j
    return keys


@nb.njit(**_JIT)
def _ranks_from_sorted(
    a: np.ndarray, keys: np.ndarray, low_bits: int, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Percentile ranks of each row of ``a`` from its sorted keys. Key order equals value
    order except among values within ``2**low_bits`` units in the last place of each other
    (e.g. price differences that are equal in cents but not in binary); an insertion sort on
    the nearly sorted values puts those right, in linear time when they are few."""
    n, m = a.shape
    low = (np.int64(1) << low_bits) - 1
    order = np.empty(m, np.int64)
    vals = np.empty(m)
    for i in range(n):
        row = a[i]
        ks = keys[i]
        count = 0
        for q in range(m):
            j = ks[q] & low
            v = row[j]
            if np.isnan(v):  # NaN keys sort last
                out[i, j] = np.nan
                continue
            p = count
            while p > 0 and vals[p - 1] > v:
                vals[p] = vals[p - 1]
                order[p] = order[p - 1]
                p -= 1
            vals[p] = v
            order[p] = j
            count += 1
        q = 0
        while q < count:
            e = q
            while e + 1 < count and vals[e + 1] == vals[q]:
                e += 1
            r = (q + e + 2) / 2.0 / count  # average 1-based rank of the tie group
            for p in range(q, e + 1):
                out[i, order[p]] = r
            q = e + 1


def cross_rank(a: np.ndarray) -> np.ndarray:
    """Per row: the average 1-based rank of each non-NaN value (ties averaged) divided by the
    row's number of non-NaN values, in ``(0, 1]``; NaN stays NaN. ``a`` holds no inf.

    Rows are sorted as int64 keys that carry the column in their lowest bits (numpy's
    vectorised sort, several times faster than an argsort); values whose keys collide in the
    high bits are then put in exact order, so the result is exact.
    """
    a = np.ascontiguousarray(a, dtype=np.float64)
    n, m = a.shape
    out = np.empty((n, m))
    if a.size == 0:
        return out
    low_bits = max(1, (m - 1).bit_length())
    keys = _rank_keys(a.view(np.int64), low_bits)
    keys.sort(axis=1)
    _ranks_from_sorted(a, keys, low_bits, out)
    return out


# --------------------------------------------------------------------------- windows


@nb.njit(**_JIT)
def move_rank(a: np.ndarray, w: int) -> np.ndarray:  # pragma: no cover - compiled
    """Rank of each value within its strict window of ``w`` rows (itself included), as a
    fraction in ``(0, 1]``: ``(#less + (#equal + 1) / 2) / w``, ``#equal`` counting itself."""
    n, m = a.shape
    out = np.full((n, m), np.nan)
    less = np.empty(m)
    equal = np.empty(m)
    valid = np.empty(m)
    for t in range(w - 1, n):
        cur = a[t]
        less[:] = 0.0
        equal[:] = 0.0
        valid[:] = 0.0
        for k in range(t - w + 1, t + 1):
            row = a[k]
            for j in range(m):
                v = row[j]
                c = cur[j]
                less[j] += 1.0 if v < c else 0.0
                equal[j] += 1.0 if v == c else 0.0
                valid[j] += 0.0 if np.isnan(v) else 1.0
        for j in range(m):
            if valid[j] == w:
                out[t, j] = (less[j] + (equal[j] + 1.0) / 2.0) / w
    return out


@nb.njit(**_JIT)
def window_sums(a: np.ndarray, w: int) -> np.ndarray:  # pragma: no cover - compiled
    """Sum of each strict window of ``w`` rows, added oldest to newest (NaN for the first
    ``w - 1`` rows and where the window holds a NaN)."""
    n, m = a.shape
    out = np.full((n, m), np.nan)
    for t in range(w - 1, n):
        acc = out[t]
        acc[:] = a[t - w + 1]
        for k in range(t - w + 2, t + 1):
            row = a[k]
            for j in range(m):
                acc[j] += row[j]
    return out


@nb.njit(**_JIT)
def window_comoments(
    a: np.ndarray, b: np.ndarray, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Per strict window of ``w`` rows: ``sum((a - mean a)(b - mean b))``, ``sum((a - mean
    a)^2)`` and ``sum((b - mean b)^2)``, all NaN where a or b has a NaN in the window.

    Computed on deviations from the window's newest values (``S_ab - S_a S_b / w`` over
    ``d = x - x_newest``, oldest to newest), so a constant window gives exactly 0.
    """
    n, m = a.shape
    sab = np.full((n, m), np.nan)
    saa = np.full((n, m), np.nan)
    sbb = np.full((n, m), np.nan)
    sa = np.empty(m)
    sb = np.empty(m)
    pab = np.empty(m)
    paa = np.empty(m)
    pbb = np.empty(m)
    for t in range(w - 1, n):
        ca = a[t]
        cb = b[t]
        sa[:] = 0.0
        sb[:] = 0.0
        pab[:] = 0.0
        paa[:] = 0.0
        pbb[:] = 0.0
        for k in range(t - w + 1, t):  # the newest row deviates by 0
            ra = a[k]
            rb = b[k]
            for j in range(m):
                da = ra[j] - ca[j]
                db = rb[j] - cb[j]
                sa[j] += da
                sb[j] += db
                pab[j] += da * db
                paa[j] += da * da
                pbb[j] += db * db
        for j in range(m):
            x = pab[j] - sa[j] * sb[j] / w
            if np.isnan(x) or np.isnan(ca[j]) or np.isnan(cb[j]):
                continue
            sab[t, j] = x
            saa[t, j] = paa[j] - sa[j] * sa[j] / w
            sbb[t, j] = pbb[j] - sb[j] * sb[j] / w
    return sab, saa, sbb

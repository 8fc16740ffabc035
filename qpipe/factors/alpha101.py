"""The Alpha101 factors of Kakushadze (2016), "101 Formulaic Alphas" (Appendix A), that need
only prices, volume, vwap and adv: 82 of the 101. Left out: the 18 that use an industry
classification (48 58 59 63 67 69 70 76 79 80 82 87 89 90 91 93 97 100) and #56 (market cap).
Each is written from the paper's formula, which its docstring quotes (and its description
repeats on one line).

Conventions (where public implementations disagree; see ``qpipe.factors.operators``):

- ``rank(x)``: cross-sectional percentile rank per date in (0, 1], ties averaged.
- ``Ts_Rank(x, d)``: today's rank within its d-session window as a fraction in (0, 1].
- ``ts_argmax/ts_argmin(x, d)``: position of the max/min in the window, 1 = oldest, d = today.
- ``decay_linear(x, d)``: weights d (today), d-1, ..., 1 (oldest), normalised to sum to 1.
- ``sum``, ``product``, ``stddev`` (ddof 1), ``ts_min``/``ts_max``: ``ts_sum``, ``ts_product``,
  ``ts_std``, ``ts_min``/``ts_max`` over the last d sessions, today included.
- ``correlation``/``covariance`` (ddof 1): Pearson/sample covariance over the window, computed
  window by window here (see below; the 200- and 230-session correlations of #37 and #32 use
  the running moments of ``operators.ts_corr``, ~1e-11 from exact); a window in which either
  series is constant gives correlation 0 and covariance 0 (the paper leaves it undefined;
  NaN would run through the nested windows and leave e.g. #96 always NaN); correlations are
  rounded to 12 decimals so that equal ones tie (the correlation of two sessions is always
  +-1, as in #45).
- ``scale(x)``: rescaled per date so that sum(|x|) = 1; ``SignedPower`` is ``signed_power``
  (spelled out in #84, whose exponent is a panel).
- ``min(x, d)``/``max(x, d)`` with a number d are ``ts_min``/``ts_max``; ``min(a, b)`` and
  ``max(a, b)`` of two panels are element-wise (NaN if either is NaN).
- Windows are strict (NaN unless the whole window is present); non-integer windows are
  floored, as the paper intends (``ts_min(vwap, 16.1219)`` uses 16 sessions).
- ``adv{d}`` is ``x.adv(d)``: average daily *dollar* volume over d sessions, per the paper.
  ``volume`` is share volume (split adjusted), so ``volume / adv20`` (#7, #17, #21, #39, #43,
  #47) is shares per dollar: the comparisons with 1 in #7 and #21 hold only below $1.
- ``vwap`` is ``x.vwap``: the data's vwap, else the typical price (high + low + close) / 3.
- ``returns`` are close-to-close returns of the adjusted close (one session of look-back).
- ``x ^ y`` is a power; ``a < b`` and ``a == b`` give 1.0/0.0 and NaN if an operand is NaN;
  the ternary ``c ? a : b`` is ``where(c, a, b)``, NaN where ``c`` is NaN; ``||`` on such 0/1
  values is their maximum.
- A division by zero (a zero range high - low, a zero rank, vwap == close) gives NaN, never
  inf; every result is float64 over dims ``(date, symbol)`` with inf turned into NaN.
- ``IndNeutralize`` and ``cap`` are not used.

Look-back (sessions before a date that its value depends on): delay/delta add d, returns add
1, ``adv{d}`` adds d-1 and every window of d sessions (ts_*, decay_linear, correlation,
covariance, stddev, sum, product) adds d-1; nested windows add up and the maximum is taken
over the branches of an expression. Values are point-in-time and reproducible bit for bit from
that much history: ranks, comparisons and ``Ts_Rank`` amplify any difference, so the window
sums that feed them (correlation, covariance, the sums of ranks in #15, #27 and #29) are
computed window by window here (compiled kernels in ``qpipe.factors.kernels``) rather than
with running sums, whose rounding depends on where the history starts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import xarray as xr

from qpipe.factors.inputs import FactorInputs
from qpipe.factors.kernels import window_comoments, window_sums
from qpipe.factors.operators import (
    abs_,
    decay_linear,
    delay,
    delta,
    log,
    max_,
    min_,
    rank,
    scale,
    sign,
    signed_power,
    ts_argmax,
    ts_argmin,
    ts_corr,
    ts_max,
    ts_min,
    ts_product,
    ts_rank,
    ts_std,
    ts_sum,
    where,
)
from qpipe.factors.registry import FactorFn, FactorLibrary

ALPHA101 = FactorLibrary()
"""The Alpha101 factors ``alpha001`` ... ``alpha101`` available without industry or cap data."""

Value = xr.DataArray | float

DIMS = ("date", "symbol")


# --------------------------------------------------------------------------------------------
# Helpers for the paper's comparisons, ternaries and divisions


def _valid(*values: Value) -> xr.DataArray | bool:
    """True where every panel among ``values`` is present (numbers are always present)."""
    mask: xr.DataArray | bool = True
    for v in values:
        if isinstance(v, xr.DataArray):
            mask = v.notnull() & mask
    return mask


def _truth(cond: xr.DataArray, *operands: Value) -> xr.DataArray:
    """A boolean panel as 1.0/0.0, NaN where one of ``operands`` is NaN."""
    return xr.where(cond, 1.0, 0.0).where(_valid(*operands))


def _lt(a: Value, b: Value) -> xr.DataArray:
    """The paper's ``(a < b)``: 1.0 or 0.0, NaN if a or b is NaN."""
    return _truth(a < b, a, b)


def _eq(a: Value, b: Value) -> xr.DataArray:
    """The paper's ``(a == b)``: 1.0 or 0.0, NaN if a or b is NaN."""
    return _truth(a == b, a, b)


def _or(a: xr.DataArray, b: xr.DataArray) -> xr.DataArray:
    """The paper's ``a || b`` on 0/1 values: their maximum (NaN if either is NaN)."""
    return max_(a, b)


def _div(a: Value, b: Value) -> xr.DataArray:
    """``a / b`` with inf (a division by zero) turned into NaN."""
    out = a / b
    assert isinstance(out, xr.DataArray)
    return out.where(np.isfinite(out))


def _mix(a: xr.DataArray, b: xr.DataArray, w: float) -> xr.DataArray:
    """The paper's ``((a * w) + (b * (1 - w)))``."""
    return (a * w) + (b * (1 - w))


# --------------------------------------------------------------------------------------------
# Window statistics that depend only on their own window, bit for bit
#
# The operators' running sums (bottleneck) carry rounding noise that depends on where the
# history starts. That noise breaks exact ties differently on a truncated history (rank of
# correlations over 2 sessions, all +-1; covariances of a constant rank, all 0) and can hide
# a zero variance, so the alphas use these window-by-window versions for the statistics that
# feed ranks and comparisons.


def _vals(x: xr.DataArray) -> np.ndarray:
    """The panel as float64 ``(date, symbol)`` values, inf as NaN."""
    a = np.asarray(x.transpose(*DIMS).values, dtype=np.float64)
    return np.where(np.isinf(a), np.nan, a)


def _width(d: float) -> int:
    return int(np.floor(d))


def _const(x: xr.DataArray, d: float) -> xr.DataArray:
    """True where the window of ``d`` sessions is full and constant (exact)."""
    return ts_max(x, d) == ts_min(x, d)


def _wsum(x: xr.DataArray, d: float) -> xr.DataArray:
    """``sum(x, d)`` window by window (strict)."""
    return _windowed(x, window_sums(_vals(x), _width(d)))


def _windowed(x: xr.DataArray, values: np.ndarray) -> xr.DataArray:
    return xr.DataArray(values, coords=x.coords, dims=DIMS)


def _comoments(
    x: xr.DataArray, y: xr.DataArray, w: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per strict window of ``w`` sessions: the sums of co-deviations and of squared
    deviations of x and y (see :func:`qpipe.factors.kernels.window_comoments`; exactly 0 for
    a constant window, NaN where x or y has a NaN in the window)."""
    return window_comoments(_vals(x), _vals(y), w)


EXACT_CORR_MAX_WINDOW = 40
"""Correlations over at most this many sessions are computed window by window (bit-exact,
and faster than running moments up to about this length)."""


def _corr(x: xr.DataArray, y: xr.DataArray, d: float) -> xr.DataArray:
    """``correlation(x, y, d)``: Pearson over the strict window, 0 where either window is
    constant (undefined in the paper; NaN would run through the nested windows of e.g. #96
    and leave it always NaN); rounded to 12 decimals so that equal correlations tie (e.g. the
    +-1 of d = 2)."""
    w = _width(d)
    if w < 2:
        return _windowed(x, np.full(x.shape, np.nan))
    if w > EXACT_CORR_MAX_WINDOW:
        # Long windows: the blocked running moments of operators.ts_corr (exact on constant
        # windows, ~1e-11 otherwise) are far faster than window-by-window sums, and their
        # values do not sit on ties the way short-window correlations of ranks do.
        r = ts_corr(x, y, w).values
        complete = ~np.isnan(ts_sum(x * 0.0 + y * 0.0, w).values)
        return _windowed(x, np.round(np.where(complete & np.isnan(r), 0.0, r), 12))
    sab, saa, sbb = _comoments(x, y, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.clip(sab / np.sqrt(saa * sbb), -1.0, 1.0)
    r[(saa <= 0) | (sbb <= 0)] = 0.0
    return _windowed(x, np.round(r, 12))


def _cov(x: xr.DataArray, y: xr.DataArray, d: float) -> xr.DataArray:
    """``covariance(x, y, d)``: sample covariance (ddof 1) over the strict window (exactly 0
    where either window is constant)."""
    w = _width(d)
    if w < 2:
        return _windowed(x, np.full(x.shape, np.nan))
    sab, _, _ = _comoments(x, y, w)
    return _windowed(x, sab / (w - 1))


def _std(x: xr.DataArray, d: float) -> xr.DataArray:
    """``stddev(x, d)`` (ddof 1, strict), exactly 0 where the window is constant."""
    return ts_std(x, d).where(~_const(x, d), 0.0)


def _alpha(lookback: int, inputs: tuple[str, ...]) -> Callable[[FactorFn], FactorFn]:
    """Register ``fn`` in :data:`ALPHA101` under its own name, its description being the
    paper's formula (the docstring on one line); the result is float64 ``(date, symbol)`` with
    inf turned into NaN."""

    def wrap(fn: FactorFn) -> FactorFn:
        @functools.wraps(fn)
        def run(x: FactorInputs) -> xr.DataArray:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                out = fn(x).astype(np.float64)
                out = out.where(np.isfinite(out))
            return out.transpose(*DIMS)

        description = " ".join((fn.__doc__ or "").split())
        return ALPHA101.register(
            fn.__name__, lookback=lookback, inputs=inputs, description=description
        )(run)

    return wrap


# --------------------------------------------------------------------------------------------
# Alphas 1-20


@_alpha(24, ("close", "returns"))
def alpha001(x: FactorInputs) -> xr.DataArray:
    """Alpha#1: (rank(Ts_ArgMax(SignedPower(((returns < 0) ? stddev(returns, 20) : close), 2.),
    5)) - 0.5)"""
    base = where(_lt(x.returns, 0), _std(x.returns, 20), x.close)
    return rank(ts_argmax(signed_power(base, 2.0), 5)) - 0.5


@_alpha(7, ("open", "close", "volume"))
def alpha002(x: FactorInputs) -> xr.DataArray:
    """Alpha#2: (-1 * correlation(rank(delta(log(volume), 2)), rank(((close - open) / open)),
    6))"""
    return -1 * _corr(rank(delta(log(x.volume), 2)), rank(_div(x.close - x.open, x.open)), 6)


@_alpha(9, ("open", "volume"))
def alpha003(x: FactorInputs) -> xr.DataArray:
    """Alpha#3: (-1 * correlation(rank(open), rank(volume), 10))"""
    return -1 * _corr(rank(x.open), rank(x.volume), 10)


@_alpha(8, ("low",))
def alpha004(x: FactorInputs) -> xr.DataArray:
    """Alpha#4: (-1 * Ts_Rank(rank(low), 9))"""
    return -1 * ts_rank(rank(x.low), 9)


@_alpha(9, ("open", "close", "vwap"))
def alpha005(x: FactorInputs) -> xr.DataArray:
    """Alpha#5: (rank((open - (sum(vwap, 10) / 10))) * (-1 * abs(rank((close - vwap)))))"""
    return rank(x.open - (ts_sum(x.vwap, 10) / 10)) * (-1 * abs_(rank(x.close - x.vwap)))


@_alpha(9, ("open", "volume"))
def alpha006(x: FactorInputs) -> xr.DataArray:
    """Alpha#6: (-1 * correlation(open, volume, 10))"""
    return -1 * _corr(x.open, x.volume, 10)


@_alpha(66, ("close", "volume", "dollar_volume"))
def alpha007(x: FactorInputs) -> xr.DataArray:
    """Alpha#7: ((adv20 < volume) ? ((-1 * ts_rank(abs(delta(close, 7)), 60)) * sign(delta(close,
    7))) : (-1 * 1))"""
    # adv20 is in dollars and volume in shares (both per the paper's definitions), so the
    # condition rarely holds for stocks priced above 1.
    d7 = delta(x.close, 7)
    return where(_lt(x.adv(20), x.volume), (-1 * ts_rank(abs_(d7), 60)) * sign(d7), -1 * 1.0)


@_alpha(15, ("open", "returns"))
def alpha008(x: FactorInputs) -> xr.DataArray:
    """Alpha#8: (-1 * rank(((sum(open, 5) * sum(returns, 5)) - delay((sum(open, 5) *
    sum(returns, 5)), 10))))"""
    s = ts_sum(x.open, 5) * ts_sum(x.returns, 5)
    return -1 * rank(s - delay(s, 10))


def _trend_or_reverse(close: xr.DataArray, d: int) -> xr.DataArray:
    """``delta(close, 1)`` if it kept its sign over d sessions, else its opposite (#9, #10)."""
    d1 = delta(close, 1)
    return where(_lt(0, ts_min(d1, d)), d1, where(_lt(ts_max(d1, d), 0), d1, -1 * d1))


@_alpha(5, ("close",))
def alpha009(x: FactorInputs) -> xr.DataArray:
    """Alpha#9: ((0 < ts_min(delta(close, 1), 5)) ? delta(close, 1) : ((ts_max(delta(close, 1),
    5) < 0) ? delta(close, 1) : (-1 * delta(close, 1))))"""
    return _trend_or_reverse(x.close, 5)


@_alpha(4, ("close",))
def alpha010(x: FactorInputs) -> xr.DataArray:
    """Alpha#10: rank(((0 < ts_min(delta(close, 1), 4)) ? delta(close, 1) :
    ((ts_max(delta(close, 1), 4) < 0) ? delta(close, 1) : (-1 * delta(close, 1)))))"""
    return rank(_trend_or_reverse(x.close, 4))


@_alpha(3, ("close", "volume", "vwap"))
def alpha011(x: FactorInputs) -> xr.DataArray:
    """Alpha#11: ((rank(ts_max((vwap - close), 3)) + rank(ts_min((vwap - close), 3))) *
    rank(delta(volume, 3)))"""
    gap = x.vwap - x.close
    return (rank(ts_max(gap, 3)) + rank(ts_min(gap, 3))) * rank(delta(x.volume, 3))


@_alpha(1, ("close", "volume"))
def alpha012(x: FactorInputs) -> xr.DataArray:
    """Alpha#12: (sign(delta(volume, 1)) * (-1 * delta(close, 1)))"""
    return sign(delta(x.volume, 1)) * (-1 * delta(x.close, 1))


@_alpha(4, ("close", "volume"))
def alpha013(x: FactorInputs) -> xr.DataArray:
    """Alpha#13: (-1 * rank(covariance(rank(close), rank(volume), 5)))"""
    return -1 * rank(_cov(rank(x.close), rank(x.volume), 5))


@_alpha(9, ("open", "volume", "returns"))
def alpha014(x: FactorInputs) -> xr.DataArray:
    """Alpha#14: ((-1 * rank(delta(returns, 3))) * correlation(open, volume, 10))"""
    return (-1 * rank(delta(x.returns, 3))) * _corr(x.open, x.volume, 10)


@_alpha(4, ("high", "volume"))
def alpha015(x: FactorInputs) -> xr.DataArray:
    """Alpha#15: (-1 * sum(rank(correlation(rank(high), rank(volume), 3)), 3))"""
    return -1 * _wsum(rank(_corr(rank(x.high), rank(x.volume), 3)), 3)


@_alpha(4, ("high", "volume"))
def alpha016(x: FactorInputs) -> xr.DataArray:
    """Alpha#16: (-1 * rank(covariance(rank(high), rank(volume), 5)))"""
    return -1 * rank(_cov(rank(x.high), rank(x.volume), 5))


@_alpha(23, ("close", "volume", "dollar_volume"))
def alpha017(x: FactorInputs) -> xr.DataArray:
    """Alpha#17: (((-1 * rank(ts_rank(close, 10))) * rank(delta(delta(close, 1), 1))) *
    rank(ts_rank((volume / adv20), 5)))"""
    return (
        (-1 * rank(ts_rank(x.close, 10)))
        * rank(delta(delta(x.close, 1), 1))
        * rank(ts_rank(_div(x.volume, x.adv(20)), 5))
    )


@_alpha(9, ("open", "close"))
def alpha018(x: FactorInputs) -> xr.DataArray:
    """Alpha#18: (-1 * rank(((stddev(abs((close - open)), 5) + (close - open)) +
    correlation(close, open, 10))))"""
    body = x.close - x.open
    return -1 * rank((_std(abs_(body), 5) + body) + _corr(x.close, x.open, 10))


@_alpha(250, ("close", "returns"))
def alpha019(x: FactorInputs) -> xr.DataArray:
    """Alpha#19: ((-1 * sign(((close - delay(close, 7)) + delta(close, 7)))) * (1 + rank((1 +
    sum(returns, 250)))))"""
    c = x.close
    return (-1 * sign((c - delay(c, 7)) + delta(c, 7))) * (1 + rank(1 + ts_sum(x.returns, 250)))


@_alpha(1, ("open", "high", "low", "close"))
def alpha020(x: FactorInputs) -> xr.DataArray:
    """Alpha#20: (((-1 * rank((open - delay(high, 1)))) * rank((open - delay(close, 1)))) *
    rank((open - delay(low, 1))))"""
    o = x.open
    return (
        (-1 * rank(o - delay(x.high, 1))) * rank(o - delay(x.close, 1)) * rank(o - delay(x.low, 1))
    )


# --------------------------------------------------------------------------------------------
# Alphas 21-40


@_alpha(19, ("close", "volume", "dollar_volume"))
def alpha021(x: FactorInputs) -> xr.DataArray:
    """Alpha#21: ((((sum(close, 8) / 8) + stddev(close, 8)) < (sum(close, 2) / 2)) ? (-1 * 1) :
    (((sum(close, 2) / 2) < ((sum(close, 8) / 8) - stddev(close, 8))) ? 1 : (((1 < (volume /
    adv20)) || ((volume / adv20) == 1)) ? 1 : (-1 * 1))))"""
    # As in #7, volume / adv20 is shares per dollar, so the last test is rarely true.
    m8, s8, m2 = ts_sum(x.close, 8) / 8, _std(x.close, 8), ts_sum(x.close, 2) / 2
    ratio = _div(x.volume, x.adv(20))
    heavy = where(_or(_lt(1, ratio), _eq(ratio, 1)), 1.0, -1 * 1.0)
    return where(_lt(m8 + s8, m2), -1 * 1.0, where(_lt(m2, m8 - s8), 1.0, heavy))


@_alpha(19, ("high", "close", "volume"))
def alpha022(x: FactorInputs) -> xr.DataArray:
    """Alpha#22: (-1 * (delta(correlation(high, volume, 5), 5) * rank(stddev(close, 20))))"""
    return -1 * (delta(_corr(x.high, x.volume, 5), 5) * rank(_std(x.close, 20)))


@_alpha(19, ("high",))
def alpha023(x: FactorInputs) -> xr.DataArray:
    """Alpha#23: (((sum(high, 20) / 20) < high) ? (-1 * delta(high, 2)) : 0)"""
    return where(_lt(ts_sum(x.high, 20) / 20, x.high), -1 * delta(x.high, 2), 0.0)


@_alpha(199, ("close",))
def alpha024(x: FactorInputs) -> xr.DataArray:
    """Alpha#24: ((((delta((sum(close, 100) / 100), 100) / delay(close, 100)) < 0.05) ||
    ((delta((sum(close, 100) / 100), 100) / delay(close, 100)) == 0.05)) ? (-1 * (close -
    ts_min(close, 100))) : (-1 * delta(close, 3)))"""
    c = x.close
    drift = _div(delta(ts_sum(c, 100) / 100, 100), delay(c, 100))
    return where(
        _or(_lt(drift, 0.05), _eq(drift, 0.05)),
        -1 * (c - ts_min(c, 100)),
        -1 * delta(c, 3),
    )


@_alpha(19, ("high", "close", "vwap", "returns", "dollar_volume"))
def alpha025(x: FactorInputs) -> xr.DataArray:
    """Alpha#25: rank(((((-1 * returns) * adv20) * vwap) * (high - close)))"""
    return rank((((-1 * x.returns) * x.adv(20)) * x.vwap) * (x.high - x.close))


@_alpha(10, ("high", "volume"))
def alpha026(x: FactorInputs) -> xr.DataArray:
    """Alpha#26: (-1 * ts_max(correlation(ts_rank(volume, 5), ts_rank(high, 5), 5), 3))"""
    return -1 * ts_max(_corr(ts_rank(x.volume, 5), ts_rank(x.high, 5), 5), 3)


@_alpha(6, ("volume", "vwap"))
def alpha027(x: FactorInputs) -> xr.DataArray:
    """Alpha#27: ((0.5 < rank((sum(correlation(rank(volume), rank(vwap), 6), 2) / 2.0))) ? (-1 *
    1) : 1)"""
    level = rank(_wsum(_corr(rank(x.volume), rank(x.vwap), 6), 2) / 2.0)
    return where(_lt(0.5, level), -1 * 1.0, 1.0)


@_alpha(23, ("high", "low", "close", "dollar_volume"))
def alpha028(x: FactorInputs) -> xr.DataArray:
    """Alpha#28: scale(((correlation(adv20, low, 5) + ((high + low) / 2)) - close))"""
    return scale((_corr(x.adv(20), x.low, 5) + ((x.high + x.low) / 2)) - x.close)


@_alpha(11, ("close", "returns"))
def alpha029(x: FactorInputs) -> xr.DataArray:
    """Alpha#29: (min(product(rank(rank(scale(log(sum(ts_min(rank(rank((-1 *
    rank(delta((close - 1), 5))))), 2), 1))))), 1), 5) + ts_rank(delay((-1 * returns), 6), 5))"""
    inner = ts_min(rank(rank(-1 * rank(delta(x.close - 1, 5)))), 2)
    left = ts_min(ts_product(rank(rank(scale(log(_wsum(inner, 1))))), 1), 5)
    return left + ts_rank(delay(-1 * x.returns, 6), 5)


@_alpha(19, ("close", "volume"))
def alpha030(x: FactorInputs) -> xr.DataArray:
    """Alpha#30: (((1.0 - rank(((sign((close - delay(close, 1))) + sign((delay(close, 1) -
    delay(close, 2)))) + sign((delay(close, 2) - delay(close, 3)))))) * sum(volume, 5)) /
    sum(volume, 20))"""
    c = x.close
    c1, c2, c3 = delay(c, 1), delay(c, 2), delay(c, 3)
    ups = (sign(c - c1) + sign(c1 - c2)) + sign(c2 - c3)
    return _div((1.0 - rank(ups)) * ts_sum(x.volume, 5), ts_sum(x.volume, 20))


@_alpha(30, ("low", "close", "dollar_volume"))
def alpha031(x: FactorInputs) -> xr.DataArray:
    """Alpha#31: ((rank(rank(rank(decay_linear((-1 * rank(rank(delta(close, 10)))), 10)))) +
    rank((-1 * delta(close, 3)))) + sign(scale(correlation(adv20, low, 12))))"""
    decayed = rank(rank(rank(decay_linear(-1 * rank(rank(delta(x.close, 10))), 10))))
    return (decayed + rank(-1 * delta(x.close, 3))) + sign(scale(_corr(x.adv(20), x.low, 12)))


@_alpha(234, ("close", "vwap"))
def alpha032(x: FactorInputs) -> xr.DataArray:
    """Alpha#32: (scale(((sum(close, 7) / 7) - close)) + (20 * scale(correlation(vwap,
    delay(close, 5), 230))))"""
    c = x.close
    return scale((ts_sum(c, 7) / 7) - c) + (20 * scale(_corr(x.vwap, delay(c, 5), 230)))


@_alpha(0, ("open", "close"))
def alpha033(x: FactorInputs) -> xr.DataArray:
    """Alpha#33: rank((-1 * ((1 - (open / close))^1)))"""
    return rank(-1 * ((1 - _div(x.open, x.close)) ** 1))


@_alpha(5, ("close", "returns"))
def alpha034(x: FactorInputs) -> xr.DataArray:
    """Alpha#34: rank(((1 - rank((stddev(returns, 2) / stddev(returns, 5)))) + (1 -
    rank(delta(close, 1)))))"""
    vol_ratio = _div(_std(x.returns, 2), _std(x.returns, 5))
    return rank((1 - rank(vol_ratio)) + (1 - rank(delta(x.close, 1))))


@_alpha(32, ("high", "low", "close", "volume", "returns"))
def alpha035(x: FactorInputs) -> xr.DataArray:
    """Alpha#35: ((Ts_Rank(volume, 32) * (1 - Ts_Rank(((close + high) - low), 16))) * (1 -
    Ts_Rank(returns, 32)))"""
    return (ts_rank(x.volume, 32) * (1 - ts_rank((x.close + x.high) - x.low, 16))) * (
        1 - ts_rank(x.returns, 32)
    )


@_alpha(199, ("open", "close", "volume", "vwap", "returns", "dollar_volume"))
def alpha036(x: FactorInputs) -> xr.DataArray:
    """Alpha#36: (((((2.21 * rank(correlation((close - open), delay(volume, 1), 15))) + (0.7 *
    rank((open - close)))) + (0.73 * rank(Ts_Rank(delay((-1 * returns), 6), 5)))) +
    rank(abs(correlation(vwap, adv20, 6)))) + (0.6 * rank((((sum(close, 200) / 200) - open) *
    (close - open)))))"""
    o, c = x.open, x.close
    return (
        (2.21 * rank(_corr(c - o, delay(x.volume, 1), 15)))
        + (0.7 * rank(o - c))
        + (0.73 * rank(ts_rank(delay(-1 * x.returns, 6), 5)))
        + rank(abs_(_corr(x.vwap, x.adv(20), 6)))
        + (0.6 * rank(((ts_sum(c, 200) / 200) - o) * (c - o)))
    )


@_alpha(200, ("open", "close"))
def alpha037(x: FactorInputs) -> xr.DataArray:
    """Alpha#37: (rank(correlation(delay((open - close), 1), close, 200)) + rank((open -
    close)))"""
    body = x.open - x.close
    return rank(_corr(delay(body, 1), x.close, 200)) + rank(body)


@_alpha(9, ("open", "close"))
def alpha038(x: FactorInputs) -> xr.DataArray:
    """Alpha#38: ((-1 * rank(Ts_Rank(close, 10))) * rank((close / open)))"""
    return (-1 * rank(ts_rank(x.close, 10))) * rank(_div(x.close, x.open))


@_alpha(250, ("close", "volume", "returns", "dollar_volume"))
def alpha039(x: FactorInputs) -> xr.DataArray:
    """Alpha#39: ((-1 * rank((delta(close, 7) * (1 - rank(decay_linear((volume / adv20),
    9)))))) * (1 + rank(sum(returns, 250))))"""
    heavy = rank(decay_linear(_div(x.volume, x.adv(20)), 9))
    return (-1 * rank(delta(x.close, 7) * (1 - heavy))) * (1 + rank(ts_sum(x.returns, 250)))


@_alpha(9, ("high", "volume"))
def alpha040(x: FactorInputs) -> xr.DataArray:
    """Alpha#40: ((-1 * rank(stddev(high, 10))) * correlation(high, volume, 10))"""
    return (-1 * rank(_std(x.high, 10))) * _corr(x.high, x.volume, 10)


# --------------------------------------------------------------------------------------------
# Alphas 41-60


@_alpha(0, ("high", "low", "vwap"))
def alpha041(x: FactorInputs) -> xr.DataArray:
    """Alpha#41: (((high * low)^0.5) - vwap)"""
    return ((x.high * x.low) ** 0.5) - x.vwap


@_alpha(0, ("close", "vwap"))
def alpha042(x: FactorInputs) -> xr.DataArray:
    """Alpha#42: (rank((vwap - close)) / rank((vwap + close)))"""
    return _div(rank(x.vwap - x.close), rank(x.vwap + x.close))


@_alpha(38, ("close", "volume", "dollar_volume"))
def alpha043(x: FactorInputs) -> xr.DataArray:
    """Alpha#43: (ts_rank((volume / adv20), 20) * ts_rank((-1 * delta(close, 7)), 8))"""
    return ts_rank(_div(x.volume, x.adv(20)), 20) * ts_rank(-1 * delta(x.close, 7), 8)


@_alpha(4, ("high", "volume"))
def alpha044(x: FactorInputs) -> xr.DataArray:
    """Alpha#44: (-1 * correlation(high, rank(volume), 5))"""
    return -1 * _corr(x.high, rank(x.volume), 5)


@_alpha(24, ("close", "volume"))
def alpha045(x: FactorInputs) -> xr.DataArray:
    """Alpha#45: (-1 * ((rank((sum(delay(close, 5), 20) / 20)) * correlation(close, volume, 2))
    * rank(correlation(sum(close, 5), sum(close, 20), 2))))"""
    c = x.close
    return -1 * (
        (rank(ts_sum(delay(c, 5), 20) / 20) * _corr(c, x.volume, 2))
        * rank(_corr(ts_sum(c, 5), ts_sum(c, 20), 2))
    )


def _acceleration(close: xr.DataArray) -> xr.DataArray:
    """``(((delay(close, 20) - delay(close, 10)) / 10) - ((delay(close, 10) - close) / 10))``
    (#46, #49, #51)."""
    c10 = delay(close, 10)
    return ((delay(close, 20) - c10) / 10) - ((c10 - close) / 10)


@_alpha(20, ("close",))
def alpha046(x: FactorInputs) -> xr.DataArray:
    """Alpha#46: ((0.25 < (((delay(close, 20) - delay(close, 10)) / 10) - ((delay(close, 10) -
    close) / 10))) ? (-1 * 1) : (((((delay(close, 20) - delay(close, 10)) / 10) -
    ((delay(close, 10) - close) / 10)) < 0) ? 1 : ((-1 * 1) * (close - delay(close, 1)))))"""
    acc = _acceleration(x.close)
    fallback = (-1 * 1) * (x.close - delay(x.close, 1))
    return where(_lt(0.25, acc), -1 * 1.0, where(_lt(acc, 0), 1.0, fallback))


@_alpha(19, ("high", "close", "volume", "vwap", "dollar_volume"))
def alpha047(x: FactorInputs) -> xr.DataArray:
    """Alpha#47: ((((rank((1 / close)) * volume) / adv20) * ((high * rank((high - close))) /
    (sum(high, 5) / 5))) - rank((vwap - delay(vwap, 5))))"""
    h = x.high
    return _div(rank(_div(1, x.close)) * x.volume, x.adv(20)) * _div(
        h * rank(h - x.close), ts_sum(h, 5) / 5
    ) - rank(x.vwap - delay(x.vwap, 5))


@_alpha(20, ("close",))
def alpha049(x: FactorInputs) -> xr.DataArray:
    """Alpha#49: (((((delay(close, 20) - delay(close, 10)) / 10) - ((delay(close, 10) - close) /
    10)) < (-1 * 0.1)) ? 1 : ((-1 * 1) * (close - delay(close, 1))))"""
    fallback = (-1 * 1) * (x.close - delay(x.close, 1))
    return where(_lt(_acceleration(x.close), -1 * 0.1), 1.0, fallback)


@_alpha(8, ("volume", "vwap"))
def alpha050(x: FactorInputs) -> xr.DataArray:
    """Alpha#50: (-1 * ts_max(rank(correlation(rank(volume), rank(vwap), 5)), 5))"""
    return -1 * ts_max(rank(_corr(rank(x.volume), rank(x.vwap), 5)), 5)


@_alpha(20, ("close",))
def alpha051(x: FactorInputs) -> xr.DataArray:
    """Alpha#51: (((((delay(close, 20) - delay(close, 10)) / 10) - ((delay(close, 10) - close) /
    10)) < (-1 * 0.05)) ? 1 : ((-1 * 1) * (close - delay(close, 1))))"""
    fallback = (-1 * 1) * (x.close - delay(x.close, 1))
    return where(_lt(_acceleration(x.close), -1 * 0.05), 1.0, fallback)


@_alpha(240, ("low", "volume", "returns"))
def alpha052(x: FactorInputs) -> xr.DataArray:
    """Alpha#52: ((((-1 * ts_min(low, 5)) + delay(ts_min(low, 5), 5)) * rank(((sum(returns, 240)
    - sum(returns, 20)) / 220))) * ts_rank(volume, 5))"""
    low5 = ts_min(x.low, 5)
    drift = (ts_sum(x.returns, 240) - ts_sum(x.returns, 20)) / 220
    return (((-1 * low5) + delay(low5, 5)) * rank(drift)) * ts_rank(x.volume, 5)


@_alpha(9, ("high", "low", "close"))
def alpha053(x: FactorInputs) -> xr.DataArray:
    """Alpha#53: (-1 * delta((((close - low) - (high - close)) / (close - low)), 9))"""
    c = x.close
    return -1 * delta(_div((c - x.low) - (x.high - c), c - x.low), 9)


@_alpha(0, ("open", "high", "low", "close"))
def alpha054(x: FactorInputs) -> xr.DataArray:
    """Alpha#54: ((-1 * ((low - close) * (open^5))) / ((low - high) * (close^5)))"""
    return _div(-1 * ((x.low - x.close) * (x.open**5)), (x.low - x.high) * (x.close**5))


@_alpha(16, ("high", "low", "close", "volume"))
def alpha055(x: FactorInputs) -> xr.DataArray:
    """Alpha#55: (-1 * correlation(rank(((close - ts_min(low, 12)) / (ts_max(high, 12) -
    ts_min(low, 12)))), rank(volume), 6))"""
    low12 = ts_min(x.low, 12)
    stoch = _div(x.close - low12, ts_max(x.high, 12) - low12)
    return -1 * _corr(rank(stoch), rank(x.volume), 6)


@_alpha(30, ("close", "vwap"))
def alpha057(x: FactorInputs) -> xr.DataArray:
    """Alpha#57: (0 - (1 * ((close - vwap) / decay_linear(rank(ts_argmax(close, 30)), 2))))"""
    return 0 - (1 * _div(x.close - x.vwap, decay_linear(rank(ts_argmax(x.close, 30)), 2)))


@_alpha(9, ("high", "low", "close", "volume"))
def alpha060(x: FactorInputs) -> xr.DataArray:
    """Alpha#60: (0 - (1 * ((2 * scale(rank(((((close - low) - (high - close)) / (high - low)) *
    volume)))) - scale(rank(ts_argmax(close, 10))))))"""
    c = x.close
    clv = _div((c - x.low) - (x.high - c), x.high - x.low)
    return 0 - (1 * ((2 * scale(rank(clv * x.volume))) - scale(rank(ts_argmax(c, 10)))))


# --------------------------------------------------------------------------------------------
# Alphas 61-80


@_alpha(195, ("vwap", "dollar_volume"))
def alpha061(x: FactorInputs) -> xr.DataArray:
    """Alpha#61: (rank((vwap - ts_min(vwap, 16.1219))) < rank(correlation(vwap, adv180,
    17.9282)))"""
    vw = x.vwap
    return _lt(rank(vw - ts_min(vw, 16.1219)), rank(_corr(vw, x.adv(180), 17.9282)))


@_alpha(48, ("open", "high", "low", "vwap", "dollar_volume"))
def alpha062(x: FactorInputs) -> xr.DataArray:
    """Alpha#62: ((rank(correlation(vwap, sum(adv20, 22.4101), 9.91009)) < rank(((rank(open) +
    rank(open)) < (rank(((high + low) / 2)) + rank(high))))) * -1)"""
    left = rank(_corr(x.vwap, ts_sum(x.adv(20), 22.4101), 9.91009))
    opens = _lt(rank(x.open) + rank(x.open), rank((x.high + x.low) / 2) + rank(x.high))
    return _lt(left, rank(opens)) * -1


@_alpha(145, ("open", "high", "low", "vwap", "dollar_volume"))
def alpha064(x: FactorInputs) -> xr.DataArray:
    """Alpha#64: ((rank(correlation(sum(((open * 0.178404) + (low * (1 - 0.178404))), 12.7054),
    sum(adv120, 12.7054), 16.6208)) < rank(delta(((((high + low) / 2) * 0.178404) + (vwap * (1 -
    0.178404))), 3.69741))) * -1)"""
    w = 0.178404
    left = rank(
        _corr(ts_sum(_mix(x.open, x.low, w), 12.7054), ts_sum(x.adv(120), 12.7054), 16.6208)
    )
    right = rank(delta(_mix((x.high + x.low) / 2, x.vwap, w), 3.69741))
    return _lt(left, right) * -1


@_alpha(71, ("open", "vwap", "dollar_volume"))
def alpha065(x: FactorInputs) -> xr.DataArray:
    """Alpha#65: ((rank(correlation(((open * 0.00817205) + (vwap * (1 - 0.00817205))),
    sum(adv60, 8.6911), 6.40374)) < rank((open - ts_min(open, 13.635)))) * -1)"""
    left = rank(_corr(_mix(x.open, x.vwap, 0.00817205), ts_sum(x.adv(60), 8.6911), 6.40374))
    return _lt(left, rank(x.open - ts_min(x.open, 13.635))) * -1


@_alpha(15, ("open", "high", "low", "vwap"))
def alpha066(x: FactorInputs) -> xr.DataArray:
    """Alpha#66: ((rank(decay_linear(delta(vwap, 3.51013), 7.23052)) +
    Ts_Rank(decay_linear(((((low * 0.96633) + (low * (1 - 0.96633))) - vwap) / (open - ((high +
    low) / 2))), 11.4157), 6.72611)) * -1)"""
    left = rank(decay_linear(delta(x.vwap, 3.51013), 7.23052))
    ratio = _div(_mix(x.low, x.low, 0.96633) - x.vwap, x.open - ((x.high + x.low) / 2))
    return (left + ts_rank(decay_linear(ratio, 11.4157), 6.72611)) * -1


@_alpha(33, ("high", "low", "close", "dollar_volume"))
def alpha068(x: FactorInputs) -> xr.DataArray:
    """Alpha#68: ((Ts_Rank(correlation(rank(high), rank(adv15), 8.91644), 13.9719) <
    rank(delta(((close * 0.518371) + (low * (1 - 0.518371))), 1.06157))) * -1)"""
    left = ts_rank(_corr(rank(x.high), rank(x.adv(15)), 8.91644), 13.9719)
    right = rank(delta(_mix(x.close, x.low, 0.518371), 1.06157))
    return _lt(left, right) * -1


@_alpha(224, ("open", "low", "close", "vwap", "dollar_volume"))
def alpha071(x: FactorInputs) -> xr.DataArray:
    """Alpha#71: max(Ts_Rank(decay_linear(correlation(Ts_Rank(close, 3.43976), Ts_Rank(adv180,
    12.0647), 18.0175), 4.20501), 15.6948), Ts_Rank(decay_linear((rank(((low + open) - (vwap +
    vwap)))^2), 16.4662), 4.4292))"""
    corr = _corr(ts_rank(x.close, 3.43976), ts_rank(x.adv(180), 12.0647), 18.0175)
    left = ts_rank(decay_linear(corr, 4.20501), 15.6948)
    spread = rank((x.low + x.open) - (x.vwap + x.vwap)) ** 2
    return max_(left, ts_rank(decay_linear(spread, 16.4662), 4.4292))


@_alpha(55, ("high", "low", "volume", "vwap", "dollar_volume"))
def alpha072(x: FactorInputs) -> xr.DataArray:
    """Alpha#72: (rank(decay_linear(correlation(((high + low) / 2), adv40, 8.93345), 10.1539)) /
    rank(decay_linear(correlation(Ts_Rank(vwap, 3.72469), Ts_Rank(volume, 18.5141), 6.86671),
    2.95011)))"""
    top = rank(decay_linear(_corr((x.high + x.low) / 2, x.adv(40), 8.93345), 10.1539))
    corr = _corr(ts_rank(x.vwap, 3.72469), ts_rank(x.volume, 18.5141), 6.86671)
    return _div(top, rank(decay_linear(corr, 2.95011)))


@_alpha(19, ("open", "low", "vwap"))
def alpha073(x: FactorInputs) -> xr.DataArray:
    """Alpha#73: (max(rank(decay_linear(delta(vwap, 4.72775), 2.91864)),
    Ts_Rank(decay_linear(((delta(((open * 0.147155) + (low * (1 - 0.147155))), 2.03608) /
    ((open * 0.147155) + (low * (1 - 0.147155)))) * -1), 3.33829), 16.7411)) * -1)"""
    left = rank(decay_linear(delta(x.vwap, 4.72775), 2.91864))
    price = _mix(x.open, x.low, 0.147155)
    right = ts_rank(decay_linear(_div(delta(price, 2.03608), price) * -1, 3.33829), 16.7411)
    return max_(left, right) * -1


@_alpha(79, ("high", "close", "volume", "vwap", "dollar_volume"))
def alpha074(x: FactorInputs) -> xr.DataArray:
    """Alpha#74: ((rank(correlation(close, sum(adv30, 37.4843), 15.1365)) <
    rank(correlation(rank(((high * 0.0261661) + (vwap * (1 - 0.0261661)))), rank(volume),
    11.4791))) * -1)"""
    left = rank(_corr(x.close, ts_sum(x.adv(30), 37.4843), 15.1365))
    right = rank(_corr(rank(_mix(x.high, x.vwap, 0.0261661)), rank(x.volume), 11.4791))
    return _lt(left, right) * -1


@_alpha(60, ("low", "volume", "vwap", "dollar_volume"))
def alpha075(x: FactorInputs) -> xr.DataArray:
    """Alpha#75: (rank(correlation(vwap, volume, 4.24304)) < rank(correlation(rank(low),
    rank(adv50), 12.4413)))"""
    left = rank(_corr(x.vwap, x.volume, 4.24304))
    return _lt(left, rank(_corr(rank(x.low), rank(x.adv(50)), 12.4413)))


@_alpha(45, ("high", "low", "vwap", "dollar_volume"))
def alpha077(x: FactorInputs) -> xr.DataArray:
    """Alpha#77: min(rank(decay_linear(((((high + low) / 2) + high) - (vwap + high)), 20.0451)),
    rank(decay_linear(correlation(((high + low) / 2), adv40, 3.1614), 5.64125)))"""
    mid = (x.high + x.low) / 2
    left = rank(decay_linear((mid + x.high) - (x.vwap + x.high), 20.0451))
    return min_(left, rank(decay_linear(_corr(mid, x.adv(40), 3.1614), 5.64125)))


@_alpha(62, ("low", "volume", "vwap", "dollar_volume"))
def alpha078(x: FactorInputs) -> xr.DataArray:
    """Alpha#78: (rank(correlation(sum(((low * 0.352233) + (vwap * (1 - 0.352233))), 19.7428),
    sum(adv40, 19.7428), 6.83313))^rank(correlation(rank(vwap), rank(volume), 5.77492)))"""
    left = rank(
        _corr(ts_sum(_mix(x.low, x.vwap, 0.352233), 19.7428), ts_sum(x.adv(40), 19.7428), 6.83313)
    )
    return left ** rank(_corr(rank(x.vwap), rank(x.volume), 5.77492))


# --------------------------------------------------------------------------------------------
# Alphas 81-101


@_alpha(77, ("volume", "vwap", "dollar_volume"))
def alpha081(x: FactorInputs) -> xr.DataArray:
    """Alpha#81: ((rank(Log(product(rank((rank(correlation(vwap, sum(adv10, 49.6054),
    8.47743))^4)), 14.9655))) < rank(correlation(rank(vwap), rank(volume), 5.07914))) * -1)"""
    corr = _corr(x.vwap, ts_sum(x.adv(10), 49.6054), 8.47743)
    left = rank(log(ts_product(rank(rank(corr) ** 4), 14.9655)))
    return _lt(left, rank(_corr(rank(x.vwap), rank(x.volume), 5.07914))) * -1


@_alpha(6, ("high", "low", "close", "volume", "vwap"))
def alpha083(x: FactorInputs) -> xr.DataArray:
    """Alpha#83: ((rank(delay(((high - low) / (sum(close, 5) / 5)), 2)) * rank(rank(volume))) /
    (((high - low) / (sum(close, 5) / 5)) / (vwap - close)))"""
    spread = _div(x.high - x.low, ts_sum(x.close, 5) / 5)
    return _div(rank(delay(spread, 2)) * rank(rank(x.volume)), _div(spread, x.vwap - x.close))


@_alpha(33, ("close", "vwap"))
def alpha084(x: FactorInputs) -> xr.DataArray:
    """Alpha#84: SignedPower(Ts_Rank((vwap - ts_max(vwap, 15.3217)), 20.7215), delta(close,
    4.96325))"""
    level = ts_rank(x.vwap - ts_max(x.vwap, 15.3217), 20.7215)
    # signed_power takes a number; the exponent here is a panel, so spell it out.
    return sign(level) * (abs_(level) ** delta(x.close, 4.96325))


@_alpha(37, ("high", "low", "close", "volume", "dollar_volume"))
def alpha085(x: FactorInputs) -> xr.DataArray:
    """Alpha#85: (rank(correlation(((high * 0.876703) + (close * (1 - 0.876703))), adv30,
    9.61331))^rank(correlation(Ts_Rank(((high + low) / 2), 3.70596), Ts_Rank(volume, 10.1595),
    7.11408)))"""
    left = rank(_corr(_mix(x.high, x.close, 0.876703), x.adv(30), 9.61331))
    corr = _corr(ts_rank((x.high + x.low) / 2, 3.70596), ts_rank(x.volume, 10.1595), 7.11408)
    return left ** rank(corr)


@_alpha(56, ("open", "close", "vwap", "dollar_volume"))
def alpha086(x: FactorInputs) -> xr.DataArray:
    """Alpha#86: ((Ts_Rank(correlation(close, sum(adv20, 14.7444), 6.00049), 20.4195) <
    rank(((open + close) - (vwap + open)))) * -1)"""
    left = ts_rank(_corr(x.close, ts_sum(x.adv(20), 14.7444), 6.00049), 20.4195)
    return _lt(left, rank((x.open + x.close) - (x.vwap + x.open))) * -1


@_alpha(91, ("open", "high", "low", "close", "dollar_volume"))
def alpha088(x: FactorInputs) -> xr.DataArray:
    """Alpha#88: min(rank(decay_linear(((rank(open) + rank(low)) - (rank(high) + rank(close))),
    8.06882)), Ts_Rank(decay_linear(correlation(Ts_Rank(close, 8.44728), Ts_Rank(adv60,
    20.6966), 8.01266), 6.65053), 2.61957))"""
    shape = (rank(x.open) + rank(x.low)) - (rank(x.high) + rank(x.close))
    corr = _corr(ts_rank(x.close, 8.44728), ts_rank(x.adv(60), 20.6966), 8.01266)
    return min_(rank(decay_linear(shape, 8.06882)), ts_rank(decay_linear(corr, 6.65053), 2.61957))


@_alpha(45, ("open", "high", "low", "close", "dollar_volume"))
def alpha092(x: FactorInputs) -> xr.DataArray:
    """Alpha#92: min(Ts_Rank(decay_linear(((((high + low) / 2) + close) < (low + open)),
    14.7221), 18.8683), Ts_Rank(decay_linear(correlation(rank(low), rank(adv30), 7.58555),
    6.94024), 6.80584))"""
    below = _lt(((x.high + x.low) / 2) + x.close, x.low + x.open)
    left = ts_rank(decay_linear(below, 14.7221), 18.8683)
    corr = _corr(rank(x.low), rank(x.adv(30)), 7.58555)
    return min_(left, ts_rank(decay_linear(corr, 6.94024), 6.80584))


@_alpha(80, ("vwap", "dollar_volume"))
def alpha094(x: FactorInputs) -> xr.DataArray:
    """Alpha#94: ((rank((vwap - ts_min(vwap, 11.5783)))^Ts_Rank(correlation(Ts_Rank(vwap,
    19.6462), Ts_Rank(adv60, 4.02992), 18.0926), 2.70756)) * -1)"""
    base = rank(x.vwap - ts_min(x.vwap, 11.5783))
    corr = _corr(ts_rank(x.vwap, 19.6462), ts_rank(x.adv(60), 4.02992), 18.0926)
    return (base ** ts_rank(corr, 2.70756)) * -1


@_alpha(78, ("open", "high", "low", "dollar_volume"))
def alpha095(x: FactorInputs) -> xr.DataArray:
    """Alpha#95: (rank((open - ts_min(open, 12.4105))) < Ts_Rank((rank(correlation(sum(((high +
    low) / 2), 19.1351), sum(adv40, 19.1351), 12.8742))^5), 11.7584))"""
    left = rank(x.open - ts_min(x.open, 12.4105))
    corr = _corr(ts_sum((x.high + x.low) / 2, 19.1351), ts_sum(x.adv(40), 19.1351), 12.8742)
    return _lt(left, ts_rank(rank(corr) ** 5, 11.7584))


@_alpha(100, ("close", "volume", "vwap", "dollar_volume"))
def alpha096(x: FactorInputs) -> xr.DataArray:
    """Alpha#96: (max(Ts_Rank(decay_linear(correlation(rank(vwap), rank(volume), 3.83878),
    4.16783), 8.38151), Ts_Rank(decay_linear(Ts_ArgMax(correlation(Ts_Rank(close, 7.45404),
    Ts_Rank(adv60, 4.13242), 3.65459), 12.6556), 14.0365), 13.4143)) * -1)"""
    left = ts_rank(decay_linear(_corr(rank(x.vwap), rank(x.volume), 3.83878), 4.16783), 8.38151)
    corr = _corr(ts_rank(x.close, 7.45404), ts_rank(x.adv(60), 4.13242), 3.65459)
    right = ts_rank(decay_linear(ts_argmax(corr, 12.6556), 14.0365), 13.4143)
    return max_(left, right) * -1


@_alpha(52, ("open", "vwap", "dollar_volume"))
def alpha098(x: FactorInputs) -> xr.DataArray:
    """Alpha#98: (rank(decay_linear(correlation(vwap, sum(adv5, 26.4719), 4.58418), 7.18088)) -
    rank(decay_linear(Ts_Rank(Ts_ArgMin(correlation(rank(open), rank(adv15), 20.8187),
    8.62571), 6.95668), 8.07206)))"""
    left = rank(decay_linear(_corr(x.vwap, ts_sum(x.adv(5), 26.4719), 4.58418), 7.18088))
    corr = _corr(rank(x.open), rank(x.adv(15)), 20.8187)
    right = rank(decay_linear(ts_rank(ts_argmin(corr, 8.62571), 6.95668), 8.07206))
    return left - right


@_alpha(84, ("high", "low", "volume", "dollar_volume"))
def alpha099(x: FactorInputs) -> xr.DataArray:
    """Alpha#99: ((rank(correlation(sum(((high + low) / 2), 19.8975), sum(adv60, 19.8975),
    8.8136)) < rank(correlation(low, volume, 6.28259))) * -1)"""
    mid = (x.high + x.low) / 2
    left = rank(_corr(ts_sum(mid, 19.8975), ts_sum(x.adv(60), 19.8975), 8.8136))
    return _lt(left, rank(_corr(x.low, x.volume, 6.28259))) * -1


@_alpha(0, ("open", "high", "low", "close"))
def alpha101(x: FactorInputs) -> xr.DataArray:
    """Alpha#101: ((close - open) / ((high - low) + .001))"""
    return _div(x.close - x.open, (x.high - x.low) + 0.001)

"""Corporate-action maths: derive splits and dividends, and back-adjust raw bars.

Backward adjustment keeps the latest prices as traded and scales earlier ones: the adjusted
price of day ``t`` is ``raw_t * multiplier_t`` with ``multiplier_t`` the product of the
``factor`` of every ex-date after ``t`` (see :data:`~qpipe.data.schema.ACTION_COLUMNS`).
All functions are pure and vectorised; they take and return contract frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

import bottleneck as bn
import numpy as np
import pandas as pd

from qpipe.data.schema import ACTION_COLUMNS, PRICE_COLUMNS, empty_frame, normalize

AdjustmentKind = Literal["total_return", "split"]

CHANGE_TOLERANCE = 1e-9
"""Relative change of ``adj_close / close`` that float arithmetic alone can produce: the floor
of the rounding bound, which is all that is left for values written at full precision."""
MAX_DECIMALS = 15
"""Most decimal places a written value is taken to have (beyond them a float has no digits)."""
PRECISION_WINDOW = 21
"""Rows of one symbol (centred) whose decimals are pooled into the precision of each value:
trailing zeros are not written (``10.5`` of a 2-decimal file), so one value's own decimals
understate the rounding unit, while a file whose precision changes over time keeps it locally."""
SPLIT_TOLERANCE = 0.005
"""Relative distance of ``1 / factor`` from a simple ratio ``p/q`` that still counts as a split."""
MIN_SPLIT_MOVE = 0.2
"""A split ratio must differ from 1 by more than this (so 10% special dividends stay dividends)."""
MAX_SPLIT_TERM = 10
"""Largest numerator and denominator of a detected split ratio."""

SPLIT_RATIOS: np.ndarray = np.array(
    sorted(
        {
            float(Fraction(p, q))
            for p in range(1, MAX_SPLIT_TERM + 1)
            for q in range(1, MAX_SPLIT_TERM + 1)
            if abs(p / q - 1.0) > MIN_SPLIT_MOVE + 1e-12
        }
    )
)
"""Candidate split ratios: ``p/q`` with ``p, q <= 10`` more than 20% away from 1."""


@dataclass(frozen=True)
class DerivedActions:
    """What an adjusted close says: the actions, and the jumps no action can explain."""

    actions: pd.DataFrame
    """Splits and dividends (:data:`~qpipe.data.schema.ACTION_COLUMNS`), sorted."""
    unexplained: pd.DataFrame
    """Days where ``adj_close / close`` fell beyond rounding (beyond what a split found that
    day explains): a negative dividend, which is never recorded. Index: the labels of the input
    rows; columns ``date``, ``symbol``, ``previous`` (label of the symbol's previous valid row),
    ``split_ratio`` (the split recorded that day, 1.0 for none) and ``fall`` (relative fall of
    the ratio beyond the split, a fraction)."""


def decimals_written(values: np.ndarray) -> np.ndarray:
    """Decimal places each value is written with: the fewest ``d <= MAX_DECIMALS`` with the
    value a multiple of ``10**-d`` up to float resolution (``MAX_DECIMALS`` when none is)."""
    x = np.abs(np.asarray(values, dtype=np.float64))
    out = np.full(x.shape, MAX_DECIMALS, dtype=np.int64)
    todo = np.flatnonzero(np.isfinite(x))
    for d in range(MAX_DECIMALS + 1):
        scaled = x[todo] * 10.0**d
        # A decimal with d places parsed to the nearest double, then scaled: within a few ulps.
        exact = np.abs(scaled - np.rint(scaled)) <= 1e-15 * scaled + 1e-300
        out[todo[exact]] = d
        todo = todo[~exact]
        if not len(todo):
            break
    return out


def rounding_half_units(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Half the rounding unit of each value (``0.5 * 10**-d``), ``d`` the most decimals written
    among the :data:`PRECISION_WINDOW` rows of the same symbol centred on it. The values are
    grouped by symbol (each symbol's rows together, by date); ``starts`` flags the first row of
    each symbol."""
    written = decimals_written(values).astype(np.float64)
    if not len(written):
        return written
    # Each symbol's rows followed by `half` NaN rows, so no window reaches another symbol.
    half = PRECISION_WINDOW // 2
    group = np.cumsum(starts) - 1
    position = np.arange(len(written)) + half * group
    padded = np.full(max(len(written) + half * (int(group[-1]) + 1), 2 * half + 1), np.nan)
    padded[position] = written
    pooled = bn.move_max(padded, window=2 * half + 1, min_count=1)[position + half]
    return 0.5 * 10.0**-pooled


def nearest_split(ratio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The candidate split ratio (:data:`SPLIT_RATIOS`) nearest each ``ratio``, and the
    relative distance ``|ratio / split - 1|`` to it."""
    ratio = np.asarray(ratio, dtype=np.float64)
    distance = np.abs(ratio[:, None] / SPLIT_RATIOS[None, :] - 1.0)
    best = distance.argmin(axis=1) if len(ratio) else np.zeros(0, dtype=np.int64)
    return SPLIT_RATIOS[best], distance[np.arange(len(best)), best]


def derive_actions(bars_with_adj: pd.DataFrame) -> DerivedActions:
    """Splits and cash dividends implied by a vendor's adjusted close, and the jumps that none
    can explain.

    ``bars_with_adj`` needs ``date``, ``symbol``, ``close`` (as traded) and ``adj_close``
    (split- and dividend-adjusted, any base), as written in the file: their decimals give the
    precision (:func:`rounding_half_units`). Per symbol, with ``r = adj_close / close``, a day
    is an ex-date only when ``m = r_prev / r`` differs from 1 by more than rounding can explain:
    every true value lies within half a rounding unit of the written one, so the true ``m`` lies
    in ``[r_prev_lo / r_hi, r_prev_hi / r_lo]`` (widened by :data:`CHANGE_TOLERANCE`), and that
    interval must exclude 1. Then:

    - If ``1 / m`` is within 0.5% of a simple ratio ``p/q`` (:data:`SPLIT_RATIOS`), or that
      ratio lies in the interval, it is a split of exactly ``p/q``. When the interval contains
      ``q/p`` the day is that split alone (``factor = q/p``, no dividend); when ``m`` is below
      it, the rest is a dividend ``(q/p - m) * close_prev``.
    - Otherwise, when ``m < 1``, the whole jump is a dividend ``(1 - m) * close_prev``
      (``factor = m``).
    - A ratio that falls (``m`` above ``1``, or above the split's ``q/p``, beyond rounding)
      would be a negative dividend: it is never recorded (the split alone is) and is listed in
      :attr:`DerivedActions.unexplained`.

    Rows where either close is NaN or not positive are skipped, so an action inside such a gap
    lands on the next valid day.
    """
    frame = bars_with_adj.loc[:, ["date", "symbol", "close", "adj_close"]]
    close = frame["close"].to_numpy(dtype=np.float64)
    adj = frame["adj_close"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(close) & np.isfinite(adj) & (close > 0) & (adj > 0)
    frame = frame.loc[valid].sort_values(["symbol", "date"], kind="stable")
    if frame.empty:
        return DerivedActions(empty_frame(ACTION_COLUMNS), _no_unexplained())

    symbol = frame["symbol"]
    first = (symbol != symbol.shift(1)).to_numpy()  # each symbol's first row
    close = frame["close"].to_numpy(dtype=np.float64)
    adj = frame["adj_close"].to_numpy(dtype=np.float64)
    half_close = rounding_half_units(close, first)
    half_adj = rounding_half_units(adj, first)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = adj / close
        low = np.maximum(adj - half_adj, 0.0) / (close + half_close)
        below = close - half_close
        high = np.where(below > 0, (adj + half_adj) / below, np.inf)

    def previous(values: np.ndarray) -> np.ndarray:
        out = np.empty_like(values, dtype=np.float64)
        out[0] = np.nan
        out[1:] = values[:-1]
        out[first] = np.nan
        return out

    prev_close = previous(close)
    with np.errstate(divide="ignore", invalid="ignore"):
        m = previous(ratio) / ratio
        m_low = previous(low) / high * (1.0 - CHANGE_TOLERANCE)
        m_high = previous(high) / low * (1.0 + CHANGE_TOLERANCE)
    changed = (m_high < 1.0) | (m_low > 1.0)  # NaN on a symbol's first row -> False
    if not changed.any():
        return DerivedActions(empty_frame(ACTION_COLUMNS), _no_unexplained())

    idx = np.flatnonzero(changed)
    m, m_low, m_high, prev_close = m[idx], m_low[idx], m_high[idx], prev_close[idx]
    candidate, distance = nearest_split(1.0 / m)
    target = 1.0 / candidate  # the factor of the candidate split alone
    in_interval = (target >= m_low) & (target <= m_high)
    is_split = (distance <= SPLIT_TOLERANCE) | in_interval
    split_ratio = np.where(is_split, candidate, 1.0)
    target = np.where(is_split, target, 1.0)
    pure_split = is_split & in_interval
    dividend_day = ~pure_split & (m_high < target)
    fall = ~pure_split & ~dividend_day  # m_low > target: adj/close fell, a negative dividend

    keep = pure_split | dividend_day | (fall & is_split)
    factor = np.where(dividend_day, m, target)
    dividend = np.where(dividend_day, (target - m) * prev_close, 0.0)
    rows = frame.iloc[idx]
    actions = pd.DataFrame(
        {
            "date": rows["date"].to_numpy()[keep],
            "symbol": rows["symbol"].to_numpy()[keep],
            "split_ratio": split_ratio[keep],
            "dividend": dividend[keep],
            "factor": factor[keep],
        }
    )
    labels = frame.index.to_numpy()
    unexplained = pd.DataFrame(
        {
            "date": rows["date"].to_numpy()[fall],
            "symbol": rows["symbol"].to_numpy()[fall],
            "previous": labels[idx - 1][fall],
            "split_ratio": split_ratio[fall],
            "fall": (1.0 - target / m)[fall],
        },
        index=rows.index[fall],
    )
    return DerivedActions(normalize(actions, ACTION_COLUMNS), unexplained)


def actions_from_adjusted(bars_with_adj: pd.DataFrame) -> pd.DataFrame:
    """The splits and dividends of :func:`derive_actions` (jumps it cannot explain dropped)."""
    return derive_actions(bars_with_adj).actions


def _no_unexplained() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": pd.Series([], dtype="datetime64[ns]"),
            "symbol": pd.Series([], dtype=object),
            "previous": pd.Series([], dtype=object),
            "split_ratio": pd.Series([], dtype=np.float64),
            "fall": pd.Series([], dtype=np.float64),
        }
    )


def adjustment_multipliers(
    bars: pd.DataFrame, actions: pd.DataFrame, kind: AdjustmentKind = "total_return"
) -> pd.Series:
    """Backward-adjustment multiplier of every bar, aligned with ``bars.index``.

    ``multiplier_t`` is the product over the symbol's ex-dates strictly after ``t`` of
    ``factor`` (``kind="total_return"``: splits and dividends) or of ``1 / split_ratio``
    (``kind="split"``: splits only). It is 1.0 from the last ex-date on and for symbols without
    actions. Ex-dates need not be dates of ``bars``.
    """
    if kind == "total_return":
        per_action = actions["factor"].astype(np.float64)
    elif kind == "split":
        per_action = 1.0 / actions["split_ratio"].astype(np.float64)
    else:
        raise ValueError(f"unknown adjustment kind {kind!r}: expected 'total_return' or 'split'")

    left = pd.DataFrame(
        {
            "date": _as_ns(bars["date"]),
            "symbol": _as_str(bars["symbol"]),
            "_row": np.arange(len(bars)),
        }
    ).sort_values("date", kind="stable")
    right = pd.DataFrame(
        {
            "date": _as_ns(actions["date"]),
            "symbol": _as_str(actions["symbol"]),
            "_factor": per_action.to_numpy(),
        }
    ).sort_values(["symbol", "date"], kind="stable")
    # Suffix product per symbol: the multiplier of any day before this ex-date.
    reversed_ = right.iloc[::-1]
    right["_multiplier"] = reversed_.groupby("symbol", sort=False)["_factor"].cumprod().iloc[::-1]
    right = right.drop(columns="_factor").sort_values("date", kind="stable")

    merged = pd.merge_asof(
        left,
        right,
        on="date",
        by="symbol",
        direction="forward",
        allow_exact_matches=False,
    )
    multiplier = np.ones(len(bars))
    multiplier[merged["_row"].to_numpy()] = merged["_multiplier"].fillna(1.0).to_numpy()
    return pd.Series(multiplier, index=bars.index, name="multiplier")


def adjusted_prices(
    bars: pd.DataFrame, actions: pd.DataFrame, kind: AdjustmentKind = "total_return"
) -> pd.DataFrame:
    """``bars`` back-adjusted: open/high/low/close times the ``kind`` multiplier.

    Volume (shares) is divided by the split-only multiplier, so it is restated in today's share
    count but not touched by dividends. NaN prices and volumes stay NaN; other columns are kept.
    """
    out = bars.copy()
    price_multiplier = adjustment_multipliers(bars, actions, kind)
    split_multiplier = (
        price_multiplier if kind == "split" else adjustment_multipliers(bars, actions, "split")
    )
    for name in PRICE_COLUMNS:
        if name in out.columns:
            out[name] = out[name].astype(np.float64) * price_multiplier
    if "volume" in out.columns:
        out["volume"] = out["volume"].astype(np.float64) / split_multiplier
    return out


def _as_ns(dates: pd.Series) -> np.ndarray:
    return pd.to_datetime(dates).to_numpy(dtype="datetime64[ns]")


def _as_str(symbols: pd.Series) -> pd.Series:
    """Symbols as the ``str`` dtype on a fresh index (merge keys must have equal dtypes)."""
    return pd.Series(symbols.to_numpy(), dtype=object).astype(str)


def book_actions(
    shares: pd.Series, cash: float, actions: pd.DataFrame
) -> tuple[pd.Series, float, list[str]]:
    """A book of ``shares`` (by symbol) and ``cash`` carried through ``actions`` (rows with
    date, symbol, split_ratio, dividend; NaN: none), in date order, as the backtest engine
    books them on each ex-date: the shares times the split ratio, then the dividend per
    (post-split) share held paid in cash. Returns the shares, the cash and the held symbols
    that had an action."""
    shares = shares.astype(np.float64).copy()
    touched: list[str] = []
    for row in actions.sort_values("date", kind="stable").itertuples():
        held = float(shares.get(row.symbol, 0.0))
        if held == 0.0:
            continue
        held *= 1.0 if pd.isna(row.split_ratio) else float(row.split_ratio)
        shares[row.symbol] = held
        cash += held * (0.0 if pd.isna(row.dividend) else float(row.dividend))
        if row.symbol not in touched:
            touched.append(row.symbol)
    return shares, cash, sorted(touched)

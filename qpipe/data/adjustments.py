"""Corporate-action maths: derive splits and dividends, and back-adjust raw bars.

Backward adjustment keeps the latest prices as traded and scales earlier ones: the adjusted
price of day ``t`` is ``raw_t * multiplier_t`` with ``multiplier_t`` the product of the
``factor`` of every ex-date after ``t`` (see :data:`~qpipe.data.schema.ACTION_COLUMNS`).
All functions are pure and vectorised; they take and return contract frames.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Literal

import numpy as np
import pandas as pd

from qpipe.data.schema import ACTION_COLUMNS, PRICE_COLUMNS, empty_frame, normalize

AdjustmentKind = Literal["total_return", "split"]

CHANGE_TOLERANCE = 1e-9
"""Relative change of ``adj_close / close`` below which a day has no corporate action."""
SPLIT_TOLERANCE = 0.005
"""Relative distance of ``1 / factor`` from a simple ratio ``p/q`` that still counts as a split."""
MIN_SPLIT_MOVE = 0.2
"""A split ratio must differ from 1 by more than this (so 10% special dividends stay dividends)."""
MAX_SPLIT_TERM = 10
"""Largest numerator and denominator of a detected split ratio."""
DIVIDEND_EPSILON = 1e-9
"""Dividends smaller than this (cash per share) are rounding noise and become 0."""

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


def actions_from_adjusted(bars_with_adj: pd.DataFrame) -> pd.DataFrame:
    """Splits and cash dividends implied by a vendor's adjusted close.

    ``bars_with_adj`` needs ``date``, ``symbol``, ``close`` (as traded) and ``adj_close``
    (split- and dividend-adjusted, any base). Per symbol, with ``r_t = adj_close_t / close_t``,
    every day where ``m = r_prev / r_t`` differs from 1 by more than :data:`CHANGE_TOLERANCE`
    (relative) is an ex-date with ``factor = m`` exactly. If ``1 / m`` is within 0.5% of a simple
    ratio ``p/q`` (:data:`SPLIT_RATIOS`) it is a split of that ratio and the rest of the jump a
    dividend ``(1 / split_ratio - m) * close_prev``; otherwise the whole jump is a dividend
    ``(1 - m) * close_prev`` (negative if the adjusted series jumps up). Rows where either close
    is NaN or not positive are skipped, so an action inside such a gap lands on the next valid
    day. Returns a frame with :data:`~qpipe.data.schema.ACTION_COLUMNS`, sorted by (date, symbol).
    """
    frame = bars_with_adj.loc[:, ["date", "symbol", "close", "adj_close"]]
    close = frame["close"].to_numpy(dtype=np.float64)
    adj = frame["adj_close"].to_numpy(dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        valid = np.isfinite(close) & np.isfinite(adj) & (close > 0) & (adj > 0)
    frame = frame.loc[valid].sort_values(["symbol", "date"], kind="stable")
    if frame.empty:
        return empty_frame(ACTION_COLUMNS)

    ratio = frame["adj_close"].astype(np.float64) / frame["close"].astype(np.float64)
    by_symbol = frame.groupby("symbol", sort=False)
    prev_ratio = ratio.groupby(frame["symbol"], sort=False).shift(1)
    prev_close = by_symbol["close"].shift(1).astype(np.float64)
    m = prev_ratio / ratio
    is_action = (m - 1.0).abs() > CHANGE_TOLERANCE  # NaN (first day of a symbol) -> False
    if not is_action.any():
        return empty_frame(ACTION_COLUMNS)

    m_act = m[is_action].to_numpy()
    prev_close_act = prev_close[is_action].to_numpy()
    split_ratio = _nearest_split(1.0 / m_act)
    dividend = (1.0 / split_ratio - m_act) * prev_close_act
    dividend[np.abs(dividend) < DIVIDEND_EPSILON] = 0.0
    actions = pd.DataFrame(
        {
            "date": frame.loc[is_action, "date"].to_numpy(),
            "symbol": frame.loc[is_action, "symbol"].to_numpy(),
            "split_ratio": split_ratio,
            "dividend": dividend,
            "factor": m_act,
        }
    )
    return normalize(actions, ACTION_COLUMNS)


def _nearest_split(inverse_factor: np.ndarray) -> np.ndarray:
    """The split ratio each ``1 / factor`` is close to, or 1.0 where none is close enough."""
    distance = np.abs(inverse_factor[:, None] / SPLIT_RATIOS[None, :] - 1.0)
    best = distance.argmin(axis=1)
    close_enough = distance[np.arange(len(best)), best] <= SPLIT_TOLERANCE
    return np.where(close_enough, SPLIT_RATIOS[best], 1.0)


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

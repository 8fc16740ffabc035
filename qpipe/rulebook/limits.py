"""The refusal rule of the pre-trade limits: the one check of the live trader and the backtest
engine.

A rebalance is refused whole (nothing of it is traded) when, checked in this order:

1. ``max_weight``: a target weight's absolute value is above the limit (NaN targets, "leave as
   is", are not checked);
2. ``max_gross``: the sum of the absolute target weights is above the limit;
3. ``max_order_notional``: one order's notional (shares traded x quoted price, currency) is
   above the limit;
4. ``max_turnover``: the orders' notional summed, over the sizing value (the live account's net
   liquidation value, the engine's portfolio at the fill session's prices), is above the limit.

A limit of ``inf`` is no limit. Weights are compared with a tolerance of ``1e-9`` (gross),
``1e-12`` (weight, turnover), as the live trader always did.
"""

from __future__ import annotations

import numba as nb
import numpy as np

LIMITS = ("max_weight", "max_gross", "max_order_notional", "max_turnover")
"""The entries of the limits array (:func:`limit_params`) and the codes of :func:`refusal`
(code ``k + 1`` is ``LIMITS[k]``; 0: not refused)."""
MAX_WEIGHT, MAX_GROSS, MAX_ORDER, MAX_TURNOVER = range(len(LIMITS))
NOT_REFUSED = 0

_jit = nb.njit(cache=True, nogil=True)


def limit_params(
    *,
    max_weight: float | None = None,
    max_gross: float | None = None,
    max_order_notional: float | None = None,
    max_turnover: float | None = None,
) -> np.ndarray:
    """The flat array :func:`refusal` reads (:data:`LIMITS`; None: no limit, ``inf``).
    Raises ``ValueError`` naming a limit that is not positive."""
    values = {"max_weight": max_weight, "max_gross": max_gross,
              "max_order_notional": max_order_notional, "max_turnover": max_turnover}  # fmt: skip
    for name, v in values.items():
        if v is not None and not v > 0:
            raise ValueError(f"limits: {name} must be > 0 or None, got {v!r}")
    return np.array([np.inf if values[k] is None else values[k] for k in LIMITS])


@_jit
def refusal(
    target: np.ndarray, notional: np.ndarray, value: float, limits: np.ndarray
) -> tuple[int, int]:
    """Whether a rebalance to ``target`` (weights, NaN: leave as is) with orders of
    ``notional`` (absolute, currency, one per order; empty: not planned yet) on a sizing
    ``value`` is refused under ``limits`` (:func:`limit_params`). Returns ``(code, index)``:
    code 0 (not refused) or ``1 + `` the index in :data:`LIMITS` of the first limit broken,
    and the index of the first offending target or order (-1 for gross and turnover)."""
    gross = 0.0
    for i in range(target.shape[0]):
        w = target[i]
        if np.isnan(w):
            continue
        if abs(w) > limits[MAX_WEIGHT] + 1e-12:
            return MAX_WEIGHT + 1, i
        gross += abs(w)
    if gross > limits[MAX_GROSS] + 1e-9:
        return MAX_GROSS + 1, -1
    traded = 0.0
    for k in range(notional.shape[0]):
        if notional[k] > limits[MAX_ORDER]:
            return MAX_ORDER + 1, k
        traded += notional[k]
    if traded > 0.0 and traded / value > limits[MAX_TURNOVER] + 1e-12:
        return MAX_TURNOVER + 1, -1
    return NOT_REFUSED, -1

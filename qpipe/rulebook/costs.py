"""Trading costs of one order: the slipped fill price, the commission and whether the order is
worth its fee (compiled scalars, callable from Python, from the engine's compiled day
steps and from :mod:`qpipe.rulebook.sizing`)."""

from __future__ import annotations

from dataclasses import dataclass

import numba as nb


@dataclass(frozen=True)
class CostModel:
    """The cost model of a fill: ``commission_rate`` and ``slippage_rate`` are fractions of
    the notional (10 bp = 0.001), ``min_commission`` the least fee of an order (currency).
    The backtest's ``commission_bps``, ``slippage_bps`` and ``min_commission`` give it."""

    commission_rate: float = 0.0
    min_commission: float = 0.0
    slippage_rate: float = 0.0


@nb.njit(cache=True, nogil=True)
def fill_price(price: float, side: float, slippage_rate: float) -> float:
    """``price`` moved against the trader by ``slippage_rate`` (a fraction): up for a buy
    (``side > 0``), down for a sell (``side < 0``)."""
    if side > 0:
        return price * (1.0 + slippage_rate)
    if side < 0:
        return price * (1.0 - slippage_rate)
    return price


@nb.njit(cache=True, nogil=True)
def commission(notional: float, rate: float, minimum: float) -> float:
    """Fee of one order: ``rate x |notional|`` (rate a fraction), at least ``minimum`` for a
    non-zero order, 0 for none."""
    fee = rate * abs(notional)
    if minimum > 0.0:
        fee = max(fee, minimum) if notional != 0.0 else 0.0
    return fee


@nb.njit(cache=True, nogil=True)
def worth_its_fee(notional: float, fee: float) -> bool:
    """Whether an order of ``notional`` (currency, > 0) is worth trading: its ``fee`` must not
    exceed it. One that does (a small order under a minimum commission) is skipped."""
    return fee <= notional

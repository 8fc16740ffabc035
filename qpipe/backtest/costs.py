"""Trading costs: slipped fill prices and commissions, vectorised over a day's orders."""

from __future__ import annotations

import numpy as np

from qpipe.backtest.config import BacktestConfig


def fill_prices(price: np.ndarray, side: np.ndarray, config: BacktestConfig) -> np.ndarray:
    """``price`` moved against the trader by the slippage rate: up for buys (``side > 0``),
    down for sells (``side < 0``)."""
    return price * (1.0 + config.slippage_rate * np.sign(side))


def commissions(notional: np.ndarray, config: BacktestConfig) -> np.ndarray:
    """Fee per order: ``rate x |notional|``, at least ``min_commission`` for a non-zero
    order, 0 for none."""
    fee = config.commission_rate * np.abs(notional)
    if config.min_commission > 0:
        fee = np.where(notional != 0, np.maximum(fee, config.min_commission), 0.0)
    return fee

"""Performance metrics under the name the notebooks and the README used first: they live in
:mod:`qpipe.backtest.metrics`, with the backtest that reports them."""

from qpipe.backtest.metrics import (
    HEADLINE,
    daily_returns,
    drawdown,
    max_drawdown_duration,
    monthly_returns,
    performance_metrics,
    relative_metrics,
    sample_std,
    yearly_returns,
)

__all__ = [
    "HEADLINE",
    "daily_returns",
    "drawdown",
    "max_drawdown_duration",
    "monthly_returns",
    "performance_metrics",
    "relative_metrics",
    "sample_std",
    "yearly_returns",
]

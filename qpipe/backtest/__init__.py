"""Backtests: the event-driven matching engine, its costs and its results."""

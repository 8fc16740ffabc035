"""Strategies: scores, rebalance schedules, portfolio construction and risk rules."""

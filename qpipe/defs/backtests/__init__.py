"""Backtests domain: one ``backtest_<strategy>`` asset per strategy and the job."""

"""Backtest results at rest: one Parquet file per strategy and output under
``<lake>/backtests/<strategy>/`` (``daily``, ``positions``, ``fills``, ``metrics``), each
replaced atomically. A backtest is a whole-history result (a path), rewritten as one piece,
so it is kept as files rather than as per-session partitions. Every file has a ``strategy``
column; DuckDB reads them as the views ``backtest_daily``, ``backtest_positions``,
``backtest_fills`` and ``backtest_metrics``."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pandas as pd

from qpipe.backtest.result import BacktestResult

OUTPUTS = ("daily", "positions", "fills", "metrics")


def backtest_dir(lake_root: Path | str, strategy: str) -> Path:
    return Path(lake_root) / "backtests" / strategy


def result_frames(strategy: str, result: BacktestResult) -> dict[str, pd.DataFrame]:
    """The result as long frames: daily accounts (with ``equity``), positions (date, symbol,
    quantity, for held names), fills, metrics (name, value)."""
    daily = result.daily.reset_index()
    positions = result.positions.rename_axis(index="date", columns="symbol").stack()
    positions = positions[positions != 0].rename("quantity").reset_index()
    fills = result.fills.assign(
        symbol=lambda f: f["symbol"].astype(str),
        side=lambda f: f["side"].astype(str),
        reason=lambda f: f["reason"].astype(str),
    )
    metrics = pd.DataFrame(
        {"metric": list(result.metrics), "value": [float(v) for v in result.metrics.values()]}
    )
    frames = {"daily": daily, "positions": positions, "fills": fills, "metrics": metrics}
    return {k: f.assign(strategy=strategy) for k, f in frames.items()}


def save_result(lake_root: Path | str, strategy: str, result: BacktestResult) -> Path:
    """Write the result's frames (temporary file, fsync, rename: each file atomic)."""
    target = backtest_dir(lake_root, strategy)
    target.mkdir(parents=True, exist_ok=True)
    for name, frame in result_frames(strategy, result).items():
        tmp = target / f".{name}.{uuid.uuid4().hex}.tmp"
        frame.to_parquet(tmp, index=False)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target / f"{name}.parquet")
    return target


def load_output(lake_root: Path | str, strategy: str, output: str) -> pd.DataFrame:
    """One saved output of a strategy's backtest (``daily``, ``positions``, ``fills``,
    ``metrics``)."""
    if output not in OUTPUTS:
        raise ValueError(f"unknown backtest output {output!r}; one of {', '.join(OUTPUTS)}")
    path = backtest_dir(lake_root, strategy) / f"{output}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"no backtest of {strategy!r} yet: run `qpipe backtest`")
    return pd.read_parquet(path)

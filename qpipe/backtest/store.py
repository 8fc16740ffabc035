"""Backtest results at rest: one Parquet file per strategy and output under
``<lake>/backtests/<strategy>/`` (``daily``, ``positions``, ``fills``, ``metrics``,
``risk_events``, ``warnings``), each replaced atomically. A backtest is a whole-history result
(a path), rewritten as one piece, so it is kept as files rather than as per-session
partitions. Every file has a ``strategy`` column; DuckDB reads them as the views
``backtest_daily``, ``backtest_positions``, ``backtest_fills``, ``backtest_metrics``,
``backtest_risk_events`` and ``backtest_warnings``. Missing values (a benchmark before it
lists, a metric that is undefined) are NULL in the files (:func:`~qpipe.data.lake.write_frame`)
and NaN again in what :func:`load_output` and :func:`load_result` return."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qpipe.backtest.result import BacktestResult
from qpipe.data.lake import write_frame

OUTPUTS = ("daily", "positions", "fills", "metrics", "risk_events", "warnings")
REQUIRED = ("daily", "positions", "fills", "metrics", "risk_events")
"""The outputs every saved backtest has (results saved by earlier versions have no warnings)."""


def backtest_dir(lake_root: Path | str, strategy: str) -> Path:
    return Path(lake_root) / "backtests" / strategy


def result_frames(
    strategy: str, result: BacktestResult, benchmark: pd.Series | None = None
) -> dict[str, pd.DataFrame]:
    """The result as long frames: daily accounts (with ``equity``, and the ``benchmark``
    value when given), positions (date, symbol, quantity, for held names), fills, metrics
    (name, value), risk events, warnings (one ``warning`` text per row)."""
    daily = result.daily.copy()
    if benchmark is not None:
        daily["benchmark"] = benchmark.reindex(daily.index).to_numpy(dtype=float)
    daily = daily.reset_index()
    positions = result.positions.rename_axis(index="date", columns="symbol").stack()
    positions = positions[positions != 0].rename("quantity").reset_index()
    positions["symbol"] = positions["symbol"].astype(str)
    fills = result.fills.assign(
        symbol=lambda f: f["symbol"].astype(str),
        side=lambda f: f["side"].astype(str),
        reason=lambda f: f["reason"].astype(str),
    )
    metrics = pd.DataFrame(
        {"metric": list(result.metrics), "value": [float(v) for v in result.metrics.values()]}
    )
    events = result.risk_events.astype(
        {"date": "datetime64[ns]", "symbol": str, "rule": str, "reason": str}
    )
    frames = {
        "daily": daily,
        "positions": positions,
        "fills": fills,
        "metrics": metrics,
        "risk_events": events,
        "warnings": pd.DataFrame({"warning": pd.Series(result.warnings, dtype="string")}),
    }
    return {k: f.assign(strategy=strategy) for k, f in frames.items()}


def save_result(
    lake_root: Path | str,
    strategy: str,
    result: BacktestResult,
    benchmark: pd.Series | None = None,
) -> Path:
    """Write the result's frames (temporary file, fsync, rename: each file atomic)."""
    target = backtest_dir(lake_root, strategy)
    for name, frame in result_frames(strategy, result, benchmark).items():
        write_frame(frame, target / f"{name}.parquet")
    return target


def load_output(lake_root: Path | str, strategy: str, output: str) -> pd.DataFrame:
    """One saved output of a strategy's backtest (one of :data:`OUTPUTS`)."""
    if output not in OUTPUTS:
        raise ValueError(f"unknown backtest output {output!r}; one of {', '.join(OUTPUTS)}")
    path = backtest_dir(lake_root, strategy) / f"{output}.parquet"
    if not path.exists():
        if output not in REQUIRED and (path.parent / "daily.parquet").exists():
            return pd.DataFrame({"warning": pd.Series([], dtype="string")})
        raise FileNotFoundError(f"no backtest of {strategy!r} yet: run `qpipe backtest`")
    return pd.read_parquet(path)


def load_result(lake_root: Path | str, strategy: str) -> tuple[BacktestResult, pd.Series | None]:
    """A saved backtest as a :class:`BacktestResult` (positions over the symbols ever held)
    and its benchmark series (None when it was saved without one)."""
    frames = {name: load_output(lake_root, strategy, name) for name in OUTPUTS}
    daily = frames["daily"].drop(columns="strategy").set_index("date")
    benchmark = daily.pop("benchmark").rename("benchmark") if "benchmark" in daily else None
    dates = pd.DatetimeIndex(daily.index, name="date")
    held = frames["positions"]
    positions = (
        held.pivot(index="date", columns="symbol", values="quantity")
        .reindex(dates)
        .fillna(0.0)
        .rename_axis(columns=None)
    )
    fills = frames["fills"].drop(columns="strategy")
    for col in ("symbol", "side", "reason"):
        fills[col] = fills[col].astype("category")
    metrics = frames["metrics"]
    result = BacktestResult(
        equity=daily["nav"].rename("equity"),
        positions=positions,
        fills=fills,
        daily=daily,
        risk_events=frames["risk_events"].drop(columns="strategy"),
        metrics=dict(zip(metrics["metric"], metrics["value"].astype(float), strict=True)),
        warnings=[str(w) for w in frames["warnings"]["warning"]],
    )
    return result, benchmark

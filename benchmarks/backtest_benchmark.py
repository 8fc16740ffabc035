"""Benchmark of the backtest engine.

Usage: ``python benchmarks/backtest_benchmark.py [--quick] [--large-symbols 3000]
[--large-sessions 5000]``.

Prints, each next to a baseline measured in the same run:

1. 500 symbols x 2,520 sessions, new target weights every session, 10 bp commission,
   next-open fills (goal: under 0.5 s warm), and the same with monthly rebalancing (goal:
   under 0.3 s). Baseline: the fully vectorised weights x returns P&L of the same weights
   (no fills, no cash, no halts: the floor any engine sits above).
2. 3,000 x 5,000 daily (goal: under 10 s) and its peak memory (goal: under 4 GB), in a
   fresh process (resident-set high-water mark).
3. The same strategy from precomputed factors against recomputing its factors from history
   at every monthly rebalance inside the loop (the seed project claims 100x).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

try:
    import qpipe  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine

DAILY_GOAL_S, MONTHLY_GOAL_S, LARGE_GOAL_S, LARGE_MEMORY_GOAL = 0.5, 0.3, 10.0, 4 * 2**30


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def market(symbols: int, sessions: int, seed: int = 0) -> xr.Dataset:
    """Random-walk raw bars with about 1% halted cells."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2000-01-03", periods=sessions, name="date")
    names = pd.Index([f"S{i:04d}" for i in range(symbols)], name="symbol")
    close = 30.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.02, (sessions, symbols)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.005, close.shape))
    volume = rng.lognormal(13, 1, close.shape)
    halted = rng.random(close.shape) < 0.01
    close[halted] = open_[halted] = np.nan
    dims = ("date", "symbol")
    return xr.Dataset(
        {"open": (dims, open_), "close": (dims, close), "volume": (dims, volume)},
        coords={"date": dates, "symbol": names},
    )


def random_weights(bars: xr.Dataset, monthly: bool, seed: int = 1) -> xr.DataArray:
    rng = np.random.default_rng(seed)
    w = rng.random((bars.sizes["date"], bars.sizes["symbol"]))
    w /= w.sum(axis=1, keepdims=True)
    panel = xr.DataArray(w, coords=bars["close"].coords, dims=("date", "symbol"))
    if monthly:
        dates = pd.Series(bars.indexes["date"])
        last = dates.groupby(dates.dt.to_period("M")).transform("max").eq(dates).to_numpy()
        panel = panel.where(xr.DataArray(last, dims="date", coords={"date": dates.to_numpy()}))
    return panel


def vectorised_pnl(bars: xr.Dataset, weights: xr.DataArray, bps: float) -> np.ndarray:
    """Baseline: held weights (forward-filled) x close-to-close returns minus bps x turnover."""
    close = bars["close"].values
    ret = np.nan_to_num(close[1:] / close[:-1] - 1.0)
    w = pd.DataFrame(weights.values).ffill().fillna(0.0).to_numpy()
    turnover = np.abs(np.diff(w, axis=0)).sum(axis=1)
    return np.cumprod(1.0 + (w[:-1] * ret).sum(axis=1) - bps / 1e4 * turnover)


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def engine_section(repeats: int) -> dict[str, bool]:
    bars = market(500, 2520)
    engine = BacktestEngine(BacktestConfig(commission_bps=10, fill="next_open"))
    out = {}
    print("1. Engine, 500 symbols x 2,520 sessions, 10 bp commission, next-open fills")
    for label, monthly, goal in (("daily", False, DAILY_GOAL_S), ("monthly", True, MONTHLY_GOAL_S)):
        weights = random_weights(bars, monthly)
        engine.run(bars, weights)  # warm
        seconds = best_of(lambda w=weights: engine.run(bars, w), repeats)
        base = best_of(lambda w=weights: vectorised_pnl(bars, w, 10), repeats)
        ok = seconds <= goal
        print(
            f"  {label:<8} engine {seconds * 1e3:8.1f} ms   baseline (vectorised P&L) "
            f"{base * 1e3:7.1f} ms   ratio {seconds / base:6.1f}x   goal {goal} s  {verdict(ok)}"
        )
        out[f"{label} <= {goal} s"] = ok
    return out


def _rss_kib(key: str) -> int:
    with open("/proc/self/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith(key + ":")))


def large_child(symbols: int, sessions: int) -> None:
    bars = market(symbols, sessions)
    weights = random_weights(bars, monthly=False)
    engine = BacktestEngine(BacktestConfig(commission_bps=10))
    t = time.perf_counter()
    result = engine.run(bars, weights)
    seconds = time.perf_counter() - t
    print(json.dumps({"seconds": seconds, "peak": _rss_kib("VmHWM") * 1024,
                      "fills": len(result.fills)}))  # fmt: skip


def large_section(symbols: int, sessions: int) -> dict[str, bool]:
    print(f"2. Engine, {symbols} x {sessions} daily (fresh process)")
    cmd = [sys.executable, __file__, "--large-child", "--large-symbols", str(symbols),
           "--large-sessions", str(sessions)]  # fmt: skip
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    child = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    got = json.loads(child.stdout.strip().splitlines()[-1])
    ok_t = got["seconds"] <= LARGE_GOAL_S
    ok_m = got["peak"] <= LARGE_MEMORY_GOAL
    print(f"  run {got['seconds']:.2f} s ({got['fills']:,} fills)   goal {LARGE_GOAL_S} s  "
          f"{verdict(ok_t)}")  # fmt: skip
    print(f"  peak resident memory of the process {got['peak'] / 2**30:.2f} GiB   goal 4 GiB  "
          f"{verdict(ok_m)}")  # fmt: skip
    return {"large <= 10 s": ok_t, "large memory <= 4 GB": ok_m}


def precomputed_section(symbols: int, sessions: int) -> None:
    """Momentum + volatility, top 20% equal weight, monthly: factors computed once for the
    panel, against recomputing them from the look-back history at every rebalance."""
    from qpipe.backtest.inputs import bars_dataset
    from qpipe.data.schema import MarketData
    from qpipe.factors.panel import compute
    from qpipe.strategies.base import StrategyData, Universe
    from qpipe.strategies.linear import LinearWeightedStrategy
    from qpipe.strategies.portfolio import EqualWeight, Portfolio, TopQuantile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from factor_benchmark import synthetic_market

    from qpipe.calendars import TradingCalendar
    from qpipe.factors.panel import build_inputs

    print(f"3. Precomputed factors vs recomputing them at each monthly rebalance, "
          f"{symbols} x {sessions}")  # fmt: skip
    calendar = TradingCalendar("XNYS", "1999-12-01")
    raw: MarketData = synthetic_market(symbols, sessions)
    # Put the business days on exchange sessions (the schedule comes from the calendar).
    days = pd.DatetimeIndex(np.unique(raw.bars["date"]))
    sessions_of = dict(zip(days, calendar.sessions_index("2000-01-03")[: len(days)], strict=True))
    mkt = MarketData(
        raw.bars.assign(date=raw.bars["date"].map(sessions_of)),
        raw.actions.assign(date=raw.actions["date"].map(sessions_of)),
    )
    names = ["mom_12_1", "vol_60"]
    strategy = LinearWeightedStrategy(
        "bench", {"mom_12_1": 1.0, "vol_60": -0.5}, universe=Universe(kinds=("stock",)),
        portfolio=Portfolio((TopQuantile(0.2), EqualWeight())),
    )  # fmt: skip
    instruments = pd.DataFrame({"symbol": mkt.bars["symbol"].unique(), "kind": "stock"})
    bars = bars_dataset(mkt)
    dates = valid = bars.indexes["date"]
    engine = BacktestEngine(BacktestConfig(commission_bps=10))

    def precomputed() -> None:
        factors = compute(mkt, names)
        data = StrategyData(build_inputs(mkt.bars, mkt.actions), factors, instruments)
        sig = strategy.signals(data, calendar, valid[260], valid[-1])
        engine.run(bars, sig.weight)

    def in_loop() -> None:
        inputs = build_inputs(mkt.bars, mkt.actions)
        rows = []
        month_ends = pd.Series(valid).groupby(valid.to_period("M")).max()
        decision_days = [d for d in month_ends if d >= valid[260]]
        lookback = 253
        weights = xr.full_like(bars["close"].transpose("date", "symbol"), np.nan)
        prev = None
        for day in decision_days:
            i = dates.get_loc(day)
            since = dates[max(0, i - lookback)]
            window = MarketData(mkt.bars.loc[mkt.bars["date"].between(since, day)], mkt.actions)
            factors = compute(window, names, start=day, end=day)
            data = StrategyData(inputs.since(max(0, i)), factors, instruments)
            score = strategy.score(data).sel(date=day).values
            w = strategy.portfolio.build(score, prev)
            weights.loc[{"date": day}] = w
            prev = w
            rows.append(day)
        engine.run(bars, weights)

    pre = best_of(precomputed, 1)
    loop = best_of(in_loop, 1)
    print(f"  precomputed factors + signals + engine {pre:8.2f} s")
    print(f"  factors recomputed at each rebalance   {loop:8.2f} s   ratio {loop / pre:6.1f}x "
          "(the seed claims 100x)")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--large-symbols", type=int, default=3000)
    parser.add_argument("--large-sessions", type=int, default=5000)
    parser.add_argument("--large-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.large_child:
        large_child(args.large_symbols, args.large_sessions)
        return 0
    print(f"os.cpu_count() = {os.cpu_count()}   load average = {os.getloadavg()[0]:.2f}\n")
    results = engine_section(1 if args.quick else 3)
    if not args.quick:
        results.update(large_section(args.large_symbols, args.large_sessions))
    precomputed_section(200 if args.quick else 500, 1260 if args.quick else 2520)
    print("\nGoals:")
    for name, ok in results.items():
        print(f"  {name:<28} {verdict(ok)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

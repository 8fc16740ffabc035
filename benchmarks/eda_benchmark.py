"""Benchmark of the factor EDA.

Usage: ``python benchmarks/eda_benchmark.py [--symbols 500] [--sessions 2520]``.

Prints, for one factor on a random panel with gaps:

1. rank IC, quantile returns (5 quantiles) and top-quantile turnover for one horizon (goal:
   under 0.3 s), against the usual pandas approach measured in the same run (a long frame,
   ``groupby("date")`` and a Spearman correlation per date: what factor-analysis libraries
   do for the IC alone);
2. the whole report (IC and rank IC for horizons 1, 5, 20, quantiles, spreads, turnover,
   decay at four lags, coverage).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

try:
    import qpipe  # noqa: F401
except ImportError:  # run from a checkout without installing
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qpipe.analytics.factor_eda import (
    factor_report,
    forward_returns,
    information_coefficient,
    quantile_labels,
    quantile_returns,
    quantile_turnover,
)

GOAL_S = 0.3


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--sessions", type=int, default=2520)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    shape = (args.sessions, args.symbols)
    prices = 30 * np.exp(np.cumsum(rng.normal(0, 0.02, shape), axis=0))
    factor = rng.normal(size=shape)
    factor[rng.random(shape) < 0.05] = np.nan
    prices[rng.random(shape) < 0.01] = np.nan
    dates = pd.bdate_range("2010-01-04", periods=args.sessions, name="date")

    def core() -> None:
        fwd = forward_returns(prices, 5)
        information_coefficient(factor, fwd)
        quantile_returns(factor, fwd, 5)
        quantile_turnover(quantile_labels(factor, fwd, 5), 5)

    core()  # compile / warm the rank kernel
    ours = best_of(core)
    whole = best_of(lambda: factor_report(factor, prices, dates), repeat=1)

    fwd = forward_returns(prices, 5)
    long = pd.DataFrame(
        {
            "date": np.repeat(dates.to_numpy(), args.symbols),
            "factor": factor.ravel(),
            "forward": fwd.ravel(),
        }
    ).dropna()

    def pandas_ic() -> None:
        long.groupby("date")[["factor", "forward"]].apply(
            lambda g: g["factor"].corr(g["forward"], method="spearman")
        )

    baseline = best_of(pandas_ic, repeat=1)
    print(f"os.cpu_count() = {os.cpu_count()}   {args.symbols} symbols x {args.sessions} sessions")
    verdict = "PASS" if ours <= GOAL_S else "MISS"
    print(
        f"  rank IC + quantile returns + turnover, one horizon   {ours * 1e3:7.1f} ms   "
        f"goal {GOAL_S:.1f} s  {verdict}"
    )
    print(
        f"  baseline: pandas groupby Spearman IC alone           {baseline * 1e3:7.1f} ms   "
        f"ratio {baseline / ours:6.1f}x"
    )
    print(f"  whole report (3 horizons, decay, coverage)           {whole * 1e3:7.1f} ms")


if __name__ == "__main__":
    main()

"""Benchmark of the first impression: ``qpipe demo`` from an empty data directory, then
``qpipe backtest`` (import plus first run) on the demo's lake.

Usage: ``python benchmarks/cli_benchmark.py [--data DIR]`` (default: a temporary directory,
removed after). Each command runs in a fresh process, as a user runs it. Prints, next to a
baseline measured in the same run (a Python interpreter that imports numpy, pandas and
dagster, the floor of any command that orchestrates through Dagster):

- ``qpipe demo`` (goal: under 3 minutes on 2 cores);
- ``qpipe backtest`` (goal: under 5 s), the median of three fresh processes;
- the viewer's strategy lab: a variant of ``multi_factor`` re-run in memory from the
  precomputed factors (goal: under 1 s), the median of three after the first.

The numba kernels compile on first use and are cached beside the package; the first demo on a
fresh install includes that compilation.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEMO_GOAL_S, BACKTEST_GOAL_S, LAB_GOAL_S = 180.0, 5.0, 1.0

LAB = """
import json, statistics, time
from qpipe.project import Project
from qpipe.backtest.runner import lake_market
from qpipe.backtest.variants import prepare, run_variant
p = Project.load(None)
s = p.strategies["multi_factor"]
market = lake_market(p.lake)
factors = p.lake.read("factors", columns=list(s.factors))
base = prepare("multi_factor", p.settings, market, factors, p.instruments, p.calendar,
               p.factor_names)
run_variant(base)  # the page's first run loads the compiled kernels
times = []
for top_k in (10, 15, 25):
    start = time.perf_counter()
    run_variant(base, {"top_k": top_k, "hold_band": 5}, {"commission_bps": 5.0})
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""


def timed(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="data directory (must be empty)")
    args = parser.parse_args()
    root = args.data or Path(tempfile.mkdtemp(prefix="qpipe-cli-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    if any(root.iterdir()):
        sys.exit(f"{root} is not empty: the demo is measured from an empty data directory")
    env = {**os.environ, "QPIPE_DATA": str(root)}
    env.pop("QPIPE_CONFIG", None)
    qpipe = [sys.executable, "-m", "qpipe.cli"]
    print(f"os.cpu_count() = {os.cpu_count()}   data {root}")
    try:
        floor = timed([sys.executable, "-c", "import numpy, pandas, dagster"], root, env)
        demo = timed([*qpipe, "demo"], root, env)
        # Import + first run, in a fresh process each time; the median of three.
        runs = sorted(timed([*qpipe, "backtest"], root, env) for _ in range(3))
        backtest = runs[1]
        lab_out = subprocess.run([sys.executable, "-c", LAB], cwd=root, env=env,
                                 capture_output=True, text=True, check=True)  # fmt: skip
        lab = sorted(json.loads(lab_out.stdout.strip().splitlines()[-1]))
    finally:
        if args.data is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"  baseline (import numpy, pandas, dagster)   {floor:7.2f} s")
    for name, took, goal in (
        ("qpipe demo (empty data directory)", demo, DEMO_GOAL_S),
        ("qpipe backtest (import + first run, median)", backtest, BACKTEST_GOAL_S),
    ):
        verdict = "PASS" if took <= goal else "MISS"
        print(
            f"  {name:<46} {took:7.2f} s   ratio {took / floor:6.1f}x   goal {goal:.0f} s  "
            f"{verdict}"
        )
    print(f"  qpipe backtest, three fresh processes: {', '.join(f'{r:.2f}' for r in runs)} s")
    verdict = "PASS" if lab[1] <= LAB_GOAL_S else "MISS"
    print(
        f"  strategy lab re-run of multi_factor (median of 3)  {lab[1]:7.2f} s   "
        f"goal {LAB_GOAL_S:.0f} s  {verdict}"
    )


if __name__ == "__main__":
    main()

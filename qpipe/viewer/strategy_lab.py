"""Strategy lab page: change a configured strategy's factor weights, selection, rebalance
frequency and costs, re-run its backtest in memory from the precomputed factors and compare
it with the saved run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from qpipe.analytics.charts import equity_comparison_chart
from qpipe.backtest.variants import run_variant
from qpipe.errors import ConfigError
from qpipe.viewer import loading

EMPTY = "No strategies or no factors yet. Run `qpipe demo` and reload."
REBALANCE = ["daily", "weekly", "monthly"]


def render(root: Path) -> None:
    st.header("Strategy lab")
    project = loading.project(root)
    names = list(project.settings.strategies)
    if not names or not (root / "factors").is_dir() or not (root / "bars").is_dir():
        st.info(EMPTY)
        return
    name = st.selectbox("Strategy", names, key="sl_strategy")
    params = project.settings.strategies[name].params
    changes: dict[str, object] = {}
    if hasattr(params, "factors"):
        st.caption("Factor weights (0 drops a factor)")
        cols = st.columns(len(params.factors))
        weights = {}
        for col, (factor, weight) in zip(cols, params.factors.items(), strict=True):
            weights[factor] = col.number_input(factor, value=float(weight), step=0.25,
                                               key=f"sl_w_{factor}")  # fmt: skip
        changes["factors"] = {f: w for f, w in weights.items() if w != 0}
    left, middle, right, last = st.columns(4)
    if getattr(params, "top_k", None) is not None:
        changes["top_k"] = int(left.number_input("Top k", min_value=1, value=params.top_k,
                                                 key="sl_top_k"))  # fmt: skip
    changes["rebalance"] = middle.selectbox(
        "Rebalance", REBALANCE, index=REBALANCE.index(params.rebalance), key="sl_rebalance"
    )
    costs = project.settings.backtest
    backtest = {
        "commission_bps": right.number_input("Commission (bp)", min_value=0.0,
                                             value=costs.commission_bps, key="sl_commission"),
        "slippage_bps": last.number_input("Slippage (bp)", min_value=0.0,
                                          value=costs.slippage_bps, key="sl_slippage"),
    }  # fmt: skip
    if not st.button("Run", key="sl_run", type="primary"):
        return
    base = loading.variant_base(root, name)
    try:
        result, _ = run_variant(base, changes, backtest)
    except (ValidationError, ConfigError, ValueError) as exc:
        st.error(f"Cannot run this variant: {exc}")
        return
    columns = {"variant": pd.Series(result.metrics)}
    equities = {"variant": result.equity}
    if name in loading.saved_strategies(root):
        saved, _ = loading.backtest(root, name)
        columns["saved run"] = pd.Series(saved.metrics)
        equities["saved run"] = saved.equity
    st.dataframe(pd.DataFrame(columns).round(4), width="stretch")
    st.plotly_chart(equity_comparison_chart(equities), key="sl_equity")

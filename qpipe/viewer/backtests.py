"""Backtests page: saved backtests side by side, one in detail, its positions and fills."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from qpipe.analytics.charts import (
    drawdown_chart,
    equity_chart,
    equity_comparison_chart,
    exposure_chart,
    monthly_heatmap,
)
from qpipe.backtest.result import BacktestResult
from qpipe.viewer import loading

EMPTY = "No saved backtests yet. Run `qpipe demo` (or `qpipe backtest`) and reload."


def render(root: Path) -> None:
    st.header("Backtests")
    names = loading.saved_strategies(root)
    if not names:
        st.info(EMPTY)
        return
    chosen = st.multiselect("Strategies", names, default=names, key="bt_strategies")
    if not chosen:
        st.info("Pick at least one strategy.")
        return
    results = {name: loading.backtest(root, name) for name in chosen}
    metrics = pd.DataFrame({name: pd.Series(r.metrics) for name, (r, _) in results.items()})
    st.subheader("Metrics")
    st.dataframe(metrics.round(4), width="stretch")
    log = st.toggle("Log scale", key="bt_log")
    if len(chosen) > 1:
        equities = {name: r.equity for name, (r, _) in results.items()}
        st.plotly_chart(equity_comparison_chart(equities, log=log), key="bt_compare")
    detail = st.selectbox("Strategy in detail", chosen, key="bt_detail")
    result, bench = results[detail]
    st.plotly_chart(equity_chart(result.equity, bench, log=log), key="bt_equity")
    left, right = st.columns(2)
    left.plotly_chart(drawdown_chart(result.equity), key="bt_drawdown")
    right.plotly_chart(exposure_chart(result.daily), key="bt_exposure")
    st.plotly_chart(monthly_heatmap(result.equity), key="bt_monthly")
    _tables(detail, result)


def _tables(name: str, result: BacktestResult) -> None:
    positions = result.positions.rename_axis(index="date", columns="symbol").stack()
    positions = positions[positions != 0].rename("quantity").reset_index()
    fills = result.fills.astype({"symbol": str, "side": str, "reason": str})
    symbols = sorted(set(fills["symbol"]) | set(positions["symbol"].astype(str)))
    picked = st.multiselect("Symbols (none: all)", symbols, key="bt_symbols")
    sides = st.multiselect("Fill side", ["buy", "sell"], default=["buy", "sell"], key="bt_sides")
    if picked:
        positions = positions[positions["symbol"].astype(str).isin(picked)]
        fills = fills[fills["symbol"].isin(picked)]
    fills = fills[fills["side"].isin(sides)]
    st.subheader(f"Positions ({len(positions):,} rows)")
    st.dataframe(positions.tail(2000), width="stretch", hide_index=True)
    st.download_button("Positions as CSV", positions.to_csv(index=False), f"{name}_positions.csv",
                       "text/csv", key="bt_positions_csv")  # fmt: skip
    st.subheader(f"Fills ({len(fills):,} rows)")
    st.dataframe(fills.tail(2000), width="stretch", hide_index=True)
    st.download_button("Fills as CSV", fills.to_csv(index=False), f"{name}_fills.csv",
                       "text/csv", key="bt_fills_csv")  # fmt: skip

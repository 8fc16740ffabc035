"""Factor lab page: one factor's IC, quantile returns, decay and correlation with the others,
from the saved factor report."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from qpipe.analytics.charts import correlation_heatmap, decay_chart, ic_chart, quantile_chart
from qpipe.analytics.factor_eda import DECAY_LAGS
from qpipe.viewer import loading

EMPTY = (
    "No factor report yet. Run `qpipe factors report` (after `qpipe demo` or `qpipe factors`) "
    "and reload."
)


def render(root: Path) -> None:
    st.header("Factor lab")
    tables = loading.factor_tables(root)
    if tables is None:
        st.info(EMPTY)
        return
    summary = tables["summary"].set_index("factor")
    factor = st.selectbox("Factor", list(summary.index), key="fl_factor")
    row = summary.loc[factor]
    cols = st.columns(4)
    cols[0].metric("Rank IC, 20 sessions", f"{row['rank_ic_mean_20']:.4f}")
    cols[1].metric("t-statistic", f"{row['rank_ic_t_20']:.2f}")
    cols[2].metric("Top-quantile turnover", f"{row['turnover_top']:.1%}")
    cols[3].metric("Coverage", f"{row['coverage']:.1%}")
    ic = tables["ic"]
    mine = ic[ic["factor"] == factor]
    rank_ic = mine.pivot(index="date", columns="horizon", values="rank_ic")
    window = st.slider("Rolling window (sessions)", 5, 126, 21, key="fl_window")
    st.plotly_chart(ic_chart(rank_ic, window=window), key="fl_ic")
    quantiles = tables["quantiles"]
    qmean = quantiles[quantiles["factor"] == factor].pivot(
        index="quantile", columns="horizon", values="mean_return"
    )
    left, right = st.columns(2)
    left.plotly_chart(quantile_chart(qmean), key="fl_quantiles")
    decay = pd.Series({lag: row[f"autocorrelation_{lag}"] for lag in DECAY_LAGS})
    right.plotly_chart(decay_chart(decay), key="fl_decay")
    corr = tables["correlation"].set_index("factor")
    st.subheader("Correlation with the other factors")
    others = corr[factor].drop(factor).sort_values(key=abs, ascending=False)
    st.dataframe(others.rename("rank correlation").round(3).to_frame(), width="stretch")
    st.plotly_chart(correlation_heatmap(corr), key="fl_corr")
    st.subheader("Every factor")
    st.dataframe(summary.round(4), width="stretch")

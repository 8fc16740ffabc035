"""The qpipe viewer (``qpipe viewer``, or ``streamlit run`` this file): backtests, the factor
lab, the strategy lab and live trading, read from the lake of ``$QPIPE_DATA``."""

from __future__ import annotations

import streamlit as st

from qpipe.viewer import backtests, factor_lab, live, loading, strategy_lab

PAGES = {
    "Backtests": backtests.render,
    "Factor lab": factor_lab.render,
    "Strategy lab": strategy_lab.render,
    "Live": live.render,
}


def main() -> None:
    st.set_page_config(page_title="qpipe", layout="wide")
    root = loading.lake_root()
    st.sidebar.title("qpipe")
    page = st.sidebar.radio("Page", list(PAGES), key="page")
    st.sidebar.caption(f"Lake: {root}")
    if not root.is_dir():
        st.info(f"No lake at {root} yet. Run `qpipe demo` to build one, then reload.")
        return
    PAGES[page](root)


main()

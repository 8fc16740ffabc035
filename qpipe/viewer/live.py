"""Live page: the paper account, positions with P&L and exposure by sector, and the live
journal (orders, reconciliation, refusals) from the lake."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from qpipe.data.lake import Lake
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.viewer import loading

EMPTY = (
    "No live trading yet: the live journal (`lake/live/`) is empty. Live rebalances at the "
    "close (`qpipe live rebalance`) write it; this page shows them once they have run."
)


def render(root: Path) -> None:
    st.header("Live")
    journal = Journal(root)
    submitted = journal.read("submitted")
    if submitted.empty and journal.read("events").empty:
        st.info(EMPTY)
        return
    broker = PaperBroker(Lake(root))
    held = broker.positions()
    if held:
        account = broker.account()
        cols = st.columns(2)
        cols[0].metric("Net liquidation (paper)", f"{account.net_liquidation:,.0f}")
        cols[1].metric("Cash", f"{account.cash:,.0f}")
        prices = broker.snapshot(list(held))
        sectors = loading.project(root).sectors
        positions = pd.DataFrame(
            [(p.symbol, p.quantity, p.avg_cost, prices.get(p.symbol)) for p in held.values()],
            columns=["symbol", "quantity", "avg_cost", "price"],
        )
        positions["value"] = positions["quantity"] * positions["price"]
        positions["pnl"] = positions["quantity"] * (positions["price"] - positions["avg_cost"])
        positions["sector"] = positions["symbol"].map(sectors).fillna("(none)")
        st.subheader("Positions")
        st.dataframe(positions.round(2), width="stretch", hide_index=True)
        st.subheader("Exposure by sector")
        by_sector = positions.groupby("sector")["value"].sum() / account.net_liquidation
        st.dataframe(by_sector.rename("fraction of NAV").round(4).to_frame(), width="stretch")
    st.subheader("Orders (journal)")
    st.dataframe(submitted.tail(500), width="stretch", hide_index=True)
    events = journal.read("events")
    if not events.empty:
        st.subheader("Refusals and events")
        st.dataframe(events.tail(200), width="stretch", hide_index=True)

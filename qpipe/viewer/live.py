"""Live page: the account (the paper account as it is now, else the broker's account as the
last rebalance saw it), positions with P&L and exposure by sector, and the live journal
(orders, fills, refusals and risk events) from the lake. The page never connects to a
broker."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from qpipe.analytics.charts import tracking_difference_chart
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
    account = _account(root, journal)
    if account is not None:
        title, nav, cash, positions = account
        st.caption(title)
        cols = st.columns(2)
        cols[0].metric("Net liquidation", f"{nav:,.0f}")
        cols[1].metric("Cash", f"{cash:,.0f}")
        positions["value"] = positions["quantity"] * positions["price"]
        positions["pnl"] = positions["quantity"] * (positions["price"] - positions["avg_cost"])
        sectors = loading.project(root).sectors
        positions["sector"] = positions["symbol"].map(sectors).fillna("(none)")
        st.subheader("Positions")
        st.dataframe(positions.round(2), width="stretch", hide_index=True)
        st.subheader("Exposure by sector")
        by_sector = positions.groupby("sector")["value"].sum() / nav
        st.dataframe(by_sector.rename("fraction of NAV").round(4).to_frame(), width="stretch")
    st.subheader("Orders (journal)")
    st.dataframe(submitted.tail(500), width="stretch", hide_index=True)
    for kind, title in (("fills", "Fills"), ("events", "Refusals and events")):
        table = journal.read(kind)
        if not table.empty:
            st.subheader(title)
            st.dataframe(table.tail(200), width="stretch", hide_index=True)
    _drift(root)


NO_DRIFT = (
    "No drift report yet: `qpipe live drift` compares each paper or live rebalance with the "
    "backtest engine on the same session and writes it."
)


def _drift(root: Path) -> None:
    """The drift report's cumulative tracking difference (the ``live_drift`` table)."""
    st.subheader("Drift against the backtest")
    lake = Lake(root)
    if "live_drift" not in lake.tables():
        st.caption(NO_DRIFT)
        return
    drift = lake.read("live_drift")
    st.plotly_chart(tracking_difference_chart(drift), key="live_drift")
    columns = ["date", "strategy", "nav_diff", "nav_diff_rel", "fills", "costs",
               "missed_orders", "cause", "tracking"]  # fmt: skip
    st.dataframe(drift[columns].tail(200), width="stretch", hide_index=True)


def _account(root: Path, journal: Journal) -> tuple[str, float, float, pd.DataFrame] | None:
    """(caption, NAV, cash, positions with symbol, quantity, avg_cost, price): the paper
    account now when it holds anything, else the last rebalance's snapshot of the account."""
    broker = PaperBroker(Lake(root))
    held = broker.positions()
    if held:
        account = broker.account()
        prices = broker.snapshot(list(held))
        rows = [(p.symbol, p.quantity, p.avg_cost, prices.get(p.symbol)) for p in held.values()]
        frame = pd.DataFrame(rows, columns=["symbol", "quantity", "avg_cost", "price"])
        return "Paper account, now", account.net_liquidation, account.cash, frame
    snap = journal.read("snapshot")
    if snap.empty:
        return None
    last = snap.loc[snap["run_id"] == snap["run_id"].iloc[-1]]
    first = last.iloc[0]
    where = f"{first.get('broker', 'broker')} account {first.get('account_id', '')}".strip()
    caption = f"{where} at the last rebalance ({first['strategy']}, session {first['session']})"
    held_rows = last.loc[last["held"] != 0]
    frame = pd.DataFrame({
        "symbol": held_rows["symbol"], "quantity": held_rows["held"],
        "avg_cost": held_rows.get("avg_cost", float("nan")), "price": held_rows["price"],
    })  # fmt: skip
    return caption, float(first["net_liquidation"]), float(first["cash"]), frame

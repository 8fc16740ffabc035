"""Each strategy's sleeve: the shares its own orders bought and sold on the shared account.

A sleeve is the ledger of the fills of a strategy's orders (found by their references, each
fill once by its execution id), kept per broker account in
``<lake>/live/sleeves/<account>/<strategy>.parquet`` (so paper fills never count live; columns
``exec_id, reference, symbol, side, quantity, price, commission, time``; each write atomic).
Its holdings are the signed sum of its fills per symbol. The broker's positions less the
holdings of every sleeve are the positions nobody owns (bought outside qpipe, or a
corporate action the ledgers do not record): reported, never traded. Only an executed
rebalance writes a sleeve; a dry run reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from qpipe.data.lake import write_frame
from qpipe.live.broker import Execution, Position

LEDGER_COLUMNS = ["exec_id", "reference", "symbol", "side", "quantity", "price", "commission",
                  "time"]  # fmt: skip


class Sleeves:
    """The strategies' sleeves on broker account ``account`` (its id) under
    ``<lake_root>/live/sleeves/<account>/``."""

    def __init__(self, lake_root: Path | str, account: str) -> None:
        if not account or "/" in account or account.startswith("."):
            raise ValueError(f"sleeves: unusable account id {account!r}")
        self.folder = Path(lake_root) / "live" / "sleeves" / account

    def ledger(self, strategy: str) -> pd.DataFrame:
        """Every fill of ``strategy``'s orders recorded so far (empty when none)."""
        path = self.folder / f"{strategy}.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=LEDGER_COLUMNS)

    def holdings(self, strategy: str) -> pd.Series:
        """Shares of ``strategy``'s sleeve per symbol (buys less sells; names at 0 left out)."""
        frame = self.ledger(strategy)
        if frame.empty:
            return pd.Series(dtype=np.float64)
        quantity = frame["quantity"].astype(np.float64)
        signed = quantity.where(frame["side"] == "buy", -quantity)
        total = signed.groupby(frame["symbol"]).sum()
        return total.loc[total != 0].astype(np.float64)

    def record(self, strategy: str, fills: Iterable[Execution]) -> int:
        """Add ``fills`` (of ``strategy``'s orders) not yet in its ledger; returns how many."""
        old = self.ledger(strategy)
        seen = set(old["exec_id"])
        new = [vars(f) for f in fills if f.exec_id not in seen]
        if not new:
            return 0
        rows = pd.DataFrame(new, columns=LEDGER_COLUMNS)
        write_frame(rows if old.empty else pd.concat([old, rows], ignore_index=True),
                    self.folder / f"{strategy}.parquet")  # fmt: skip
        return len(new)

    def owned(self, strategies: Iterable[str]) -> pd.Series:
        """Shares per symbol held by the sleeves of ``strategies`` together."""
        parts = [self.holdings(s) for s in strategies]
        parts = [p for p in parts if len(p)]
        if not parts:
            return pd.Series(dtype=np.float64)
        return pd.concat(parts).groupby(level=0).sum()


def unowned(positions: Mapping[str, Position], owned: pd.Series) -> pd.Series:
    """The broker's ``positions`` less the sleeves' ``owned`` shares, per symbol where they
    differ (positive: shares no sleeve owns; negative: sleeves hold more than the broker)."""
    held = pd.Series({s: p.quantity for s, p in positions.items()}, dtype=np.float64)
    symbols = sorted(set(held.index) | set(owned.index))
    diff = held.reindex(symbols).fillna(0.0) - owned.reindex(symbols).fillna(0.0)
    return diff.loc[diff.abs() > 1e-9]

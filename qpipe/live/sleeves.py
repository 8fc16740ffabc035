"""Each strategy's sleeve: the shares its own orders bought and sold on the shared account.

A sleeve is the ledger of the fills of a strategy's orders (found by their references, each
fill once by its execution id), kept per broker account in
``<lake>/live/sleeves/<account>/<strategy>.parquet`` (so paper fills never count live; columns
``exec_id, reference, symbol, side, quantity, price, commission, time``; each write atomic).
Its holdings are the signed sum of its fills per symbol. A strategy with no ledger yet on an
account starts from the fills the live journal holds of its runs there (an account traded
before sleeves were kept). The broker's positions less the
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

    def exists(self, strategy: str) -> bool:
        """Whether ``strategy`` has a ledger on this account yet."""
        return (self.folder / f"{strategy}.parquet").exists()

    def holdings(self, strategy: str) -> pd.Series:
        """Shares of ``strategy``'s sleeve per symbol (buys less sells; names at 0 left out)."""
        return holdings_of(self.ledger(strategy))

    def record(self, strategy: str, fills: Iterable[Execution] | pd.DataFrame) -> int:
        """Add ``fills`` (of ``strategy``'s orders; executions or a frame of
        :data:`LEDGER_COLUMNS`) not yet in its ledger; returns how many."""
        old = self.ledger(strategy)
        seen = set(old["exec_id"])
        if isinstance(fills, pd.DataFrame):
            rows = fills.loc[~fills["exec_id"].isin(seen), LEDGER_COLUMNS]
        else:
            rows = pd.DataFrame([vars(f) for f in fills if f.exec_id not in seen],
                                columns=LEDGER_COLUMNS)  # fmt: skip
        rows = rows.drop_duplicates("exec_id")
        if rows.empty:
            return 0
        write_frame(rows if old.empty else pd.concat([old, rows], ignore_index=True),
                    self.folder / f"{strategy}.parquet")  # fmt: skip
        return len(rows)

    def owned(self, strategies: Iterable[str]) -> pd.Series:
        """Shares per symbol held by the sleeves of ``strategies`` together."""
        parts = [self.holdings(s) for s in strategies]
        parts = [p for p in parts if len(p)]
        if not parts:
            return pd.Series(dtype=np.float64)
        return pd.concat(parts).groupby(level=0).sum()


def holdings_of(frame: pd.DataFrame) -> pd.Series:
    """Shares per symbol of a ledger ``frame`` (buys less sells; names at 0 left out)."""
    if frame.empty:
        return pd.Series(dtype=np.float64)
    quantity = frame["quantity"].astype(np.float64)
    signed = quantity.where(frame["side"] == "buy", -quantity)
    total = signed.groupby(frame["symbol"]).sum()
    return total.loc[total != 0].astype(np.float64)


def unowned(positions: Mapping[str, Position], owned: pd.Series) -> pd.Series:
    """The broker's ``positions`` less the sleeves' ``owned`` shares, per symbol where they
    differ (positive: shares no sleeve owns; negative: sleeves hold more than the broker)."""
    held = pd.Series({s: p.quantity for s, p in positions.items()}, dtype=np.float64)
    symbols = sorted(set(held.index) | set(owned.index))
    diff = held.reindex(symbols).fillna(0.0) - owned.reindex(symbols).fillna(0.0)
    return diff.loc[diff.abs() > 1e-9]


def journal_fills(journal_fills: pd.DataFrame, snapshots: pd.DataFrame, strategy: str,
                  account: str) -> pd.DataFrame:  # fmt: skip
    """The fills the live journal holds of ``strategy``'s runs on ``account`` (a run's
    account is in its snapshot): how a sleeve starts on an account traded before sleeves
    were kept, so the positions its orders built stay its own."""
    if journal_fills.empty or snapshots.empty or "account_id" not in snapshots:
        return pd.DataFrame(columns=LEDGER_COLUMNS)
    runs = set(snapshots.loc[snapshots["account_id"] == account, "run_id"])
    mine = journal_fills.loc[(journal_fills["strategy"] == strategy)
                             & journal_fills["run_id"].isin(runs)]  # fmt: skip
    return mine[LEDGER_COLUMNS].drop_duplicates("exec_id").reset_index(drop=True)

"""The live journal: every rebalance's account snapshot, intended orders, submitted orders,
reconciliation, the fills seen so far and events (``refused``, ``failed``, ``no_orders``
with why, the risk rules acting), appended to
``<lake>/live/journal/<kind>.parquet`` (each write atomic; missing values NULL in the files,
NaN when read back), with the run, session and strategy on every row; the viewer's Live page
reads it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qpipe.data.lake import write_frame

KINDS = ("snapshot", "intended", "submitted", "reconciliation", "fills", "events")


class Journal:
    """Append-only tables under ``<lake_root>/live/journal/``."""

    def __init__(self, lake_root: Path | str) -> None:
        self.folder = Path(lake_root) / "live" / "journal"

    def record(self, kind: str, frame: pd.DataFrame, **stamp: object) -> None:
        """Append ``frame``'s rows to table ``kind``, each stamped with ``stamp`` columns."""
        if kind not in KINDS:
            raise ValueError(f"unknown journal table {kind!r}; one of {', '.join(KINDS)}")
        if frame.empty:
            return
        rows = frame.assign(**{k: str(v) for k, v in stamp.items()})
        old = self.read(kind)
        write_frame(rows if old.empty else pd.concat([old, rows], ignore_index=True),
                    self.folder / f"{kind}.parquet")  # fmt: skip

    def read(self, kind: str) -> pd.DataFrame:
        """Every row of table ``kind`` so far (empty when none)."""
        path = self.folder / f"{kind}.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame()

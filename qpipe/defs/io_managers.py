"""The lake IO manager: an asset's output is written to its lake table, one Hive partition
per session, and inputs are read back for their whole partition range in one scan."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

from qpipe.data.lake import Lake
from qpipe.settings import data_dir


class LakeIOManager(ConfigurableIOManager):
    """Stores DataFrames with a ``date`` column in ``<data_dir>/lake/<asset name>/``.

    A run covering many partitions (a single-run backfill) writes every partition key of the
    run at once, atomically per partition and idempotently (a re-run replaces the same days).
    Sessions of the run with no rows get an empty partition, so the lake records them as done.
    """

    data_dir: str | None = None
    """Data directory; None: ``$QPIPE_DATA`` or ``./data``."""

    def lake(self) -> Lake:
        root = Path(self.data_dir).resolve() if self.data_dir else data_dir()
        return Lake(root / "lake")

    def handle_output(self, context: OutputContext, obj: pd.DataFrame) -> None:
        table = context.asset_key.path[-1]
        if context.has_asset_partitions:
            dates = list(context.asset_partition_keys)
        else:
            dates = sorted(pd.to_datetime(obj["date"]).dt.date.unique())
        summary = self.lake().write(table, obj, dates)
        context.add_output_metadata(
            {
                "rows": summary.rows,
                "partitions": summary.partitions,
                "symbols": int(obj["symbol"].nunique()) if "symbol" in obj else 0,
                "first_date": str(summary.first),
                "last_date": str(summary.last),
            }
        )

    def load_input(self, context: InputContext) -> pd.DataFrame:
        assert context.upstream_output is not None
        table = context.upstream_output.asset_key.path[-1]
        if context.has_asset_partitions:
            keys = context.asset_partition_key_range
            return self.lake().read(table, keys.start, keys.end)
        return self.lake().read(table)

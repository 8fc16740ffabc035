"""The lake IO manager: an asset's output is written to its lake table, one Hive partition
per session, and inputs are read back for their whole partition range in one scan."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from dagster import ConfigurableIOManager, InputContext, OutputContext

from qpipe.data.lake import Lake
from qpipe.data.schema import MarketData
from qpipe.data.sync import write_market_data
from qpipe.settings import data_dir


class LakeIOManager(ConfigurableIOManager):
    """Stores DataFrames with a ``date`` column in ``<data_dir>/lake/<asset name>/``.

    :class:`~qpipe.data.schema.MarketData` goes to two tables: bars under the asset's name and
    actions in ``corporate_actions``, through :func:`~qpipe.data.sync.write_market_data`: a
    session without bars is not written, so it stays missing and the next sync asks for it
    again. A run covering many partitions (a single-run backfill) writes every partition key of
    the run at once, atomically per partition and idempotently (a re-run replaces the same
    days). Other assets' sessions with no rows get an empty partition, so the lake records them
    as done.
    """

    data_dir: str | None = None
    """Data directory; None: ``$QPIPE_DATA`` or ``./data``."""

    def lake(self) -> Lake:
        root = Path(self.data_dir).resolve() if self.data_dir else data_dir()
        return Lake(root / "lake")

    def handle_output(self, context: OutputContext, obj: pd.DataFrame | MarketData) -> None:
        table = context.asset_key.path[-1]
        frame = obj.bars if isinstance(obj, MarketData) else obj
        if context.has_asset_partitions:
            dates = list(context.asset_partition_keys)
        else:
            dates = sorted(pd.to_datetime(frame["date"]).dt.date.unique())
        lake = self.lake()
        if isinstance(obj, MarketData):
            summary = write_market_data(lake, obj, dates, table)
        else:
            summary = lake.write(table, frame, dates)
        metadata: dict[str, object] = {
            "rows": summary.rows,
            "partitions": summary.partitions,
            "symbols": int(frame["symbol"].nunique()) if "symbol" in frame else 0,
            "first_date": str(summary.first),
            "last_date": str(summary.last),
        }
        if isinstance(obj, MarketData):
            metadata["splits"] = int((obj.actions["split_ratio"] != 1.0).sum())
            metadata["dividends"] = int((obj.actions["dividend"] > 0.0).sum())
        context.add_output_metadata(metadata)

    def load_input(self, context: InputContext) -> pd.DataFrame | MarketData:
        assert context.upstream_output is not None
        table = context.upstream_output.asset_key.path[-1]
        lo = hi = None
        if context.has_asset_partitions:
            keys = context.asset_partition_key_range
            lo, hi = keys.start, keys.end
        frame = self.lake().read(table, lo, hi)
        if table == "bars":
            # Every action up to the range's end: forward adjustment accumulates them all.
            return MarketData(frame, self.lake().read("corporate_actions", None, hi))
        return frame

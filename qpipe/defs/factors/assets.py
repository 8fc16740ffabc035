"""``factors``: every configured factor for a range of sessions, from the look-back window of
``bars`` (a time-window partition mapping), written to the lake table ``factors``."""

import datetime as dt

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from qpipe.data.schema import MarketData
from qpipe.defs.partitions import session_partitions
from qpipe.defs.resources import ProjectResource
from qpipe.factors.factory import (
    library_for,
    merge_columns,
    selected_names,
    selected_names_only,
    to_long,
)
from qpipe.factors.lookahead import lookahead_violations
from qpipe.factors.panel import compute, max_lookback
from qpipe.project import Project

LOOKAHEAD_SAMPLES = 3


class FactorRunConfig(Config):
    """``only``: compute just these factors and keep the other columns already in the lake."""

    only: list[str] | None = None


def coverage_table(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Per factor on the last session of ``frame``: share of names with a value, mean, std."""
    last = frame.loc[frame["date"] == frame["date"].max(), names]
    with np.errstate(over="ignore", invalid="ignore"):  # a few alphas reach 1e150 (#84)
        return pd.DataFrame(
            {"coverage": last.notna().mean(), "mean": last.mean(), "std": last.std()}
        ).rename_axis("factor")


def build_factor_assets(project: Project) -> AssetsDefinition:
    """The partitioned ``factors`` asset with its look-ahead and coverage checks."""
    library = library_for(project.settings.factors)
    names = selected_names(project.settings.factors, library)
    lookback = max_lookback(library, names)

    @asset(
        name="factors",
        ins={"bars": AssetIn(partition_mapping=TimeWindowPartitionMapping(start_offset=-lookback))},
        io_manager_key="lake_io_manager",
        description=f"{len(names)} factors per session and symbol on forward-adjusted prices; "
        f"reads {lookback} sessions of look-back.",
        kinds={"parquet", "xarray"},
        partitions_def=session_partitions(project),
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=[
            AssetCheckSpec(
                "no_lookahead",
                asset="factors",
                description="Values on sampled sessions are unchanged when history is cut there.",
            ),
            AssetCheckSpec(
                "nan_coverage",
                asset="factors",
                description="No factor is all-NaN on the last session once it has its look-back.",
            ),
        ],
        group_name="factors",
        pool="lake_writer",
    )
    def factors(
        context: AssetExecutionContext,
        config: FactorRunConfig,
        qpipe: ProjectResource,
        bars: MarketData,
    ):
        proj = qpipe.get()
        run_names = selected_names_only(library, names, config.only)
        sessions = [dt.date.fromisoformat(k) for k in context.partition_keys]
        first, last = pd.Timestamp(sessions[0]), pd.Timestamp(sessions[-1])
        sectors = proj.sectors
        year = proj.calendar.sessions_per_year
        full = compute(bars, run_names, library=library, sectors=sectors, sessions_per_year=year)
        frame = to_long(full.sel(date=slice(first, last)), bars.bars)
        if config.only is not None:
            frame = merge_columns(proj.lake, frame, names, first, last)
        table = coverage_table(frame, run_names) if len(frame) else pd.DataFrame()
        yield Output(
            frame,
            metadata={
                "factors": len(names),
                "lookback": lookback,
                "last_session": MetadataValue.md(table.round(4).to_markdown())
                if len(table)
                else "no rows",
            },
        )
        in_range = full.indexes["date"][(full.indexes["date"] >= first)]
        picks = np.unique(np.linspace(0, len(in_range) - 1, LOOKAHEAD_SAMPLES).astype(int))
        sample = [in_range[i] for i in picks] if len(in_range) else []
        bad = lookahead_violations(
            bars, library, run_names, sample, full=full, sectors=sectors, sessions_per_year=year
        )
        yield AssetCheckResult(
            check_name="no_lookahead",
            asset_key="factors",
            passed=not bad,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "sessions_sampled": ", ".join(f"{t:%Y-%m-%d}" for t in sample),
                "violations": MetadataValue.json(bad),
            },
        )
        history = len(full.indexes["date"])
        empty = [
            n
            for n in run_names
            if len(table) and library[n].lookback < history and table.loc[n, "coverage"] == 0
        ]
        yield AssetCheckResult(
            check_name="nan_coverage",
            asset_key="factors",
            passed=not empty,
            severity=AssetCheckSeverity.WARN,
            metadata={"all_nan": ", ".join(empty) or "none"},
        )

    return factors

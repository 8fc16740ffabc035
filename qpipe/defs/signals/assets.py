"""``signals_<strategy>``: a configured strategy's scores and target weights per session, from
the ``factors`` of the same sessions and the strategy's look-back of ``bars``, written to the
lake table of the same name."""

import datetime as dt

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetIn,
    AssetsDefinition,
    BackfillPolicy,
    MetadataValue,
    Output,
    TimeWindowPartitionMapping,
    asset,
)

from qpipe.data.schema import MarketData
from qpipe.defs.partitions import session_partitions
from qpipe.defs.resources import ProjectResource
from qpipe.project import Project
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.lookahead import signal_lookahead_violations
from qpipe.strategies.signals import (
    compute_signals,
    lake_previous_weights,
    signals_table,
)

LOOKAHEAD_SAMPLES = 3


def build_signal_assets(project: Project) -> list[AssetsDefinition]:
    """One ``signals_<name>`` asset per configured strategy."""
    return [_signal_asset(project, name, s) for name, s in project.strategies.items()]


def _signal_asset(project: Project, name: str, strategy: BaseStrategy) -> AssetsDefinition:
    table = signals_table(name)
    lookback = strategy.lookback

    @asset(
        name=table,
        ins={"bars": AssetIn(partition_mapping=TimeWindowPartitionMapping(start_offset=-lookback))},
        deps=[AssetDep("factors")],
        io_manager_key="lake_io_manager",
        description=f"{type(strategy).__name__} {name!r}: score and target weight per session "
        f"and symbol (weights on {strategy.rebalance} rebalance sessions, NaN between); reads "
        f"the factors {', '.join(strategy.factors) or '(none)'} and {lookback} sessions of bars.",
        kinds={"parquet", "xarray"},
        partitions_def=session_partitions(project),
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=[
            AssetCheckSpec(
                "no_lookahead",
                asset=table,
                description="Scores and weights on sampled sessions are unchanged when the "
                "bars and factors are cut there.",
            )
        ],
        group_name="signals",
        pool="lake_writer",
    )
    def signals(context: AssetExecutionContext, qpipe: ProjectResource, bars: MarketData):
        proj = qpipe.get()
        sessions = [dt.date.fromisoformat(k) for k in context.partition_keys]
        first, last = sessions[0], sessions[-1]
        factors = proj.lake.read("factors", first, last, columns=list(strategy.factors))
        previous = lake_previous_weights(proj.lake, proj.calendar, name, first)
        args = (strategy, bars, factors, proj.instruments, proj.calendar)
        frame = compute_signals(*args, first, last, previous)
        decided = frame.loc[frame["target_weight"].notna()]
        last_rebalance = decided.loc[decided["date"] == decided["date"].max()]
        held = last_rebalance.loc[last_rebalance["target_weight"] > 0]
        yield Output(
            frame,
            metadata={
                "rebalances": int(decided["date"].nunique()),
                "last_rebalance": str(decided["date"].max().date()) if len(decided) else "none",
                "holdings": len(held),
                "gross": float(held["target_weight"].sum()) if len(held) else 0.0,
                "top_weights": MetadataValue.md(
                    held.nlargest(10, "target_weight")[["symbol", "score", "target_weight"]]
                    .round(4)
                    .to_markdown(index=False)
                )
                if len(held)
                else "no holdings",
            },
        )
        days = pd.DatetimeIndex(sorted(frame["date"].unique()))
        picks = np.unique(np.linspace(0, len(days) - 1, LOOKAHEAD_SAMPLES).astype(int))
        sample = [days[i] for i in picks] if len(days) else []
        bad = signal_lookahead_violations(
            strategy, bars, factors, proj.instruments, proj.calendar, frame, sample, previous
        )
        yield AssetCheckResult(
            check_name="no_lookahead",
            asset_key=table,
            passed=not bad,
            severity=AssetCheckSeverity.ERROR,
            metadata={
                "sessions_sampled": ", ".join(f"{t:%Y-%m-%d}" for t in sample),
                "violations": MetadataValue.json(bad),
            },
        )

    return signals

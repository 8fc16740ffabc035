"""``bars`` and ``corporate_actions``: one fetch from the data source per run, written to the
lake one partition per session by the lake IO manager."""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetOut,
    AssetsDefinition,
    BackfillPolicy,
    Output,
    multi_asset,
)

from qpipe.data.sync import fetch_sessions
from qpipe.defs.market.checks import bars_check_specs, to_check_result
from qpipe.defs.partitions import session_partitions
from qpipe.defs.resources import ProjectResource
from qpipe.progress import listening
from qpipe.project import Project


def build_market_assets(project: Project) -> AssetsDefinition:
    """The multi-asset producing ``bars`` and ``corporate_actions`` for the project's sessions."""

    @multi_asset(
        name="market_data",
        outs={
            "bars": AssetOut(
                io_manager_key="lake_io_manager",
                description="Raw daily bars as traded: open, high, low, close, volume.",
                kinds={"parquet"},
                is_required=False,
            ),
            "corporate_actions": AssetOut(
                io_manager_key="lake_io_manager",
                description="Splits and cash dividends by ex-date with the price factor that "
                "removes each jump; adjusted prices are derived from them.",
                kinds={"parquet"},
                is_required=False,
            ),
        },
        partitions_def=session_partitions(project),
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=bars_check_specs(),
        can_subset=True,
        group_name="market",
        pool="lake_writer",
    )
    def market_data(
        context: AssetExecutionContext, qpipe: ProjectResource
    ) -> Iterator[Output | object]:
        proj = qpipe.get()
        sessions = context.partition_keys

        def log_progress(stage: str, done: int, total: int) -> None:
            if done == total:
                context.log.info(f"{stage}: done ({total})")

        with listening(log_progress):
            batch = fetch_sessions(proj, sessions)
        selected = context.op_execution_context.selected_output_names
        if "bars" in selected:
            yield Output(batch.bars, output_name="bars")
        if "corporate_actions" in selected:
            yield Output(batch.actions, output_name="corporate_actions")
        wanted = {key.name for key in context.selected_asset_check_keys}
        for outcome in batch.checks:
            if outcome.name in wanted:
                yield to_check_result(outcome)

    return market_data

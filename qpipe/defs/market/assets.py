"""``bars``: one fetch from the data source per run, written to the lake one partition per
session, with the session's corporate actions stored beside it in their own lake table.
Sessions without bars and sessions after the latest closed session are not written; the run's
log and metadata name them."""

from dagster import AssetExecutionContext, AssetsDefinition, BackfillPolicy, Output, asset

from qpipe.data.schema import MarketData
from qpipe.data.sync import fetch_sessions
from qpipe.defs.market.checks import bars_check_specs, to_check_result
from qpipe.defs.partitions import session_partitions
from qpipe.defs.resources import ProjectResource
from qpipe.progress import listening
from qpipe.project import Project


def build_market_assets(project: Project) -> AssetsDefinition:
    """The partitioned ``bars`` asset of ``project`` with its data-quality checks.

    One asset rather than two: Dagster records a few events per partition and asset, which
    dominates a ten-year single-run backfill, and bars and actions always come from one fetch.
    """

    @asset(
        name="bars",
        io_manager_key="lake_io_manager",
        description="Raw daily bars as traded (open, high, low, close, volume) in the lake "
        "table `bars`, and splits and cash dividends by ex-date, with the price factor that "
        "removes each jump, in the lake table `corporate_actions`.",
        kinds={"parquet"},
        partitions_def=session_partitions(project),
        backfill_policy=BackfillPolicy.single_run(),
        check_specs=bars_check_specs(),
        group_name="market",
        pool="lake_writer",
    )
    def bars(context: AssetExecutionContext, qpipe: ProjectResource):
        proj = qpipe.get()

        def log_progress(stage: str, done: int, total: int) -> None:
            if done == total:
                context.log.info(f"{stage}: done ({total})")

        with listening(log_progress):
            batch = fetch_sessions(proj, context.partition_keys)
        for note in batch.notes():  # sessions that will not be written, by name
            context.log.warning(note)
        yield Output(MarketData(batch.bars, batch.actions), metadata=batch.metadata())
        for outcome in batch.checks:
            yield to_check_result(outcome)

    return bars

"""The factors job and the sensor that runs it after every successful sync, over the same
sessions."""

from typing import TYPE_CHECKING

from dagster import (
    AssetsDefinition,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    define_asset_job,
    run_status_sensor,
)

from qpipe.defs.market.schedules import RANGE_END_TAG, RANGE_START_TAG

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def build_factors_job(factor_assets: AssetsDefinition) -> "UnresolvedAssetJobDefinition":
    """Materialise ``factors`` (with its checks) for a session range."""
    return define_asset_job(
        "compute_factors",
        selection=[factor_assets.key],
        description="Compute the configured factors for a range of sessions into the lake.",
    )


def build_factors_after_sync(
    sync_job: "UnresolvedAssetJobDefinition", factors_job: "UnresolvedAssetJobDefinition"
) -> SensorDefinition:
    """When a sync run succeeds, compute the factors of the sessions it synced."""

    @run_status_sensor(
        name="factors_after_sync",
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[sync_job],
        request_job=factors_job,
        default_status=DefaultSensorStatus.STOPPED,
        description="Compute factors for the sessions of every successful sync run.",
    )
    def factors_after_sync(context: RunStatusSensorContext):
        tags = context.dagster_run.tags
        if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
            first, last = tags[RANGE_START_TAG], tags[RANGE_END_TAG]
        elif "dagster/partition" in tags:
            first = last = tags["dagster/partition"]
        else:
            return SkipReason("the sync run names no sessions")
        return RunRequest(
            run_key=f"factors-{context.dagster_run.run_id}",
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
        )

    return factors_after_sync

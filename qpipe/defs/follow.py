"""Run a job over the same sessions after another job's run succeeds (sync -> factors ->
signals), from the session-range tags of the finished run."""

from typing import TYPE_CHECKING

from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunStatusSensorContext,
    SensorDefinition,
    SkipReason,
    run_status_sensor,
)

from qpipe.defs.market.schedules import RANGE_END_TAG, RANGE_START_TAG

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def follow_sensor(
    name: str,
    upstream: "UnresolvedAssetJobDefinition",
    downstream: "UnresolvedAssetJobDefinition",
    description: str,
) -> SensorDefinition:
    """A run-status sensor: when ``upstream`` succeeds, request ``downstream`` for the
    sessions that run covered (its range tags, or its single partition)."""

    @run_status_sensor(
        name=name,
        run_status=DagsterRunStatus.SUCCESS,
        monitored_jobs=[upstream],
        request_job=downstream,
        default_status=DefaultSensorStatus.STOPPED,
        description=description,
    )
    def follow(context: RunStatusSensorContext):
        tags = context.dagster_run.tags
        if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
            first, last = tags[RANGE_START_TAG], tags[RANGE_END_TAG]
        elif "dagster/partition" in tags:
            first = last = tags["dagster/partition"]
        else:
            return SkipReason(f"the {upstream.name} run names no sessions")
        return RunRequest(
            run_key=f"{downstream.name}-{context.dagster_run.run_id}",
            tags={RANGE_START_TAG: first, RANGE_END_TAG: last},
        )

    return follow

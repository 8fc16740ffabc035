"""The sync job and the nightly, calendar-aware schedule that runs it after the close."""

import datetime as dt
from typing import TYPE_CHECKING

import pandas as pd
from dagster import (
    AssetsDefinition,
    AssetSelection,
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
)

from qpipe.data.sync import plan_sync
from qpipe.defs.resources import ProjectResource
from qpipe.project import Project

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_range_tags(first: dt.date, last: dt.date) -> dict[str, str]:
    """Run tags that make one run cover the sessions ``[first, last]`` (single-run backfill)."""
    return {RANGE_START_TAG: first.isoformat(), RANGE_END_TAG: last.isoformat()}


def build_sync_job(market_assets: AssetsDefinition) -> "UnresolvedAssetJobDefinition":
    """Materialise ``bars`` (with corporate actions and checks) for a session range."""
    return define_asset_job(
        "sync_market_data",
        selection=AssetSelection.assets(market_assets),
        description="Fetch bars and corporate actions from the data source into the lake.",
    )


def sync_cron(project: Project) -> str:
    """A weekday cron in the exchange's time zone, ``sync_delay`` after the regular close."""
    cal = project.calendar
    recent = cal.sessions(end=cal.latest_closed_session(pd.Timestamp.now(tz="UTC")))[-20:]
    close = max(cal.session_close(d).tz_convert(cal.tz).time() for d in recent)
    at = dt.datetime.combine(dt.date(2000, 1, 1), close) + project.sync_delay
    return f"{at.minute} {at.hour} * * 1-5"


def build_nightly_sync(project: Project, job: "UnresolvedAssetJobDefinition") -> ScheduleDefinition:
    """After each session's close, sync every session the lake lacks in one run (missing, or
    short of the source's bars where the source can say; never a session after the latest
    closed one).

    Skips holidays and weekends-with-no-session, and evaluations where the lake is already
    complete; the run key is the planned range, so a tick is never run twice.
    """

    @schedule(
        name="nightly_sync",
        cron_schedule=sync_cron(project),
        execution_timezone=project.calendar.tz,
        job=job,
        default_status=DefaultScheduleStatus.STOPPED,
        description="Sync the sessions missing from the lake after the close.",
    )
    def nightly_sync(context: ScheduleEvaluationContext, qpipe: ProjectResource):
        proj = qpipe.get()
        now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        today = pd.Timestamp(now).tz_convert(proj.calendar.tz).date()
        if not proj.calendar.is_session(today):
            return SkipReason(f"{today} is not an {proj.calendar.exchange} session")
        plan = plan_sync(proj, now=now)
        notes = plan.notes()  # short, unavailable sessions and future rows, by name
        for note in notes:
            context.log.info(note)
        if not plan:
            return SkipReason("; ".join(["the lake already holds every closed session", *notes]))
        return RunRequest(
            run_key=f"sync-{plan.first}-{plan.last}",
            tags=partition_range_tags(plan.first, plan.last),
        )

    return nightly_sync

"""The market-close schedule: every tick on weekdays, a run when a session's rebalance time
(``live.minutes_before_close`` before its close, early closes included) falls in the tick;
never on holidays; at most one run per session."""

import datetime as dt

from dagster import (
    DefaultScheduleStatus,
    JobDefinition,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    SkipReason,
    schedule,
)

from qpipe.defs.resources import ProjectResource
from qpipe.live.timing import TICK_MINUTES, due_session
from qpipe.project import Project


def run_mode(project: Project) -> str:
    """dry_run unless ``live.dry_run`` is off: then paper on the paper broker, else execute."""
    live = project.settings.live
    if live.dry_run:
        return "dry_run"
    return "paper" if live.broker == "paper" else "execute"


def build_market_close(project: Project, job: JobDefinition) -> ScheduleDefinition:
    @schedule(
        name="market_close",
        cron_schedule=f"*/{TICK_MINUTES} * * * 1-5",
        execution_timezone="UTC",
        job=job,
        default_status=DefaultScheduleStatus.STOPPED,
        description="The live rebalance a few minutes before each session's close.",
    )
    def market_close(context: ScheduleEvaluationContext, qpipe: ProjectResource):
        proj = qpipe.get()
        now = context.scheduled_execution_time or dt.datetime.now(dt.UTC)
        session = due_session(proj.calendar, now, proj.settings.live.minutes_before_close)
        if session is None:
            return SkipReason("not a session's rebalance time")
        config = {"mode": run_mode(proj), "session": session.isoformat()}
        return RunRequest(
            run_key=f"close-{session}",
            run_config={"ops": {"rebalance_strategies": {"config": config}}},
        )

    return market_close

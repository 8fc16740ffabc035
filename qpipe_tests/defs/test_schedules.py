import pandas as pd
from dagster import RunRequest, build_schedule_context

from qpipe.defs.build import build_definitions
from qpipe.defs.market.schedules import RANGE_END_TAG, RANGE_START_TAG, sync_cron
from qpipe.defs.resources import ProjectResource


def evaluate(project, config, when: str):
    defs = build_definitions(project, str(config))
    sched = defs.resolve_schedule_def("nightly_sync")
    resource = ProjectResource(config_path=str(config), data_dir=str(project.root))
    ctx = build_schedule_context(
        scheduled_execution_time=pd.Timestamp(when, tz="America/New_York").to_pydatetime(),
        resources={"qpipe": resource},
    )
    return sched.evaluate_tick(ctx), defs


def single(result):
    assert result.skip_message is None, result.skip_message
    (req,) = result.run_requests
    assert isinstance(req, RunRequest)
    return req


def test_cron_is_after_the_new_york_close(small_project):
    assert sync_cron(small_project) == "0 17 * * 1-5"  # 16:00 close + 60 minutes


def test_friday_evening_syncs_through_friday(small_project, small_config):
    result, defs = evaluate(small_project, small_config, "2024-03-01 17:00")
    req = single(result)
    assert req.tags[RANGE_START_TAG] == "2024-01-02"
    assert req.tags[RANGE_END_TAG] == "2024-03-01"
    # The requested partition exists at that moment.
    parts = defs.resolve_job_def("sync_market_data").partitions_def
    now = pd.Timestamp("2024-03-01 17:00", tz="America/New_York").to_pydatetime()
    assert "2024-03-01" in parts.get_partition_keys(current_time=now)


def test_day_before_a_holiday_syncs_that_day(small_project, small_config):
    result, _ = evaluate(small_project, small_config, "2024-03-28 17:00")  # before Good Friday
    assert single(result).tags[RANGE_END_TAG] == "2024-03-28"


def test_no_run_on_a_holiday(small_project, small_config):
    result, _ = evaluate(small_project, small_config, "2024-03-29 17:00")  # Good Friday
    assert not result.run_requests
    assert "2024-03-29 is not an XNYS session" in result.skip_message


def test_only_missing_sessions_are_requested(small_project, small_config):
    from qpipe.data.sync import fetch_sessions

    sessions = small_project.calendar.sessions("2024-01-02", "2024-02-29")
    batch = fetch_sessions(small_project, sessions)
    small_project.lake.write("bars", batch.bars, sessions)
    result, _ = evaluate(small_project, small_config, "2024-03-01 17:00")
    req = single(result)
    assert (req.tags[RANGE_START_TAG], req.tags[RANGE_END_TAG]) == ("2024-03-01", "2024-03-01")
    small_project.lake.write(
        "bars", fetch_sessions(small_project, ["2024-03-01"]).bars, ["2024-03-01"]
    )
    result, _ = evaluate(small_project, small_config, "2024-03-01 17:00")
    assert not result.run_requests and "already holds" in result.skip_message

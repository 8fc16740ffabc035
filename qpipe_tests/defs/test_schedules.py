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


def test_a_gap_is_requested_again_once_the_source_has_it(tmp_path):
    """A files source missing 2024-01-04 entirely: the sync leaves it out of the lake, the
    tick names it without requesting it; once the file has it, the tick requests it."""
    from qpipe.data.schema import MarketData
    from qpipe.data.sync import fetch_sessions, write_market_data
    from qpipe.project import Project
    from qpipe_tests.conftest import write_config

    columns = ["date", "symbol", "open", "high", "low", "close", "volume"]
    days = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"]
    complete = [(d, s, 10.0, 10.5, 9.5, 10.2, 1000.0) for d in days for s in ("A", "B")]
    prices = tmp_path / "prices.csv"
    pd.DataFrame([r for r in complete if r[0] != "2024-01-04"], columns=columns).to_csv(
        prices, index=False
    )
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "calendar": {"start": days[0], "end": days[-1]},
            "data": {"source": "files", "files": {"path": str(prices)}},
        },
    )
    project = Project.load(cfg, tmp_path / "data")
    batch = fetch_sessions(project, days)
    write_market_data(project.lake, MarketData(batch.bars, batch.actions), days)
    assert batch.empty == [pd.Timestamp("2024-01-04").date()]
    result, _ = evaluate(project, cfg, "2024-01-05 17:00")
    assert not result.run_requests
    assert "already holds" in result.skip_message and "2024-01-04" in result.skip_message

    pd.DataFrame(complete, columns=columns).to_csv(prices, index=False)
    req = single(evaluate(Project.load(cfg, tmp_path / "data"), cfg, "2024-01-05 17:00")[0])
    assert (req.tags[RANGE_START_TAG], req.tags[RANGE_END_TAG]) == ("2024-01-04", "2024-01-04")

"""Planning a sync from the lake's contents, and bad input never reaching the lake."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import DagsterInstance

from qpipe.cli import failure_message
from qpipe.data.sync import default_end, fetch_sessions, plan_sync
from qpipe.defs.build import build_definitions
from qpipe.defs.market.schedules import partition_range_tags
from qpipe.errors import DataValidationError
from qpipe.project import Project
from qpipe_tests.conftest import write_config

D = dt.date
NY = "America/New_York"


def test_plan_covers_history_up_to_the_latest_closed_session(small_project):
    now = pd.Timestamp("2024-03-01 18:00", tz=NY)
    plan = plan_sync(small_project, now=now)
    assert plan.first == D(2024, 1, 2) and plan.last == D(2024, 3, 1)
    assert plan.missing == len(plan.sessions) == 42
    assert default_end(small_project, pd.Timestamp("2024-03-01 16:30", tz=NY)) == D(2024, 2, 29)


def test_plan_spans_only_the_missing_sessions(small_project):
    lake = small_project.lake
    sessions = small_project.calendar.sessions("2024-01-02", "2024-01-31")
    lake.write("bars", fetch_sessions(small_project, sessions).bars, sessions)
    plan = plan_sync(small_project, end="2024-02-09")
    assert (plan.first, plan.last) == (D(2024, 2, 1), D(2024, 2, 9))
    assert not plan_sync(small_project, end="2024-01-31")
    # A hole in the middle is found; the span runs from the first to the last missing session.
    hole = small_project.calendar.sessions("2024-02-12", "2024-02-16")
    lake.write("bars", fetch_sessions(small_project, hole).bars, hole)
    plan = plan_sync(small_project, end="2024-02-16")
    assert (plan.first, plan.last, plan.missing) == (D(2024, 2, 1), D(2024, 2, 9), 7)
    refresh = plan_sync(small_project, "2024-01-02", "2024-01-05", refresh=True)
    assert refresh.sessions == small_project.calendar.sessions("2024-01-02", "2024-01-05")


def test_fetch_refuses_days_that_are_not_sessions(small_project):
    with pytest.raises(ValueError, match="not XNYS sessions: 2024-03-29"):
        fetch_sessions(small_project, ["2024-03-28", "2024-03-29"])


def test_fetch_keeps_the_universe(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "universe": {"kinds": ["etf"]},
            "data": {"synthetic": {"n_stocks": 10, "n_etfs": 3, "start": "2024-01-02"}},
        },
    )
    project = Project.load(cfg, tmp_path / "data")
    bars = fetch_sessions(project, ["2024-01-02"]).bars
    assert set(bars["symbol"]) == set(project.instruments["symbol"])
    assert len(bars) == 3


# --- bad input from the user's files never reaches the lake ---------------------------------


def write_prices(path, rows):
    pd.DataFrame(rows, columns=["date", "symbol", "open", "high", "low", "close", "volume"]).to_csv(
        path, index=False
    )


GOOD_ROWS = [
    ("2024-01-02", "AAA", 10.0, 10.5, 9.8, 10.2, 1000),
    ("2024-01-02", "BBB", 20.0, 20.4, 19.9, 20.1, 500),
    ("2024-01-03", "AAA", 10.2, 10.4, 10.0, 10.1, 900),
    ("2024-01-03", "BBB", 20.1, 20.2, 19.5, 19.7, 800),
    ("2024-01-04", "AAA", 10.1, 10.3, 9.9, 10.0, 700),
    ("2024-01-04", "BBB", 19.7, 19.9, 19.4, 19.8, 650),
]


@pytest.fixture
def files_project(tmp_path):
    prices = tmp_path / "prices.csv"
    write_prices(prices, GOOD_ROWS)
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "calendar": {"start": "2024-01-02", "end": "2024-01-04"},
            "data": {"source": "files", "files": {"path": "prices.csv"}},
        },
    )
    return cfg, prices


def run_sync(cfg, root, first="2024-01-02", last="2024-01-04"):
    project = Project.load(cfg, root)
    job = build_definitions(project, str(cfg)).resolve_job_def("sync_market_data")
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(
            instance=instance,
            tags=partition_range_tags(D.fromisoformat(first), D.fromisoformat(last)),
            raise_on_error=False,
        )
    return project, result


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (("2024-01-03", "AAA", 10.2, 9.0, 10.0, 10.1, 900), "line 4"),  # high < low
        (("2024-01-03", "AAA", 10.2, 10.4, 10.0, -1.0, 900), "line 4"),  # negative close
        (("2024-01-03", "AAA", 10.2, 10.4, 10.0, "abc", 900), "non-numeric value 'abc'"),
        (("2024-01-06", "AAA", 10.2, 10.4, 10.0, 10.1, 900), "not an XNYS session"),
        (("2024-01-02", "AAA", 10.2, 10.4, 10.0, 10.1, 900), "duplicate"),
    ],
)
def test_bad_rows_stop_the_run_and_leave_the_lake_intact(files_project, tmp_path, row, message):
    cfg, prices = files_project
    project, good = run_sync(cfg, tmp_path / "data")
    assert good.success
    before = project.lake.read("bars")
    assert len(before) == 6

    rows = list(GOOD_ROWS)
    rows[2] = row
    write_prices(prices, rows)
    _, bad = run_sync(cfg, tmp_path / "data")
    assert not bad.success
    text = failure_message(bad)
    assert "prices.csv" in text and message in text
    pd.testing.assert_frame_equal(project.lake.read("bars"), before)


def test_unreadable_file_stops_the_run(files_project, tmp_path):
    cfg, prices = files_project
    prices.write_bytes(b"\x00\x01garbage")
    project, result = run_sync(cfg, tmp_path / "data")
    assert not result.success
    assert project.lake.dates("bars") == []


def test_data_failing_error_checks_raises(small_project, monkeypatch):
    from qpipe.data.synthetic import SyntheticSource

    real = SyntheticSource.fetch

    def duplicated(self, start, end, symbols=None):
        data = real(self, start, end, symbols)
        bars = pd.concat([data.bars, data.bars.iloc[[0]]], ignore_index=True)
        return type(data)(bars, data.actions)

    monkeypatch.setattr(SyntheticSource, "fetch", duplicated)
    with pytest.raises(DataValidationError, match=r"unique_keys: 1 duplicate"):
        fetch_sessions(small_project, ["2024-01-02", "2024-01-03"])

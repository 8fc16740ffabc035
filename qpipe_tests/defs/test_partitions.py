import datetime as dt

import pandas as pd
import pytest
from dagster import PartitionKeyRange

from qpipe.defs.partitions import session_partitions
from qpipe.project import Project
from qpipe.settings import parse_settings

D = dt.date


def project(tmp_path, **calendar) -> Project:
    raw = {
        "calendar": {"start": "2024-01-02", **calendar},
        "data": {"synthetic": {"n_stocks": 5, "n_etfs": 1, "start": "2024-01-02"}},
    }
    return Project(parse_settings(raw), tmp_path)


def keys_at(partitions, when: str, tz: str = "America/New_York") -> list[str]:
    return partitions.get_partition_keys(current_time=pd.Timestamp(when, tz=tz).to_pydatetime())


def test_partition_keys_are_exactly_the_sessions(tmp_path):
    p = project(tmp_path)
    keys = keys_at(session_partitions(p), "2024-12-31 18:00")
    assert keys == [s.isoformat() for s in p.calendar.sessions("2024-01-02", "2024-12-31")]
    assert "2024-07-04" not in keys and "2024-11-28" not in keys


@pytest.mark.parametrize(
    ("when", "latest"),
    [
        ("2024-11-22 18:00", "2024-11-22"),  # a Friday evening: Friday is there the same day
        ("2024-11-27 18:00", "2024-11-27"),  # the day before Thanksgiving
        ("2024-07-03 18:00", "2024-07-03"),  # the (half) day before Independence Day
    ],
)
def test_todays_partition_exists_after_the_close(tmp_path, when, latest):
    p = project(tmp_path)
    parts = session_partitions(p)
    keys = keys_at(parts, when)
    assert keys[-1] == latest
    # The calendar agrees on which session is ready at that moment.
    now = pd.Timestamp(when, tz="America/New_York")
    assert p.calendar.latest_closed_session(now, p.sync_delay).isoformat() == latest


def test_on_a_holiday_dagster_runs_ahead_but_the_calendar_does_not(tmp_path):
    # Known Dagster behaviour (end_offset with exclusions): on Thanksgiving the next session's
    # partition already exists. qpipe decides readiness with the calendar instead.
    p = project(tmp_path)
    keys = keys_at(session_partitions(p), "2024-11-28 18:00")
    assert "2024-11-28" not in keys
    now = pd.Timestamp("2024-11-28 18:00", tz="America/New_York")
    assert p.calendar.latest_closed_session(now, p.sync_delay) == D(2024, 11, 27)


def test_bounded_history_ends_at_its_last_session(tmp_path):
    p = project(tmp_path, end="2024-03-28")
    keys = keys_at(session_partitions(p), "2026-01-05 12:00")
    assert keys[0] == "2024-01-02" and keys[-1] == "2024-03-28"
    assert "2024-03-29" not in keys  # Good Friday


def test_shanghai_partitions(tmp_path):
    raw = {
        "calendar": {"exchange": "XSHG", "start": "2024-01-02"},
        "data": {"synthetic": {"n_stocks": 5, "n_etfs": 1, "start": "2024-01-02"}},
    }
    p = Project(parse_settings(raw), tmp_path)
    keys = keys_at(session_partitions(p), "2024-03-01 18:00", tz="Asia/Shanghai")
    assert keys == [s.isoformat() for s in p.calendar.sessions("2024-01-02", "2024-03-01")]
    assert "2024-02-12" not in keys  # Spring Festival


def test_bounded_history_ending_on_a_friday_includes_it(tmp_path):
    # The sample ends on Friday 2013-03-01: its window runs to Monday, past the day after.
    p = project(tmp_path, start="2013-02-25", end="2013-03-01")
    parts = session_partitions(p)
    keys = keys_at(parts, "2026-01-05 12:00")
    assert keys == ["2013-02-25", "2013-02-26", "2013-02-27", "2013-02-28", "2013-03-01"]
    assert parts.get_partition_keys_in_range(PartitionKeyRange("2013-02-25", "2013-03-01")) == keys

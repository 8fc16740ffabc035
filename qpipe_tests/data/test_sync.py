"""Planning a sync from the lake's contents, and bad input never reaching the lake."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from dagster import DagsterInstance
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.cli import failure_message
from qpipe.data.schema import MarketData
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


# --- gaps are retried, future sessions never written -----------------------------------------

# Five XNYS sessions (2024-01-06/07 a weekend) of two symbols: the complete file.
WEEK = ["2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05", "2024-01-08"]
COMPLETE = [
    (day, sym, base + i, base + i + 0.5, base + i - 0.5, base + i + 0.2, 1000 + 10 * i)
    for i, day in enumerate(WEEK)
    for sym, base in (("AAA", 10.0), ("BBB", 20.0))
]


def week_project(tmp_path, rows, end="2024-01-08"):
    """A files project over ``WEEK`` reading ``rows`` from prices.csv."""
    write_prices(tmp_path / "prices.csv", rows)
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "calendar": {"start": WEEK[0], "end": end},
            "data": {"source": "files", "files": {"path": "prices.csv"}},
        },
    )
    return cfg


def bars_metadata(result):
    """The metadata of the run's bars materialization (it covers the whole run)."""
    (mat,) = {m.asset_key: m for m in result.get_asset_materialization_events()}.values()
    return mat.materialization.metadata


def expected_bars(rows):
    """The lake's bars for ``rows`` by plain pandas: sorted by (date, symbol)."""
    frame = pd.DataFrame(rows, columns=["date", "symbol", "open", "high", "low", "close", "volume"])
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    frame["volume"] = frame["volume"].astype(float)
    return frame.sort_values(["date", "symbol"]).reset_index(drop=True)


EVENING = pd.Timestamp("2024-01-08 18:00", tz=NY)


def test_a_gap_in_the_file_is_filled_when_the_complete_file_is_synced(tmp_path):
    # 2024-01-04 is missing from every row; BBB is missing on 2024-01-05 (a short session).
    gappy = [r for r in COMPLETE if r[0] != "2024-01-04" and r[:2] != ("2024-01-05", "BBB")]
    cfg = week_project(tmp_path, gappy)
    project = Project.load(cfg, tmp_path / "data")
    plan = plan_sync(project, now=EVENING)
    assert (plan.first, plan.last, plan.missing) == (D(2024, 1, 2), D(2024, 1, 8), 4)
    assert plan.unavailable == [D(2024, 1, 4)] and plan.short == {}
    assert any("2024-01-04" in note for note in plan.notes())

    project, result = run_sync(cfg, tmp_path / "data", WEEK[0], WEEK[-1])
    assert result.success
    # The session without bars is not written: it stays missing, named in the metadata.
    assert project.lake.dates("bars") == [D.fromisoformat(d) for d in WEEK if d != "2024-01-04"]
    meta = bars_metadata(result)
    assert meta["sessions_without_bars"].value == 1
    assert "2024-01-04" in meta["sync_notes"].value
    assert meta["partitions"].value == 4
    pd.testing.assert_frame_equal(project.lake.read("bars"), expected_bars(gappy))
    # The same file again: nothing to sync, the gap still named.
    again = plan_sync(Project.load(cfg, tmp_path / "data"), now=EVENING)
    assert not again and again.unavailable == [D(2024, 1, 4)]

    # The complete file fills the missing session and the short one.
    write_prices(tmp_path / "prices.csv", COMPLETE)
    fixed = plan_sync(Project.load(cfg, tmp_path / "data"), now=EVENING)
    assert (fixed.first, fixed.last, fixed.missing) == (D(2024, 1, 4), D(2024, 1, 5), 2)
    assert fixed.short == {D(2024, 1, 5): (1, 2)} and fixed.unavailable == []
    assert "2024-01-05 (1 of 2 bars)" in fixed.notes()[0]
    project, result = run_sync(cfg, tmp_path / "data", "2024-01-04", "2024-01-05")
    assert result.success
    pd.testing.assert_frame_equal(project.lake.read("bars"), expected_bars(COMPLETE))
    assert not plan_sync(Project.load(cfg, tmp_path / "data"), now=EVENING)


def test_a_halt_across_the_last_session_is_retried(tmp_path):
    """BBB halted on the last session of the file, then its bar arrives."""
    cfg = week_project(tmp_path, [r for r in COMPLETE if r[:2] != ("2024-01-08", "BBB")])
    project, result = run_sync(cfg, tmp_path / "data", WEEK[0], WEEK[-1])
    assert result.success and project.lake.dates("bars")[-1] == D(2024, 1, 8)
    assert not plan_sync(Project.load(cfg, tmp_path / "data"), now=EVENING)
    write_prices(tmp_path / "prices.csv", COMPLETE)
    plan = plan_sync(Project.load(cfg, tmp_path / "data"), now=EVENING)
    assert plan.sessions == [D(2024, 1, 8)] and plan.short == {D(2024, 1, 8): (1, 2)}


def test_sessions_after_the_latest_closed_one_are_never_planned(tmp_path):
    cfg = week_project(tmp_path, COMPLETE)
    project = Project.load(cfg, tmp_path / "data")
    thursday = pd.Timestamp("2024-01-04 18:00", tz=NY)  # 2024-01-05 and 01-08 are the future
    for end in (None, "2024-01-08"):
        plan = plan_sync(project, end=end, now=thursday)
        assert (plan.first, plan.last) == (D(2024, 1, 2), D(2024, 1, 4)), end
        assert plan.future_rows == 4 and plan.latest_closed == D(2024, 1, 4)
        assert "4 rows dated after 2024-01-04" in plan.notes()[-1]
    # Before Thursday's close, Thursday is the future too.
    assert plan_sync(project, now=pd.Timestamp("2024-01-04 15:00", tz=NY)).last == D(2024, 1, 3)
    assert not plan_sync(project, start="2024-01-05", now=thursday)


def test_fetch_never_returns_future_sessions(tmp_path):
    from qpipe.data.sync import write_market_data

    cfg = week_project(tmp_path, COMPLETE)
    project = Project.load(cfg, tmp_path / "data")
    thursday = pd.Timestamp("2024-01-04 18:00", tz=NY)
    batch = fetch_sessions(project, WEEK, now=thursday)
    assert batch.sessions == [D(2024, 1, 2), D(2024, 1, 3), D(2024, 1, 4)]
    assert batch.future == [D(2024, 1, 5), D(2024, 1, 8)] and batch.future_rows == 4
    assert batch.bars["date"].max() == pd.Timestamp("2024-01-04")
    assert "2024-01-05, 2024-01-08" in batch.notes()[0]
    summary = write_market_data(project.lake, MarketData(batch.bars, batch.actions), WEEK)
    assert summary.partitions == 3
    assert project.lake.dates("bars") == batch.sessions
    only_future = fetch_sessions(project, ["2024-01-08"], now=thursday)
    assert only_future.sessions == [] and only_future.bars.empty
    assert only_future.future == [D(2024, 1, 8)] and only_future.future_rows == 2


def test_a_session_without_bars_keeps_what_the_lake_has(tmp_path):
    from qpipe.data.lake import Lake
    from qpipe.data.schema import ACTION_COLUMNS, empty_frame
    from qpipe.data.sync import write_market_data

    lake = Lake(tmp_path / "lake")
    full = expected_bars(COMPLETE)
    write_market_data(lake, MarketData(full, empty_frame(ACTION_COLUMNS)), WEEK)
    assert lake.dates("bars") == [D.fromisoformat(d) for d in WEEK]
    # A refresh whose source returns nothing for 2024-01-04 does not empty that partition.
    partial = full[full["date"] != "2024-01-04"].reset_index(drop=True)
    partial = partial.assign(close=partial["close"] + 1.0)
    action = pd.DataFrame(
        {"date": [pd.Timestamp("2024-01-04")], "symbol": ["AAA"], "split_ratio": [2.0]}
        | {"dividend": [0.0], "factor": [0.5]}
    )
    summary = write_market_data(lake, MarketData(partial, action), WEEK)
    assert summary.partitions == 4 and summary.rows == 8
    got = lake.read("bars")
    kept = got["date"] == "2024-01-04"
    pd.testing.assert_frame_equal(
        got[kept].reset_index(drop=True), full[full["date"] == "2024-01-04"].reset_index(drop=True)
    )
    assert (got.loc[~kept, "close"].to_numpy() == partial["close"].to_numpy()).all()
    # An action on a session without bars is still stored.
    assert lake.read("corporate_actions")["split_ratio"].tolist() == [2.0]


def test_synthetic_plan_does_not_read_partition_footers(small_project, monkeypatch):
    """The synthetic source is complete: the plan asks the lake for its partition list only."""
    from qpipe.data.lake import Lake

    sessions = small_project.calendar.sessions("2024-01-02", "2024-01-31")
    small_project.lake.write("bars", fetch_sessions(small_project, sessions).bars, sessions)

    def no_footers(*args, **kwargs):
        raise AssertionError("row_counts called")

    monkeypatch.setattr(Lake, "row_counts", no_footers)
    plan = plan_sync(small_project, now=pd.Timestamp("2024-02-02 18:00", tz=NY))
    assert (plan.first, plan.last) == (D(2024, 2, 1), D(2024, 2, 2))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.none(), st.integers(0, 3)), st.integers(0, 3)),
        min_size=1,
        max_size=15,
    )
)
def test_a_gap_never_outlives_the_next_sync(cells):
    """Per session: the lake's bars (None: no partition) and the source's. The plan covers
    every session the lake lacks (no partition while the source has bars, or fewer bars than
    the source); syncing it as ``write_market_data`` does (sessions with bars replaced, the
    others left as they are) leaves nothing to plan."""
    from qpipe.data.sync import compare_bars, plan_missing

    days = [D(2024, 1, 1) + dt.timedelta(days=i) for i in range(len(cells))]
    held = {d: h for d, (h, _) in zip(days, cells, strict=True) if h is not None}
    offered = {d: o for d, (_, o) in zip(days, cells, strict=True) if o}

    def plan_for(held):
        short, unavailable = compare_bars(days, held, offered)
        return plan_missing(days, (set(held) - set(short)) | set(unavailable))

    lacking = []
    for d, (h, o) in zip(days, cells, strict=True):
        if (h is None and o > 0) or (h is not None and h < o):
            lacking.append(d)
    plan = plan_for(held)
    assert plan.missing == len(lacking)
    assert set(lacking) <= set(plan.sessions)
    assert bool(plan) == bool(lacking)
    synced = dict(held)
    for d in plan.sessions:
        if offered.get(d, 0):
            synced[d] = offered[d]
    assert not plan_for(synced)

"""The market multi-asset through Dagster: single-run ranges, checks, idempotency, failures."""

import pandas as pd
import pytest
from dagster import DagsterInstance, materialize

from qpipe.defs.build import build_definitions
from qpipe.defs.market.assets import build_market_assets
from qpipe.defs.market.schedules import partition_range_tags


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def run_range(project, config, instance, first, last, selection=None):
    defs = build_definitions(project, str(config))
    job = defs.resolve_job_def("sync_market_data")
    return job.execute_in_process(
        instance=instance,
        tags=partition_range_tags(first, last),
        raise_on_error=False,
        asset_selection=selection,
    )


def test_one_run_materialises_a_range(small_project, small_config, instance):
    result = run_range(
        small_project,
        small_config,
        instance,
        pd.Timestamp("2024-01-02").date(),
        pd.Timestamp("2024-03-28").date(),
    )
    assert result.success
    sessions = small_project.calendar.sessions("2024-01-02", "2024-03-28")
    lake = small_project.lake
    assert lake.dates("bars") == sessions
    assert lake.dates("corporate_actions") == sessions
    bars = lake.read("bars")
    assert set(bars["date"].dt.date) <= set(sessions)
    assert not bars.duplicated(["date", "symbol"]).any()
    # Metadata in the UI: rows, symbols, date range.
    mats = {
        m.asset_key.to_user_string(): m.materialization.metadata
        for m in result.get_asset_materialization_events()
    }
    assert mats["bars"]["rows"].value == len(bars)
    assert mats["bars"]["partitions"].value == len(sessions)
    assert mats["bars"]["first_date"].value == "2024-01-02"
    # Every check ran once for the whole range.
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert set(checks) == {
        "ohlc_sanity", "unique_keys", "universe_coverage", "stale_bars", "extreme_returns",
    }  # fmt: skip
    assert checks["ohlc_sanity"].passed and checks["unique_keys"].passed


def test_rerun_leaves_row_counts_unchanged(small_project, small_config, instance):
    first, last = pd.Timestamp("2024-02-01").date(), pd.Timestamp("2024-02-29").date()
    run_range(small_project, small_config, instance, first, last)
    before = small_project.lake.read("bars")
    again = run_range(small_project, small_config, instance, first, last)
    assert again.success
    pd.testing.assert_frame_equal(small_project.lake.read("bars"), before)


def test_materialize_one_partition_with_the_asset_api(small_project, small_config, instance):
    defs = build_definitions(small_project, str(small_config))
    market = build_market_assets(small_project)
    result = materialize(
        [market],
        partition_key="2024-03-01",
        instance=instance,
        resources=dict(defs.resources),
    )
    assert result.success
    assert small_project.lake.dates("bars") == [pd.Timestamp("2024-03-01").date()]


def test_a_failing_source_writes_nothing(small_project, small_config, instance, monkeypatch):
    first, last = pd.Timestamp("2024-01-02").date(), pd.Timestamp("2024-01-31").date()
    assert run_range(small_project, small_config, instance, first, last).success
    before = small_project.lake.read("bars")

    from qpipe.data.synthetic import SyntheticSource

    real_fetch = SyntheticSource.fetch

    def corrupt(self, start, end, symbols=None):
        data = real_fetch(self, start, end, symbols)
        data.bars.loc[data.bars.index[-1], "high"] = 0.01  # high below low
        return data

    monkeypatch.setattr(SyntheticSource, "fetch", corrupt)
    result = run_range(
        small_project, small_config, instance, first, pd.Timestamp("2024-02-29").date()
    )
    assert not result.success
    pd.testing.assert_frame_equal(small_project.lake.read("bars"), before)


def test_check_result_carries_every_offending_row():
    from qpipe.data.quality import check_extreme_returns
    from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, empty_frame
    from qpipe.defs.market.checks import to_check_result

    closes = [30.01, 10.0, 10.2, 4.0, 12.5]
    days = pd.bdate_range("2024-01-02", periods=5)
    bars = pd.DataFrame(
        [(d, "RRC", c, c, c, c, 1.0) for d, c in zip(days, closes, strict=True)],
        columns=list(BAR_COLUMNS),
    )
    outcome = check_extreme_returns(bars, empty_frame(ACTION_COLUMNS))
    result = to_check_result(outcome)
    assert result.metadata["summary"].value == outcome.description
    assert result.metadata["details"].value == [
        "2024-01-03 RRC -66.7% (close 30.01 -> 10; before/after 3.0010, like an unadjusted "
        "3-for-1 split)",
        "2024-01-05 RRC -60.8% (close 10.2 -> 4)",
        "2024-01-08 RRC +212.5% (close 4 -> 12.5)",
    ]
    assert result.metadata["failures"].value == 3

"""The factors asset through Dagster: look-back reads, checks, incremental == full backfill."""

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from dagster import DagsterInstance

from qpipe.defs.build import build_definitions
from qpipe.defs.market.schedules import partition_range_tags
from qpipe.project import Project
from qpipe_tests.conftest import write_config

D = dt.date.fromisoformat


@pytest.fixture
def factor_project(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "data": {"synthetic": {"seed": 5, "n_stocks": 12, "n_sectors": 2, "n_etfs": 2,
                                   "start": "2023-01-03"}},
            "factors": {
                "names": ["mom_12_1", "vol_20", "alpha001", "alpha101", "my_ratio"],
                "expressions": {"my_ratio": "rank(ts_mean(close, 20) / close)"},
            },
        },
    )  # fmt: skip
    project = Project.load(cfg, tmp_path / "data")
    return project, cfg


def run(project, cfg, job, first, last, instance, run_config=None):
    defs = build_definitions(project, str(cfg))
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=partition_range_tags(D(first), D(last)),
        raise_on_error=False, run_config=run_config,
    )  # fmt: skip


def test_factors_incremental_equals_full_backfill(factor_project, tmp_path):
    project, cfg = factor_project
    with DagsterInstance.ephemeral() as instance:
        assert run(project, cfg, "sync_market_data", "2023-01-03", "2024-03-28", instance).success
        full = run(project, cfg, "compute_factors", "2024-03-01", "2024-03-28", instance)
        assert full.success, full
        checks = {e.check_name: e.passed for e in full.get_asset_check_evaluations()}
        assert checks == {"no_lookahead": True, "nan_coverage": True}
        backfill = project.lake.read("factors", "2024-03-01", "2024-03-28")
        assert list(backfill.columns) == [
            "date", "symbol", "mom_12_1", "vol_20", "alpha001", "alpha101", "my_ratio",
        ]  # fmt: skip
        assert backfill["mom_12_1"].notna().any() and backfill["my_ratio"].notna().any()
        # The last sessions one by one give the same rows.
        for day in ("2024-03-26", "2024-03-27", "2024-03-28"):
            assert run(project, cfg, "compute_factors", day, day, instance).success
        again = project.lake.read("factors", "2024-03-01", "2024-03-28")
        pd.testing.assert_frame_equal(again, backfill)


def test_only_recomputes_some_columns_and_keeps_the_rest(factor_project):
    project, cfg = factor_project
    with DagsterInstance.ephemeral() as instance:
        assert run(project, cfg, "sync_market_data", "2024-01-02", "2024-03-28", instance).success
        assert run(project, cfg, "compute_factors", "2024-03-25", "2024-03-28", instance).success
        before = project.lake.read("factors")
        config = {"ops": {"factors": {"config": {"only": ["vol_20"]}}}}
        assert run(project, cfg, "compute_factors", "2024-03-25", "2024-03-28", instance,
                   config).success  # fmt: skip
        pd.testing.assert_frame_equal(project.lake.read("factors"), before)


def test_sensor_computes_factors_for_the_synced_sessions(factor_project):
    from dagster import DagsterEventType, RunRequest, build_run_status_sensor_context

    project, cfg = factor_project
    defs = build_definitions(project, str(cfg))
    sensor = defs.resolve_sensor_def("factors_after_sync")
    with DagsterInstance.ephemeral() as instance:
        result = run(project, cfg, "sync_market_data", "2024-03-25", "2024-03-28", instance)
        assert result.success
        success = next(e for e in result.all_events if e.event_type == DagsterEventType.RUN_SUCCESS)
        ctx = build_run_status_sensor_context(
            sensor_name="factors_after_sync",
            dagster_event=success,
            dagster_instance=instance,
            dagster_run=result.dagster_run,
        )
        request = sensor(ctx)
    assert isinstance(request, RunRequest)
    assert request.tags == partition_range_tags(D("2024-03-25"), D("2024-03-28"))


def test_factor_report_asset_saves_every_table(factor_project):
    from qpipe.analytics.factor_eda import forward_returns, information_coefficient
    from qpipe.analytics.factor_store import load_table
    from qpipe.backtest.inputs import bars_dataset, delisting_dates, total_return_index
    from qpipe.data.schema import MarketData

    project, cfg = factor_project
    with DagsterInstance.ephemeral() as instance:
        assert run(project, cfg, "sync_market_data", "2023-01-03", "2024-03-28", instance).success
        assert run(project, cfg, "compute_factors", "2023-01-03", "2024-03-28", instance).success
        defs = build_definitions(project, str(cfg))
        result = defs.resolve_job_def("factor_eda").execute_in_process(instance=instance)
        assert result.success
        (mat,) = result.get_asset_materialization_events()
        assert mat.materialization.metadata["factors"].value == 5
    summary = load_table(project.lake.root, "summary").set_index("factor")
    assert list(summary.index) == ["mom_12_1", "vol_20", "alpha001", "alpha101", "my_ratio"]
    corr = load_table(project.lake.root, "correlation").set_index("factor")
    assert corr.shape == (5, 5) and (corr.to_numpy().diagonal() == 1.0).all()
    # The stored rank IC is the core's on the lake's total-return prices.
    market = MarketData(project.lake.read("bars"), project.lake.read("corporate_actions"))
    delistings = delisting_dates(project.instruments)
    prices = total_return_index(bars_dataset(market), delistings).transpose("date", "symbol")
    frame = project.lake.read("factors", columns=["vol_20"])
    panel = (
        frame.pivot(index="date", columns="symbol", values="vol_20")
        .reindex(index=prices.indexes["date"], columns=prices.indexes["symbol"])
        .to_numpy()
    )
    ic = information_coefficient(panel, forward_returns(prices.values, 5))
    stored = load_table(project.lake.root, "ic")
    stored = stored[(stored["factor"] == "vol_20") & (stored["horizon"] == 5)]
    np.testing.assert_allclose(stored["rank_ic"].to_numpy(), ic, equal_nan=True)
    assert summary.loc["vol_20", "rank_ic_mean_5"] == pytest.approx(np.nanmean(ic))


def test_a_session_missing_from_the_lake_is_a_nan_inside_the_windows_spanning_it(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "data": {"synthetic": {"seed": 5, "n_stocks": 8, "n_sectors": 2, "n_etfs": 0,
                                   "start": "2024-01-02"}},
            "factors": {"names": ["reversal_1m", "mean_5"],
                        "expressions": {"mean_5": "ts_mean(close, 5)"}},
        },
    )  # fmt: skip
    project = Project.load(cfg, tmp_path / "data")
    gap = pd.Timestamp("2024-03-07")
    sessions = project.calendar.sessions_index("2024-01-02", "2024-04-30")
    g = sessions.get_loc(gap)
    with DagsterInstance.ephemeral() as instance:
        assert run(project, cfg, "sync_market_data", "2024-01-02", "2024-04-30", instance).success
        # The session is in the lake without bars (the source had none that day).
        empty = project.lake.read("bars", gap.date(), gap.date())
        project.lake.write("bars", empty.iloc[:0], [gap.date()])
        full = run(project, cfg, "compute_factors", "2024-02-01", "2024-04-30", instance)
        assert full.success, full
        checks = {e.check_name: e.passed for e in full.get_asset_check_evaluations()}
        assert checks == {"no_lookahead": True, "nan_coverage": True}
        backfill = project.lake.read("factors", "2024-02-01", "2024-04-30")
        # Sessions spanning the gap one by one (each reading its own look-back) agree.
        for i in (g + 1, g + 4, g + 21, g + 22):
            day = f"{sessions[i]:%Y-%m-%d}"
            assert run(project, cfg, "compute_factors", day, day, instance).success
        pd.testing.assert_frame_equal(project.lake.read("factors", "2024-02-01", "2024-04-30"),
                                      backfill)  # fmt: skip
    assert not (backfill["date"] == gap).any()  # no rows for a session without bars
    by_day = backfill.set_index("date")
    # Every 5-session window spanning the missing session is NaN, the next one is not;
    # reversal_1m on g + 21 starts on the missing session, on g + 22 it starts after it.
    for i in range(g + 1, g + 5):
        assert by_day.loc[sessions[i], "mean_5"].isna().all(), sessions[i]
    assert by_day.loc[sessions[g + 5], "mean_5"].notna().any()
    assert by_day.loc[sessions[g + 21], "reversal_1m"].isna().all()
    assert by_day.loc[sessions[g + 22], "reversal_1m"].notna().any()
    # The values are plain pandas windows on the calendar-reindexed closes, forward adjusted
    # by hand: divided by each action's factor from its ex-date on.
    bars = project.lake.read("bars")
    close = bars.pivot(index="date", columns="symbol", values="close").reindex(sessions)
    for action in project.lake.read("corporate_actions").itertuples():
        if action.symbol in close.columns:
            close.loc[close.index >= action.date, action.symbol] /= action.factor
    want = pd.DataFrame({
        "mean_5": close.rolling(5).mean().stack(),
        "reversal_1m": (-(close / close.shift(21) - 1)).stack(),
    })  # fmt: skip
    got = backfill.set_index(["date", "symbol"])
    want = want.reindex(got.index)
    for name in ("mean_5", "reversal_1m"):
        np.testing.assert_allclose(got[name], want[name], rtol=1e-9, equal_nan=True, err_msg=name)

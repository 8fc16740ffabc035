"""The signals assets through Dagster: one per strategy, look-back reads, the check,
incremental == full backfill, the sensor after the factors."""

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from dagster import AssetKey, DagsterInstance

from qpipe.defs.build import build_definitions
from qpipe.defs.market.schedules import partition_range_tags
from qpipe.project import Project
from qpipe_tests.conftest import write_config

D = dt.date.fromisoformat

STRATEGIES = {
    "value_mix": {
        "kind": "linear",
        "params": {
            "factors": {"reversal_1m": 1.0, "vol_20": -1.0},
            "top_k": 4,
            "hold_band": 2,
            "weighting": "inverse_vol",
            "vol_window": 20,
            "rebalance": "weekly",
        },
    },
    "rotate": {
        "kind": "rotation",
        "params": {
            "symbols": ["EMKT", "EFIN", "ETECH"],
            "defensive": "EBOND",
            "lookback": 20,
            "top_k": 2,
        },
    },
}


@pytest.fixture
def signal_project(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "data": {"synthetic": {"seed": 5, "n_stocks": 12, "n_sectors": 2, "n_etfs": 4,
                                   "start": "2024-01-02"}},
            "factors": {"names": ["reversal_1m", "vol_20"]},
            "strategies": STRATEGIES,
        },
    )  # fmt: skip
    return Project.load(cfg, tmp_path / "data"), cfg


def run(project, cfg, job, first, last, instance):
    defs = build_definitions(project, str(cfg))
    return defs.resolve_job_def(job).execute_in_process(
        instance=instance, tags=partition_range_tags(D(first), D(last)), raise_on_error=False
    )


def test_one_asset_per_strategy_incremental_equals_full(signal_project):
    project, cfg = signal_project
    defs = build_definitions(project, str(cfg))
    keys = {k.to_user_string() for a in defs.assets for k in a.keys}
    assert {"signals_value_mix", "signals_rotate"} <= keys
    with DagsterInstance.ephemeral() as instance:
        assert run(project, cfg, "sync_market_data", "2024-01-02", "2024-06-28", instance).success
        assert run(project, cfg, "compute_factors", "2024-01-02", "2024-06-28", instance).success
        full = run(project, cfg, "compute_signals", "2024-02-01", "2024-06-28", instance)
        assert full.success, full
        checks = {
            (e.asset_key.to_user_string(), e.check_name): e.passed
            for e in full.get_asset_check_evaluations()
        }
        assert checks == {
            ("signals_value_mix", "no_lookahead"): True,
            ("signals_rotate", "no_lookahead"): True,
        }
        mix = project.lake.read("signals_value_mix")
        assert list(mix.columns) == ["date", "symbol", "strategy", "score", "target_weight"]
        assert set(mix["strategy"]) == {"value_mix"}
        decided = mix.loc[mix["target_weight"].notna()]
        # Weekly: the last session of each week (Fridays here, and Thursday 2024-03-28).
        assert D("2024-03-28") in set(decided["date"].dt.date)
        assert decided["date"].dt.dayofweek.isin([3, 4]).all()
        per_day = decided.groupby("date")["target_weight"]
        np.testing.assert_allclose(per_day.sum(), 1.0)
        assert (per_day.apply(lambda w: (w > 0).sum()) == 4).all()
        rotate = project.lake.read("signals_rotate")
        assert set(rotate["symbol"]) == {"EMKT", "EFIN", "ETECH", "EBOND"}
        month_end = rotate.loc[rotate["target_weight"].notna()]
        assert set(month_end["date"].dt.date) == {
            D("2024-02-29"), D("2024-03-28"), D("2024-04-30"), D("2024-05-31"), D("2024-06-28")
        }  # fmt: skip

        # The last sessions one by one (each continuing from the lake's last rebalance) give
        # the same rows as the backfill.
        before = {t: project.lake.read(t) for t in ("signals_value_mix", "signals_rotate")}
        for day in ("2024-06-26", "2024-06-27", "2024-06-28"):
            assert run(project, cfg, "compute_signals", day, day, instance).success
        for table, frame in before.items():
            pd.testing.assert_frame_equal(project.lake.read(table), frame)


def test_signals_sensor_follows_the_factors(signal_project):
    from dagster import DagsterEventType, RunRequest, build_run_status_sensor_context

    project, cfg = signal_project
    defs = build_definitions(project, str(cfg))
    sensor = defs.resolve_sensor_def("signals_after_factors")
    with DagsterInstance.ephemeral() as instance:
        result = run(project, cfg, "sync_market_data", "2024-01-02", "2024-02-29", instance)
        assert result.success
        factors = run(project, cfg, "compute_factors", "2024-02-01", "2024-02-29", instance)
        event = next(e for e in factors.all_events if e.event_type == DagsterEventType.RUN_SUCCESS)
        context = build_run_status_sensor_context(
            sensor_name="signals_after_factors",
            dagster_instance=instance,
            dagster_run=factors.dagster_run,
            dagster_event=event,
        )
        request = sensor(context)
        assert isinstance(request, RunRequest)
        assert request.tags == partition_range_tags(D("2024-02-01"), D("2024-02-29"))


def test_no_strategies_no_signal_assets(small_project, small_config):
    defs = build_definitions(small_project, str(small_config))
    assert not any(a.key.to_user_string().startswith("signals_") for a in defs.assets)
    assert "compute_signals" not in {j.name for j in defs.jobs}


def test_backtest_assets_save_results_and_metrics(signal_project):
    from qpipe.backtest.store import load_output
    from qpipe.data.query import connect

    project, cfg = signal_project
    with DagsterInstance.ephemeral() as instance:
        assert run(project, cfg, "sync_market_data", "2024-01-02", "2024-04-30", instance).success
        assert run(project, cfg, "compute_factors", "2024-01-02", "2024-04-30", instance).success
        assert run(project, cfg, "compute_signals", "2024-02-01", "2024-04-30", instance).success
        defs = build_definitions(project, str(cfg))
        result = defs.resolve_job_def("run_backtests").execute_in_process(instance=instance)
        assert result.success
        metadata = {
            m.asset_key.to_user_string(): m.materialization.metadata
            for m in result.get_asset_materialization_events()
        }
    assert set(metadata) == {
        "backtest_value_mix",
        "backtest_rotate",
        "report_value_mix",
        "report_rotate",
    }
    assert metadata["backtest_rotate"]["first_session"].value == "2024-02-01"
    sheet = Path(metadata["report_rotate"]["path"].value)
    assert sheet == project.root / "reports" / "rotate.html"
    html = sheet.read_text(encoding="utf-8")
    assert "<h1>qpipe backtest: rotate</h1>" in html and "plotly-graph-div" in html
    daily = load_output(project.lake.root, "value_mix", "daily")
    assert daily["date"].min() == pd.Timestamp("2024-02-01")
    assert daily["date"].max() == pd.Timestamp("2024-04-30")
    total = daily["nav"].iloc[-1] / daily["nav"].iloc[0] - 1
    assert metadata["backtest_value_mix"]["total_return"].value == pytest.approx(total)
    fills = load_output(project.lake.root, "value_mix", "fills")
    assert fills["date"].min() > pd.Timestamp("2024-02-01")  # next_open after the first decision
    assert set(fills["reason"]) <= {"rebalance", "stop_loss", "circuit_breaker", "delisting"}
    con = connect(project.lake.root)
    n = con.execute("select count(distinct strategy) from backtest_metrics").fetchone()[0]
    assert n == 2
    con.close()
    for name in ("value_mix", "rotate"):
        saved = list(load_output(project.lake.root, name, "warnings")["warning"])
        assert metadata[f"backtest_{name}"]["warnings"].value == ("\n".join(saved) or "none")


def test_backtest_asset_logs_and_records_its_warnings(signal_project, tmp_path):
    import logging

    from qpipe.backtest.store import load_result

    project, cfg = signal_project
    with DagsterInstance.ephemeral() as instance:
        assert run(project, cfg, "sync_market_data", "2024-01-02", "2024-03-28", instance).success
        assert run(project, cfg, "compute_factors", "2024-01-02", "2024-03-28", instance).success
        assert run(project, cfg, "compute_signals", "2024-02-01", "2024-03-28", instance).success
        # The same lake backtested with a minimum fee above the capital: nothing trades.
        raw = yaml.safe_load(Path(cfg).read_text())
        costly = write_config(
            tmp_path / "costly.yaml", {**raw, "backtest": {"min_commission": 2e6}}
        )
        costly_project = Project.load(costly, project.root)
        defs = build_definitions(costly_project, str(costly))
        job = defs.resolve_job_def("run_backtests")
        result = job.execute_in_process(
            instance=instance, asset_selection=[AssetKey("backtest_value_mix")]
        )
        assert result.success
        [event] = result.get_asset_materialization_events()
        logged = [
            e.user_message
            for e in instance.all_logs(result.run_id)
            if e.level == logging.WARNING and "value_mix:" in e.user_message
        ]
    saved, _ = load_result(project.lake.root, "value_mix")
    assert saved.warnings and saved.warnings[0].startswith("no fills: trades worth ")
    assert event.materialization.metadata["warnings"].value == "\n".join(saved.warnings)
    assert logged == [f"value_mix: {w}" for w in saved.warnings]

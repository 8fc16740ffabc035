"""The code location as Dagster's own command line sees it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey, Definitions

from qpipe.defs.build import build_definitions
from qpipe.project import Project
from qpipe_tests.conftest import write_config

REPO = Path(__file__).resolve().parents[2]
DAGSTER = shutil.which("dagster") or str(Path(sys.executable).with_name("dagster"))


def test_definitions_hold_the_assets_checks_jobs_schedule_and_sensor(small_project):
    defs = build_definitions(small_project)
    Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    assert graph.get_all_asset_keys() == {
        AssetKey("bars"), AssetKey("factors"), AssetKey("factor_report"),
    }  # fmt: skip
    assert graph.get(AssetKey("factors")).parent_keys == {AssetKey("bars")}
    assert graph.get(AssetKey("factor_report")).parent_keys == {
        AssetKey("bars"), AssetKey("factors"),
    }  # fmt: skip
    checks = {(key.asset_key.to_user_string(), key.name) for key in graph.asset_check_keys}
    assert checks == {
        ("bars", "ohlc_sanity"), ("bars", "unique_keys"), ("bars", "universe_coverage"),
        ("bars", "stale_bars"), ("bars", "extreme_returns"),
        ("factors", "no_lookahead"), ("factors", "nan_coverage"),
    }  # fmt: skip
    assert defs.resolve_job_def("sync_market_data") is not None
    assert defs.resolve_job_def("compute_factors") is not None
    assert defs.resolve_job_def("factor_eda") is not None
    assert defs.resolve_schedule_def("nightly_sync").cron_schedule == "0 17 * * 1-5"
    assert defs.resolve_sensor_def("factors_after_sync") is not None


@pytest.fixture
def cli_env(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        {"data": {"synthetic": {"n_stocks": 10, "n_etfs": 2, "start": "2024-01-02"}}},
    )
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(QPIPE_CONFIG=str(cfg), QPIPE_DATA=str(tmp_path / "data"))
    return env


def test_dagster_definitions_validate(cli_env):
    proc = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "qpipe.definitions"],
        cwd=REPO, env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dagster_asset_materialize_one_partition(cli_env, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cli_env["DAGSTER_HOME"] = str(home)
    proc = subprocess.run(
        [DAGSTER, "asset", "materialize", "-m", "qpipe.definitions", "--select", "bars",
         "--partition", "2024-03-28"],
        cwd=tmp_path, env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    parts = tmp_path / "data" / "lake" / "bars"
    assert [p.name for p in parts.iterdir()] == ["date=2024-03-28"]


def test_resource_reuses_a_shared_project_of_the_same_configuration(tmp_path):
    from qpipe.defs.resources import ProjectResource, sharing

    project = Project.load(None, tmp_path)
    with sharing(project, None):
        assert ProjectResource(data_dir=str(tmp_path)).get() is project
        other = ProjectResource(data_dir=str(tmp_path / "elsewhere")).get()
        assert other is not project and other.root == (tmp_path / "elsewhere").resolve()
        assert ProjectResource(config_path="x.yaml", data_dir=str(tmp_path))._project is None
    assert ProjectResource(data_dir=str(tmp_path)).get() is not project

"""The ``point_in_time`` check of every ``backtest_<strategy>`` asset, materialized through
Dagster on a lake of the default market and strategies: it is in the Definitions, it passes,
and a backtest that guesses delistings from where the bars end fails it, naming the first date
and the fields that differ."""

from __future__ import annotations

import pandas as pd
import pytest
from dagster import AssetKey, DagsterInstance, materialize

from qpipe.backtest import runner
from qpipe.defs.backtests.assets import CHECK_SESSIONS, POINT_IN_TIME
from qpipe.defs.build import build_definitions
from qpipe.factors.factory import library_for, to_long
from qpipe.factors.panel import compute
from qpipe.project import Project
from qpipe.strategies.signals import compute_signals, signals_table
from qpipe_tests.conftest import demo_config

START, END = "2021-01-04", "2021-12-31"


@pytest.fixture(scope="module")
def lake_project(tmp_path_factory: pytest.TempPathFactory):
    """A lake with the bars, corporate actions and signals of the default strategies (as the
    bars and signals assets write them), and the Definitions over it."""
    tmp = tmp_path_factory.mktemp("backtest_assets")
    cfg = demo_config(tmp / "c.yaml", START, END)
    project = Project.load(cfg, tmp / "data")
    market = project.source.fetch(START, END)
    sessions = project.calendar.sessions(START, END)
    project.lake.write("bars", market.bars, sessions)
    project.lake.write("corporate_actions", market.actions, sessions)
    panels = compute(market, list(project.settings.factors.names or []),
                     library=library_for(project.settings.factors),
                     sectors=project.sectors)  # fmt: skip
    factors = to_long(panels, market.bars)
    for name, strategy in project.strategies.items():
        signals = compute_signals(strategy, market, factors, project.instruments, project.calendar)
        project.lake.write(signals_table(name), signals, sessions)
    return project, build_definitions(project, str(cfg))


def backtests(defs):
    return next(a for a in defs.assets if AssetKey("backtest_multi_factor") in a.keys)


def evaluations(project: Project, defs) -> dict[str, object]:
    with DagsterInstance.ephemeral() as instance:
        result = materialize([backtests(defs)], instance=instance, resources=dict(defs.resources))
    assert result.success
    return {e.asset_key.to_user_string(): e for e in result.get_asset_check_evaluations()}


def test_point_in_time_check_is_defined_and_passes(lake_project) -> None:
    project, defs = lake_project
    specs = {(s.asset_key.to_user_string(), s.name) for s in backtests(defs).check_specs}
    assert specs == {
        ("backtest_multi_factor", POINT_IN_TIME),
        ("backtest_etf_rotation", POINT_IN_TIME),
    }
    checks = evaluations(project, defs)
    assert set(checks) == {"backtest_multi_factor", "backtest_etf_rotation"}
    cut = project.calendar.sessions(START, END)
    cut_at = pd.Timestamp(cut[-1 - CHECK_SESSIONS]).strftime("%Y-%m-%d")
    for evaluation in checks.values():
        assert evaluation.passed, evaluation.metadata
        assert evaluation.metadata["cut_at"].value == cut_at
        assert evaluation.metadata["first_difference"].value == "none"


def test_a_delisting_guessed_from_the_data_fails_the_check(lake_project, monkeypatch) -> None:
    """Every name 'delisted' at its last bar: the backtest through the cut sells its book
    there, the whole backtest does not."""
    project, defs = lake_project

    def last_bar(instruments: pd.DataFrame, bars) -> pd.Series:
        close = bars["close"].to_pandas()
        return close.apply(lambda column: column.last_valid_index())

    monkeypatch.setattr(runner, "declared_delistings", last_bar)
    checks = evaluations(project, defs)
    failed = checks["backtest_multi_factor"]
    assert not failed.passed
    cut_at = failed.metadata["cut_at"].value
    found = failed.metadata["first_difference"].value
    assert found.startswith(f"{cut_at}: ") and "daily.cash" in found and "fills" in found
    assert failed.description == f"the backtest through {cut_at} differs on {found}"

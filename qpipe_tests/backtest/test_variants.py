"""Strategy variants in memory: the configured parameters reproduce the backtest of the
strategy's signals; a changed parameter changes the run; bad values are refused by key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from qpipe.backtest.runner import run_backtest
from qpipe.backtest.variants import prepare, run_variant, variant_settings
from qpipe.errors import ConfigError
from qpipe.factors.factory import to_long
from qpipe.factors.panel import compute
from qpipe.project import Project
from qpipe.strategies.signals import compute_signals
from qpipe_tests.conftest import SMALL_CONFIG, write_config

STRATEGY = {
    "kind": "linear",
    "params": {
        "factors": {"reversal_1m": 1.0, "vol_20": -0.5},
        "universe": {"kinds": ["stock"]},
        "top_k": 5,
        "rebalance": "weekly",
        "stop_loss": {"stop": 0.08},
    },
}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("variants")
    cfg = write_config(
        tmp / "c.yaml",
        {**SMALL_CONFIG, "factors": {"names": ["reversal_1m", "vol_20"]},
         "strategies": {"lab": STRATEGY}},
    )  # fmt: skip
    project = Project.load(cfg, tmp / "data")
    market = project.source.fetch(project.history_start, "2024-09-30")
    factors = to_long(compute(market, ["reversal_1m", "vol_20"]), market.bars)
    base = prepare("lab", project.settings, market, factors, project.instruments,
                   project.calendar, project.factor_names)  # fmt: skip
    return project, market, factors, base


def test_configured_parameters_reproduce_the_signal_backtest(setup):
    project, market, factors, base = setup
    strategy = project.strategies["lab"]
    signals = compute_signals(strategy, market, factors, project.instruments, project.calendar)
    year = project.calendar.sessions_per_year
    want, want_bench = run_backtest(strategy, market, signals, project.settings.backtest,
                                    project.instruments, periods_per_year=year)  # fmt: skip
    got, bench = run_variant(base)
    pd.testing.assert_series_equal(got.equity, want.equity, check_exact=True)
    pd.testing.assert_series_equal(bench, want_bench, check_exact=True)
    pd.testing.assert_frame_equal(got.fills, want.fills, check_exact=True)


def test_a_changed_parameter_changes_the_run(setup):
    *_, base = setup
    plain, _ = run_variant(base)
    fewer, _ = run_variant(base, {"top_k": 2})
    held = (fewer.positions > 0).sum(axis=1)
    assert held.max() <= 2 < (plain.positions > 0).sum(axis=1).max()
    cheaper, _ = run_variant(base, backtest={"commission_bps": 0.0, "slippage_bps": 0.0})
    assert cheaper.metrics["total_costs"] == 0.0 < plain.metrics["total_costs"]
    assert cheaper.equity.iloc[-1] > plain.equity.iloc[-1]


def test_bad_values_are_refused_by_key(setup):
    *_, base = setup
    with pytest.raises(ValidationError, match="top_k"):
        variant_settings(base, {"top_k": 0})
    with pytest.raises(ValidationError, match="commission_bps"):
        variant_settings(base, backtest={"commission_bps": -1})
    with pytest.raises(ConfigError, match=r"strategies\.lab\.params\.factors\.mom_12_1"):
        run_variant(base, {"factors": {"mom_12_1": 1.0}})
    assert np.isfinite(run_variant(base, {"rebalance": "monthly"})[0].equity).all()

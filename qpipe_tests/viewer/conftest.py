"""Fixtures of the viewer tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small synthetic lake with bars, factors and their report, signals and a saved
    backtest of one linear strategy, made with the command line; returns the data directory
    and the config."""
    from click.testing import CliRunner

    from qpipe.cli import cli
    from qpipe_tests.conftest import SMALL_CONFIG, write_config

    tmp = tmp_path_factory.mktemp("demo")
    strategy = {"kind": "linear", "params": {"factors": {"reversal_1m": 1.0, "vol_20": -0.5},
                                             "universe": {"kinds": ["stock"]}, "top_k": 5,
                                             "rebalance": "weekly"}}  # fmt: skip
    cfg = write_config(
        tmp / "c.yaml",
        {**SMALL_CONFIG, "factors": {"names": ["reversal_1m", "vol_20"]},
         "strategies": {"lab": strategy}},
    )  # fmt: skip
    data = tmp / "data"
    env = {"QPIPE_DATA": str(data)}
    for args in (["sync", "--start", "2024-01-02", "--end", "2024-06-28"], ["factors"],
                 ["factors", "report"], ["signals"], ["backtest"]):  # fmt: skip
        out = CliRunner().invoke(cli, ["--config", str(cfg), *args], env=env)
        assert out.exit_code == 0, out.output
    return data, cfg

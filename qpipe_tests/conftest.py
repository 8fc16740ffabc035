"""Shared fixtures: a small synthetic project in a temporary data directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from qpipe.data.lake import Lake
from qpipe.project import Project
from qpipe.settings import DEFAULT_CONFIG

SMALL_CONFIG = {
    "data": {
        "source": "synthetic",
        "synthetic": {
            "seed": 3,
            "n_stocks": 20,
            "n_sectors": 3,
            "n_etfs": 4,
            "start": "2024-01-02",
        },
    },
}


def write_config(path: Path, config: dict) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def demo_config(path: Path, start: str, end: str) -> Path:
    """The packaged default configuration (its market and strategies) on the sessions
    ``[start, end]``, computing only the factors its strategies read."""
    config = yaml.safe_load(DEFAULT_CONFIG.read_text())
    config["calendar"].update(start=start, end=end)
    config["factors"]["names"] = ["mom_12_1", "vol_60", "reversal_1m"]
    return write_config(path, config)


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    """A config file for 20 synthetic stocks and 4 ETFs from 2024-01-02."""
    return write_config(tmp_path / "qpipe.yaml", SMALL_CONFIG)


@pytest.fixture
def small_project(small_config: Path, tmp_path: Path) -> Project:
    """The small synthetic project with its data directory under ``tmp_path/data``."""
    return Project.load(small_config, tmp_path / "data")


@pytest.fixture
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """QPIPE_DATA and DAGSTER_HOME under ``tmp_path``; QPIPE_CONFIG unset. Returns the data dir."""
    data = tmp_path / "data"
    monkeypatch.setenv("QPIPE_DATA", str(data))
    monkeypatch.setenv("DAGSTER_HOME", str(data / "dagster"))
    monkeypatch.delenv("QPIPE_CONFIG", raising=False)
    return data


def two_day_lake(root: Path) -> Lake:
    """A lake at ``root`` with two sessions (2024-01-02/03) of symbols A and B; closes 10, 20
    then 12, 25."""
    lake = Lake(root)
    days = pd.to_datetime(["2024-01-02", "2024-01-03"])
    bars = pd.DataFrame({
        "date": days.repeat(2), "symbol": ["A", "B"] * 2,
        "open": [10.0, 20.0, 10.0, 20.0], "high": [11.0, 21.0, 11.0, 21.0],
        "low": [9.0, 19.0, 9.0, 19.0], "close": [10.0, 20.0, 12.0, 25.0],
        "volume": [1e6] * 4,
    })  # fmt: skip
    lake.write("bars", bars, list(days.date))
    return lake

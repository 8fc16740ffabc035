"""Fixtures of the live tests."""

from __future__ import annotations

import pandas as pd
import pytest

from qpipe.data.lake import Lake


@pytest.fixture
def lake(tmp_path):
    lake = Lake(tmp_path / "lake")
    days = pd.to_datetime(["2024-01-02", "2024-01-03"])
    bars = pd.DataFrame({
        "date": days.repeat(2), "symbol": ["A", "B"] * 2,
        "open": [10.0, 20.0, 10.0, 20.0], "high": [11.0, 21.0, 11.0, 21.0],
        "low": [9.0, 19.0, 9.0, 19.0], "close": [10.0, 20.0, 12.0, 25.0],
        "volume": [1e6] * 4,
    })  # fmt: skip
    lake.write("bars", bars, list(days.date))
    return lake

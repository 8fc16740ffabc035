"""Fixtures of the live tests."""

from __future__ import annotations

import pytest

from qpipe.data.lake import Lake
from qpipe_tests.conftest import two_day_lake


@pytest.fixture
def lake(tmp_path) -> Lake:
    return two_day_lake(tmp_path / "lake")

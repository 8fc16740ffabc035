"""The project: the source's instruments cached on disk when the source allows it."""

from __future__ import annotations

import pandas as pd

from qpipe.data.synthetic import SyntheticSource
from qpipe.project import Project
from qpipe_tests.conftest import write_config

SMALL = {"data": {"synthetic": {"n_stocks": 12, "n_etfs": 3, "start": "2024-01-02"}}}


def test_synthetic_instruments_are_cached_and_rebuilt_when_unreadable(tmp_path, monkeypatch):
    cfg = write_config(tmp_path / "c.yaml", SMALL)
    first = Project.load(str(cfg), tmp_path / "data").instruments
    cached = list((tmp_path / "data" / "cache").glob("instruments-synthetic-*.parquet"))
    assert len(cached) == 1

    calls = []
    original = SyntheticSource.instruments
    monkeypatch.setattr(
        SyntheticSource, "instruments", lambda self: calls.append(1) or original(self)
    )
    again = Project.load(str(cfg), tmp_path / "data").instruments
    pd.testing.assert_frame_equal(again, first)
    assert calls == []  # read from the cache, the market not simulated again

    cached[0].write_bytes(b"not parquet")
    rebuilt = Project.load(str(cfg), tmp_path / "data").instruments
    pd.testing.assert_frame_equal(rebuilt, first)
    assert calls == [1]


def test_cache_key_changes_with_the_configuration(tmp_path):
    a = Project.load(str(write_config(tmp_path / "a.yaml", SMALL)), tmp_path)
    other = {"data": {"synthetic": {**SMALL["data"]["synthetic"], "seed": 8}}}
    b = Project.load(str(write_config(tmp_path / "b.yaml", other)), tmp_path)
    assert a.source.instruments_key() != b.source.instruments_key()
    assert a.source.instruments_key() == a.source.instruments_key()

"""With zero costs, trading raw prices through splits and dividends gives the equity of
holding the total-return series (dividends reinvested at the ex-date's close), on synthetic
data and on the sample data's real splits and dividends."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.inputs import bars_dataset, total_return_index
from qpipe.project import Project
from qpipe.settings import parse_settings


def hold_all(bars: xr.Dataset, symbol: str) -> xr.DataArray:
    """Weight 1 in ``symbol`` on every session (0 elsewhere)."""
    w = xr.zeros_like(bars["close"].transpose("date", "symbol"))
    return w.where(w.symbol != symbol, 1.0)


def market_of(source: str, tmp_path, **data: object):
    settings = parse_settings({"data": {"source": source, **data}})
    project = Project(settings, tmp_path)
    start, end = project.source.coverage()
    return project.source.fetch(start, end or "2019-12-31")


@pytest.mark.parametrize("source", ["sample", "synthetic"])
def test_zero_cost_equity_equals_total_return(source, tmp_path):
    extra = {"synthetic": {"n_stocks": 40, "n_etfs": 0, "start": "2016-01-04"}}
    market = market_of(source, tmp_path, **(extra if source == "synthetic" else {}))
    bars = bars_dataset(market)
    events = (bars["split_ratio"] != 1).sum("date") + (bars["dividend"] > 0).sum("date")
    # The symbols with the most splits and dividends, and a complete history (no halts).
    complete = bars["close"].notnull().all("date")
    symbols = events.where(complete, -1).to_pandas().sort_values().index[-2:]
    assert int(events.sel(symbol=symbols).sum()) >= 10
    engine = BacktestEngine(BacktestConfig(fill="close", initial_cash=1e6))
    for symbol in symbols:
        result = engine.run(bars, hold_all(bars, symbol))
        index = total_return_index(bars).sel(symbol=symbol).to_pandas()
        expected = 1e6 * index / index.iloc[0]
        np.testing.assert_allclose(result.equity.to_numpy(), expected.to_numpy(), rtol=1e-9)
        assert result.daily["dividends"].sum() > 0

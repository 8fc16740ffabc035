"""An XSHG project annualises with XSHG's sessions per year (about 242), not 252: the
backtest's saved metrics (through the CLI) and the volatility factors (through the factors
job); the expected figure is counted from exchange_calendars in the test."""

from __future__ import annotations

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from qpipe.backtest.store import load_output
from qpipe.cli import cli
from qpipe.data.lake import Lake
from qpipe.factors.panel import compute
from qpipe.project import Project
from qpipe_tests.conftest import SMALL_CONFIG, write_config


def xshg_sessions_per_year() -> float:
    """XSHG's mean session count per calendar year over 2010-2019, to a whole session."""
    cal = xcals.get_calendar("XSHG", start="2010-01-01", end="2019-12-31")
    counts = pd.Series(1, index=cal.sessions).groupby(cal.sessions.year).sum()
    return float(round(counts.mean()))


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_an_xshg_project_annualises_with_its_own_year(isolated_env, tmp_path):
    year = xshg_sessions_per_year()
    assert 241 < year < 245
    strategies = {
        "rot": {"kind": "rotation", "params": {"symbols": ["EMKT", "ETECH"], "lookback": 10,
                                               "top_k": 1, "rebalance": "weekly"}},
    }  # fmt: skip
    config = {
        **SMALL_CONFIG,
        "calendar": {"exchange": "XSHG"},
        "factors": {"names": ["vol_20"]},
        "strategies": strategies,
    }
    cfg = write_config(tmp_path / "x.yaml", config)
    args = ["--config", str(cfg)]
    invoke(*args, "sync", "--start", "2024-01-02", "--end", "2024-04-30")
    invoke(*args, "factors")
    invoke(*args, "signals")
    invoke(*args, "backtest")

    # The backtest's Sharpe and volatility, by hand from its saved NAV.
    daily = load_output(isolated_env / "lake", "rot", "daily")
    r = daily["nav"].pct_change().iloc[1:].to_numpy()
    assert len(r) > 30 and r.std() > 0
    mean, std = r.mean(), np.sqrt(((r - r.mean()) ** 2).sum() / (len(r) - 1))
    metrics = load_output(isolated_env / "lake", "rot", "metrics").set_index("metric")["value"]
    assert metrics["periods_per_year"] == pytest.approx(year, rel=1e-12)
    assert metrics["sharpe"] == pytest.approx(mean / std * np.sqrt(year), rel=1e-9)
    assert metrics["volatility"] == pytest.approx(std * np.sqrt(year), rel=1e-9)

    # The factors job's vol_20: the 20-session std of daily returns x sqrt(the XSHG year),
    # on a name without corporate actions or missing bars (returns of the raw close).
    lake = Lake(isolated_env / "lake")
    bars = lake.read("bars")
    acted = set(lake.read("corporate_actions")["symbol"])
    close = bars.pivot(index="date", columns="symbol", values="close")
    clean = [s for s in close.columns if s not in acted and close[s].notna().all()]
    assert clean
    symbol = clean[0]
    want = close[symbol].pct_change().rolling(20).std(ddof=1) * np.sqrt(year)
    factors = lake.read("factors", columns=["vol_20"])
    got = factors.loc[factors["symbol"] == symbol].set_index("date")["vol_20"]
    last = close.index[-1]
    assert got.loc[last] == pytest.approx(want.loc[last], rel=1e-9)

    # The same computation without the calendar's figure annualises with 252.
    project = Project.load(cfg, isolated_env)
    assert project.calendar.sessions_per_year == pytest.approx(year, rel=1e-12)
    market = project.source.fetch("2024-01-02", "2024-04-30")
    plain = compute(market, ["vol_20"]).sel(symbol=symbol, date=last)["vol_20"]
    assert float(plain) == pytest.approx(want.loc[last] * np.sqrt(252 / year), rel=1e-9)

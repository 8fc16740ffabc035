"""The packaged default configuration's two strategies on one paper account, after a short
demo-like sync: ``qpipe live rebalance --paper`` sends both strategies' orders with no
refusal, each on its allocation (multi_factor 0.6, etf_rotation 0.4), the combined gross at
most 1; a second run sends nothing; each sleeve holds what its strategy bought; a position
bought outside qpipe is reported and never traded."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from click.testing import CliRunner

from qpipe.cli import cli
from qpipe.live.broker import Order
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.live.sleeves import Sleeves
from qpipe.project import Project
from qpipe_tests.conftest import demo_config

START, END = "2023-06-01", "2024-09-30"
SESSION = "2024-09-30"  # the last session of a month: both strategies rebalance


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    tmp = tmp_path_factory.mktemp("allocations")
    project = Project.load(demo_config(tmp / "c.yaml", START, END), tmp / "data")
    market = project.source.fetch(START, END)
    sessions = project.calendar.sessions(START, END)
    project.lake.write("bars", market.bars, sessions)
    project.lake.write("corporate_actions", market.actions, sessions)
    return project


def executions(project: Project) -> pd.DataFrame:
    path = project.lake.root / "live" / "paper" / "executions.parquet"
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=["reference"])


def test_both_default_strategies_trade_their_allocations_on_one_paper_account(project, monkeypatch):
    monkeypatch.setenv("QPIPE_DATA", str(project.root))
    args = ["--config", str(project.root.parent / "c.yaml"), "live", "rebalance", "--paper",
            "--session", SESSION]  # fmt: skip
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "refused" not in out.output and "failed" not in out.output
    for name in ("multi_factor", "etf_rotation"):
        assert f"{name}, session {SESSION}: orders" in out.output, out.output
    assert out.output.count("orders to the paper broker") == 2
    broker = PaperBroker(project.lake)
    fills = executions(project)
    owner = fills["reference"].str.split(":").str[1]
    assert set(owner) == {"multi_factor", "etf_rotation"}
    # each sleeve holds exactly what its strategy's orders bought
    sleeves = Sleeves(project.lake.root, "PAPER")
    for name in ("multi_factor", "etf_rotation"):
        mine = fills.loc[owner == name]
        bought = mine.groupby("symbol")["quantity"].sum()
        assert (mine["side"] == "buy").all()
        pd.testing.assert_series_equal(
            sleeves.holdings(name).sort_index(), bought.astype(float).sort_index(),
            check_names=False,
        )  # fmt: skip
    # values at the last close (the paper broker's price), from the lake directly
    last = project.lake.read("bars", SESSION, SESSION).set_index("symbol")["close"]
    nav = broker.account().net_liquidation
    positions = pd.Series({s: p.quantity for s, p in broker.positions().items()})
    assert (positions * last.reindex(positions.index)).abs().sum() / nav <= 1.0
    assert broker.account().cash >= 0
    initial = 1_000_000.0  # the account's value the orders were sized on
    for name, allocation in (("multi_factor", 0.6), ("etf_rotation", 0.4)):
        held = sleeves.holdings(name)
        value = float((held * last.reindex(held.index)).sum())
        assert 0.9 * allocation * initial < value <= allocation * initial, name
    # a second run sends nothing
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0, again.output
    # (a re-plan may differ by a share, the NAV less the first run's costs: its reference
    # is the one already filled, so it is not sent again)
    assert set(re.findall(r"sent (\d+) orders", again.output)) <= {"0"}, again.output
    assert len(executions(project)) == len(fills)

    # a position nobody owns: bought outside qpipe in the paper account
    outside = sorted(set(project.instruments.query("kind == 'stock'")["symbol"])
                     - set(positions.index))[0]  # fmt: skip
    broker.submit(Order(outside, "buy", 10, "MKT", "bought-by-hand"))
    third = CliRunner().invoke(cli, args)
    assert third.exit_code == 0, third.output
    assert f"positions no strategy owns (not traded): {outside} +10" in third.output
    assert set(re.findall(r"sent (\d+) orders", third.output)) <= {"0"}, third.output
    assert broker.positions()[outside].quantity == 10
    assert len(executions(project)) == len(fills) + 1  # the hand-made order only
    events = Journal(project.lake.root).read("events")
    unowned = events.loc[events["event"] == "unowned"]
    assert set(unowned["strategy"]) == {"multi_factor", "etf_rotation"}
    assert unowned["detail"].str.contains(f"{outside} \\+10").all()

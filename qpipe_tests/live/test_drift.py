"""The drift report (:mod:`qpipe.live.drift`) on a small synthetic project run session by
session on the paper broker, as a nightly sync then `qpipe live rebalance --paper` would:
the paper broker fills like the backtest's ``close`` mode and books corporate actions like
the engine, so the drift is zero to rounding; a paper broker with another slippage drifts by
the hand-computed amount, named as fills and costs; orders not sent are missed orders; a
broker that books no corporate actions shows them, by the hand-computed amount."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from qpipe.backtest.config import BacktestConfig
from qpipe.cli import cli
from qpipe.live import drift
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.live.rebalance import run_strategy, session_plan, trader_for
from qpipe.project import Project
from qpipe_tests.conftest import SMALL_CONFIG, write_config

STRATEGIES = {
    "lin": {"kind": "linear", "params": {"factors": {"reversal_1m": 1.0, "vol_20": -0.5},
                                         "universe": {"kinds": ["stock"]}, "top_k": 5,
                                         "hold_band": 1, "rebalance": "daily",
                                         "max_weight": 0.1, "max_gross": 0.5}},
    "rot": {"kind": "rotation", "params": {"symbols": ["EMKT", "ETECH"],
                                           "lookback": 10, "top_k": 1,
                                           "rebalance": "weekly"}},
}  # fmt: skip
SESSIONS = 20
COSTS = {"commission_bps": 10.0, "slippage_bps": 5.0, "min_commission": 1.0}


def _build(tmp: Path) -> tuple[Path, dict[str, str]]:
    cfg = write_config(
        tmp / "c.yaml",
        {**SMALL_CONFIG, "strategies": STRATEGIES, "backtest": COSTS,
         "factors": {"names": ["reversal_1m", "vol_20"]},
         "limits": {"max_order_notional": 1_000_000, "max_weight": 1.0}},
    )  # fmt: skip
    env = {"QPIPE_DATA": str(tmp / "data")}
    for args in (["sync", "--start", "2024-01-02", "--end", "2024-04-30"], ["factors"],
                 ["signals"]):  # fmt: skip
        out = CliRunner().invoke(cli, ["--config", str(cfg), *args], env=env)
        assert out.exit_code == 0, out.output
    return cfg, env


@pytest.fixture(scope="module")
def paper_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Project, list]:
    """Twenty sessions of `qpipe live rebalance --paper --session D`, each with the lake's
    bars up to D (the paper broker fills at the lake's latest close)."""
    tmp = tmp_path_factory.mktemp("drift")
    cfg, env = _build(tmp)
    project = Project.load(cfg, tmp / "data")
    days = project.lake.dates("bars")[-SESSIONS:]
    bars_dir = Path(project.lake.path("bars"))
    aside = tmp / "aside"
    aside.mkdir()
    for day in days:
        shutil.move(bars_dir / f"date={day.isoformat()}", aside / f"date={day.isoformat()}")
    for day in days:
        shutil.move(aside / f"date={day.isoformat()}", bars_dir / f"date={day.isoformat()}")
        args = ["--config", str(cfg), "live", "rebalance", "--paper", "--session", str(day)]
        out = CliRunner().invoke(cli, args, env=env)
        assert out.exit_code == 0, out.output
    return Project.load(cfg, tmp / "data"), days


def test_paper_drift_is_zero_to_rounding(paper_run):
    project, days = paper_run
    report = drift.project_drift(project)
    sessions, orders = report.sessions, report.orders
    # Every session of the daily strategy sent orders and is compared; dry runs never are.
    lin = sessions.loc[sessions["strategy"] == "lin"]
    assert len(lin) >= SESSIONS - 2
    assert set(lin["date"].dt.date) <= set(days)
    assert (sessions["broker"] == "paper").all()
    assert set(sessions["strategy"]) == {"lin", "rot"}  # two strategies on one account
    assert (sessions["orders"] > 0).all() and (sessions["missed"] == 0).all()
    # Quantities equal: the live plan, the live fills and the engine's fills.
    traded = orders.loc[orders["intended"].notna()]
    assert len(traded) > 40
    np.testing.assert_array_equal(traded["filled"], traded["intended"])
    np.testing.assert_array_equal(traded["engine_quantity"], traded["intended"])
    np.testing.assert_allclose(traded["fill_price"], traded["engine_price"], rtol=1e-12)
    np.testing.assert_allclose(traded["fee"], traded["engine_fee"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(traded["slippage_vs_model"], 0.0, atol=1e-6)
    assert (orders["fee"] > 0).sum() == len(traded)  # costs are charged: a real check
    assert (sessions["nav_diff"].abs() < 1e-6 * sessions["nav_start"]).all()
    # The dividends of the names held are booked by the paper broker as the engine books
    # them: no corporate-action gap, although held names went ex-dividend (by hand: each
    # session's held shares times that session's dividends; the market has no split).
    actions = project.lake.read("corporate_actions", days[0], days[-1])
    assert (actions["split_ratio"] == 1.0).all() and len(actions)
    snap = Journal(project.lake.root).read("snapshot")
    # each strategy's first run has nothing to carry (its own sleeve)
    firsts = sessions.groupby("strategy")["date"].transform("min") == sessions["date"]
    assert sessions.loc[firsts, "corporate_actions"].isna().all()
    paid = 0.0
    for row in sessions.loc[~firsts].itertuples():
        held = snap.loc[snap["run_id"] == row.run_id].set_index("symbol")["held"]
        today = actions.loc[actions["date"] == row.date].set_index("symbol")["dividend"]
        paid += (held.reindex(today.index).fillna(0.0) * today).sum()
        assert row.corporate_actions == pytest.approx(0.0, abs=1e-9), row.date
    assert paid > 0  # the check above is not vacuous
    assert (sessions["cause"] == "none").all()
    assert sessions["tracking"].abs().max() < 1e-6
    execution = (sessions["nav_diff"] / sessions["nav_start"]).groupby(sessions["strategy"])
    assert execution.cumsum().abs().max() < 1e-6
    # The sleeve's NAV after the live fills, recomputed by hand from the journal and the lake.
    journal = Journal(project.lake.root)
    snap = journal.read("snapshot")
    fills = journal.read("fills")
    bars = project.lake.read("bars", columns=["close"])
    for row in lin.itertuples():
        first = snap.loc[snap["run_id"] == row.run_id]
        session = row.date.strftime("%Y-%m-%d")
        mine = fills.loc[(fills["session"] == session) & (fills["strategy"] == "lin")]
        signed = np.where(mine["side"] == "buy", 1.0, -1.0) * mine["quantity"]
        # the sleeve's: lin sizes on its allocation, with the cash its sleeve may spend
        start = first["sizing_cash"].iloc[0]
        cash = start - (signed * mine["price"]).sum() - mine["commission"].sum()
        held = first.set_index("symbol")["held"].add(
            pd.Series(signed.to_numpy(), index=mine["symbol"]).groupby(level=0).sum(),
            fill_value=0.0,
        )
        last = bars.loc[bars["date"] <= row.date].groupby("symbol")["close"].last()
        nav = cash + (held * last.reindex(held.index)).sum()
        assert row.nav_live == pytest.approx(nav, rel=1e-12)


def test_drift_table_and_cli(paper_run):
    project, days = paper_run
    drift.project_drift(project)
    table = project.lake.read("live_drift")
    assert set(table["strategy"]) <= {"lin", "rot"} and len(table) >= SESSIONS - 2
    assert table["nav_diff"].notna().all()
    cfg = str(project.root.parent / "c.yaml")
    env = {"QPIPE_DATA": str(project.root), "COLUMNS": "250"}
    args = ["--config", cfg, "live", "drift", "--strategy", "lin", "--start", str(days[5])]
    out = CliRunner().invoke(cli, args, env=env)
    assert out.exit_code == 0, out.output
    assert "lin" in out.output and str(days[4]) not in out.output and str(days[-1]) in out.output
    bad = CliRunner().invoke(cli, ["--config", cfg, "live", "drift", "--strategy", "nope"], env=env)
    assert bad.exit_code != 0 and "nope" in bad.output


def test_a_broker_filling_at_another_price_drifts_by_the_hand_computed_amount(tmp_path):
    cfg, _ = _build(tmp_path)
    project = Project.load(cfg, tmp_path / "data")
    # The lake's last session, from an empty account.
    plan = session_plan(project, project.lake.dates("bars")[-1])
    trader = trader_for(project, "paper")
    # The broker slips 25 bp; the backtest (and the order sizing) assumes 5 bp.
    trader.broker = PaperBroker(project.lake, BacktestConfig(**COSTS | {"slippage_bps": 25.0}))
    outcome = run_strategy(project, "lin", plan, trader, "paper")
    assert not outcome.failed and outcome.sent is not None
    report = drift.project_drift(project, "lin")
    row = report.sessions.iloc[0]
    bought = outcome.sent.orders  # all buys from cash
    assert (bought["side"] == "buy").all() and len(bought) == 5
    close = project.lake.read("bars", plan.session, plan.session).set_index("symbol")["close"]
    notional = (bought.set_index("symbol")["quantity"] * close).dropna()
    assert len(notional) == 5
    # Per buy of q at close c: the engine pays c (1 + 5 bp) and 10 bp of it in fees; the
    # broker c (1 + 25 bp) and 10 bp of that (both above the 1.00 minimum).
    fills_amt = -(notional * 0.0020).sum()
    costs_amt = -(notional * 0.0020 * 0.0010).sum()
    assert row["fills"] == pytest.approx(fills_amt, rel=1e-9)
    assert row["costs"] == pytest.approx(costs_amt, rel=1e-9)
    assert row["missed_orders"] == 0.0
    assert row["nav_diff"] == pytest.approx(fills_amt + costs_amt, rel=1e-9)
    assert abs(row["residual"]) < 1e-6
    assert row["cause"] == "fills, costs"
    orders = report.orders.set_index("symbol")
    np.testing.assert_allclose(
        orders["slippage_vs_model"], (notional * 0.0020).reindex(orders.index), rtol=1e-9
    )


def test_orders_not_sent_are_missed_orders(tmp_path, monkeypatch):
    cfg, _ = _build(tmp_path)
    project = Project.load(cfg, tmp_path / "data")
    plan = session_plan(project, project.lake.dates("bars")[-1])
    trader = trader_for(project, "paper")
    monkeypatch.setenv("QPIPE_KILL", "1")  # the kill switch: every order planned, none sent
    outcome = run_strategy(project, "lin", plan, trader, "paper")
    assert set(outcome.sent.orders["action"]) == {"killed"}
    report = drift.project_drift(project, "lin")
    row = report.sessions.iloc[0]
    assert (row["orders"], row["filled"], row["missed"]) == (5, 0, 5)
    bought = outcome.sent.orders.set_index("symbol")["quantity"]
    close = project.lake.read("bars", plan.session, plan.session).set_index("symbol")["close"]
    notional = (bought * close).dropna()
    # The engine bought them at c (1 + 5 bp) with 10 bp fees, marked at c: it is behind the
    # account that did not trade by the slippage and the fees.
    assert row["missed_orders"] == pytest.approx((notional * 0.0005).sum(), rel=1e-9)
    assert row["costs"] == pytest.approx((notional * 1.0005 * 0.0010).sum(), rel=1e-9)
    assert row["fills"] == 0.0
    assert row["nav_diff"] == pytest.approx(row["missed_orders"] + row["costs"], rel=1e-9)
    assert row["cause"] == "costs, missed_orders"
    orders = report.orders.set_index("symbol")
    assert (orders["filled"] == 0).all() and (orders["engine_quantity"] == bought).all()


def test_a_corporate_action_the_broker_does_not_book_is_named(tmp_path, monkeypatch):
    # A paper broker that knows no corporate actions.
    monkeypatch.setattr("qpipe.live.paper.book_actions", lambda s, c, a: (s, c, []))
    cfg, env = _build(tmp_path)
    project = Project.load(cfg, tmp_path / "data")
    first, second = project.lake.dates("bars")[-2:]
    bars_dir = Path(project.lake.path("bars"))
    shutil.move(bars_dir / f"date={second}", tmp_path / "aside")
    run = ["--config", str(cfg), "live", "rebalance", "--paper", "--strategy", "lin", "--session"]
    assert CliRunner().invoke(cli, [*run, str(first)], env=env).exit_code == 0
    held = PaperBroker(project.lake).positions()
    split_name, dividend_name = sorted(held)[:2]
    # A 2-for-1 split and a 0.50 dividend on the second session, which this broker does
    # not book.
    shutil.move(tmp_path / "aside", bars_dir / f"date={second}")
    actions = project.lake.read("corporate_actions", second, second)
    extra = pd.DataFrame({"date": pd.Timestamp(second), "symbol": [split_name, dividend_name],
                          "split_ratio": [2.0, 1.0], "dividend": [0.0, 0.5],
                          "factor": [0.5, 0.99]})  # fmt: skip
    project.lake.write("corporate_actions", pd.concat([actions, extra]), [second])
    out = CliRunner().invoke(cli, [*run, str(second)], env=env)
    assert out.exit_code == 0, out.output
    sessions = drift.project_drift(Project.load(cfg, tmp_path / "data"), "lin").sessions
    assert len(sessions) == 2 and np.isnan(sessions["corporate_actions"].iloc[0])
    row = sessions.iloc[1]
    close = project.lake.read("bars", second, second).set_index("symbol")["close"]
    q_split, q_div = held[split_name].quantity, held[dividend_name].quantity
    # The engine holds 2 q after the split; the account has q. (The 0.50 dividend the engine
    # books is not part of the gap: a strategy's sleeve has no cash ledger of its own, so only
    # its shares are carried.)
    assert q_div > 0
    want = -q_split * close[split_name]
    assert row["corporate_actions"] == pytest.approx(want, rel=1e-12)
    assert row["cause"].split(", ")[0] == "corporate_actions"
    assert row["tracking"] == pytest.approx(
        sessions["nav_diff_rel"].sum() + want / row["nav_start"], rel=1e-9
    )


def test_a_session_not_in_the_lake_is_replayed_at_the_snapshot_prices(tmp_path):
    # The close of today, before the nightly sync: the live bridge takes the broker's snapshot
    # as the session's bar, and the replay prices the session the same way (without it, the
    # engine finds no close, trades nothing, and the whole plan reads as drift).
    cfg, env = _build(tmp_path)
    project = Project.load(cfg, tmp_path / "data")
    today = project.lake.dates("bars")[-1]
    shutil.move(Path(project.lake.path("bars")) / f"date={today}", tmp_path / "aside")
    args = ["--config", str(cfg), "live", "rebalance", "--paper", "--strategy", "lin",
            "--session", str(today)]  # fmt: skip
    out = CliRunner().invoke(cli, args, env=env)
    assert out.exit_code == 0 and "sent" in out.output, out.output
    sessions = drift.project_drift(Project.load(cfg, tmp_path / "data"), "lin").sessions
    assert list(sessions["date"].dt.date) == [today] and sessions["orders"].iloc[0] > 0
    row = sessions.iloc[0]
    assert abs(row["nav_diff"]) < 1e-6 * row["nav_start"] and row["cause"] == "none"
    assert row["costs"] == pytest.approx(0.0, abs=1e-6)

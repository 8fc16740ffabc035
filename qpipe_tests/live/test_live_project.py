"""The live path on a small synthetic project built with the CLI: the data bridge reproduces
the signals assets (for past sessions its weights equal the signal table's exactly, scores to
rounding, for both strategy kinds; a session not in the lake uses the snapshot as its bar);
the CLI on the paper broker and, through the loopback fake gateway, on the IB broker; the
market-close job and schedule."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from qpipe.cli import cli
from qpipe.live.bridge import LiveDataBridge
from qpipe.live.journal import Journal
from qpipe.project import Project
from qpipe_tests.conftest import SMALL_CONFIG, write_config
from qpipe_tests.live.fake_tws import FakeTWS

STRATEGIES = {
    "lin": {"kind": "linear", "params": {"factors": {"reversal_1m": 1.0, "vol_20": -0.5},
                                         "universe": {"kinds": ["stock"]}, "top_k": 5,
                                         "hold_band": 2, "rebalance": "weekly"}},
    "guard": {"kind": "linear", "params": {
        "factors": {"reversal_1m": 1.0, "vol_20": -0.5}, "universe": {"kinds": ["stock"]},
        "top_k": 5, "rebalance": "weekly",
        # a breaker that halts on any loss: the paper broker's costs are one
        "circuit_breaker": {"reduce_drawdown": 0.5, "halt_drawdown": 0.6,
                            "max_daily_loss": 0.0001, "recover_drawdown": 0.1},
        "stop_loss": {"stop": 0.5}}},
    "rot": {"kind": "rotation", "params": {"symbols": ["EMKT", "ETECH"],
                                           "lookback": 20, "top_k": 1}},
    # a volatility window (10) shorter than its factors' look-back (reversal_1m: 21)
    "ivol": {"kind": "linear", "params": {"factors": {"reversal_1m": 1.0},
                                          "universe": {"kinds": ["stock"]}, "top_k": 5,
                                          "weighting": "inverse_vol", "vol_window": 10,
                                          "max_weight": 0.2, "rebalance": "weekly"}},
}  # fmt: skip


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    tmp = tmp_path_factory.mktemp("bridge")
    factors = {"names": ["reversal_1m", "vol_20"]}
    cfg = write_config(
        tmp / "c.yaml",
        {
            **SMALL_CONFIG,
            "strategies": STRATEGIES,
            "factors": factors,
            "live": {"max_order_notional": 500_000},
        },  # 5 names of a 1,000,000 account
    )
    env = {"QPIPE_DATA": str(tmp / "data")}
    for args in (["sync", "--start", "2024-01-02", "--end", "2024-05-31"], ["factors"],
                 ["signals"]):  # fmt: skip
        out = CliRunner().invoke(cli, ["--config", str(cfg), *args], env=env)
        assert out.exit_code == 0, out.output
    return Project.load(cfg, tmp / "data")


@pytest.mark.parametrize("name", ["lin", "rot", "ivol"])
def test_past_sessions_match_the_signal_table(project, name):
    bridge = LiveDataBridge(project, name)
    table = project.lake.read(f"signals_{name}")
    decided = table.loc[table["target_weight"].notna(), "date"].drop_duplicates()
    days = [*decided.iloc[-3:], pd.Timestamp("2024-05-29")]  # rebalances and a plain day
    for day in days:
        got = bridge.signals(day.date())
        want = table.loc[table["date"] == day].reset_index(drop=True)
        assert list(got["symbol"]) == list(want["symbol"]), day
        if name == "ivol":
            # Inverse-volatility weights: the rolling std's rounding depends on where its
            # history starts (the bridge reads the look-back, the assets the whole range).
            np.testing.assert_allclose(
                got["target_weight"], want["target_weight"], rtol=1e-12, err_msg=str(day)
            )
        else:
            np.testing.assert_array_equal(
                got["target_weight"], want["target_weight"], err_msg=str(day)
            )
        np.testing.assert_allclose(got["score"], want["score"], rtol=0, atol=1e-12)
    last = decided.iloc[-1]
    weights = table.loc[table["date"] == last].set_index("symbol")["target_weight"]
    pd.testing.assert_series_equal(
        bridge.targets(last.date()), weights, check_names=False, rtol=1e-12
    )


def test_a_new_session_uses_the_snapshot(project):
    bridge = LiveDataBridge(project, "rot")
    session = dt.date(2024, 6, 3)
    with pytest.raises(ValueError, match="no bars of 2024-06-03 in the lake and no snapshot"):
        bridge.market(session)
    last = project.lake.read("bars", "2024-05-31", "2024-05-31").set_index("symbol")["close"]
    market = bridge.market(session, last * 1.01)
    today = market.bars.loc[market.bars["date"] == pd.Timestamp(session)].set_index("symbol")
    np.testing.assert_allclose(today["close"], (last * 1.01).reindex(today.index))
    assert (today["open"] == today["close"]).all()
    rows = bridge.signals(session, last * 1.01)
    assert set(rows["date"]) == {pd.Timestamp(session)}


def test_cli_live_rebalance_paper_prints_then_sends_once(project, monkeypatch):
    from qpipe.live.paper import PaperBroker

    monkeypatch.setenv("QPIPE_DATA", str(project.root))
    cfg = str(project.root.parent / "c.yaml")
    args = ["--config", cfg, "live", "rebalance", "--strategy", "lin", "--session", "2024-05-31"]
    dry = CliRunner().invoke(cli, args)
    assert dry.exit_code == 0, dry.output
    assert "lin, session 2024-05-31: orders" in dry.output and "qp:lin:20240531:" in dry.output
    broker = PaperBroker(project.lake)
    assert broker.positions() == {}  # a dry run sends nothing
    paper = CliRunner().invoke(cli, [*args, "--paper"])
    assert paper.exit_code == 0, paper.output
    assert "sent 5 orders to the paper broker" in paper.output
    assert len(broker.positions()) == 5
    again = CliRunner().invoke(cli, [*args, "--paper"])  # a re-run doubles nothing
    assert again.exit_code == 0 and "sent 5 orders" not in again.output
    assert len(broker.executions(dt.date(2000, 1, 1))) == 5
    bad = CliRunner().invoke(cli, [*args[:-2], "--session", "2024-06-01"])
    assert bad.exit_code != 0 and "2024-06-01 is not a XNYS session" in bad.output
    cancel = CliRunner().invoke(cli, ["--config", cfg, "live", "cancel-all"])
    assert cancel.exit_code == 0 and "cancelled 0 open orders" in cancel.output


def test_rebalance_time_follows_the_close_and_skips_holidays(project):
    from qpipe.live.timing import due_session, rebalance_time

    cal = project.calendar
    utc = dt.UTC
    # 2024-11-27 closes 16:00 ET (21:00 UTC): due 20:50 UTC with 10 minutes.
    assert rebalance_time(cal, dt.date(2024, 11, 27), 10) == pd.Timestamp("2024-11-27 20:50Z")
    assert due_session(cal, dt.datetime(2024, 11, 27, 20, 52, tzinfo=utc), 10) == dt.date(
        2024, 11, 27
    )
    assert due_session(cal, dt.datetime(2024, 11, 27, 20, 45, tzinfo=utc), 10) is None
    # The day after Thanksgiving closes at 13:00 ET: due 17:50 UTC.
    assert due_session(cal, dt.datetime(2024, 11, 29, 17, 50, tzinfo=utc), 10) == dt.date(
        2024, 11, 29
    )
    assert due_session(cal, dt.datetime(2024, 11, 29, 20, 50, tzinfo=utc), 10) is None
    # Thanksgiving itself: never.
    for hour in range(24):
        assert due_session(cal, dt.datetime(2024, 11, 28, hour, 50, tzinfo=utc), 10) is None


def test_market_close_job_and_schedule(project):
    from dagster import DagsterInstance, RunRequest, build_schedule_context

    from qpipe.defs.build import build_definitions

    defs = build_definitions(project, str(project.root.parent / "c.yaml"))
    schedule = defs.resolve_schedule_def("market_close")
    with DagsterInstance.ephemeral() as instance:
        tick = dt.datetime(2024, 5, 31, 19, 40, tzinfo=dt.UTC)  # 16:00 EDT - 20 min
        request = schedule.evaluate_tick(
            build_schedule_context(
                instance=instance,
                scheduled_execution_time=tick,
                resources={"qpipe": defs.resources["qpipe"]},
            )
        ).run_requests[0]
        assert isinstance(request, RunRequest) and request.run_key == "close-2024-05-31"
        config = request.run_config["ops"]["rebalance_strategies"]["config"]
        assert config == {"mode": "dry_run", "session": "2024-05-31"}
        result = defs.resolve_job_def("market_close_rebalance").execute_in_process(
            instance=instance, run_config=request.run_config
        )
        assert result.success
        assert result.output_for_node("rebalance_strategy") == {
            "lin": 0,
            "guard": 0,
            "rot": 0,
            "ivol": 0,
        }
    assert len(project.lake.read("bars")) > 0
    from qpipe.live.journal import Journal

    assert set(Journal(project.lake.root).read("intended")["strategy"]) >= {"lin"}


def test_cli_live_check(project, tmp_path, monkeypatch):
    fresh_copy(project, tmp_path, monkeypatch)  # a new paper account (cash not negative)
    cfg = str(project.root.parent / "c.yaml")
    good = CliRunner().invoke(cli, ["--config", cfg, "live", "check", "--symbol", "S0002"])
    assert good.exit_code == 0, good.output
    assert "connected to the paper broker" in good.output
    assert "daily bars of S0002, last 2024-05-31" in good.output
    bad = CliRunner().invoke(cli, ["--config", cfg, "live", "check", "--symbol", "NOPE"])
    assert bad.exit_code == 1
    assert "FAIL" in bad.output and "NOPE: no price in the lake" in bad.output


# ---------------------------------------------------------------------- IB, end to end


def fake_gateway(project, **faults) -> FakeTWS:
    """A fake gateway that knows the project's instruments, last closes and recent bars;
    ``faults``: FakeTWS's fault options (e.g. reject_symbols)."""
    bars = project.lake.read("bars", "2024-05-01", "2024-05-31")
    last = bars.groupby("symbol")["close"].last()
    history = {
        s: [(r.date.date(), r.open, r.high, r.low, r.close, r.volume) for r in g.itertuples()]
        for s, g in bars.groupby("symbol")
    }
    listed = list(project.instruments["symbol"])
    return FakeTWS(
        contracts={s: 1000 + i for i, s in enumerate(listed)},
        prices=last.to_dict(),
        bars=history,
        **faults,
    )


@pytest.fixture
def gateway(project):
    """The fake gateway of :func:`fake_gateway`, running."""
    fake = fake_gateway(project)
    with fake:
        yield fake
    assert fake.failures == []


def fresh_copy(project, tmp_path, monkeypatch) -> Path:
    """A copy of the project's data with no live state (its own account, journal and risk
    state), made the data directory of the CLI."""
    data = tmp_path / "data"
    shutil.copytree(project.root, data)
    shutil.rmtree(data / "lake" / "live", ignore_errors=True)
    monkeypatch.setenv("QPIPE_DATA", str(data))
    return data


def ib_config(project, gateway: FakeTWS, **live) -> str:
    path = project.root.parent / f"ib-{gateway.port}.yaml"
    cfg = yaml.safe_load((project.root.parent / "c.yaml").read_text())
    cfg["live"] = {**cfg["live"], "broker": "ib", "port": gateway.port, "client_id": 21, **live}
    write_config(path, cfg)
    return str(path)


def test_cli_live_check_on_ib(project, gateway, monkeypatch):
    monkeypatch.setenv("QPIPE_DATA", str(project.root))
    cfg = ib_config(project, gateway)
    args = ["--config", cfg, "live", "check", "--symbol", "S0002"]
    good = CliRunner().invoke(cli, [*args, "--place-test-order"])
    assert good.exit_code == 0, good.output
    for text in ("server version 157", "notice 2104", "account DU123456: net liquidation",
                 "5 daily bars of S0002, last 2024-05-31", "what-if of 1 S0002 MOC",
                 "placed and cancelled"):  # fmt: skip
        assert text in good.output, good.output
    (test_order,) = gateway.placed
    assert test_order["orderType"] == "LMT" and test_order["orderRef"].startswith("qp:check:")
    assert not any(o.is_open for o in gateway.orders.values())
    gateway.client_ids_in_use = {21}
    taken = CliRunner().invoke(cli, args)
    assert taken.exit_code == 1 and "client id 21 is already in use" in taken.output
    moved = CliRunner().invoke(cli, [*args, "--client-id", "22"])  # the flag overrides
    assert moved.exit_code == 0, moved.output
    gone = CliRunner().invoke(cli, [*args, "--port", "1"])
    assert gone.exit_code == 1
    assert "cannot connect to TWS / IB Gateway at 127.0.0.1:1" in gone.output


def test_cli_live_rebalance_execute_on_ib(project, gateway, monkeypatch):
    monkeypatch.setenv("QPIPE_DATA", str(project.root))
    args = ["live", "rebalance", "--strategy", "lin", "--session", "2024-05-31", "--execute"]
    kill = project.lake.root / "live" / "KILL"
    kill.parent.mkdir(parents=True, exist_ok=True)
    kill.touch()
    try:
        killed = CliRunner().invoke(cli, ["--config", ib_config(project, gateway), *args])
    finally:
        kill.unlink()
    assert killed.exit_code == 0 and "(5 killed)" in killed.output, killed.output
    assert gateway.placed == []
    sent = CliRunner().invoke(cli, ["--config", ib_config(project, gateway), *args])
    assert sent.exit_code == 0, sent.output
    assert "sent 5 orders to the ib broker" in sent.output
    refs = [p["orderRef"] for p in gateway.placed]
    assert len(set(refs)) == 5 and all(r.startswith("qp:lin:20240531:") for r in refs)
    assert {p["orderType"] for p in gateway.placed} == {"MOC"}
    again = CliRunner().invoke(cli, ["--config", ib_config(project, gateway), *args])
    assert again.exit_code == 0 and "sent 0 orders" in again.output, again.output
    assert len(gateway.placed) == 5  # the re-run found every reference and sent nothing
    refused = CliRunner().invoke(
        cli, ["--config", ib_config(project, gateway, accounts=["U999"]), *args]
    )
    assert refused.exit_code != 0 and "not in the live.accounts allow-list" in refused.output
    events = Journal(project.lake.root).read("events")
    assert events["detail"].str.contains("DU123456 is not in the live.accounts").any()
    assert len(gateway.placed) == 5


def test_risk_rules_run_against_the_live_account(project, tmp_path, monkeypatch):
    data = fresh_copy(project, tmp_path, monkeypatch)
    cfg = str(project.root.parent / "c.yaml")
    base = ["--config", cfg, "live", "rebalance", "--strategy", "guard", "--paper"]
    table = project.lake.read("signals_guard")
    decided = sorted(table.loc[table["target_weight"].notna(), "date"].unique())
    day = pd.Timestamp(decided[-2]).date()  # a rebalance with sessions after it
    after = project.calendar.next_session(day)
    first = CliRunner().invoke(cli, [*base, "--session", str(day)])
    assert first.exit_code == 0 and "sent 5 orders" in first.output, first.output
    # the next session's NAV is lower by the buys' costs: the breaker halts and sells all
    second = CliRunner().invoke(cli, [*base, "--session", str(after)])
    assert second.exit_code == 0 and "sent 5 orders" in second.output, second.output
    from qpipe.live.paper import PaperBroker

    assert PaperBroker(Project.load(cfg, data).lake).positions() == {}
    events = Journal(data / "lake").read("events")
    halts = events.loc[events["event"] == "circuit_breaker", "detail"]
    assert len(halts) == 1 and halts.iloc[0].startswith("daily loss")
    state = pd.read_parquet(data / "lake" / "live" / "risk" / "guard" / "breaker.parquet")
    assert state.set_index("phase").loc["after", "mode"] == "halted"
    earlier = CliRunner().invoke(cli, [*base, "--session", "2024-05-01"])
    assert earlier.exit_code != 0 and f"already at session {after}" in earlier.output


def test_a_missed_sync_is_filled_from_the_broker(project, gateway, tmp_path, monkeypatch):
    data = fresh_copy(project, tmp_path, monkeypatch)
    for day in ("2024-05-30", "2024-05-31"):  # the last two nightly syncs did not run
        shutil.rmtree(data / "lake" / "bars" / f"date={day}")
    args = ["live", "rebalance", "--strategy", "lin", "--session", "2024-05-31"]
    paper = CliRunner().invoke(cli, ["--config", str(project.root.parent / "c.yaml"), *args])
    assert paper.exit_code != 0 and "stale data: the last bar is 2024-05-29" in paper.output
    ib = CliRunner().invoke(cli, ["--config", ib_config(project, gateway), *args])
    assert ib.exit_code == 0, ib.output  # 05-30 from the gateway, 05-31 from its snapshot
    planned = Journal(data / "lake").read("snapshot")
    planned = planned.loc[planned["mode"] == "dry_run"].set_index("symbol")["target_weight"]
    table = project.lake.read("signals_lin")
    want = table.loc[table["date"] == "2024-05-31"].set_index("symbol")["target_weight"]
    # the factors read closes only: the filled bars reproduce the signal table exactly
    pd.testing.assert_series_equal(planned.dropna().sort_index(), want.dropna().sort_index(),
                                   check_names=False)  # fmt: skip


def test_market_close_job_executes_on_ib(project, gateway, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from qpipe.defs.build import build_definitions

    data = fresh_copy(project, tmp_path, monkeypatch)
    cfg = ib_config(project, gateway)
    defs = build_definitions(Project.load(cfg, data), cfg)
    config = {"mode": "execute", "strategies": ["lin"], "session": "2024-05-31"}
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("market_close_rebalance").execute_in_process(
            instance=instance, run_config={"ops": {"rebalance_strategies": {"config": config}}}
        )
    assert result.success and result.output_for_node("rebalance_strategy") == {"lin": 5}
    assert len({p["orderRef"] for p in gateway.placed}) == 5


def test_cli_cancel_all_on_ib(project, gateway, monkeypatch):
    from qpipe.live.broker import Order
    from qpipe.live.ib import IBBroker
    from qpipe.settings import LiveConfig

    monkeypatch.setenv("QPIPE_DATA", str(project.root))
    cfg = ib_config(project, gateway)
    with IBBroker(LiveConfig(broker="ib", port=gateway.port, client_id=21)) as b:
        for i in (1, 2):
            b.submit(Order("S0002", "buy", 1, "LMT", f"qp:t:{i}", 0.5))
    out = CliRunner().invoke(cli, ["--config", cfg, "live", "cancel-all"])
    assert out.exit_code == 0 and "cancelled 2 open orders" in out.output, out.output
    assert not any(o.is_open for o in gateway.orders.values())


def live_files(lake: Path) -> dict[str, bytes]:
    """Every file under the lake's live/ folder with its contents."""
    root = lake / "live"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_dry_run_changes_nothing_but_its_journal(project, tmp_path, monkeypatch):
    data = fresh_copy(project, tmp_path, monkeypatch)
    cfg = str(project.root.parent / "c.yaml")
    base = ["--config", cfg, "live", "rebalance", "--strategy", "guard"]
    table = project.lake.read("signals_guard")
    decided = sorted(table.loc[table["target_weight"].notna(), "date"].unique())
    day = pd.Timestamp(decided[-2]).date()
    later = pd.Timestamp(decided[-1]).date()
    first = CliRunner().invoke(cli, [*base, "--paper", "--session", str(day)])
    assert first.exit_code == 0 and "sent 5 orders" in first.output, first.output
    before = live_files(data / "lake")
    journal = Journal(data / "lake")
    rows = {k: len(journal.read(k)) for k in ("snapshot", "intended", "submitted", "events")}
    dry = CliRunner().invoke(cli, [*base, "--session", str(later)])  # the risk rules run too
    assert dry.exit_code == 0 and "guard, session" in dry.output, dry.output
    after = live_files(data / "lake")
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed and all(k.startswith("journal/") for k in changed), changed
    for kind, n in rows.items():  # the new journal rows are all marked as a dry run
        assert set(journal.read(kind).iloc[n:]["mode"]) <= {"dry_run"}, kind
    assert len(journal.read("snapshot")) > rows["snapshot"]
    # the earlier session still runs, dry and for real: the dry run did not move the state
    again = CliRunner().invoke(cli, [*base, "--session", str(day)])
    assert again.exit_code == 0, again.output
    paper = CliRunner().invoke(cli, [*base, "--paper", "--session", str(day)])
    assert paper.exit_code == 0, paper.output


# ---------------------------------------------------------------------- explaining, isolation


def test_no_orders_says_why(project, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from qpipe.defs.build import build_definitions

    data = fresh_copy(project, tmp_path, monkeypatch)
    cfg = str(project.root.parent / "c.yaml")
    # lin holds its book first (one that holds nothing starts instead: see
    # test_a_strategy_holding_nothing_starts_at_the_next_session); rot's last rebalance
    # (2024-04-30) is all cash: nothing to start with.
    args = ["--config", cfg, "live", "rebalance", "--paper", "--strategy", "lin"]
    out = CliRunner().invoke(cli, [*args, "--session", "2024-05-17"])
    assert out.exit_code == 0 and "sent 5 orders" in out.output, out.output
    # lin is weekly: 2024-05-21 (a Tuesday) -> that week's last session, Friday 05-24;
    # rot is monthly: 2024-05-21 -> May's last session, 05-31 (Memorial Day 05-27 is closed).
    # The week of Memorial Day: 2024-05-28 -> 05-31.
    want = {
        ("lin", "2024-05-21"): "not a rebalance day for lin; next one on 2024-05-24",
        ("rot", "2024-05-21"): "not a rebalance day for rot; next one on 2024-05-31",
        ("lin", "2024-05-28"): "not a rebalance day for lin; next one on 2024-05-31",
    }
    for (name, day), text in want.items():
        args = ["--config", cfg, "live", "rebalance", "--strategy", name, "--session", day]
        out = CliRunner().invoke(cli, args)
        assert out.exit_code == 0, out.output
        assert f"{name}, session {day}: no orders: {text}" in out.output, out.output
    events = Journal(data / "lake").read("events")
    noted = events.loc[events["event"] == "no_orders"]
    assert set(zip(noted["strategy"], noted["session"], noted["detail"], strict=True)) == {
        (name, day, text) for (name, day), text in want.items()
    }
    defs = build_definitions(Project.load(cfg, data), cfg)
    config = {"strategies": ["lin"], "session": "2024-05-28"}
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("market_close_rebalance").execute_in_process(
            instance=instance, run_config={"ops": {"rebalance_strategies": {"config": config}}}
        )
        assert result.success
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert any(want[("lin", "2024-05-28")] in m for m in messages), messages


def test_a_strategy_holding_nothing_starts_at_the_next_session(project, tmp_path, monkeypatch):
    from qpipe.live.paper import PaperBroker

    data = fresh_copy(project, tmp_path, monkeypatch)
    cfg = str(project.root.parent / "c.yaml")
    base = ["--config", cfg, "live", "rebalance", "--strategy", "lin", "--session"]
    signals = project.lake.read("signals_lin")
    decided = signals.loc[signals["target_weight"].notna()]
    last = decided.loc[decided["date"] == pd.Timestamp("2024-05-17")]  # lin's last rebalance
    want = last.loc[last["target_weight"] > 0].set_index("symbol")["target_weight"]
    assert len(want) == 5
    starting = "starting: trading to the targets of 2024-05-17"
    # 2024-05-21 is no rebalance day of lin; the new account holds nothing: a dry run plans
    # the start and sends nothing, the paper run buys lin's 2024-05-17 targets.
    dry = CliRunner().invoke(cli, [*base, "2024-05-21"])
    assert dry.exit_code == 0 and f"lin, session 2024-05-21: orders ({starting})" in dry.output
    broker = PaperBroker(Project.load(cfg, data).lake)
    assert broker.positions() == {}
    paper = CliRunner().invoke(cli, [*base, "2024-05-21", "--paper"])
    assert paper.exit_code == 0 and "sent 5 orders" in paper.output, paper.output
    held = broker.positions()
    assert set(held) == set(want.index)
    # w of lin's sleeve (its allocation of the 1,000,000 account) at the fill price
    sleeve = 1e6 * Project.load(cfg, data).settings.strategies["lin"].allocation
    for symbol, w in want.items():
        assert 0.9 * w <= held[symbol].quantity * held[symbol].avg_cost / sleeve <= 1.01 * w
    events = Journal(data / "lake").read("events")
    started = events.loc[events["event"] == "starting"]
    assert list(started["detail"]) == [starting, starting]  # the dry run's and the paper's
    assert set(started["session"]) == {"2024-05-21"}
    # Holding its book, the next plain session has no orders and says why.
    later = CliRunner().invoke(cli, [*base, "2024-05-22", "--paper"])
    assert later.exit_code == 0, later.output
    assert "no orders: not a rebalance day for lin; next one on 2024-05-24" in later.output
    assert "starting" not in later.output


def test_holds_nothing():
    from qpipe.live.broker import Position
    from qpipe.live.rebalance import holds_nothing

    held = {"A": Position("A", 10.0, 1.0), "B": Position("B", 0.0, 0.0)}
    assert holds_nothing(held, ["B", "C"]) and holds_nothing({}, ["A"])
    assert not holds_nothing(held, ["A", "C"])


def refuse_big(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trade strategy ``big`` under a per-name limit of 0.2 at the close (the limits are one
    section for every strategy, and a strategy that can exceed one is refused at load: this
    makes one strategy's refusal at the close happen in a test)."""
    import dataclasses

    from qpipe.live.trader import LiveTrader

    original = LiveTrader._rebalance

    def limited(self, strategy, *args, **kwargs):
        if strategy == "big":
            tight = dataclasses.replace(self.limits, max_weight=0.2)
            self = dataclasses.replace(self, limits=tight)
        return original(self, strategy, *args, **kwargs)

    monkeypatch.setattr(LiveTrader, "_rebalance", limited)


def with_big(project, path: Path, **live) -> str:
    """The project's config with a strategy ``big`` (first by name; 2 names at 0.5 each: above the
    per-name limit 0.2 that :func:`refuse_big` gives it, so always refused) and ``lin`` after
    it."""
    cfg = yaml.safe_load((project.root.parent / "c.yaml").read_text())
    big = {**STRATEGIES["lin"], "params": {**STRATEGIES["lin"]["params"], "top_k": 2,
                                            "hold_band": 0}}  # fmt: skip
    cfg["strategies"] = {"big": big, "lin": STRATEGIES["lin"]}
    cfg["live"] = {**cfg["live"], **live}
    write_config(path, cfg)
    return str(path)


def test_cli_one_strategy_refused_the_other_sends_on_paper(project, tmp_path, monkeypatch):
    from qpipe.live.paper import PaperBroker

    data = fresh_copy(project, tmp_path, monkeypatch)
    refuse_big(monkeypatch)
    cfg = with_big(project, tmp_path / "big.yaml")
    args = ["--config", cfg, "live", "rebalance", "--paper", "--session", "2024-05-31"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 1, out.output
    assert "big, session 2024-05-31: refused: weights above the per-name limit 0.2" in out.output
    assert "sent 5 orders to the paper broker" in out.output  # lin, after big's refusal
    assert "1 of 2 strategies failed: big" in out.output
    want = project.lake.read("signals_lin")
    want = want.loc[(want["date"] == "2024-05-31") & (want["target_weight"] > 0), "symbol"]
    assert set(PaperBroker(Project.load(cfg, data).lake).positions()) == set(want)
    events = Journal(data / "lake").read("events")
    refused = events.loc[events["event"] == "refused"]
    assert list(refused["strategy"]) == ["big"]
    assert "weights above the per-name limit 0.2" in refused["detail"].iloc[0]


def test_cli_a_failing_strategy_is_isolated(project, tmp_path, monkeypatch):
    from qpipe.live import rebalance as step

    data = fresh_copy(project, tmp_path, monkeypatch)
    cfg = str(project.root.parent / "c.yaml")
    targets = step.LiveDataBridge.targets

    def broken(self, session, snapshot=None):
        if self.name == "guard":
            raise RuntimeError("no bars for guard today")
        return targets(self, session, snapshot)

    monkeypatch.setattr(step.LiveDataBridge, "targets", broken)
    out = CliRunner().invoke(cli, ["--config", cfg, "live", "rebalance", "--paper",
                                   "--session", "2024-05-31"])  # fmt: skip
    assert out.exit_code == 1, out.output
    assert "guard, session 2024-05-31: failed: RuntimeError: no bars for guard today" in out.output
    assert "1 of 4 strategies failed: guard" in out.output
    # the strategies after guard (ivol, lin) still sent theirs; rot's targets are all cash
    journal = Journal(data / "lake")
    submitted = journal.read("submitted")
    sent = submitted.loc[submitted["action"] == "sent", "strategy"]
    assert set(sent) == {"ivol", "lin"}
    assert out.output.count("orders to the paper broker") == 2
    events = journal.read("events")
    failed = events.loc[events["event"] == "failed"]
    assert list(failed["strategy"]) == ["guard"]
    assert failed["detail"].iloc[0] == "failed: RuntimeError: no bars for guard today"


def test_one_strategy_refused_the_other_sends_on_ib(project, gateway, tmp_path, monkeypatch):
    from dagster import DagsterInstance

    from qpipe.defs.build import build_definitions

    data = fresh_copy(project, tmp_path, monkeypatch)
    refuse_big(monkeypatch)
    cfg = with_big(project, tmp_path / "big-ib.yaml", broker="ib", port=gateway.port,
                   client_id=21)  # fmt: skip
    # the job: big's step fails naming it, lin's step still sends its orders
    defs = build_definitions(Project.load(cfg, data), cfg)
    config = {"mode": "execute", "session": "2024-05-31"}
    with DagsterInstance.ephemeral() as instance:
        result = defs.resolve_job_def("market_close_rebalance").execute_in_process(
            instance=instance,
            run_config={"ops": {"rebalance_strategies": {"config": config}}},
            raise_on_error=False,
        )
    assert not result.success
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [e.step_key for e in failures] == ["rebalance_strategy[big]"]
    failure = str(failures[0].event_specific_data)
    assert "strategy big 2024-05-31: refused: weights above" in failure
    successes = [e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"]
    assert "rebalance_strategy[lin]" in successes
    refs = {p["orderRef"] for p in gateway.placed}
    assert len(refs) == 5 and all(r.startswith("qp:lin:20240531:") for r in refs)
    # the CLI: big refused again, lin (already sent) sends nothing more, the exit status is 1
    args = ["--config", cfg, "live", "rebalance", "--execute", "--session", "2024-05-31"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 1 and "1 of 2 strategies failed: big" in out.output, out.output
    assert "lin, session 2024-05-31: orders" in out.output
    assert len(gateway.placed) == 5
    refused = Journal(data / "lake").read("events")
    assert list(refused.loc[refused["event"] == "refused", "strategy"]) == ["big", "big"]


def test_orders_rejected_at_the_broker_fail_that_strategy_only(project, tmp_path, monkeypatch):
    data = fresh_copy(project, tmp_path, monkeypatch)
    # ivol (first by name) buys S0015 on 2024-05-31, lin does not: the broker rejects it
    table = project.lake.read("signals_ivol")
    ivol = table.loc[(table["date"] == "2024-05-31") & (table["target_weight"] > 0), "symbol"]
    assert "S0015" in set(ivol)
    fake = fake_gateway(project, reject_symbols=["S0015"])
    with fake:
        cfg = yaml.safe_load((project.root.parent / "c.yaml").read_text())
        cfg["strategies"] = {k: STRATEGIES[k] for k in ("ivol", "lin")}
        cfg["live"] = {**cfg["live"], "broker": "ib", "port": fake.port, "client_id": 21}
        path = str(write_config(tmp_path / "reject.yaml", cfg))
        args = ["--config", path, "live", "rebalance", "--execute", "--session", "2024-05-31"]
        out = CliRunner().invoke(cli, args)
    assert fake.failures == []
    assert out.exit_code == 1, out.output
    assert "failed: 1 of 5 orders not accepted: S0015 rejected" in out.output
    assert "1 of 2 strategies failed: ivol" in out.output
    # lin, after ivol's failure, sent every order it planned
    lin = {p["orderRef"] for p in fake.placed if p["orderRef"].startswith("qp:lin:")}
    intended = Journal(data / "lake").read("intended")
    planned = intended.loc[intended["strategy"] == "lin", "reference"]
    assert len(lin) >= 5 and lin == set(planned)
    events = Journal(data / "lake").read("events")
    failed = events.loc[events["event"] == "failed"]
    assert list(failed["strategy"]) == ["ivol"] and "S0015 rejected" in failed["detail"].iloc[0]


def test_an_interrupted_rebalance_rerun_sends_exactly_the_missing_orders(
    project, tmp_path, monkeypatch
):
    """Two strategies sharing one account on the fake gateway: the connection drops after
    three orders (no reconnect within the run), then the same session is run again: every
    order planned is at the gateway exactly once."""
    from qpipe.live.ib import IBBroker

    data = fresh_copy(project, tmp_path, monkeypatch)
    monkeypatch.setitem(IBBroker.__init__.__kwdefaults__, "reconnect_attempts", 0)
    fake = fake_gateway(project, drop_after_orders=3)
    fake.fill = False  # market-on-close orders wait for the close
    with fake:
        cfg = yaml.safe_load((project.root.parent / "c.yaml").read_text())
        cfg["strategies"] = {k: STRATEGIES[k] for k in ("ivol", "lin")}
        cfg["live"] = {**cfg["live"], "broker": "ib", "port": fake.port, "client_id": 21}
        path = str(write_config(tmp_path / "drop.yaml", cfg))
        args = ["--config", path, "live", "rebalance", "--execute", "--session", "2024-05-31"]
        first = CliRunner().invoke(cli, args)
        assert len(fake.placed) == 3
        assert first.exit_code == 1, first.output  # a strategy could not send everything
        second = CliRunner().invoke(cli, args)
        assert second.exit_code == 0, second.output
        third = CliRunner().invoke(cli, args)
    assert fake.failures == []
    refs = [p["orderRef"] for p in fake.placed]
    assert len(refs) == len(set(refs))  # nothing sent twice
    intended = Journal(data / "lake").read("intended")
    planned = set(intended.loc[intended["mode"] == "execute", "reference"])
    assert {r.split(":")[1] for r in planned} == {"ivol", "lin"}
    assert set(refs) == planned  # every planned order, once
    assert "sent 0 orders" in third.output and third.exit_code == 0

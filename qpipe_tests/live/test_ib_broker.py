"""The IB broker and the live trader on it, against the loopback fake gateway: the unmodified
``ib_async`` client, the real wire protocol, no account."""

from __future__ import annotations

import datetime as dt
import logging
import re

import numpy as np
import pandas as pd
import pytest

from qpipe.live.broker import AlreadyPlaced, BrokerError, Order
from qpipe.live.ib import IBBroker
from qpipe.live.journal import Journal
from qpipe.live.pacing import Pacer
from qpipe.live.safety import SafetyRefusal
from qpipe.live.trader import KILL_ENV, Limits, LiveTrader, RebalanceRefused
from qpipe.settings import LiveConfig
from qpipe_tests.live.fake_tws import FakeTWS

SESSION = dt.date.today()
PREVIOUS = SESSION - dt.timedelta(days=1)
SYMBOLS = {"AAA": 101, "BBB": 102, "CCC": 103}
PRICES = {"AAA": 50.0, "BBB": 20.0, "CCC": 10.0}


def bars(close: float, n: int = 10) -> list[tuple]:
    days = pd.bdate_range(end=SESSION - dt.timedelta(days=1), periods=n)
    return [(d.date(), close, close + 1, close - 1, close + i * 0.1, 1000.0 + i)
            for i, d in enumerate(days)]  # fmt: skip


@pytest.fixture
def tws():
    fake = FakeTWS(
        contracts=dict(SYMBOLS),
        prices=dict(PRICES),
        bars={s: bars(p) for s, p in PRICES.items()},
        positions={"CCC": (1000.0, 9.0)},
    )
    with fake:
        yield fake
    assert fake.failures == []


def broker(tws: FakeTWS, **kw) -> IBBroker:
    cfg = LiveConfig(broker="ib", port=tws.port, client_id=kw.pop("client_id", 11),
                     **kw.pop("live", {}))  # fmt: skip
    fast = {"timeout": 5.0, "reconnect_delay": 0.05, "history_backoff": 0.01,
            "order_wait": 2.0, "pacer": Pacer(per_key=100, key_window=1.0),
            "snapshot_ttl": 0.0}  # fmt: skip
    return IBBroker(cfg, **{**fast, **kw})


def test_account_positions_bars_snapshot_and_what_if(tws, caplog):
    with caplog.at_level(logging.INFO, logger="qpipe.ib"), broker(tws) as b:
        assert b.server_version == 157
        assert b.account_id == "DU123456"
        account = b.account()
        assert account.net_liquidation == 1_000_000 and account.cash == 1_000_000
        held = b.positions()
        assert held["CCC"].quantity == 1000 and held["CCC"].avg_cost == 9.0
        frame = b.daily_bars(["AAA", "BBB"], 5)
        assert len(frame) == 10
        last = frame.loc[frame["symbol"] == "AAA"].iloc[-1]
        assert last["date"] == bars(50.0)[-1][0] and last["close"] == pytest.approx(50.9)
        assert b.snapshot(["AAA", "CCC"]).to_dict() == {"AAA": 50.0, "CCC": 10.0}
        preview = b.what_if(Order("AAA", "buy", 10, "MOC", "qp:t:whatif"))
        assert np.isfinite(preview.commission) and np.isfinite(preview.init_margin_change)
        assert not tws.placed  # a what-if places nothing
    assert {code for _, code, _ in b.notices} >= {2104, 2106, 2158}
    assert "2104" in caplog.text  # info codes are logged


def test_orders_of_every_type_carry_their_reference(tws):
    tws.fill = False
    orders = [
        Order("AAA", "buy", 10, "MOC", "r-moc"),
        Order("AAA", "buy", 10, "LOC", "r-loc", 49.0),
        Order("BBB", "sell", 5, "MOO", "r-moo"),
        Order("BBB", "buy", 7, "MKT", "r-mkt"),
        Order("CCC", "buy", 3, "LMT", "r-lmt", 5.0),
    ]
    with broker(tws) as b:
        states = [b.submit(o).state for o in orders]
        assert states == ["submitted"] * 5
        assert {s.order.reference for s in b.open_orders()} == {o.reference for o in orders}
    placed = {p["orderRef"]: p for p in tws.placed}
    assert (placed["r-moc"]["orderType"], placed["r-moc"]["tif"]) == ("MOC", "DAY")
    assert (placed["r-loc"]["orderType"], placed["r-loc"]["lmtPrice"]) == ("LOC", 49.0)
    assert (placed["r-moo"]["orderType"], placed["r-moo"]["tif"]) == ("MKT", "OPG")
    assert placed["r-moo"]["action"] == "SELL" and placed["r-moo"]["totalQuantity"] == 5
    assert placed["r-lmt"]["orderType"] == "LMT"
    assert all(p["account"] == "DU123456" for p in tws.placed)


def test_fill_execution_and_commission(tws):
    with broker(tws) as b:
        status = b.submit(Order("AAA", "buy", 100, "MKT", "r1"))
        assert status.state == "filled" and status.filled == 100 and status.avg_price == 50.0
        fills = b.executions()
    assert [(f.reference, f.symbol, f.side, f.quantity, f.price) for f in fills] == [
        ("r1", "AAA", "buy", 100.0, 50.0)
    ]
    assert fills[0].commission == pytest.approx(1.0)


def test_reject_cancel_and_unknown_symbol(tws):
    tws.reject_symbols = {"BBB"}
    tws.fill = False
    with broker(tws) as b:
        rejected = b.submit(Order("BBB", "buy", 1, "MOC", "r-bad"))
        assert rejected.state == "rejected" and "201" in rejected.message
        b.submit(Order("AAA", "buy", 1, "LMT", "r-open", 1.0))
        b.cancel("r-open")
        assert b.open_orders() == []
        with pytest.raises(BrokerError, match="no open order with reference r-open"):
            b.cancel("r-open")
        with pytest.raises(BrokerError, match="IB does not know the symbol ZZZ"):
            b.submit(Order("ZZZ", "buy", 1, "MOC", "r-zzz"))
    assert [p["orderRef"] for p in tws.placed] == ["r-bad", "r-open"]


def test_error_162_is_retried_then_reported(tws):
    tws.history_errors = {"AAA": 2}
    with broker(tws, history_retries=2) as b:
        assert len(b.daily_bars(["AAA"], 3)) == 3  # third attempt
    tws.history_errors = {"BBB": 5}
    with broker(tws, history_retries=1) as b, pytest.raises(BrokerError, match="162"):
        b.daily_bars(["BBB"], 3)


def test_identical_history_requests_are_served_from_the_cache(tws):
    with broker(tws) as b:
        b.daily_bars(["AAA"], 5)
        b.daily_bars(["AAA"], 5)
    assert sum(1 for _, msg, _ in tws.requests if msg == 20) == 1  # reqHistoricalData


def test_client_id_in_use_is_named(tws):
    tws.client_ids_in_use = {11}
    with pytest.raises(BrokerError, match="client id 11 is already in use"):
        broker(tws).connect()


def test_live_port_and_account_allow_list_refuse_before_anything_is_sent(tws):
    with pytest.raises(SafetyRefusal, match="7496"):
        IBBroker(LiveConfig(broker="ib", port=7496)).connect()
    b = broker(tws, live={"accounts": ["U999"]})
    with pytest.raises(
        SafetyRefusal, match=re.escape("DU123456 is not in the live.accounts allow-list")
    ):
        b.connect()
    b.close()
    assert not tws.placed


def test_no_gateway_is_a_clear_error():
    cfg = LiveConfig(broker="ib", port=1, client_id=3)  # nothing listens on port 1
    with pytest.raises(
        BrokerError, match=re.escape("cannot connect to TWS / IB Gateway at 127.0.0.1:1")
    ):
        IBBroker(cfg, timeout=2.0).connect()


def test_connectivity_lost_blocks_orders_until_restored(tws):
    with broker(tws) as b:
        b.account()
        tws.send_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
        b.account()  # the notice arrives with the next answer
        with pytest.raises(BrokerError, match="lost its connection to IB"):
            b.submit(Order("AAA", "buy", 1, "MOC", "r-lost"))
        tws.send_error(1102, "Connectivity between IB and TWS has been restored - data maintained.")
        b.account()
        assert b.submit(Order("AAA", "buy", 1, "MOC", "r-after")).state == "filled"
    assert [p["orderRef"] for p in tws.placed] == ["r-after"]


def test_reconnect_reconciles_by_reference(tws):
    tws.fill = False
    with broker(tws, client_id=12) as other:  # another session placed r-x today
        other.submit(Order("AAA", "buy", 1, "MOC", "r-x"))
    with broker(tws) as b:
        b.account()
        tws.drop_all()  # the gateway restarts
        assert b.account().net_liquidation == 1_000_000  # reconnected on the way
        assert b.reconnects == 1
        with pytest.raises(AlreadyPlaced, match="r-x is already at the broker"):
            b.submit(Order("AAA", "buy", 1, "MOC", "r-x"))
        b.submit(Order("BBB", "buy", 1, "MOC", "r-b"))
    assert [p["orderRef"] for p in tws.placed] == ["r-x", "r-b"]


# ---------------------------------------------------------------------- the live trader on IB


def trader(tmp_path, b: IBBroker, **limits) -> LiveTrader:
    return LiveTrader(b, Journal(tmp_path), Limits(**{"max_order_notional": 1e6, **limits}),
                      kill_file=tmp_path / "KILL")  # fmt: skip


TARGETS = pd.Series({"AAA": 0.1, "BBB": 0.05, "CCC": 0.0})


def test_normal_rebalance(tws, tmp_path):
    with broker(tws) as b:
        report = trader(tmp_path, b).rebalance("s", SESSION, TARGETS, PREVIOUS, PREVIOUS,
                                               "execute")  # fmt: skip
    # 1,000,000 NAV: AAA 100,000 / 50 = 2,000; BBB 50,000 / 20 = 2,500; CCC sold out
    got = {(p["orderRef"].split(":")[-1], p["action"], p["totalQuantity"], p["orderType"])
           for p in tws.placed}  # fmt: skip
    assert got == {("AAA", "BUY", 2000, "MOC"), ("BBB", "BUY", 2500, "MOC"),
                   ("CCC", "SELL", 1000, "MOC")}  # fmt: skip
    assert tws.placed[0]["action"] == "SELL"  # reductions first
    assert set(report.orders["action"]) == {"sent"}
    fills = Journal(tmp_path).read("fills")
    assert sorted(fills["symbol"]) == ["AAA", "BBB", "CCC"]


def test_rejected_order_is_reported_and_journaled(tws, tmp_path):
    tws.reject_symbols = {"BBB"}
    with broker(tws) as b:
        report = trader(tmp_path, b).rebalance("s", SESSION, TARGETS, PREVIOUS, PREVIOUS,
                                               "execute")  # fmt: skip
    row = report.orders.set_index("symbol").loc["BBB"]
    assert row["action"] == "rejected" and "201" in row["message"]
    journal = Journal(tmp_path).read("submitted").set_index("symbol")
    assert journal.loc["BBB", "action"] == "rejected"


def test_dropped_connection_mid_rebalance_then_rerun_sends_nothing_twice(tws, tmp_path):
    tws.fill = False  # MOC orders wait for the close
    tws.drop_after_orders = 2
    with broker(tws, reconnect_attempts=0) as b:
        first = trader(tmp_path, b).rebalance("s", SESSION, TARGETS, PREVIOUS, PREVIOUS,
                                              "execute")  # fmt: skip
    assert (first.orders["action"] == "error").sum() == 1  # the third could not be sent
    assert len(tws.placed) == 2
    with broker(tws) as b:  # the re-run after the gateway is back
        second = trader(tmp_path, b).rebalance("s", SESSION, TARGETS, PREVIOUS, PREVIOUS,
                                               "execute")  # fmt: skip
    refs = [p["orderRef"] for p in tws.placed]
    assert len(refs) == 3 and len(set(refs)) == 3
    assert sorted(second.orders["action"]) == ["already_open", "already_open", "sent"]


def test_dropped_connection_is_reconnected_within_the_run(tws, tmp_path):
    tws.fill = False
    tws.drop_after_orders = 1
    with broker(tws) as b:
        report = trader(tmp_path, b).rebalance("s", SESSION, TARGETS, PREVIOUS, PREVIOUS,
                                               "execute")  # fmt: skip
        assert b.reconnects >= 1
    refs = [p["orderRef"] for p in tws.placed]
    assert len(refs) == len(set(refs)) == 3
    assert set(report.orders["action"]) <= {"sent", "already_open", "error"}


def test_stale_data_kill_switch_and_bad_input_send_nothing(tws, tmp_path, monkeypatch):
    with broker(tws) as b:
        t = trader(tmp_path, b)
        old = PREVIOUS - dt.timedelta(days=3)
        with pytest.raises(RebalanceRefused, match="stale data"):
            t.rebalance("s", SESSION, TARGETS, old, PREVIOUS, "execute")
        wide = trader(tmp_path, b, max_weight=1.0)
        heavy = pd.Series({"AAA": 0.4, "BBB": 0.4, "CCC": 0.4})
        with pytest.raises(
            RebalanceRefused, match=re.escape("sum to 1.2000 gross, above the limit 1.0")
        ):
            wide.rebalance("s", SESSION, heavy, PREVIOUS, PREVIOUS, "execute")
        with pytest.raises(RebalanceRefused, match="IB does not know the symbol ZZZ"):
            t.rebalance("s", SESSION, pd.Series({"ZZZ": 0.1}), PREVIOUS, PREVIOUS, "execute")
        del tws.prices["BBB"]  # no last trade and no previous close: no price at all
        saved = tws.bars.pop("BBB")
        with pytest.raises(RebalanceRefused, match="BBB: no usable price"):
            t.rebalance("s", SESSION, TARGETS, PREVIOUS, PREVIOUS, "execute")
        tws.prices["BBB"], tws.bars["BBB"] = 20.0, saved
        monkeypatch.setenv(KILL_ENV, "1")
        killed = t.rebalance("s", SESSION, TARGETS, PREVIOUS, PREVIOUS, "execute")
        assert set(killed.orders["action"]) == {"killed"}
    assert tws.placed == []
    refusals = Journal(tmp_path).read("events")["detail"].tolist()
    assert any("stale data" in r for r in refusals)
    assert any("ZZZ" in r for r in refusals) and any("no usable price" in r for r in refusals)


def test_a_quiet_connection_is_checked_with_a_heartbeat(tws):
    with broker(tws, heartbeat=0.0) as b:
        b.account()
    assert any(msg == 49 for _, msg, _ in tws.requests)  # reqCurrentTime
    with broker(tws, heartbeat=3600.0) as b:
        before = sum(1 for _, msg, _ in tws.requests if msg == 49)
        b.account()
    assert sum(1 for _, msg, _ in tws.requests if msg == 49) == before


def test_without_ib_async_the_message_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ib_async", None)  # an import of it now fails
    with pytest.raises(BrokerError, match=re.escape("pip install 'qpipe[live]'")):
        IBBroker(LiveConfig(broker="ib")).connect()


def test_recent_quotes_are_reused(tws):
    with broker(tws, snapshot_ttl=60.0) as b:
        b.snapshot(["AAA", "BBB"])
        tws.prices["AAA"] = 99.0
        assert b.snapshot(["AAA", "CCC"]).to_dict() == {"AAA": 50.0, "CCC": 10.0}
    asked = sum(1 for _, msg, _ in tws.requests if msg == 1)  # reqMktData
    assert asked == 3  # AAA, BBB, then CCC only

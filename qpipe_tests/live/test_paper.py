"""The paper broker: fills at the lake's latest close with slippage and commission, state
kept in the lake across instances, limit orders left open and cancelled, refusals named."""

from __future__ import annotations

import datetime as dt

import pytest

from qpipe.backtest.config import BacktestConfig
from qpipe.live.broker import BrokerError, Order
from qpipe.live.paper import PaperBroker

NOW = dt.datetime(2024, 1, 4, 20, 50, tzinfo=dt.UTC)


def broker(lake):
    costs = BacktestConfig(commission_bps=10, slippage_bps=50, min_commission=1.0,
                           initial_cash=10_000.0)  # fmt: skip
    return PaperBroker(lake, costs, clock=lambda: NOW)


def test_buy_then_sell_by_hand(lake):
    with broker(lake) as b:
        assert b.account().net_liquidation == 10_000.0
        assert b.snapshot(["A", "B", "C"]).tolist()[:2] == [12.0, 25.0]
        status = b.submit(Order("A", "buy", 100, "MOC", "r1"))
        # 12 x 1.005 = 12.06; notional 1,206; fee max(1.206, 1) = 1.206.
        assert status.state == "filled" and status.avg_price == pytest.approx(12.06)
        account = b.account()
        assert account.cash == pytest.approx(10_000 - 1_206 - 1.206)
        assert account.net_liquidation == pytest.approx(account.cash + 100 * 12.0)
        assert b.positions()["A"].avg_cost == pytest.approx(12.06)
    again = broker(lake)  # a new instance reads the same state
    status = again.submit(Order("A", "sell", 40, "MKT", "r2"))
    assert status.avg_price == pytest.approx(12 * 0.995)
    assert again.positions()["A"].quantity == 60
    assert again.positions()["A"].avg_cost == pytest.approx(12.06)  # a reduction keeps it
    fills = again.executions(NOW.date())
    assert [(f.reference, f.side, f.quantity) for f in fills] == [("r1", "buy", 100),
                                                                  ("r2", "sell", 40)]  # fmt: skip
    assert fills[1].commission == pytest.approx(1.0)  # 40 x 11.94 x 10 bp < the minimum
    assert again.executions(NOW.date() + dt.timedelta(days=1)) == []


def test_limit_order_waits_and_is_cancelled(lake):
    b = broker(lake)
    status = b.submit(Order("B", "buy", 10, "LMT", "r3", limit_price=24.0))
    assert status.state == "submitted" and b.positions() == {}
    assert [s.order.reference for s in b.open_orders()] == ["r3"]
    b.cancel("r3")
    assert b.open_orders() == []
    with pytest.raises(BrokerError, match="no open order with reference r3"):
        b.cancel("r3")


def test_refusals(lake):
    b = broker(lake)
    with pytest.raises(BrokerError, match="C: no price in the lake"):
        b.submit(Order("C", "buy", 1, "MOC", "r4"))
    b.submit(Order("A", "buy", 1, "MOC", "r5"))
    with pytest.raises(BrokerError, match="r5 is already at the broker"):
        b.submit(Order("A", "buy", 1, "MOC", "r5"))
    preview = b.what_if(Order("B", "buy", 100, "MOC", "r6"))
    assert preview.commission == pytest.approx(100 * 25 * 1.005 * 1e-3)
    assert "r6" not in {s.order.reference for s in b.open_orders()}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"quantity": 1.5}, "whole shares"),
        ({"quantity": 0}, "whole shares"),
        ({"side": "hold"}, "side must be buy or sell"),
        ({"order_type": "STP"}, "type must be one of"),
        ({"order_type": "LMT"}, "LMT needs a limit price"),
        ({"limit_price": 10.0}, "MOC takes no limit price"),
        ({"reference": ""}, "a reference is required"),
    ],
)
def test_bad_orders_are_refused(kwargs, message):
    args = {"symbol": "A", "side": "buy", "quantity": 1, "order_type": "MOC", "reference": "r",
            **kwargs}  # fmt: skip
    with pytest.raises(ValueError, match=message):
        Order(**args)


def test_corporate_actions_are_booked_like_the_engine(tmp_path):
    import pandas as pd

    from qpipe.data.lake import Lake

    lake = Lake(tmp_path / "lake")
    day1, day2, day3 = pd.to_datetime(["2024-01-02", "2024-01-03", "2024-01-04"])

    def bars(day, close):
        frame = pd.DataFrame({"date": day, "symbol": ["A"], "open": close, "high": close,
                              "low": close, "close": close, "volume": 1e6})  # fmt: skip
        lake.write("bars", frame, [day])

    bars(day1, 10.0)
    b = PaperBroker(lake, BacktestConfig(initial_cash=10_000.0), clock=lambda: NOW)
    b.submit(Order("A", "buy", 100, "MOC", "r1"))  # 1,000 at 10, no costs
    # Day 2: a 2-for-1 split and a 0.10 dividend per post-split share; day 3's dividend
    # is announced but its ex-date is after the lake's last bar: it waits.
    bars(day2, 5.0)
    actions = pd.DataFrame({"date": [day2, day3], "symbol": ["A", "A"],
                            "split_ratio": [2.0, 1.0], "dividend": [0.1, 0.5],
                            "factor": [0.49, 0.9]})  # fmt: skip
    lake.write("corporate_actions", actions, [day2, day3])
    files = {p.name: p.read_bytes() for p in (tmp_path / "lake" / "live" / "paper").iterdir()}
    held = b.positions()["A"]
    assert (held.quantity, held.avg_cost) == (200.0, 5.0)
    assert b.account().cash == pytest.approx(9_000 + 200 * 0.1)
    assert b.account().net_liquidation == pytest.approx(9_020 + 200 * 5.0)
    # Reading changes nothing on disk (a dry run writes nothing).
    assert files == {
        p.name: p.read_bytes() for p in (tmp_path / "lake" / "live" / "paper").iterdir()
    }
    b.submit(Order("A", "sell", 50, "MOC", "r2"))  # the state saved as of day 2, booked once
    assert b.positions()["A"].quantity == 150.0
    assert b.account().cash == pytest.approx(9_020 + 50 * 5.0)
    bars(day3, 5.0)  # now day 3's dividend is due, on the 150 shares
    assert b.account().cash == pytest.approx(9_270 + 150 * 0.5)

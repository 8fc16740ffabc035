"""The fake TWS against the unmodified ``ib_async`` client: connection and start-up sync,
account data, contracts, bars, snapshots, what-if, orders (fills, open, cancel, rejects),
state across reconnects, client id in use, dropped connections and injected errors.

Each test runs its client on a fresh event loop of its own (no plugin, no global loop) and
ends with ``tws.failures == []``; ``ib_async``'s decoder must not have logged an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from ib_async import IB, ExecutionFilter, Order, Stock
from ib_async.wrapper import RequestError

from qpipe_tests.live.fake_tws import SERVER_VERSION, FakeTWS

T = TypeVar("T")
ACCOUNT = "DU123456"
DAYS = [dt.date(2024, 1, 2) + dt.timedelta(days=i) for i in range(14)]
SESSIONS = [d for d in DAYS if d.weekday() < 5]  # 10 weekdays, 2024-01-02 .. 2024-01-15
AAPL_BARS = [
    (d, 100.0 + i, 102.0 + i, 99.0 + i, 101.0 + i, 1e6 + i) for i, d in enumerate(SESSIONS)
]


@pytest.fixture
def tws() -> Iterator[FakeTWS]:
    """A running fake with AAPL and MSFT (bars for AAPL, prices for both, a long AAPL)."""
    fake = FakeTWS(
        contracts={"AAPL": 265598, "MSFT": 272093, "BAD": 1111},
        primary_exchanges={"AAPL": "NASDAQ", "MSFT": "NASDAQ"},
        bars={"AAPL": AAPL_BARS},
        prices={"AAPL": 190.0, "MSFT": 400.0, "BAD": 10.0},
        positions={"AAPL": (10.0, 150.0)},
    )
    with fake:
        yield fake
    fake.assert_no_failures()


@pytest.fixture(autouse=True)
def _client_decoded_everything(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """``ib_async`` swallows decoding errors into its log: fail on any."""
    caplog.set_level(logging.WARNING, logger="ib_async")
    yield
    bad = [
        r.getMessage()
        for r in caplog.get_records("call")
        if r.name == "ib_async.Decoder"
        or "Unknown reqId" in r.getMessage()
        or "No order found" in r.getMessage()
        or "timed out" in r.getMessage()
    ]
    assert bad == []


def run(coro: Coroutine[Any, Any, T], timeout: float = 10) -> T:
    """Run ``coro`` on a new event loop, then cancel leftovers and close the loop."""
    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(asyncio.wait_for(coro, timeout))
    finally:

        async def settle() -> None:
            pending = asyncio.all_tasks() - {asyncio.current_task()}
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            await asyncio.sleep(0.01)  # let closed transports finish

        loop.run_until_complete(settle())
        loop.close()


@contextlib.asynccontextmanager
async def client(
    tws: FakeTWS, client_id: int = 7, timeout: float = 5
) -> AsyncIterator[tuple[IB, list[tuple[int, int, str]]]]:
    """A connected ``IB`` (start-up sync must not time out) and the errors it receives."""
    ib = IB()
    errors: list[tuple[int, int, str]] = []
    ib.errorEvent += lambda req_id, code, message, _contract: errors.append((req_id, code, message))
    await ib.connectAsync(
        "127.0.0.1", tws.port, clientId=client_id, timeout=timeout, raiseSyncErrors=True
    )
    try:
        yield ib, errors
    finally:
        ib.disconnect()
        await asyncio.sleep(0.01)


async def until(condition: Callable[[], Any], timeout: float = 2.0) -> None:
    """Wait until ``condition()`` is true."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.005)


def commission_in(trade: Any) -> bool:
    """Whether every fill of the trade has its commission report."""
    return bool(trade.fills) and all(f.commissionReport.execId for f in trade.fills)


def AAPL() -> Stock:
    return Stock("AAPL", "SMART", "USD")


def MSFT() -> Stock:
    return Stock("MSFT", "SMART", "USD")


# connection -------------------------------------------------------------------------------


def test_connect_syncs_and_gets_accounts_and_farm_codes(tws: FakeTWS) -> None:
    async def scenario() -> None:
        started = time.monotonic()
        async with client(tws, client_id=7) as (ib, errors):
            assert time.monotonic() - started < 1.0
            assert ib.isConnected()
            assert ib.client.serverVersion() == SERVER_VERSION == 157
            assert ib.managedAccounts() == [ACCOUNT]
            assert tws.connected_client_ids == [7]
            assert [(r, c) for r, c, _ in errors] == [(-1, 2104), (-1, 2106), (-1, 2158)]
            assert errors[1][2] == "HMDS data farm connection is OK:ushmds"
            now = await ib.reqCurrentTimeAsync()
            assert abs((now - dt.datetime.now(dt.UTC)).total_seconds()) < 5

    run(scenario())
    start_api = [(cid, f) for cid, m, f in tws.requests if m == 71]
    assert start_api == [(7, ["71", "2", "7", ""])]
    # the start-up sync: positions, open and completed orders, account updates (+multi),
    # executions, all from client 7
    assert {m for cid, m, _ in tws.requests if cid == 7} >= {5, 6, 7, 49, 61, 76, 99}
    assert tws.ignored == []
    assert tws.failures == []


def test_client_id_in_use_fails_connect_with_timeout(tws: FakeTWS) -> None:
    tws.client_ids_in_use = {9}
    in_use = "Unable to connect as the client id is already in use. Retry with a unique client id."

    async def refused(client_id: int) -> tuple[BaseException, list, list[str]]:
        ib = IB()
        errors: list[tuple[int, int, str]] = []
        api_errors: list[str] = []
        ib.errorEvent += lambda req_id, code, message, _c: errors.append((req_id, code, message))
        ib.client.apiError += api_errors.append
        with pytest.raises(TimeoutError) as info:
            await ib.connectAsync("127.0.0.1", tws.port, clientId=client_id, timeout=0.5)
        assert not ib.isConnected()
        return info.value, errors, api_errors

    async def scenario() -> None:
        exc, errors, api_errors = await refused(9)
        assert type(exc) is TimeoutError  # ib_async waits for the API start until the timeout
        assert errors == [(-1, 326, in_use)]
        assert "Peer closed connection. clientId 9 already in use?" in api_errors
        async with client(tws, client_id=7):  # a live client id is in use too
            exc, errors, _ = await refused(7)
            assert [c for _, c, _ in errors] == [326]
            assert tws.connected_client_ids == [7]

    run(scenario())
    assert tws.failures == []


def test_several_clients_at_once_and_reconnects(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws, 1) as (ib1, _), client(tws, 2) as (ib2, _):
            assert tws.connected_client_ids == [1, 2]
            assert ib1.isConnected() and ib2.isConnected()
        for _ in range(3):
            async with client(tws, 1) as (ib, _):
                assert ib.positions()[0].position == 10.0

    run(scenario())
    assert tws.failures == []


# account ----------------------------------------------------------------------------------


def test_positions_portfolio_and_account_values(tws: FakeTWS) -> None:
    tws.positions["MSFT"] = (-5.0, 410.0)
    tws.account_values = {"NetLiquidation": 250_000.0, "TotalCashValue": 120_000.5}

    async def scenario() -> None:
        async with client(tws) as (ib, _):
            got = {p.contract.symbol: (p.position, p.avgCost, p.contract.conId, p.account)
                   for p in ib.positions()}  # fmt: skip
            assert got == {"AAPL": (10.0, 150.0, 265598, ACCOUNT),
                           "MSFT": (-5.0, 410.0, 272093, ACCOUNT)}  # fmt: skip
            values = {(v.tag, v.currency): float(v.value) for v in ib.accountValues(ACCOUNT)}
            assert values == {("NetLiquidation", "USD"): 250_000.0,
                              ("TotalCashValue", "USD"): 120_000.5}  # fmt: skip
            items = {i.contract.symbol: i for i in ib.portfolio()}
            assert items["AAPL"].marketPrice == 190.0
            assert items["AAPL"].marketValue == 1900.0
            assert items["AAPL"].unrealizedPNL == pytest.approx(400.0)
            assert items["MSFT"].position == -5.0
            summary = {v.tag: float(v.value) for v in await ib.accountSummaryAsync(ACCOUNT)}
            assert summary == {"NetLiquidation": 250_000.0, "TotalCashValue": 120_000.5}

    run(scenario())
    assert tws.failures == []


# contracts and data -----------------------------------------------------------------------


def test_qualify_contracts_known_and_unknown(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws) as (ib, errors):
            aapl, unknown = await ib.qualifyContractsAsync(AAPL(), Stock("NOPE", "SMART", "USD"))
            assert aapl is not None
            assert (aapl.conId, aapl.symbol, aapl.exchange, aapl.primaryExchange) == (
                265598,
                "AAPL",
                "SMART",
                "NASDAQ",
            )
            assert unknown is None
            assert errors[-1][1:] == (
                200,
                "No security definition has been found for the request",
            )
            details = await ib.reqContractDetailsAsync(MSFT())
            assert [d.contract.conId for d in details] == [272093]

    run(scenario())
    assert tws.failures == []


def test_historical_daily_bars(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws) as (ib, _):
            bars = await ib.reqHistoricalDataAsync(
                AAPL(), endDateTime="", durationStr="5 D", barSizeSetting="1 day",
                whatToShow="TRADES", useRTH=True,
            )  # fmt: skip
            assert [b.date for b in bars] == SESSIONS[-5:]
            first = AAPL_BARS[-5]
            assert (bars[0].open, bars[0].high, bars[0].low, bars[0].close, bars[0].volume) == (
                first[1:]
            )
            ended = await ib.reqHistoricalDataAsync(
                AAPL(), endDateTime="20240105 23:59:59 US/Eastern", durationStr="3 D",
                barSizeSetting="1 day", whatToShow="ADJUSTED_LAST", useRTH=True,
            )  # fmt: skip
            assert [b.date for b in ended] == [dt.date(2024, 1, 3), dt.date(2024, 1, 4),
                                               dt.date(2024, 1, 5)]  # fmt: skip
            week = await ib.reqHistoricalDataAsync(
                AAPL(), endDateTime="", durationStr="1 W", barSizeSetting="1 day",
                whatToShow="TRADES", useRTH=True,
            )  # fmt: skip
            assert [b.date for b in week] == SESSIONS[-5:]

    run(scenario())
    assert tws.failures == []


def test_historical_error_162(tws: FakeTWS) -> None:
    tws.history_errors = {"AAPL": 2}

    async def scenario() -> None:
        async with client(tws) as (ib, errors):
            args = dict(endDateTime="", durationStr="5 D", barSizeSetting="1 day",
                        whatToShow="TRADES", useRTH=True)  # fmt: skip
            assert list(await ib.reqHistoricalDataAsync(AAPL(), **args)) == []
            assert errors[-1][1] == 162
            ib.RaiseRequestErrors = True
            with pytest.raises(RequestError) as info:
                await ib.reqHistoricalDataAsync(AAPL(), **args)
            assert info.value.code == 162
            assert "HMDS query returned no data" in info.value.message
            assert len(await ib.reqHistoricalDataAsync(AAPL(), **args)) == 5  # errors used up

    run(scenario())
    assert tws.history_errors == {"AAPL": 0}
    assert tws.failures == []


def test_snapshot_prices(tws: FakeTWS) -> None:
    tws.prices["MSFT"] = math.nan

    async def scenario() -> None:
        async with client(tws) as (ib, _):
            contracts = await ib.qualifyContractsAsync(AAPL(), MSFT(), Stock("BAD", "SMART", "USD"))
            aapl, msft = await ib.reqTickersAsync(*contracts[:2])  # needs conIds (hashing)
            assert aapl.last == 190.0
            assert aapl.close == AAPL_BARS[-1][4]  # the prior close: the last bar
            assert math.isnan(msft.last) and math.isnan(msft.close)
            ib.reqMarketDataType(3)
            (delayed,) = await ib.reqTickersAsync(contracts[2])
            assert delayed.last == 10.0
            assert delayed.marketDataType == 3

    run(scenario())
    assert tws.failures == []


# orders -----------------------------------------------------------------------------------


def test_what_if_returns_margin_and_commission_without_placing(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws) as (ib, _):
            state = await ib.whatIfOrderAsync(AAPL(), Order(action="BUY", totalQuantity=100,
                                                            orderType="MOC"))  # fmt: skip
            assert state.status == "PreSubmitted"
            assert float(state.initMarginChange) == 0.25 * 100 * 190.0
            assert float(state.equityWithLoanChange) == -1.0
            assert state.commission == 1.0 and state.commissionCurrency == "USD"
            tws.what_if = {"initMarginChange": 1234.5, "commission": 3.25, "warningText": "w"}
            state = await ib.whatIfOrderAsync(AAPL(), Order(action="SELL", totalQuantity=400,
                                                            orderType="MKT"))  # fmt: skip
            assert (float(state.initMarginChange), state.commission, state.warningText) == (
                1234.5,
                3.25,
                "w",
            )
            assert float(state.maintMarginChange) == 0.25 * 400 * 190.0
            assert ib.trades() == []

    run(scenario())
    assert tws.placed == [] and tws.orders == {} and tws.executions == []
    assert tws.failures == []


def test_marketable_orders_fill_with_commission(tws: FakeTWS) -> None:
    orders = [
        (AAPL, Order(action="BUY", totalQuantity=100, orderType="MOC", orderRef="r-moc")),
        (AAPL, Order(action="SELL", totalQuantity=20, orderType="LMT", lmtPrice=185.0,
                     orderRef="r-lmt")),
        (MSFT, Order(action="BUY", totalQuantity=400, orderType="MKT", orderRef="r-mkt")),
        (MSFT, Order(action="BUY", totalQuantity=10, orderType="MKT", tif="OPG",
                     orderRef="r-moo")),
    ]  # fmt: skip

    async def scenario() -> None:
        async with client(tws) as (ib, _):
            trades = [ib.placeOrder(make(), order) for make, order in orders]
            await until(lambda: all(t.isDone() and commission_in(t) for t in trades))
            for trade, (_, order) in zip(trades, orders, strict=True):
                assert trade.orderStatus.status == "Filled"
                assert trade.orderStatus.filled == order.totalQuantity
                assert trade.orderStatus.remaining == 0
                (fill,) = trade.fills
                assert fill.execution.orderRef == order.orderRef
                assert fill.execution.shares == order.totalQuantity
                assert fill.execution.side == ("BOT" if order.action == "BUY" else "SLD")
                assert fill.commissionReport.commission == max(1.0, 0.005 * order.totalQuantity)
            assert trades[0].fills[0].execution.price == 190.0
            assert trades[2].fills[0].commissionReport.commission == 2.0
            assert len({t.fills[0].execution.execId for t in trades}) == 4
            # positions and account values move live (position / account updates)
            await until(lambda: {p.contract.symbol: p.position for p in ib.positions()}
                        == {"AAPL": 90.0, "MSFT": 410.0})  # fmt: skip
            cash = 1_000_000.0 - 80 * 190.0 - 410 * 400.0 - 1.0 - 1.0 - 2.0 - 1.0
            await until(lambda: float(value(ib, "TotalCashValue")) == pytest.approx(cash))
            assert float(value(ib, "NetLiquidation")) == pytest.approx(1_000_000.0 - 5.0)

    run(scenario())
    assert [(p["orderType"], p["tif"], p["orderRef"], p["lmtPrice"]) for p in tws.placed] == [
        ("MOC", "", "r-moc", None),
        ("LMT", "", "r-lmt", 185.0),
        ("MKT", "", "r-mkt", None),
        ("MKT", "OPG", "r-moo", None),
    ]
    assert tws.placed[0] | {"orderId": 0} == {
        "orderId": 0, "clientId": 7, "symbol": "AAPL", "action": "BUY",
        "totalQuantity": 100.0, "orderType": "MOC", "lmtPrice": None, "tif": "",
        "orderRef": "r-moc", "account": "",
    }  # fmt: skip
    assert tws.positions == {"AAPL": (90.0, pytest.approx((10 * 150.0 + 100 * 190.0) / 110)),
                             "MSFT": (410.0, 400.0)}  # fmt: skip
    assert [e["orderRef"] for e in tws.executions] == ["r-moc", "r-lmt", "r-mkt", "r-moo"]
    assert tws.failures == []


def value(ib: IB, tag: str) -> str:
    return next(v.value for v in ib.accountValues(ACCOUNT) if v.tag == tag and not v.modelCode)


def test_unmarketable_limits_stay_open_and_cancel(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws) as (ib, errors):
            loc = Order(action="BUY", totalQuantity=10, orderType="LOC", lmtPrice=180.0,
                        orderRef="r-loc")  # fmt: skip
            lmt = Order(action="SELL", totalQuantity=5, orderType="LMT", lmtPrice=200.0,
                        orderRef="r-lmt")  # fmt: skip
            t_loc, t_lmt = ib.placeOrder(AAPL(), loc), ib.placeOrder(AAPL(), lmt)
            await until(lambda: t_loc.orderStatus.status == t_lmt.orderStatus.status
                        == "Submitted")  # fmt: skip
            await asyncio.sleep(0.05)
            assert t_loc.fills == [] and t_lmt.fills == []
            assert {t.order.orderRef for t in ib.openTrades()} == {"r-loc", "r-lmt"}
            ib.cancelOrder(loc)
            await until(lambda: t_loc.orderStatus.status == "Cancelled")
            await until(lambda: any(c == 202 for _, c, _ in errors))
            assert (t_loc.order.orderId, 202, "Order Canceled - reason:") in errors
            assert t_lmt.orderStatus.status == "Submitted"
            ib.reqGlobalCancel()
            await until(lambda: t_lmt.orderStatus.status == "Cancelled")
            completed = await ib.reqCompletedOrdersAsync(apiOnly=True)
            assert sorted((t.order.orderRef, t.orderStatus.status) for t in completed) == [
                ("r-lmt", "Cancelled"),
                ("r-loc", "Cancelled"),
            ]

    run(scenario())
    assert [o.status for o in tws.orders.values()] == ["Cancelled", "Cancelled"]
    assert tws.executions == []
    assert tws.failures == []


def test_fill_false_keeps_orders_open_until_filled_by_hand(tws: FakeTWS) -> None:
    tws.fill = False

    async def scenario() -> None:
        async with client(tws) as (ib, _):
            trade = ib.placeOrder(MSFT(), Order(action="BUY", totalQuantity=3, orderType="MOC",
                                                orderRef="r-open"))  # fmt: skip
            await until(lambda: trade.orderStatus.status == "Submitted")
            await asyncio.sleep(0.05)
            assert trade.fills == []
            assert tws.fill_open_orders() == 1
            await until(lambda: trade.isDone() and commission_in(trade))
            assert trade.orderStatus.status == "Filled"
            assert trade.fills[0].execution.price == 400.0

    run(scenario())
    assert tws.failures == []


def test_rejected_and_unknown_symbols_cancel_the_trade(tws: FakeTWS) -> None:
    tws.reject_symbols = {"BAD"}

    async def scenario() -> None:
        async with client(tws) as (ib, _):
            rejected = ib.placeOrder(Stock("BAD", "SMART", "USD"),
                                     Order(action="BUY", totalQuantity=1, orderType="MOC",
                                           orderRef="r-bad"))  # fmt: skip
            nope = Stock("NOPE", "SMART", "USD")
            unknown = ib.placeOrder(nope, Order(action="BUY", totalQuantity=1, orderType="MKT"))
            await until(lambda: rejected.isDone() and unknown.isDone())
            await asyncio.sleep(0.02)
            assert rejected.orderStatus.status == "Cancelled"
            (entry,) = [e for e in rejected.log if e.errorCode]
            assert entry.errorCode == 201 and entry.status == "Cancelled"
            assert "Order rejected - reason:" in entry.message
            assert unknown.orderStatus.status == "Cancelled"
            assert [e.errorCode for e in unknown.log if e.errorCode] == [200]
            assert rejected.fills == []

    run(scenario())
    assert [p["symbol"] for p in tws.placed] == ["BAD", "NOPE"]
    assert tws.executions == []
    assert tws.failures == []


# state across reconnects ------------------------------------------------------------------


def test_orders_and_executions_survive_reconnect(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws, 7) as (ib, _):
            keep = ib.placeOrder(AAPL(), Order(action="BUY", totalQuantity=10, orderType="LOC",
                                               lmtPrice=150.0, orderRef="rb-keep"))  # fmt: skip
            done = ib.placeOrder(MSFT(), Order(action="BUY", totalQuantity=7, orderType="MOC",
                                               orderRef="rb-done"))  # fmt: skip
            await until(lambda: keep.orderStatus.status == "Submitted" and commission_in(done))
            last_id = done.order.orderId
        async with client(tws, 8) as (ib, _):
            assert ib.openTrades() == []  # client 8's own open orders: none
            trades = await ib.reqAllOpenOrdersAsync()
            assert [(t.order.orderRef, t.order.clientId, t.orderStatus.status) for t in trades
                    ] == [("rb-keep", 7, "Submitted")]  # fmt: skip
            fills = await ib.reqExecutionsAsync()
            assert [(f.execution.orderRef, f.execution.shares, f.execution.clientId)
                    for f in fills] == [("rb-done", 7.0, 7)]  # fmt: skip
            assert fills[0].contract.symbol == "MSFT"
            # ib_async quirk: the start-up sync already stored this execution, so the
            # explicit request returns a fresh Fill whose commission report stays empty;
            # the report lands on the stored Fill of ib.fills()
            assert fills[0].commissionReport.commission == 0.0
            assert [f.commissionReport.commission for f in ib.fills()] == [1.0]
            assert await ib.reqExecutionsAsync(ExecutionFilter(clientId=99)) == []
            assert len(await ib.reqExecutionsAsync(ExecutionFilter(clientId=7))) == 1
            later = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).strftime("%Y%m%d-%H:%M:%S")
            assert await ib.reqExecutionsAsync(ExecutionFilter(time=later)) == []
            earlier = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).strftime("%Y%m%d-%H:%M:%S")
            assert len(await ib.reqExecutionsAsync(ExecutionFilter(time=earlier))) == 1
        async with client(tws, 7) as (ib, _):
            assert ib.client.getReqId() > last_id  # nextValidId after the highest order id
            assert [t.order.orderRef for t in ib.openTrades()] == ["rb-keep"]
            done_trades = [t for t in ib.trades() if t.orderStatus.status == "Filled"]
            assert [t.order.orderRef for t in done_trades] == ["rb-done"]
            assert [f.execution.orderRef for f in done_trades[0].fills] == ["rb-done"]
            ib.cancelOrder(ib.openTrades()[0].order)
            await until(lambda: ib.openTrades() == [])

    run(scenario())
    assert tws.failures == []


def test_drop_after_orders_disconnects_the_client(tws: FakeTWS) -> None:
    tws.drop_after_orders = 2

    async def scenario() -> None:
        async with client(tws) as (ib, _):
            dropped: list[bool] = []
            ib.disconnectedEvent += lambda: dropped.append(True)
            first = ib.placeOrder(AAPL(), Order(action="BUY", totalQuantity=1, orderType="MKT",
                                                orderRef="rb-1"))  # fmt: skip
            await until(lambda: commission_in(first))
            assert ib.isConnected()
            ib.placeOrder(AAPL(), Order(action="BUY", totalQuantity=2, orderType="MKT",
                                        orderRef="rb-2"))  # fmt: skip
            await until(lambda: not ib.isConnected())
            assert dropped == [True]
        assert tws.drop_after_orders is None
        async with client(tws) as (ib, _):
            refs = sorted(f.execution.orderRef for f in await ib.reqExecutionsAsync())
            assert refs == ["rb-1", "rb-2"]

    run(scenario())
    assert tws.orders_received == 2
    assert tws.failures == []


# injected errors --------------------------------------------------------------------------


def test_send_error_and_drop_all(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws) as (ib, errors):
            tws.send_error(1100, "Connectivity between IB and Trader Workstation has been lost.")
            await until(lambda: errors[-1][1] == 1100)
            assert errors[-1] == (
                -1,
                1100,
                "Connectivity between IB and Trader Workstation has been lost.",
            )
            before = sum(1 for _, m, _ in tws.requests if m == 62)
            tws.send_error(1102, "Connectivity between IB and Trader Workstation has been "
                           "restored - data maintained.")  # fmt: skip
            await until(lambda: errors[-1][1] == 1102)
            # ib_async resubscribes the account summary on 1102
            await until(lambda: sum(1 for _, m, _ in tws.requests if m == 62) == before + 1)
            assert ib.isConnected()
            tws.drop_all()
            await until(lambda: not ib.isConnected())
            assert tws.connected_client_ids == []

    run(scenario())
    assert tws.failures == []


def test_unknown_requests_are_ignored(tws: FakeTWS) -> None:
    async def scenario() -> None:
        async with client(tws) as (ib, _):
            ib.reqNewsBulletins(True)  # msg 12: not served
            assert await ib.reqCurrentTimeAsync()  # the connection goes on

    run(scenario())
    assert [(cid, m) for cid, m, _ in tws.ignored] == [(7, 12)]
    assert tws.failures == []

"""The Interactive Brokers broker: TWS or IB Gateway through ``ib_async`` (the ``live`` extra).

The broker trades on an :class:`~qpipe.ib.connection.IBConnection` (the IB adapter it shares
with the IB data source): the event loop, connecting and reconnecting, the heartbeat, the
contracts, and paced, retried, cached daily bars are the connection's. TWS and the Gateway
restart nightly and order ids may roll back, so after every reconnect (and every restore,
code 1101 or 1102) the broker reconciles by order reference: it reloads open orders and the
day's executions, and :meth:`IBBroker.submit` refuses a reference that is already there
(:class:`~qpipe.live.broker.AlreadyPlaced`), so a dropped connection never doubles an order.

Orders are whole shares of SMART-routed stocks in ``live.currency``: MOC and LOC (tif DAY),
MOO (MKT with tif OPG), MKT and LMT (DAY), each carrying its reference as ``orderRef``. An
order is not sent while the gateway reports its connection to IB lost (code 1100).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from qpipe.ib.connection import (
    BAR_COLUMNS,
    INFO_CODES,
    LOST,
    IBConnection,
    load_ib_async,
)
from qpipe.ib.pacing import Pacer
from qpipe.live.broker import (
    Account,
    AlreadyPlaced,
    Broker,
    BrokerError,
    Execution,
    Order,
    OrderStatus,
    Position,
    WhatIf,
)
from qpipe.settings import LiveConfig

__all__ = ["IBBroker", "load_ib_async"]

ORDER_CANCELLED = 202
_OPEN_STATES = {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"}
_DONE_STATES = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}


class IBBroker(Broker):
    """A :class:`Broker` on TWS or IB Gateway at ``config.host:config.port`` as
    ``config.client_id``, through an :class:`~qpipe.ib.connection.IBConnection` built from the
    same arguments (its live-port and account allow-list checks run on :meth:`connect`).
    Times are seconds."""

    name = "ib"

    def __init__(
        self,
        config: LiveConfig,
        *,
        timeout: float = 10.0,
        heartbeat: float = 30.0,
        reconnect_attempts: int = 3,
        reconnect_delay: float = 2.0,
        history_retries: int = 3,
        history_backoff: float = 5.0,
        pacer: Pacer | None = None,
        order_wait: float = 5.0,
        snapshot_ttl: float = 60.0,
    ) -> None:
        self.config = config
        self.connection = IBConnection(
            config,
            timeout=timeout,
            heartbeat=heartbeat,
            reconnect_attempts=reconnect_attempts,
            reconnect_delay=reconnect_delay,
            history_retries=history_retries,
            history_backoff=history_backoff,
            pacer=pacer,
        )
        self.order_wait = order_wait
        self.snapshot_ttl = snapshot_ttl
        self._stale_refs = True
        self._resets_seen = 0
        self._known: dict[str, str] = {}  # reference -> "already_open" / "already_filled"
        self._quotes: dict[str, tuple[float, float]] = {}  # symbol -> (monotonic time, price)

    # ------------------------------------------------------------------ connection

    @property
    def _ib(self) -> Any:
        return self.connection.ib

    @property
    def account_id(self) -> str:
        return self.connection.account_id

    @property
    def server_version(self) -> int:
        return self.connection.server_version

    @property
    def notices(self) -> list[tuple[int, int, str]]:
        """Every error or notice the gateway sent: (request id, code, message)."""
        return self.connection.notices

    @property
    def reconnects(self) -> int:
        return self.connection.reconnects

    @property
    def where(self) -> str:
        return self.connection.where

    def describe(self) -> list[str]:
        """Where, the server version, the account and every notice the gateway sent."""
        return self.connection.describe()

    def connect(self) -> None:
        """Connect, pick the trading account and check it against the allow-list."""
        self.connection.connect()

    def close(self) -> None:
        self.connection.close()

    # ------------------------------------------------------------------ contracts and data

    def daily_bars(self, symbols: Sequence[str], sessions: int) -> pd.DataFrame:
        """Daily TRADES bars (regular hours) of the last ``sessions`` sessions (see
        :meth:`qpipe.ib.connection.IBConnection.history`)."""
        frames = [self.connection.history(s, f"{sessions} D") for s in symbols]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BAR_COLUMNS)

    def history(self, symbol: str, duration: str, end: dt.date | None = None) -> pd.DataFrame:
        """Daily bars of ``symbol`` (see :meth:`qpipe.ib.connection.IBConnection.history`)."""
        return self.connection.history(symbol, duration, end)

    def snapshot(self, symbols: Sequence[str]) -> pd.Series:
        """Last trade (else the previous close) per symbol from a market-data snapshot; NaN
        where there is no usable price. A symbol IB does not know is a :class:`BrokerError`.
        Prices younger than ``snapshot_ttl`` seconds are reused (``ib_async`` sends at most
        about 50 requests a second, IB's limit: a snapshot of 200 names takes 4 s)."""
        symbols = list(symbols)
        now = time.monotonic()
        stale = [
            s for s in symbols if now - self._quotes.get(s, (-math.inf, 0.0))[0] > self.snapshot_ttl
        ]
        if stale:
            contracts = self.connection.qualified(stale)
            self.connection.ensure()
            self.connection.run_sync(
                lambda: self._ib.reqMarketDataType(self.config.market_data_type)
            )
            for contract in contracts:  # ib_async keeps one ticker per contract: forget old ticks
                old = self._ib.ticker(contract)
                if old is not None:
                    old.last = old.close = float("nan")
            tickers = self.connection.request(lambda: self._ib.reqTickersAsync(*contracts))
            stamp = time.monotonic()
            for symbol, ticker in zip(stale, tickers, strict=True):
                self._quotes[symbol] = (stamp, _first_price(ticker.last, ticker.close))
        return pd.Series([self._quotes[s][1] for s in symbols], index=symbols, dtype=np.float64)

    # ------------------------------------------------------------------ account

    def account(self) -> Account:
        values = self.connection.request(lambda: self._ib.accountSummaryAsync(self.account_id))
        tags = {
            v.tag: v.value
            for v in values
            if v.account == self.account_id and v.currency in (self.config.currency, "BASE", "")
        }
        return Account(
            self.account_id,
            _number(tags.get("NetLiquidation")),
            _number(tags.get("TotalCashValue")),
        )

    def positions(self) -> dict[str, Position]:
        held = self.connection.request(lambda: self._ib.reqPositionsAsync())
        return {
            p.contract.symbol: Position(p.contract.symbol, float(p.position), float(p.avgCost))
            for p in held
            if p.account == self.account_id and p.contract.secType == "STK" and p.position
        }

    # ------------------------------------------------------------------ orders

    def _reconcile(self) -> None:
        """Reload which references are open or filled today (after a connect or reconnect)."""
        if not self._stale_refs and self._resets_seen == self.connection.resets:
            return
        resets = self.connection.resets
        known = {e.reference: "already_filled" for e in self.executions()}
        known.update({s.order.reference: "already_open" for s in self.open_orders()})
        self._known.update(known)
        self._stale_refs = False
        self._resets_seen = resets

    def open_orders(self) -> list[OrderStatus]:
        trades = self.connection.request(lambda: self._ib.reqAllOpenOrdersAsync())
        return [
            _status(t)
            for t in trades
            if t.orderStatus.status in _OPEN_STATES and t.contract.secType == "STK"
        ]

    def executions(self, since: dt.date | None = None) -> list[Execution]:
        """Fills since ``since`` (default: today, UTC) of the trading account."""
        day = since or dt.datetime.now(dt.UTC).date()
        ib_async = load_ib_async()
        flt = ib_async.ExecutionFilter(acctCode=self.account_id, time=f"{day:%Y%m%d}-00:00:00")
        fills = self.connection.request(lambda: self._ib.reqExecutionsAsync(flt))
        # commission reports attach to the session's first copy of each execution
        known = {f.execution.execId: f for f in self._ib.fills()}
        out = []
        for f in fills:
            e = f.execution
            report = known.get(e.execId, f).commissionReport
            fee = report.commission if report and math.isfinite(report.commission) else 0.0
            if fee > 1e300:  # IB's "unset" double
                fee = 0.0
            out.append(
                Execution(
                    e.execId,
                    e.orderRef or f"ib:{e.permId}",
                    f.contract.symbol,
                    "buy" if e.side == "BOT" else "sell",
                    float(e.shares),
                    float(e.price),
                    float(fee),
                    f.time,
                )
            )
        return [x for x in out if x.time.date() >= day]

    def _ib_order(self, order: Order, what_if: bool = False) -> Any:
        ib_async = load_ib_async()
        kind, tif = {"MOO": ("MKT", "OPG")}.get(order.order_type, (order.order_type, "DAY"))
        limit = {} if order.limit_price is None else {"lmtPrice": order.limit_price}
        return ib_async.Order(
            action="BUY" if order.side == "buy" else "SELL",
            totalQuantity=order.quantity,
            orderType=kind,
            **limit,
            tif=tif,
            orderRef=order.reference,
            account=self.account_id,
            whatIf=what_if,
            transmit=True,
        )

    def what_if(self, order: Order) -> WhatIf:
        contract = self.connection.contract(order.symbol)
        state = self.connection.request(
            lambda: self._ib.whatIfOrderAsync(contract, self._ib_order(order, what_if=True))
        )
        if not state:
            raise BrokerError(f"what-if of {order.reference}: no answer")
        return WhatIf(
            order.reference,
            _number(state.commission),
            _number(state.initMarginChange),
            _number(state.maintMarginChange),
            _number(state.equityWithLoanAfter),
        )

    def submit(self, order: Order) -> OrderStatus:
        """Place ``order`` and wait up to ``order_wait`` seconds for the gateway to take it.
        A reference already open or filled today raises :class:`AlreadyPlaced`."""
        contract = self.connection.contract(order.symbol)
        self.connection.ensure()
        if self.connection.lost:
            raise BrokerError(
                f"order {order.reference} not sent: the gateway has lost its connection to IB "
                f"(code {LOST}) and has not reported it restored"
            )
        self._reconcile()
        if order.reference in self._known:
            raise AlreadyPlaced(order.reference, self._known[order.reference])
        self._known[order.reference] = "already_open"
        try:
            trade = self.connection.run_sync(
                lambda: self._ib.placeOrder(contract, self._ib_order(order))
            )
        except ConnectionError as exc:
            self._stale_refs = True  # it may or may not have arrived
            del self._known[order.reference]
            raise BrokerError(f"order {order.reference} not sent: {exc}") from exc
        self._wait(lambda: trade.orderStatus.status not in ("PendingSubmit", "ApiPending", ""))
        if not self._ib.isConnected():
            self._stale_refs = True
        status = _status(trade, order)
        if status.state == "filled":
            self._known[order.reference] = "already_filled"
        elif status.state in ("cancelled", "rejected"):
            del self._known[order.reference]
        return status

    def _wait(self, done: Callable[[], bool]) -> None:
        self.connection.wait(done, self.order_wait)

    def cancel(self, reference: str) -> None:
        trades = self.connection.request(lambda: self._ib.reqAllOpenOrdersAsync())
        mine = [
            t for t in trades
            if t.order.orderRef == reference and t.orderStatus.status in _OPEN_STATES
        ]  # fmt: skip
        if not mine:
            raise BrokerError(f"no open order with reference {reference}")
        for trade in mine:
            self.connection.run_sync(lambda t=trade: self._ib.cancelOrder(t.order))
            self._wait(lambda t=trade: t.orderStatus.status in _DONE_STATES)
            if trade.orderStatus.status not in _DONE_STATES:
                raise BrokerError(
                    f"order {reference} not cancelled within {self.order_wait} s "
                    f"(status {trade.orderStatus.status}); orders belong to the client id "
                    "that placed them"
                )
        self._known.pop(reference, None)


def _number(value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return float("nan")
    return x if math.isfinite(x) and abs(x) < 1e300 else float("nan")


def _first_price(*values: Any) -> float:
    for value in values:
        x = _number(value)
        if x > 0:
            return x
    return float("nan")


def _status(trade: Any, order: Order | None = None) -> OrderStatus:
    """An ``ib_async`` trade as an :class:`OrderStatus` (the order rebuilt from the trade when
    not given)."""
    st = trade.orderStatus
    if order is None:
        o = trade.order
        kind = "MOO" if o.orderType == "MKT" and o.tif == "OPG" else o.orderType
        limit = _number(o.lmtPrice) if kind in ("LOC", "LMT") else None
        order = Order(
            trade.contract.symbol, "buy" if o.action == "BUY" else "sell",
            int(o.totalQuantity), kind, o.orderRef or f"ib:{o.permId}", limit,
        )  # fmt: skip
    errors = [e for e in trade.log if e.errorCode and e.errorCode not in INFO_CODES]
    if st.status == "Filled":
        state = "filled"
    elif st.status in _DONE_STATES:
        rejected = any(e.errorCode != ORDER_CANCELLED for e in errors)
        state = "rejected" if rejected and st.status != "ApiCancelled" else "cancelled"
    else:
        state = "submitted"
    filled = float(st.filled)
    message = "; ".join(f"{e.errorCode} {e.message}" for e in errors) or st.status
    price = float(st.avgFillPrice) if filled else float("nan")
    return OrderStatus(order, int(trade.order.orderId), state, filled, price, message)

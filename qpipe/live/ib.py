"""The Interactive Brokers broker: TWS or IB Gateway through ``ib_async`` (the ``live`` extra).

The broker owns a private asyncio event loop and drives ``ib_async``'s async API on it, one
call at a time (no ``util.startLoop``, no global loop). Before each call it makes sure the
connection is alive: a heartbeat (current time) when the last answer is older than
``heartbeat`` seconds, and a reconnect (``reconnect_attempts`` tries, ``reconnect_delay``
apart) when it is gone. TWS and the Gateway restart nightly and order ids may roll back, so
after a reconnect the broker reconciles by order reference: it reloads open orders and the
day's executions, and :meth:`IBBroker.submit` refuses a reference that is already there
(:class:`~qpipe.live.broker.AlreadyPlaced`), so a dropped connection never doubles an order.

Orders are whole shares of SMART-routed stocks in ``live.currency``: MOC and LOC (tif DAY),
MOO (MKT with tif OPG), MKT and LMT (DAY), each carrying its reference as ``orderRef``.
Historical daily bars are paced (:class:`~qpipe.live.pacing.Pacer`), retried on error 162
and cached per request. Informational codes (2104, 2106, 2158 and the other 21xx) are
logged; 1100 (connectivity lost) marks the connection as down until 1101 or 1102 restores it
(then the broker reconciles as after a reconnect).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from qpipe.errors import QpipeError
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
from qpipe.live.pacing import Pacer
from qpipe.live.safety import check_account, check_port
from qpipe.settings import LiveConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume"]
INFO_CODES = frozenset({2104, 2106, 2158})
LOST, RESTORED_DATA_LOST, RESTORED = 1100, 1101, 1102
CLIENT_ID_IN_USE = 326
HISTORY_ERROR = 162
ORDER_CANCELLED = 202
_OPEN_STATES = {"PendingSubmit", "ApiPending", "PreSubmitted", "Submitted", "PendingCancel"}
_DONE_STATES = {"Filled", "Cancelled", "ApiCancelled", "Inactive"}


def load_ib_async() -> Any:
    """The ``ib_async`` module, or a :class:`BrokerError` saying how to install it."""
    try:
        import ib_async
    except ImportError as exc:
        raise BrokerError(
            "the IB broker needs the ib_async package: pip install 'qpipe[live]'"
        ) from exc
    return ib_async


class IBBroker(Broker):
    """A :class:`Broker` on TWS or IB Gateway at ``config.host:config.port`` as
    ``config.client_id``. The live-port and account allow-list checks of
    :mod:`qpipe.live.safety` run on :meth:`connect`. Times are seconds."""

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
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay = reconnect_delay
        self.history_retries = history_retries
        self.history_backoff = history_backoff
        self.pacer = pacer or Pacer()
        self.order_wait = order_wait
        self.snapshot_ttl = snapshot_ttl
        self.account_id = ""
        self.server_version = 0
        self.notices: list[tuple[int, int, str]] = []
        """Every error or notice the gateway sent: (request id, code, message)."""
        self.reconnects = 0
        self._ib: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_answer = 0.0
        self._lost = False
        self._stale_refs = True
        self._known: dict[str, str] = {}  # reference -> "already_open" / "already_filled"
        self._contracts: dict[str, Any] = {}
        self._quotes: dict[str, tuple[float, float]] = {}  # symbol -> (monotonic time, price)
        self._bars: dict[tuple[str, str, dt.date | None], pd.DataFrame] = {}

    # ------------------------------------------------------------------ connection

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port} (client id {self.config.client_id})"

    def describe(self) -> list[str]:
        """Where, the server version, the account and every notice the gateway sent."""
        lines = [f"at {self.where}, server version {self.server_version}, "
                 f"account {self.account_id}"]  # fmt: skip
        return lines + [f"notice {code}: {message}" for _, code, message in self.notices]

    def connect(self) -> None:
        """Connect, pick the trading account and check it against the allow-list."""
        if self._ib is not None and self._ib.isConnected():
            return
        check_port(self.config)
        ib_async = load_ib_async()
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        self._ib = ib_async.IB()
        self._ib.RaiseRequestErrors = True
        self._ib.errorEvent += self._on_error
        self._open()
        try:
            self.account_id = self._pick_account(self._ib.managedAccounts())
            check_account(self.config, self.account_id)
        except QpipeError:
            self.close()
            raise

    def _open(self) -> None:
        before = len(self.notices)

        def refused() -> bool:
            return any(code == CLIENT_ID_IN_USE for _, code, _ in self.notices[before:])

        async def connect() -> None:
            # ib_async waits out its whole timeout after error 326: stop as soon as it comes
            task = asyncio.ensure_future(
                self._ib.connectAsync(
                    self.config.host,
                    self.config.port,
                    clientId=self.config.client_id,
                    timeout=self.timeout,
                )
            )
            while not task.done() and not refused():
                await asyncio.wait({task}, timeout=0.02)
            if not task.done():
                task.cancel()
                self._ib.disconnect()
                raise ConnectionError("client id in use")
            task.result()

        try:
            self._loop.run_until_complete(connect())  # type: ignore[union-attr]
        except (TimeoutError, OSError, ConnectionError, asyncio.CancelledError) as exc:
            if refused():
                raise BrokerError(
                    f"client id {self.config.client_id} is already in use at "
                    f"{self.config.host}:{self.config.port}: set live.client_id (or "
                    "--client-id) to another id, or close the other session"
                ) from exc
            raise BrokerError(
                f"cannot connect to TWS / IB Gateway at {self.where}: {exc or type(exc).__name__}"
                " (is it running, with the API enabled on this port?)"
            ) from exc
        self.server_version = int(self._ib.client.serverVersion())
        self._last_answer = time.monotonic()
        self._lost = False
        self._stale_refs = True

    def _pick_account(self, managed: list[str]) -> str:
        allowed = [a for a in managed if a in self.config.accounts]
        if self.config.accounts and allowed:
            return allowed[0]
        if len(managed) == 1 or (managed and self.config.accounts):
            return managed[0]  # an allow-list without it: check_account refuses it
        raise BrokerError(
            f"the gateway manages {len(managed)} accounts ({', '.join(managed) or 'none'}): "
            "name the one to trade in live.accounts"
        )

    def close(self) -> None:
        if self._ib is not None:
            self._ib.errorEvent -= self._on_error
            self._ib.disconnect()
            self._ib = None
        if self._loop is not None and not self._loop.is_closed():
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()
        self._loop = None

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        self.notices.append((req_id, code, message))
        if code in INFO_CODES or 2100 <= code < 2200:
            log.info("IB %s: %s", code, message)
        elif code == LOST:
            log.warning("IB %s: connectivity to IB lost: %s", code, message)
            self._lost = True
        elif code in (RESTORED, RESTORED_DATA_LOST):
            log.warning("IB %s: connectivity restored: %s", code, message)
            self._lost = False
            self._stale_refs = True  # fills may have been missed: reconcile again
        else:
            log.warning("IB error %s (request %s): %s", code, req_id, message)

    def _ensure(self) -> None:
        """A live connection: reconnect when it is gone, heartbeat when it has been quiet."""
        if self._ib is None:
            self.connect()
            return
        # let the loop take in what arrived since the last call (a closed socket, notices)
        self._loop.run_until_complete(asyncio.sleep(0.005))  # type: ignore[union-attr]
        if self._ib.isConnected() and time.monotonic() - self._last_answer > self.heartbeat:
            try:
                self._call(self._ib.reqCurrentTimeAsync, timeout=min(self.timeout, 5.0))
            except BrokerError:
                self._ib.disconnect()
        if self._ib.isConnected():
            return
        last: BrokerError | None = None
        for attempt in range(self.reconnect_attempts):
            if attempt:
                time.sleep(self.reconnect_delay)
            try:
                log.warning("IB connection lost; reconnecting to %s", self.where)
                self._open()
                self.reconnects += 1
                return
            except BrokerError as exc:
                last = exc
        if last is None:
            raise BrokerError(f"the connection to {self.where} is gone (reconnecting is off)")
        raise BrokerError(
            f"the connection to {self.where} is gone and "
            f"{self.reconnect_attempts} reconnects failed: {last}"
        )

    def _call(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run one request, made inside the broker's running loop (``ib_async`` ties its
        futures to the running loop); errors become :class:`BrokerError`."""
        limit = timeout or self.timeout

        async def bounded() -> T:
            return await asyncio.wait_for(make(), limit)

        try:
            result = self._loop.run_until_complete(bounded())  # type: ignore[union-attr]
        except TimeoutError as exc:
            raise BrokerError(f"no answer from {self.where} within {limit} s") from exc
        except ConnectionError as exc:
            raise BrokerError(f"connection to {self.where} failed: {exc}") from exc
        except Exception as exc:
            code = getattr(exc, "code", None)
            if code is None:
                raise
            raise BrokerError(f"IB error {code}: {getattr(exc, 'message', exc)}") from exc
        self._last_answer = time.monotonic()
        return result

    def _request(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """A read request on a live connection, asked again once after a reconnect when the
        connection dropped under it."""
        self._ensure()
        try:
            return self._call(make, timeout)
        except BrokerError:
            if self._ib.isConnected() or not self.reconnect_attempts:
                raise
        self._ensure()
        return self._call(make, timeout)

    # ------------------------------------------------------------------ contracts and data

    def _contract(self, symbol: str) -> Any:
        return self._qualified([symbol])[0]

    def _qualified(self, symbols: Sequence[str]) -> list[Any]:
        """The qualified stock contracts of ``symbols``, the new ones asked for in one batch
        and kept for the broker's life; symbols IB does not know are one BrokerError."""
        new = sorted({s for s in symbols if s not in self._contracts})
        if new:
            ib_async = load_ib_async()
            stocks = [ib_async.Stock(s, "SMART", self.config.currency) for s in new]
            self._ensure()
            self._ib.RaiseRequestErrors = False  # an unknown symbol: None, not the batch failing
            try:
                found = self._request(lambda: self._ib.qualifyContractsAsync(*stocks))
            finally:
                self._ib.RaiseRequestErrors = True
            unknown = [s for s, c in zip(new, found, strict=True) if c is None]
            if unknown:
                raise BrokerError(
                    f"IB does not know the symbol {', '.join(unknown)} (no security definition "
                    f"for a {self.config.currency} stock on SMART)"
                )
            self._contracts.update(zip(new, found, strict=True))
        return [self._contracts[s] for s in symbols]

    def daily_bars(self, symbols: Sequence[str], sessions: int) -> pd.DataFrame:
        """Daily TRADES bars (regular hours) of the last ``sessions`` sessions (see
        :meth:`history`)."""
        frames = [self.history(s, f"{sessions} D") for s in symbols]
        frames = [f for f in frames if len(f)]
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=BAR_COLUMNS)

    def history(self, symbol: str, duration: str, end: dt.date | None = None) -> pd.DataFrame:
        """Daily TRADES bars (regular hours; IB adjusts them for splits, not dividends) of
        ``symbol`` over ``duration`` (IB's form: ``"30 D"``, ``"2 Y"``) ending with ``end``
        (None: the latest). Paced, retried on error 162 (``history_retries`` times,
        ``history_backoff`` seconds times the attempt apart) and cached for the broker's
        life, so an identical request is never repeated."""
        key = (symbol, duration, end)
        if key in self._bars:
            return self._bars[key]
        contract = self._contract(symbol)
        end_text = "" if end is None else f"{end:%Y%m%d} 23:59:59 US/Eastern"
        for attempt in range(self.history_retries + 1):
            self.pacer.wait(symbol)
            try:
                bars = self._request(
                    lambda: self._ib.reqHistoricalDataAsync(
                        contract, endDateTime=end_text, durationStr=duration,
                        barSizeSetting="1 day", whatToShow="TRADES", useRTH=True, formatDate=1,
                        timeout=0,
                    ),
                    timeout=max(self.timeout, 30.0),
                )  # fmt: skip
                break
            except BrokerError as exc:
                if f"error {HISTORY_ERROR}" not in str(exc) or attempt == self.history_retries:
                    raise BrokerError(f"historical bars of {symbol}: {exc}") from exc
                log.warning("IB 162 on %s history (attempt %d): %s", symbol, attempt + 1, exc)
                time.sleep(self.history_backoff * (attempt + 1))
        frame = pd.DataFrame(
            {
                "date": [pd.Timestamp(b.date).date() for b in bars],
                "symbol": symbol,
                "open": [b.open for b in bars],
                "high": [b.high for b in bars],
                "low": [b.low for b in bars],
                "close": [b.close for b in bars],
                "volume": [float(b.volume) for b in bars],
            },
            columns=BAR_COLUMNS,
        )
        self._bars[key] = frame
        return frame

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
            contracts = self._qualified(stale)
            self._ensure()
            self._run_sync(lambda: self._ib.reqMarketDataType(self.config.market_data_type))
            for contract in contracts:  # ib_async keeps one ticker per contract: forget old ticks
                old = self._ib.ticker(contract)
                if old is not None:
                    old.last = old.close = float("nan")
            tickers = self._request(lambda: self._ib.reqTickersAsync(*contracts))
            stamp = time.monotonic()
            for symbol, ticker in zip(stale, tickers, strict=True):
                self._quotes[symbol] = (stamp, _first_price(ticker.last, ticker.close))
        return pd.Series([self._quotes[s][1] for s in symbols], index=symbols, dtype=np.float64)

    # ------------------------------------------------------------------ account

    def account(self) -> Account:
        values = self._request(lambda: self._ib.accountSummaryAsync(self.account_id))
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
        held = self._request(lambda: self._ib.reqPositionsAsync())
        return {
            p.contract.symbol: Position(p.contract.symbol, float(p.position), float(p.avgCost))
            for p in held
            if p.account == self.account_id and p.contract.secType == "STK" and p.position
        }

    # ------------------------------------------------------------------ orders

    def _reconcile(self) -> None:
        """Reload which references are open or filled today (after a connect or reconnect)."""
        if not self._stale_refs:
            return
        known = {e.reference: "already_filled" for e in self.executions()}
        known.update({s.order.reference: "already_open" for s in self.open_orders()})
        self._known.update(known)
        self._stale_refs = False

    def open_orders(self) -> list[OrderStatus]:
        trades = self._request(lambda: self._ib.reqAllOpenOrdersAsync())
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
        fills = self._request(lambda: self._ib.reqExecutionsAsync(flt))
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
        contract = self._contract(order.symbol)
        state = self._request(
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
        contract = self._contract(order.symbol)
        self._ensure()
        if self._lost:
            raise BrokerError(
                f"order {order.reference} not sent: the gateway has lost its connection to IB "
                f"(code {LOST}) and has not reported it restored"
            )
        self._reconcile()
        if order.reference in self._known:
            raise AlreadyPlaced(order.reference, self._known[order.reference])
        self._known[order.reference] = "already_open"
        try:
            trade = self._run_sync(lambda: self._ib.placeOrder(contract, self._ib_order(order)))
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

    def _run_sync(self, call: Callable[[], T]) -> T:
        """A synchronous ``ib_async`` call made inside the broker's running loop."""

        async def inside() -> T:
            return call()

        return self._loop.run_until_complete(inside())  # type: ignore[union-attr]

    def _wait(self, done: Callable[[], bool]) -> None:
        async def poll() -> None:
            end = time.monotonic() + self.order_wait
            while not done() and time.monotonic() < end and self._ib.isConnected():
                await asyncio.sleep(0.01)

        self._loop.run_until_complete(poll())  # type: ignore[union-attr]

    def cancel(self, reference: str) -> None:
        trades = self._request(lambda: self._ib.reqAllOpenOrdersAsync())
        mine = [
            t for t in trades
            if t.order.orderRef == reference and t.orderStatus.status in _OPEN_STATES
        ]  # fmt: skip
        if not mine:
            raise BrokerError(f"no open order with reference {reference}")
        for trade in mine:
            self._run_sync(lambda t=trade: self._ib.cancelOrder(t.order))
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

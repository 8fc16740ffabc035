"""A loopback fake of Interactive Brokers' TWS / IB Gateway for tests of the live module.

:class:`FakeTWS` listens on ``127.0.0.1`` (ephemeral port) in its own daemon thread with its
own event loop and speaks the TWS API socket protocol at server version 157 (4-byte
big-endian length frames of NUL-terminated ASCII fields; handshake ``API\\0`` + version
range; answer: server version and connection time). The unmodified ``ib_async`` client
connects to it (``IB.connectAsync`` completes its whole start-up synchronisation) and its
async API works against it.

What it covers (message layouts follow ``ib_async``'s ``client.py`` / ``decoder.py``):

- start-up: ``startApi`` -> nextValidId (after the highest order id ever seen),
  managedAccounts, the farm-OK info codes 2104/2106/2158; error 326 and a closed socket for
  a client id already in use; reqIds, reqCurrentTime, reqManagedAccts;
- US stocks only (SMART/USD): contract details (error 200 for an unknown symbol), daily
  historical bars (``"N D"`` = last N bars, ``W``/``M``/``Y`` by calendar span; injected
  error 162), market data snapshots (LAST and CLOSE ticks, then tickSnapshotEnd; delayed
  tick types after ``reqMarketDataType(3|4)``);
- account: positions (+ live position updates), account summary, account updates
  (values, portfolio, time, download end; live updates after fills), account updates multi;
- orders: place (MKT, MOC, MKT+OPG as MOO, LMT, LOC; modify an open order by placing it
  again), what-if (margin/commission in the openOrder's order state), immediate fills of
  marketable orders at ``prices`` with execDetails and commissionReport, injected
  rejections (error 201), cancel (error 202), global cancel, open / all open / completed
  orders, executions with a filter; orders and executions outlive connections;
- fault injection: :meth:`FakeTWS.send_error` (e.g. 1100/1101/1102), :meth:`FakeTWS.drop_all`,
  ``drop_after_orders``.

What it does not do: other security types, combo/algo/conditional orders (parsed, not
honoured), partial fills, streaming market data (a non-snapshot request gets one round of
ticks), intraday bars, pacing rules, account/model codes beyond one account (positions and
values belong to ``accounts[0]``), master client ids, FA allocations, news, scanners,
options. Unknown requests are logged and kept in :attr:`FakeTWS.ignored`.

Errors raised while serving a message are kept in :attr:`FakeTWS.failures` (tests assert it
is empty) and logged; the connection goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import math
import struct
import threading
import traceback
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

__all__ = ["SERVER_VERSION", "FakeOrder", "FakeTWS"]

logger = logging.getLogger(__name__)

SERVER_VERSION = 157
"""The server version the fake announces; every layout below is the one for 157."""

UNSET_DOUBLE = 1.7976931348623157e308
UNSET_INTEGER = 2**31 - 1
EASTERN = ZoneInfo("America/New_York")
UTC = dt.UTC

MSG_NO_SECDEF = "No security definition has been found for the request"
MSG_HMDS_NO_DATA = "Historical Market Data Service error message:HMDS query returned no data"
MSG_CLIENT_ID_IN_USE = (
    "Unable to connect as the client id is already in use. Retry with a unique client id."
)
FARM_OK = (
    (2104, "Market data farm connection is OK:usfarm"),
    (2106, "HMDS data farm connection is OK:ushmds"),
    (2158, "Sec-def data farm connection is OK:secdefnj"),
)
OPEN_STATUSES = frozenset({"PreSubmitted", "Submitted"})
LIMIT_TYPES = frozenset({"LMT", "LOC"})
MARKET_TYPES = frozenset({"MKT", "MOC"})

DEFAULT_ACCOUNT_VALUES: dict[str, float] = {
    "NetLiquidation": 1_000_000.0,
    "TotalCashValue": 1_000_000.0,
    "AvailableFunds": 1_000_000.0,
    "BuyingPower": 4_000_000.0,
    "EquityWithLoanValue": 1_000_000.0,
    "InitMarginReq": 0.0,
    "MaintMarginReq": 0.0,
}


class _ProtocolError(Exception):
    """A request whose fields do not follow the layout the fake expects."""


@dataclass
class FakeOrder:
    """An order the fake knows, keyed in :attr:`FakeTWS.orders` by (client id, order id).

    ``status`` is one of Submitted, Filled, Cancelled; ``lmt_price`` is None for
    market-type orders."""

    order_id: int
    client_id: int
    perm_id: int
    symbol: str
    con_id: int
    action: str
    quantity: float
    order_type: str
    lmt_price: float | None
    tif: str
    order_ref: str
    account: str
    status: str = "Submitted"
    filled: float = 0.0
    avg_fill_price: float = 0.0
    last_fill_price: float = 0.0
    completed_time: str = ""

    @property
    def is_open(self) -> bool:
        """Whether the order can still fill or be cancelled."""
        return self.status in OPEN_STATUSES


@dataclass(eq=False)
class _Session:
    """One client connection."""

    writer: asyncio.StreamWriter
    peer: str
    client_id: int = -1
    started: bool = False
    md_type: int = 1
    positions_sub: bool = False
    account_sub: bool = False
    closed: bool = False


class _Reader:
    """Sequential reader over the fields of one request."""

    def __init__(self, fields: list[str], start: int = 1) -> None:
        self.fields = fields
        self.pos = start

    def text(self) -> str:
        if self.pos >= len(self.fields):
            raise _ProtocolError(f"message too short at field {self.pos}: {self.fields}")
        value = self.fields[self.pos]
        self.pos += 1
        return value

    def integer(self, default: int = 0) -> int:
        value = self.text()
        return int(value) if value else default

    def number(self, default: float = UNSET_DOUBLE) -> float:
        value = self.text()
        return float(value) if value else default

    def flag(self) -> bool:
        value = self.text()
        return bool(int(value)) if value else False

    def skip(self, n: int) -> None:
        for _ in range(n):
            self.text()

    def contract(self) -> dict[str, Any]:
        """The 12 contract fields the client sends (``Client.send`` formatting)."""
        keys = (
            "conId",
            "symbol",
            "secType",
            "lastTradeDateOrContractMonth",
            "strike",
            "right",
            "multiplier",
            "exchange",
            "primaryExchange",
            "currency",
            "localSymbol",
            "tradingClass",
        )
        values = {key: self.text() for key in keys}
        values["conId"] = int(values["conId"] or 0)
        return values


def _wire(value: Any) -> str:
    """One field as TWS writes it: bools as 1/0, None and NaN as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return "" if math.isnan(value) else repr(value)
    return str(value)


def _day(value: Any) -> dt.date:
    """A bar date given as date, datetime, pandas Timestamp or 'YYYY-MM-DD'/'YYYYMMDD'."""
    if isinstance(value, str):
        return dt.datetime.strptime(value.replace("-", "")[:8], "%Y%m%d").date()
    if isinstance(value, dt.datetime) or hasattr(value, "to_pydatetime"):
        return value.date()
    if isinstance(value, dt.date):
        return value
    raise TypeError(f"not a bar date: {value!r}")


def _ib_time(value: str) -> dt.datetime:
    """A TWS time string: 'YYYYMMDD-HH:MM:SS' (UTC), 'YYYYMMDD HH:MM:SS [zone]' (no zone:
    US/Eastern) or 'YYYYMMDD' (end of that day, US/Eastern); returned timezone-aware."""
    text = value.strip()
    if len(text) == 8:
        day = dt.datetime.strptime(text, "%Y%m%d")
        return day.replace(hour=23, minute=59, second=59, tzinfo=EASTERN)
    if "-" in text[:9] and text[8] == "-":
        return dt.datetime.strptime(text[:17], "%Y%m%d-%H:%M:%S").replace(tzinfo=UTC)
    parts = text.split()
    stamp = dt.datetime.strptime(parts[0] + parts[1], "%Y%m%d%H:%M:%S")
    zone = ZoneInfo(parts[2]) if len(parts) > 2 else EASTERN
    return stamp.replace(tzinfo=zone)


def _price(value: float | None) -> float | None:
    """A usable price, or None for missing/NaN/non-positive."""
    if value is None:
        return None
    value = float(value)
    if math.isnan(value) or value <= 0:
        return None
    return value


class FakeTWS:
    """A fake TWS / IB Gateway on 127.0.0.1 for the ``ib_async`` client.

    Set the plain attributes before or between connections (mutating them while a client is
    connected is fine for single assignments; hold :attr:`lock` for compound changes). Use
    ``with FakeTWS(...) as tws:`` or :meth:`start` / :meth:`stop`; ``tws.port`` is the port.
    """

    def __init__(
        self,
        *,
        accounts: Iterable[str] = ("DU123456",),
        contracts: dict[str, int] | None = None,
        primary_exchanges: dict[str, str] | None = None,
        bars: dict[str, list[tuple]] | None = None,
        prices: dict[str, float] | None = None,
        positions: dict[str, tuple[float, float]] | None = None,
        account_values: dict[str, float] | None = None,
        fill: bool = True,
        reject_symbols: Iterable[str] = (),
        what_if: dict[str, float | str] | None = None,
        history_errors: dict[str, int] | None = None,
        client_ids_in_use: Iterable[int] = (),
        drop_after_orders: int | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.accounts: list[str] = list(accounts)
        """managedAccounts; positions and values belong to the first."""
        self.contracts: dict[str, int] = dict(contracts or {})
        """symbol -> conId of the US stocks the fake knows (SMART/USD)."""
        self.primary_exchanges: dict[str, str] = dict(primary_exchanges or {})
        """symbol -> primary exchange; default NYSE."""
        self.bars: dict[str, list[tuple]] = dict(bars or {})
        """symbol -> daily bars (date, open, high, low, close, volume), oldest first."""
        self.prices: dict[str, float] = dict(prices or {})
        """symbol -> last price: snapshot LAST tick, fill price, marketability of limits."""
        self.positions: dict[str, tuple[float, float]] = dict(positions or {})
        """symbol -> (quantity, average cost); fills move it."""
        self.account_values: dict[str, float] = dict(
            DEFAULT_ACCOUNT_VALUES if account_values is None else account_values
        )
        """tag -> value in USD; fills move TotalCashValue and NetLiquidation."""
        self.fill = fill
        """Whether marketable orders fill at once (False: they stay Submitted)."""
        self.reject_symbols: set[str] = set(reject_symbols)
        """Orders for these symbols get error 201 and status Cancelled."""
        self.what_if: dict[str, float | str] = dict(what_if or {})
        """Overrides of the what-if order state fields (initMarginChange, commission, ...)."""
        self.history_errors: dict[str, int] = dict(history_errors or {})
        """symbol -> how many more historical requests get error 162."""
        self.client_ids_in_use: set[int] = set(client_ids_in_use)
        """Client ids refused with error 326 (besides those connected now)."""
        self.drop_after_orders = drop_after_orders
        """Close the client's socket once this many orders arrived over the fake's lifetime
        (what-if excluded); reset to None when it fires."""
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(UTC))
        """Time source (timezone-aware) for executions and currentTime."""

        self.orders: dict[tuple[int, int], FakeOrder] = {}
        """(client id, order id) -> order, over the fake's lifetime."""
        self.executions: list[dict[str, Any]] = []
        """Fills: execId, orderId, clientId, permId, symbol, side (BOT/SLD), shares, price,
        time, orderRef, account, commission."""
        self.requests: list[tuple[int, int, list[str]]] = []
        """Every message received after the handshake: (client id, msg id, fields)."""
        self.placed: list[dict[str, Any]] = []
        """Non-what-if placeOrder messages: orderId, clientId, symbol, action,
        totalQuantity, orderType, lmtPrice, tif, orderRef, account."""
        self.ignored: list[tuple[int, int, list[str]]] = []
        """Requests the fake does not serve (logged and ignored)."""
        self.failures: list[str] = []
        """Errors raised in the server thread (tracebacks); tests assert it stays empty."""
        self.orders_received = 0
        """Non-what-if placeOrder messages over the fake's lifetime."""

        self.lock = threading.RLock()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._sessions: set[_Session] = set()
        self._perm_ids = itertools.count(1_000_001)
        self._exec_seq = itertools.count(1)
        self._max_order_id = 0

    # lifecycle ------------------------------------------------------------------------------

    def start(self) -> int:
        """Start the server thread; return the port it listens on."""
        if self._thread is not None:
            return self.port
        ready = threading.Event()
        errors: list[BaseException] = []
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(self._on_loop_exception)

        def run() -> None:
            loop = self._loop
            assert loop is not None
            asyncio.set_event_loop(loop)
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._serve, "127.0.0.1", 0)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

        self._thread = threading.Thread(target=run, name="FakeTWS", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        logger.info("fake TWS listening on 127.0.0.1:%d", self.port)
        return self.port

    def stop(self) -> None:
        """Close every connection and the server; join the thread."""
        if self._thread is None or self._loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for session in list(self._sessions):
                self._close(session)
            await asyncio.sleep(0)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._thread = None

    def __enter__(self) -> FakeTWS:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def assert_no_failures(self) -> None:
        """Raise AssertionError with the tracebacks if the server thread had errors."""
        assert not self.failures, "fake TWS failures:\n" + "\n".join(self.failures)

    # test-side controls ---------------------------------------------------------------------

    @property
    def connected_client_ids(self) -> list[int]:
        """Client ids of the connections that completed startApi."""
        with self.lock:
            return sorted(s.client_id for s in self._sessions if s.started and not s.closed)

    def send_error(self, code: int, message: str, req_id: int = -1) -> None:
        """Send error/info message ``code`` to every connected client (e.g. 1100, 1101, 1102)."""

        def send() -> None:
            for session in self._live_sessions():
                self._error(session, req_id, code, message)

        self._call(send)

    def drop_all(self) -> None:
        """Close every client connection now (pending output is flushed first)."""

        def drop() -> None:
            for session in list(self._sessions):
                self._close(session)

        self._call(drop)

    def fill_open_orders(self, symbol: str | None = None) -> int:
        """Fill the open orders (of ``symbol``, or all) that are marketable at ``prices``
        now, as the close auction would; returns how many filled. Ignores :attr:`fill`."""

        def run() -> int:
            count = 0
            for order in list(self.orders.values()):
                if order.is_open and (symbol is None or order.symbol == symbol):
                    count += self._try_fill(order, force=True)
            return count

        return self._call(run)

    # server internals -----------------------------------------------------------------------

    def _call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server thread under the lock and return its result."""
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("fake TWS is not running")
        if threading.current_thread() is self._thread:
            with self.lock:
                return fn()

        async def call() -> Any:
            with self.lock:
                return fn()

        return asyncio.run_coroutine_threadsafe(call(), loop).result(5)

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop, context: dict) -> None:
        exc = context.get("exception")
        text = context.get("message", "")
        if exc is not None:
            text += "\n" + "".join(traceback.format_exception(exc))
        self.failures.append(f"event loop: {text}")
        logger.error("fake TWS event loop error: %s", text)

    def _live_sessions(self) -> list[_Session]:
        return [s for s in self._sessions if s.started and not s.closed]

    def _session_of(self, client_id: int) -> _Session | None:
        for session in self._live_sessions():
            if session.client_id == client_id:
                return session
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = str(writer.get_extra_info("peername"))
        session = _Session(writer=writer, peer=peer)
        with self.lock:
            self._sessions.add(session)
        try:
            prefix = await reader.readexactly(4)
            if prefix != b"API\0":
                raise _ProtocolError(f"bad handshake prefix {prefix!r}")
            versions = (await self._read_frame(reader))[0]
            logger.info("fake TWS: client %s asks %s", peer, versions)
            now = self.clock().astimezone(EASTERN)
            self._write(session, [str(SERVER_VERSION), now.strftime("%Y%m%d %H:%M:%S %Z")])
            while not session.closed:
                fields = await self._read_frame(reader)
                self._dispatch(session, fields)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            raise
        except Exception:
            self.failures.append(f"session {peer}: {traceback.format_exc()}")
            logger.exception("fake TWS session %s failed", peer)
        finally:
            with self.lock:
                self._close(session)
                self._sessions.discard(session)
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    @staticmethod
    async def _read_frame(reader: asyncio.StreamReader) -> list[str]:
        (size,) = struct.unpack(">I", await reader.readexactly(4))
        body = await reader.readexactly(size)
        fields = body.decode(errors="backslashreplace").split("\0")
        if fields and fields[-1] == "":
            fields.pop()
        return fields

    def _write(self, session: _Session, fields: list[str]) -> None:
        if session.closed:
            return
        body = "".join(f"{f}\0" for f in fields).encode()
        session.writer.write(struct.pack(">I", len(body)) + body)

    def _send(self, session: _Session, *fields: Any) -> None:
        self._write(session, [_wire(f) for f in fields])

    def _close(self, session: _Session) -> None:
        if not session.closed:
            session.closed = True
            session.writer.close()

    def _error(self, session: _Session, req_id: int, code: int, message: str) -> None:
        self._send(session, 4, 2, req_id, code, message)

    def _dispatch(self, session: _Session, fields: list[str]) -> None:
        try:
            msg_id = int(fields[0])
        except (IndexError, ValueError):
            self.failures.append(f"unparseable message from {session.peer}: {fields}")
            return
        client_id = session.client_id
        if msg_id == 71 and len(fields) > 2 and fields[2].lstrip("-").isdigit():
            client_id = int(fields[2])  # startApi: record the id it asks for
        with self.lock:
            self.requests.append((client_id, msg_id, list(fields)))
            handler = self._handlers.get(msg_id)
            if handler is None:
                logger.warning("fake TWS ignores message %d: %s", msg_id, fields)
                self.ignored.append((client_id, msg_id, list(fields)))
                return
            try:
                handler(self, session, fields)
            except Exception:
                self.failures.append(f"message {fields}: {traceback.format_exc()}")
                logger.exception("fake TWS failed on %s", fields)

    # contracts ------------------------------------------------------------------------------

    def _con_id(self, symbol: str) -> int:
        """conId of a known symbol, else a stable synthetic one (for positions only)."""
        con_id = self.contracts.get(symbol)
        if con_id is not None:
            return con_id
        return 900_000_000 + zlib.crc32(symbol.encode()) % 99_999_999

    def _resolve(self, contract: dict[str, Any]) -> str | None:
        """The known US stock the request's contract names, else None."""
        if contract["secType"] not in ("", "STK") or contract["currency"] not in ("", "USD"):
            return None
        symbol = contract["symbol"]
        if symbol:
            con_id = self.contracts.get(symbol)
            if con_id is None or (contract["conId"] and contract["conId"] != con_id):
                return None
            return symbol
        for name, con_id in self.contracts.items():
            if con_id == contract["conId"]:
                return name
        return None

    def _primary(self, symbol: str) -> str:
        return self.primary_exchanges.get(symbol, "NYSE")

    def _contract_fields(self, symbol: str, exchange: str = "SMART") -> list[Any]:
        """conId, symbol, secType, lastTradeDate, strike, right, multiplier, exchange,
        currency, localSymbol, tradingClass (no primary exchange)."""
        return [self._con_id(symbol), symbol, "STK", "", 0.0, "", "", exchange, "USD",
                symbol, "NMS"]  # fmt: skip

    # handlers: connection -------------------------------------------------------------------

    def _on_start_api(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 2)
        client_id = r.integer()
        session.client_id = client_id
        in_use = client_id in self.client_ids_in_use or self._session_of(client_id) is not None
        if in_use:
            logger.info("fake TWS: client id %d in use, closing", client_id)
            self._error(session, -1, 326, MSG_CLIENT_ID_IN_USE)
            self._close(session)
            return
        session.started = True
        self._send(session, 9, 1, self._next_order_id())
        self._send(session, 15, 1, ",".join(self.accounts))
        for code, message in FARM_OK:
            self._error(session, -1, code, message)

    def _next_order_id(self) -> int:
        """After the highest order id ever placed (what-if included), like TWS."""
        known = max((order_id for _, order_id in self.orders), default=0)
        return max(self._max_order_id, known) + 1

    def _on_req_ids(self, session: _Session, fields: list[str]) -> None:
        self._send(session, 9, 1, self._next_order_id())

    def _on_current_time(self, session: _Session, fields: list[str]) -> None:
        self._send(session, 49, 1, int(self.clock().timestamp()))

    def _on_managed_accounts(self, session: _Session, fields: list[str]) -> None:
        self._send(session, 15, 1, ",".join(self.accounts))

    def _on_market_data_type(self, session: _Session, fields: list[str]) -> None:
        session.md_type = _Reader(fields, 2).integer(1)

    def _on_ignore(self, session: _Session, fields: list[str]) -> None:
        """A request that needs no answer (cancellations, unsubscriptions)."""

    # handlers: contracts and data -----------------------------------------------------------

    def _on_contract_details(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 2)
        req_id = r.integer()
        symbol = self._resolve(r.contract())
        if symbol is None:
            self._error(session, req_id, 200, MSG_NO_SECDEF)
            return
        c = self._contract_fields(symbol)
        # version 8 layout below server version 164: version, reqId, symbol, secType,
        # lastTimes, strike, right, exchange, currency, localSymbol, marketName,
        # tradingClass, conId, minTick, mdSizeMultiplier, multiplier, orderTypes,
        # validExchanges, priceMagnifier, underConId, longName, primaryExchange,
        # contractMonth, industry, category, subcategory, timeZoneId, tradingHours,
        # liquidHours, evRule, evMultiplier, numSecIds, aggGroup, underSymbol,
        # underSecType, marketRuleIds, realExpirationDate, stockType
        self._send(
            session, 10, 8, req_id, symbol, "STK", "", 0.0, "", "SMART", "USD", symbol,
            "NMS", "NMS", c[0], 0.01, 1, "", "ACTIVETIM,LMT,LOC,MKT,MOC,MOO",
            f"SMART,{self._primary(symbol)}", 1, 0, f"{symbol} (fake)", self._primary(symbol),
            "", "", "", "", "US/Eastern", "", "", "", "", 0, 1, "", "", "26", "", "COMMON",
        )  # fmt: skip
        self._send(session, 52, 1, req_id)

    def _on_historical_data(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 1)
        req_id = r.integer()
        contract = r.contract()
        r.skip(1)  # includeExpired
        end_text, bar_size, duration = r.text(), r.text(), r.text()
        symbol = self._resolve(contract)
        if symbol is None:
            self._error(session, req_id, 200, MSG_NO_SECDEF)
            return
        if self.history_errors.get(symbol, 0) > 0:
            self.history_errors[symbol] -= 1
            self._error(session, req_id, 162, MSG_HMDS_NO_DATA)
            return
        if bar_size.strip() != "1 day":
            message = f"only 1 day bars are served, not {bar_size!r}"
            self._error(
                session, req_id, 162, f"Historical Market Data Service error message:{message}"
            )
            return
        bars = sorted(((_day(b[0]), *b[1:6]) for b in self.bars.get(symbol, [])),
                      key=lambda b: b[0])  # fmt: skip
        if end_text.strip():
            end = _ib_time(end_text).astimezone(EASTERN).date()
            bars = [b for b in bars if b[0] <= end]
        try:
            bars = self._last_bars(bars, duration)
        except ValueError:
            message = f"invalid duration {duration!r}"
            self._error(
                session, req_id, 162, f"Historical Market Data Service error message:{message}"
            )
            return
        if not bars:
            self._error(session, req_id, 162, MSG_HMDS_NO_DATA)
            return
        out: list[Any] = [17, req_id, f"{bars[0][0]:%Y%m%d} 00:00:00",
                          f"{bars[-1][0]:%Y%m%d} 23:59:59", len(bars)]  # fmt: skip
        for day, *ohlcv in bars:
            o, h, low, c, v = (float(x) for x in ohlcv)
            out += [f"{day:%Y%m%d}", o, h, low, c, v, round((h + low + c) / 3, 4), 1]
        self._send(session, *out)

    @staticmethod
    def _last_bars(bars: list[tuple], duration: str) -> list[tuple]:
        """The bars within ``duration`` ('N D' = last N bars; W/M/Y by calendar span, S as
        whole days) ending at the last bar."""
        number, unit = duration.split()
        n = int(number)
        unit = unit.upper()
        if n <= 0 or unit not in ("S", "D", "W", "M", "Y"):
            raise ValueError(duration)
        if not bars:
            return []
        if unit in ("S", "D"):
            count = n if unit == "D" else max(1, math.ceil(n / 86_400))
            return bars[-count:]
        last = bars[-1][0]
        if unit == "W":
            start = last - dt.timedelta(days=7 * n)
        else:
            months = n if unit == "M" else 12 * n
            year, month = divmod(last.year * 12 + last.month - 1 - months, 12)
            start = dt.date(year, month + 1, min(last.day, 28))
        return [b for b in bars if b[0] > start]

    def _on_mkt_data(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 2)
        req_id = r.integer()
        contract = r.contract()
        if contract["secType"] == "BAG":
            raise _ProtocolError("combo market data is not supported")
        if r.flag():
            r.skip(3)  # delta neutral contract
        r.skip(1)  # generic tick list
        snapshot = r.flag()
        symbol = self._resolve(contract)
        if symbol is None:
            self._error(session, req_id, 200, MSG_NO_SECDEF)
            return
        delayed = session.md_type in (3, 4)
        if session.md_type != 1:
            self._send(session, 58, 1, req_id, session.md_type)
        last = _price(self.prices.get(symbol))
        close = self._prior_close(symbol) or last
        if last is not None:
            self._send(session, 1, 6, req_id, 68 if delayed else 4, last, 100.0, 0)
        if close is not None:
            self._send(session, 1, 6, req_id, 75 if delayed else 9, close, 0.0, 0)
        if snapshot:
            self._send(session, 57, 1, req_id)

    def _prior_close(self, symbol: str) -> float | None:
        bars = self.bars.get(symbol)
        if not bars:
            return None
        return _price(max(bars, key=lambda b: _day(b[0]))[4])

    # handlers: account ----------------------------------------------------------------------

    def _send_position(self, session: _Session, symbol: str, qty: float, avg: float) -> None:
        c = self._contract_fields(symbol, exchange=self._primary(symbol))
        self._send(session, 61, 3, self.accounts[0], *c, float(qty), float(avg))

    def _on_positions(self, session: _Session, fields: list[str]) -> None:
        session.positions_sub = True
        for symbol, (qty, avg) in self.positions.items():
            self._send_position(session, symbol, qty, avg)
        self._send(session, 62, 1)

    def _on_cancel_positions(self, session: _Session, fields: list[str]) -> None:
        session.positions_sub = False

    def _on_account_summary(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 2)
        req_id, _group, tags = r.integer(), r.text(), r.text()
        wanted = {t.strip() for t in tags.split(",") if t.strip()}
        for tag, value in self.account_values.items():
            if not wanted or tag in wanted:
                self._send(session, 63, 1, req_id, self.accounts[0], tag, f"{value:.2f}", "USD")
        self._send(session, 64, 1, req_id)

    def _send_portfolio(self, session: _Session, symbol: str, qty: float, avg: float) -> None:
        mark = _price(self.prices.get(symbol)) or float(avg)
        # the portfolio layout has the primary exchange where the others have the exchange
        c = self._contract_fields(symbol, exchange=self._primary(symbol))
        self._send(session, 7, 8, *c, float(qty), mark, qty * mark, float(avg),
                   (mark - avg) * qty, 0.0, self.accounts[0])  # fmt: skip

    def _send_account(self, session: _Session, tags: Iterable[str] | None = None) -> None:
        account = self.accounts[0]
        for tag, value in self.account_values.items():
            if tags is None or tag in tags:
                self._send(session, 6, 2, tag, f"{value:.2f}", "USD", account)

    def _on_account_updates(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 2)
        subscribe, account = r.flag(), r.text()
        session.account_sub = subscribe
        if not subscribe:
            return
        account = account or self.accounts[0]
        if account == self.accounts[0]:
            self._send_account(session)
            for symbol, (qty, avg) in self.positions.items():
                self._send_portfolio(session, symbol, qty, avg)
        self._send(session, 8, 1, self.clock().astimezone(EASTERN).strftime("%H:%M"))
        self._send(session, 54, 1, account)

    def _on_account_updates_multi(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 2)
        req_id, account, model = r.integer(), r.text(), r.text()
        if account in ("", "All", self.accounts[0]):
            for tag, value in self.account_values.items():
                self._send(session, 73, 1, req_id, self.accounts[0], model, tag,
                           f"{value:.2f}", "USD")  # fmt: skip
        self._send(session, 74, 1, req_id)

    # handlers: orders -----------------------------------------------------------------------

    def _parse_place_order(self, fields: list[str]) -> dict[str, Any]:
        """The fields of a placeOrder message (server version 157 layout of
        ``Client.placeOrder``) the fake needs, walking every conditional part."""
        r = _Reader(fields, 1)
        o: dict[str, Any] = {"orderId": r.integer()}
        o["contract"] = contract = r.contract()
        r.skip(2)  # secIdType, secId
        o["action"] = r.text()
        o["totalQuantity"] = r.number(0.0)
        o["orderType"] = r.text()
        lmt = r.number()
        o["lmtPrice"] = None if lmt == UNSET_DOUBLE else lmt
        aux = r.number()
        o["auxPrice"] = None if aux == UNSET_DOUBLE else aux
        o["tif"] = r.text()
        r.skip(1)  # ocaGroup
        o["account"] = r.text()
        r.skip(2)  # openClose, origin
        o["orderRef"] = r.text()
        o["transmit"] = r.flag()
        r.skip(7)  # parentId .. hidden
        if contract["secType"] == "BAG":
            r.skip(8 * r.integer())
            r.skip(r.integer())
            r.skip(2 * r.integer())
        # '', discretionaryAmt, goodAfterTime, goodTillDate, faGroup, faMethod,
        # faPercentage, faProfile (< 177)
        r.skip(8)
        # modelCode .. overridePercentageConstraints (20), volatility, volatilityType
        r.skip(22)
        delta_neutral_type = r.text()
        r.skip(1)  # deltaNeutralAuxPrice
        if delta_neutral_type:
            r.skip(8)
        r.skip(6)  # continuousUpdate .. scaleSubsLevelSize
        increment = r.number()
        if 0 < increment < UNSET_DOUBLE:
            r.skip(7)
        r.skip(3)  # scaleTable, activeStartTime, activeStopTime
        if r.text():  # hedgeType
            r.skip(1)
        r.skip(4)  # optOutSmartRouting, clearingAccount, clearingIntent, notHeld
        if r.flag():  # delta neutral contract
            r.skip(3)
        if r.text():  # algoStrategy
            r.skip(2 * r.integer())
        r.skip(1)  # algoId
        o["whatIf"] = r.flag()
        return o

    def _on_place_order(self, session: _Session, fields: list[str]) -> None:
        o = self._parse_place_order(fields)
        order_id = o["orderId"]
        self._max_order_id = max(self._max_order_id, order_id)
        symbol = self._resolve(o["contract"])
        if o["whatIf"]:
            self._what_if(session, o, symbol)
            return
        self.orders_received += 1
        self.placed.append({
            "orderId": order_id, "clientId": session.client_id,
            "symbol": o["contract"]["symbol"] or symbol, "action": o["action"],
            "totalQuantity": o["totalQuantity"], "orderType": o["orderType"],
            "lmtPrice": o["lmtPrice"], "tif": o["tif"], "orderRef": o["orderRef"],
            "account": o["account"],
        })  # fmt: skip
        try:
            self._accept_order(session, o, symbol)
        finally:
            limit = self.drop_after_orders
            if limit is not None and self.orders_received >= limit:
                logger.info("fake TWS drops client %d after %d orders", session.client_id,
                            self.orders_received)  # fmt: skip
                self.drop_after_orders = None
                self._close(session)

    def _accept_order(self, session: _Session, o: dict[str, Any], symbol: str | None) -> None:
        order_id = o["orderId"]
        if symbol is None:
            self._error(session, order_id, 200, MSG_NO_SECDEF)
            return
        key = (session.client_id, order_id)
        existing = self.orders.get(key)
        if existing is not None and not existing.is_open:
            self._error(session, order_id, 103, "Duplicate order id")
            return
        order_type = o["orderType"].upper()
        problem = self._order_problem(o, order_type, symbol)
        if existing is not None:
            if problem is None:  # a modification of an open order
                existing.quantity = o["totalQuantity"]
                existing.order_type = order_type
                existing.lmt_price = o["lmtPrice"]
                existing.tif = o["tif"]
                existing.order_ref = o["orderRef"]
                self._send_open_order(session, existing)
                self._send_order_status(session, existing)
                self._try_fill(existing)
            else:
                self._error(session, order_id, 201, f"Order rejected - reason:{problem}")
            return
        order = FakeOrder(
            order_id=order_id, client_id=session.client_id, perm_id=next(self._perm_ids),
            symbol=symbol, con_id=self._con_id(symbol), action=o["action"].upper(),
            quantity=o["totalQuantity"], order_type=order_type, lmt_price=o["lmtPrice"],
            tif=o["tif"], order_ref=o["orderRef"], account=o["account"] or self.accounts[0],
        )  # fmt: skip
        if problem is not None:
            order.status = "Cancelled"
            order.completed_time = self._stamp()
            self.orders[key] = order
            self._error(session, order_id, 201, f"Order rejected - reason:{problem}")
            self._send_order_status(session, order)
            return
        self.orders[key] = order
        self._send_open_order(session, order)
        self._send_order_status(session, order)
        self._try_fill(order)

    def _order_problem(self, o: dict[str, Any], order_type: str, symbol: str) -> str | None:
        """Why the fake rejects the order, or None."""
        if symbol in self.reject_symbols:
            return f"the fake TWS rejects orders for {symbol}"
        if o["action"].upper() not in ("BUY", "SELL"):
            return f"invalid action {o['action']!r}"
        quantity = o["totalQuantity"]
        if quantity <= 0 or quantity != int(quantity):
            return f"quantity must be whole shares > 0, got {quantity}"
        if order_type not in LIMIT_TYPES | MARKET_TYPES:
            return f"the fake TWS does not support order type {order_type}"
        if order_type in LIMIT_TYPES and _price(o["lmtPrice"]) is None:
            return "a limit order needs a limit price"
        return None

    def _marketable(self, order: FakeOrder) -> float | None:
        """The fill price if the order would trade at ``prices`` now, else None."""
        price = _price(self.prices.get(order.symbol))
        if price is None:
            return None
        if order.order_type in LIMIT_TYPES:
            assert order.lmt_price is not None
            ok = price <= order.lmt_price if order.action == "BUY" else price >= order.lmt_price
            if not ok:
                return None
        return price

    def _try_fill(self, order: FakeOrder, force: bool = False) -> int:
        if not order.is_open or not (self.fill or force):
            return 0
        price = self._marketable(order)
        if price is None:
            return 0
        shares = order.quantity - order.filled
        sign = 1.0 if order.action == "BUY" else -1.0
        commission = max(1.0, 0.005 * shares)
        now = self.clock()
        exec_id = f"0000fa4e.{next(self._exec_seq):08x}.01.01"
        execution = {
            "execId": exec_id, "orderId": order.order_id, "clientId": order.client_id,
            "permId": order.perm_id, "symbol": order.symbol,
            "side": "BOT" if sign > 0 else "SLD", "shares": shares, "price": price,
            "time": now, "orderRef": order.order_ref, "account": order.account,
            "commission": commission,
        }  # fmt: skip
        self.executions.append(execution)
        order.filled = order.quantity
        order.avg_fill_price = order.last_fill_price = price
        order.status = "Filled"
        order.completed_time = self._stamp(now)
        self._book_fill(order.symbol, sign * shares, price, commission)

        session = self._session_of(order.client_id)
        if session is not None:
            self._send_execution(session, -1, execution)
            self._send_order_status(session, order)
            self._send_commission(session, execution)
        self._push_account(order.symbol)
        return 1

    def _book_fill(self, symbol: str, signed: float, price: float, commission: float) -> None:
        qty, avg = self.positions.get(symbol, (0.0, 0.0))
        new = qty + signed
        if abs(new) < 1e-9:
            self.positions.pop(symbol, None)
        else:
            if qty == 0 or (qty > 0) != (new > 0):
                avg = price
            elif abs(new) > abs(qty):
                avg = (qty * avg + signed * price) / new
            self.positions[symbol] = (new, avg)
        values = self.account_values
        values["TotalCashValue"] = values.get("TotalCashValue", 0.0) - signed * price - commission
        values["NetLiquidation"] = values.get("NetLiquidation", 0.0) - commission

    def _push_account(self, symbol: str) -> None:
        qty, avg = self.positions.get(symbol, (0.0, 0.0))
        for session in self._live_sessions():
            if session.positions_sub:
                self._send_position(session, symbol, qty, avg)
            if session.account_sub:
                self._send_account(session, ("TotalCashValue", "NetLiquidation"))
                self._send_portfolio(session, symbol, qty, avg)

    def _stamp(self, when: dt.datetime | None = None) -> str:
        return (when or self.clock()).astimezone(UTC).strftime("%Y%m%d %H:%M:%S UTC")

    def _what_if(self, session: _Session, o: dict[str, Any], symbol: str | None) -> None:
        order_id = o["orderId"]
        if symbol is None:
            self._error(session, order_id, 200, MSG_NO_SECDEF)
            return
        qty = o["totalQuantity"]
        price = _price(self.prices.get(symbol)) or _price(o["lmtPrice"]) or 0.0
        margin = 0.25 * qty * price
        commission = max(1.0, 0.005 * qty)
        values = self.account_values
        init0 = values.get("InitMarginReq", 0.0)
        maint0 = values.get("MaintMarginReq", 0.0)
        equity0 = values.get("EquityWithLoanValue", values.get("NetLiquidation", 0.0))
        state: dict[str, float | str] = {
            "initMarginBefore": init0, "maintMarginBefore": maint0,
            "equityWithLoanBefore": equity0,
            "initMarginChange": margin, "maintMarginChange": margin,
            "equityWithLoanChange": -commission,
            "initMarginAfter": init0 + margin, "maintMarginAfter": maint0 + margin,
            "equityWithLoanAfter": equity0 - commission,
            "commission": commission, "minCommission": commission,
            "maxCommission": commission, "commissionCurrency": "USD", "warningText": "",
        }  # fmt: skip
        state.update(self.what_if)
        order = FakeOrder(
            order_id=order_id, client_id=session.client_id, perm_id=0, symbol=symbol,
            con_id=self._con_id(symbol), action=o["action"].upper(), quantity=qty,
            order_type=o["orderType"].upper(), lmt_price=o["lmtPrice"], tif=o["tif"],
            order_ref=o["orderRef"], account=o["account"] or self.accounts[0],
            status="PreSubmitted",
        )  # fmt: skip
        self._send_open_order(session, order, what_if=state)

    def _send_open_order(
        self, session: _Session, order: FakeOrder, what_if: dict[str, float | str] | None = None
    ) -> None:
        """openOrder (msg 5) at server version 157, following ``Decoder.openOrder``."""
        s = what_if or {}
        margins = ("initMarginBefore", "maintMarginBefore", "equityWithLoanBefore",
                   "initMarginChange", "maintMarginChange", "equityWithLoanChange",
                   "initMarginAfter", "maintMarginAfter", "equityWithLoanAfter")  # fmt: skip
        f: list[Any] = [5, order.order_id, *self._contract_fields(order.symbol)]
        f += [order.action, float(order.quantity), order.order_type, order.lmt_price, None,
              order.tif, "", order.account, "O", 0, order.order_ref, order.client_id,
              order.perm_id, 0, 0, 0.0, "", "", "", "", "", ""]  # fmt: skip
        # ^ ... outsideRth, hidden, discretionaryAmt, goodAfterTime, sharesAllocation,
        #   faGroup, faMethod, faPercentage, faProfile (< 177)
        f += ["", "", "", None, "", 0, "", -1, 0, None, None, None, None, None, 0, 0, 0, 0,
              None, 0, 0, 0, None, 0, 0, None, 0, "", None]  # fmt: skip
        # ^ modelCode, goodTillDate, rule80A, percentOffset, settlingFirm, shortSaleSlot,
        #   designatedLocation, exemptCode, auctionStrategy, startingPrice, stockRefPrice,
        #   delta, stockRangeLower, stockRangeUpper, displaySize, blockOrder, sweepToFill,
        #   allOrNone, minQty, ocaType, eTradeOnly, firmQuoteOnly, nbboPriceCap, parentId,
        #   triggerMethod, volatility, volatilityType, deltaNeutralOrderType (empty: no
        #   delta neutral block), deltaNeutralAuxPrice
        f += [0, None, None, None, None, None, "", 0, 0, 0]
        # ^ continuousUpdate, referencePriceType, trailStopPrice, trailingPercent,
        #   basisPoints, basisPointsType, comboLegsDescrip, #comboLegs, #orderComboLegs,
        #   #smartComboRoutingParams
        f += [None, None, None, "", 0, "", "", 0, 0, ""]
        # ^ scaleInitLevelSize, scaleSubsLevelSize, scalePriceIncrement (empty: no scale
        #   block), hedgeType (empty: no hedgeParam), optOutSmartRouting, clearingAccount,
        #   clearingIntent, notHeld, deltaNeutralContract present, algoStrategy (empty)
        f += [0, what_if is not None, order.status]
        f += [s.get(k, "") for k in margins]
        f += [s.get("commission"), s.get("minCommission"), s.get("maxCommission"),
              s.get("commissionCurrency", ""), s.get("warningText", ""), 0, 0, 0]  # fmt: skip
        # ^ solicited, whatIf, status, 9 margin values, commission, minCommission,
        #   maxCommission, commissionCurrency, warningText, randomizeSize, randomizePrice,
        #   #conditions
        f += ["None", None, None, None, None, None, None, 0, "", "", "", None, 0, 0, 0, 0]
        # ^ adjustedOrderType, triggerPrice, trailStopPrice, lmtPriceOffset,
        #   adjustedStopPrice, adjustedStopLimitPrice, adjustedTrailingAmount,
        #   adjustableTrailingUnit, softDollarTier name/value/displayName, cashQty,
        #   dontUseAutoPriceForHedge, isOmsContainer, discretionaryUpToLimitPrice,
        #   usePriceMgmtAlgo (nothing after these below server version 159)
        self._send(session, *f)

    def _send_order_status(self, session: _Session, order: FakeOrder) -> None:
        remaining = order.quantity - order.filled
        self._send(
            session, 3, order.order_id, order.status, float(order.filled), float(remaining),
            float(order.avg_fill_price), order.perm_id, 0, float(order.last_fill_price),
            order.client_id, "", 0.0,
        )  # fmt: skip

    def _send_completed_order(self, session: _Session, order: FakeOrder) -> None:
        """completedOrder (msg 101) at server version 157, following
        ``Decoder.completedOrder``."""
        f: list[Any] = [101, *self._contract_fields(order.symbol)]
        f += [order.action, float(order.quantity), order.order_type, order.lmt_price, None,
              order.tif, "", order.account, "O", 0, order.order_ref, order.perm_id, 0, 0,
              0.0, "", "", "", "", ""]  # fmt: skip
        # ^ ... permId, outsideRth, hidden, discretionaryAmt, goodAfterTime, faGroup,
        #   faMethod, faPercentage, faProfile (< 177)
        f += ["", "", "", None, "", 0, "", -1, None, None, None, None, None, 0, 0, 0, None,
              0, 0, None, 0, "", None]  # fmt: skip
        # ^ modelCode, goodTillDate, rule80A, percentOffset, settlingFirm, shortSaleSlot,
        #   designatedLocation, exemptCode, startingPrice, stockRefPrice, delta,
        #   stockRangeLower, stockRangeUpper, displaySize, sweepToFill, allOrNone, minQty,
        #   ocaType, triggerMethod, volatility, volatilityType, deltaNeutralOrderType,
        #   deltaNeutralAuxPrice
        f += [0, None, None, None, "", 0, 0, 0, None, None, None, "", "", "", 0, 0, ""]
        # ^ continuousUpdate, referencePriceType, trailStopPrice, trailingPercent,
        #   comboLegsDescrip, #legs, #orderLegs, #params, scaleInitLevelSize,
        #   scaleSubsLevelSize, scalePriceIncrement, hedgeType, clearingAccount,
        #   clearingIntent, notHeld, deltaNeutralContract present, algoStrategy
        f += [0, order.status, 0, 0, 0]
        # ^ solicited, status, randomizeSize, randomizePrice, #conditions
        f += [None, None, None, 0, 0, "", float(order.filled), 0, 0, "", 0, 0, 0,
              order.completed_time, order.status]  # fmt: skip
        # ^ trailStopPrice, lmtPriceOffset, cashQty, dontUseAutoPriceForHedge,
        #   isOmsContainer, autoCancelDate, filledQuantity, refFuturesConId,
        #   autoCancelParent, shareholder, imbalanceOnly, routeMarketableToBbo,
        #   parentPermId, completedTime, completedStatus
        self._send(session, *f)

    def _send_execution(self, session: _Session, req_id: int, e: dict[str, Any]) -> None:
        symbol = e["symbol"]
        exchange = self._primary(symbol)
        self._send(
            session, 11, req_id, e["orderId"], *self._contract_fields(symbol, exchange),
            e["execId"], self._stamp(e["time"]), e["account"], exchange,
            e["side"], float(e["shares"]), float(e["price"]), e["permId"], e["clientId"], 0,
            float(e["shares"]), float(e["price"]), e["orderRef"], "", None, "", 1,
        )  # fmt: skip

    def _send_commission(self, session: _Session, e: dict[str, Any]) -> None:
        self._send(session, 59, 1, e["execId"], float(e["commission"]), "USD", 0.0, "", "")

    def _on_cancel_order(self, session: _Session, fields: list[str]) -> None:
        order_id = _Reader(fields, 2).integer()
        order = self.orders.get((session.client_id, order_id))
        if order is None:
            self._error(session, order_id, 10147,
                        f"OrderId {order_id} that needs to be cancelled is not found.")  # fmt: skip
        elif not order.is_open:
            self._error(session, order_id, 10148, f"OrderId {order_id} that needs to be "
                        f"cancelled cannot be cancelled, state: {order.status}.")  # fmt: skip
        else:
            self._cancel(order)

    def _cancel(self, order: FakeOrder) -> None:
        order.status = "Cancelled"
        order.completed_time = self._stamp()
        session = self._session_of(order.client_id)
        if session is not None:
            self._send_order_status(session, order)
            self._error(session, order.order_id, 202, "Order Canceled - reason:")

    def _on_global_cancel(self, session: _Session, fields: list[str]) -> None:
        for order in list(self.orders.values()):
            if order.is_open:
                self._cancel(order)

    def _send_open_orders(self, session: _Session, orders: Iterable[FakeOrder]) -> None:
        for order in orders:
            self._send_open_order(session, order)
            self._send_order_status(session, order)
        self._send(session, 53, 1)

    def _on_open_orders(self, session: _Session, fields: list[str]) -> None:
        own = [o for o in self.orders.values() if o.is_open and o.client_id == session.client_id]
        self._send_open_orders(session, own)

    def _on_all_open_orders(self, session: _Session, fields: list[str]) -> None:
        self._send_open_orders(session, [o for o in self.orders.values() if o.is_open])

    def _on_completed_orders(self, session: _Session, fields: list[str]) -> None:
        for order in self.orders.values():
            if not order.is_open:
                self._send_completed_order(session, order)
        self._send(session, 102)

    def _on_executions(self, session: _Session, fields: list[str]) -> None:
        r = _Reader(fields, 2)
        req_id, client_id, account, since = r.integer(), r.integer(), r.text(), r.text()
        symbol, sec_type, exchange, side = r.text(), r.text(), r.text(), r.text()
        start = _ib_time(since) if since.strip() else None
        sides = {"BUY": "BOT", "SELL": "SLD"}
        for e in self.executions:
            if (
                (client_id and e["clientId"] != client_id)
                or (account and e["account"] != account)
                or (start is not None and e["time"] < start)
                or (symbol and e["symbol"] != symbol)
                or (sec_type and sec_type != "STK")
                or (exchange and exchange not in ("SMART", self._primary(e["symbol"])))
                or (side and sides.get(side.upper(), side.upper()) != e["side"])
            ):
                continue
            self._send_execution(session, req_id, e)
            self._send_commission(session, e)
        self._send(session, 55, 1, req_id)

    _handlers: ClassVar[dict[int, Callable[[FakeTWS, _Session, list[str]], None]]] = {
        1: _on_mkt_data,
        2: _on_ignore,  # cancelMktData
        3: _on_place_order,
        4: _on_cancel_order,
        5: _on_open_orders,
        6: _on_account_updates,
        7: _on_executions,
        8: _on_req_ids,
        9: _on_contract_details,
        15: _on_ignore,  # reqAutoOpenOrders: no answer
        16: _on_all_open_orders,
        17: _on_managed_accounts,
        20: _on_historical_data,
        25: _on_ignore,  # cancelHistoricalData
        49: _on_current_time,
        58: _on_global_cancel,
        59: _on_market_data_type,
        61: _on_positions,
        62: _on_account_summary,
        63: _on_ignore,  # cancelAccountSummary
        64: _on_cancel_positions,
        71: _on_start_api,
        76: _on_account_updates_multi,
        77: _on_ignore,  # cancelAccountUpdatesMulti
        99: _on_completed_orders,
    }
    HANDLED_MESSAGE_IDS: ClassVar[tuple[int, ...]] = tuple(sorted(_handlers))
    """The request message ids the fake serves (ignorable cancellations included)."""

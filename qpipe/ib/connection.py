"""One connection to TWS or IB Gateway through ``ib_async`` (the ``live`` extra), shared by
the IB data source and the IB broker.

The connection owns a private asyncio event loop and drives ``ib_async``'s async API on it,
one call at a time (no ``util.startLoop``, no global loop). Before each request it makes sure
the connection is alive: a heartbeat (current time) when the last answer is older than
``heartbeat`` seconds, and a reconnect (``reconnect_attempts`` tries, ``reconnect_delay``
apart) when it is gone. Informational codes (2104, 2106, 2158 and the other 21xx) are logged;
1100 (connectivity lost) marks the connection as down until 1101 or 1102 restores it.
:attr:`IBConnection.resets` counts the (re)connects and restores, so whoever caches the
gateway's state (the broker's open orders and fills) reloads it when the count moves.

Contracts are SMART-routed stocks in ``live.currency``, qualified in batches and kept for the
connection's life. Historical daily bars are paced (:class:`~qpipe.ib.pacing.Pacer`),
retried on error 162 and cached per request. Connecting checks the port and the account
against the configuration (:mod:`qpipe.ib.safety`). Every failure is a
:class:`~qpipe.errors.BrokerError` naming the gateway and the cause.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import pandas as pd

from qpipe.errors import BrokerError, QpipeError
from qpipe.ib.pacing import Pacer
from qpipe.ib.safety import check_account, check_port
from qpipe.settings import LiveConfig

log = logging.getLogger(__name__)
T = TypeVar("T")

BAR_COLUMNS = ["date", "symbol", "open", "high", "low", "close", "volume"]
INFO_CODES = frozenset({2104, 2106, 2158})
LOST, RESTORED_DATA_LOST, RESTORED = 1100, 1101, 1102
CLIENT_ID_IN_USE = 326
HISTORY_ERROR = 162


def load_ib_async() -> Any:
    """The ``ib_async`` module, or a :class:`BrokerError` saying how to install it."""
    try:
        import ib_async
    except ImportError as exc:
        raise BrokerError(
            "the IB broker needs the ib_async package: pip install 'qpipe[live]'"
        ) from exc
    return ib_async


class IBConnection:
    """A connection to TWS or IB Gateway at ``config.host:config.port`` as
    ``config.client_id``, on the first account of ``config.accounts`` the gateway manages (or
    its only account). Times are seconds."""

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
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.heartbeat = heartbeat
        self.reconnect_attempts = reconnect_attempts
        self.reconnect_delay = reconnect_delay
        self.history_retries = history_retries
        self.history_backoff = history_backoff
        self.pacer = pacer or Pacer()
        self.account_id = ""
        self.server_version = 0
        self.notices: list[tuple[int, int, str]] = []
        """Every error or notice the gateway sent: (request id, code, message)."""
        self.reconnects = 0
        self.resets = 0
        """How many times the connection was opened or reported restored (code 1101/1102)."""
        self.lost = False
        """The gateway reported its connection to IB lost (code 1100) and not yet restored."""
        self.ib: Any = None
        """The ``ib_async.IB`` client while connected."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last_answer = 0.0
        self._contracts: dict[str, Any] = {}
        self._bars: dict[tuple[str, str, dt.date | None], pd.DataFrame] = {}

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
        if self.ib is not None and self.ib.isConnected():
            return
        check_port(self.config)
        ib_async = load_ib_async()
        if self._loop is None or self._loop.is_closed():
            self._loop = asyncio.new_event_loop()
        self.ib = ib_async.IB()
        self.ib.RaiseRequestErrors = True
        self.ib.errorEvent += self._on_error
        self._open()
        try:
            self.account_id = self._pick_account(self.ib.managedAccounts())
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
                self.ib.connectAsync(
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
                self.ib.disconnect()
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
        self.server_version = int(self.ib.client.serverVersion())
        self._last_answer = time.monotonic()
        self.lost = False
        self.resets += 1

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
        """Disconnect and close the event loop (a later request connects again)."""
        if self.ib is not None:
            self.ib.errorEvent -= self._on_error
            self.ib.disconnect()
            self.ib = None
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
            self.lost = True
        elif code in (RESTORED, RESTORED_DATA_LOST):
            log.warning("IB %s: connectivity restored: %s", code, message)
            self.lost = False
            self.resets += 1  # fills may have been missed: cached state is stale
        else:
            log.warning("IB error %s (request %s): %s", code, req_id, message)

    # ------------------------------------------------------------------ requests

    def ensure(self) -> None:
        """A live connection: reconnect when it is gone, heartbeat when it has been quiet."""
        if self.ib is None:
            self.connect()
            return
        # let the loop take in what arrived since the last call (a closed socket, notices)
        self._loop.run_until_complete(asyncio.sleep(0.005))  # type: ignore[union-attr]
        if self.ib.isConnected() and time.monotonic() - self._last_answer > self.heartbeat:
            try:
                self.call(self.ib.reqCurrentTimeAsync, timeout=min(self.timeout, 5.0))
            except BrokerError:
                self.ib.disconnect()
        if self.ib.isConnected():
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

    def call(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """Run one request, made inside the connection's running loop (``ib_async`` ties its
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

    def request(self, make: Callable[[], Awaitable[T]], timeout: float | None = None) -> T:
        """A read request on a live connection, asked again once after a reconnect when the
        connection dropped under it."""
        self.ensure()
        try:
            return self.call(make, timeout)
        except BrokerError:
            if self.ib.isConnected() or not self.reconnect_attempts:
                raise
        self.ensure()
        return self.call(make, timeout)

    def run_sync(self, call: Callable[[], T]) -> T:
        """A synchronous ``ib_async`` call made inside the connection's running loop."""

        async def inside() -> T:
            return call()

        return self._loop.run_until_complete(inside())  # type: ignore[union-attr]

    def wait(self, done: Callable[[], bool], seconds: float) -> None:
        """Let the loop run until ``done()``, ``seconds`` pass or the connection drops."""

        async def poll() -> None:
            end = time.monotonic() + seconds
            while not done() and time.monotonic() < end and self.ib.isConnected():
                await asyncio.sleep(0.01)

        self._loop.run_until_complete(poll())  # type: ignore[union-attr]

    # ------------------------------------------------------------------ contracts and bars

    def contract(self, symbol: str) -> Any:
        """The qualified stock contract of ``symbol`` (see :meth:`qualified`)."""
        return self.qualified([symbol])[0]

    def qualified(self, symbols: Sequence[str]) -> list[Any]:
        """The qualified stock contracts of ``symbols``, the new ones asked for in one batch
        and kept for the connection's life; symbols IB does not know are one BrokerError."""
        new = sorted({s for s in symbols if s not in self._contracts})
        if new:
            ib_async = load_ib_async()
            stocks = [ib_async.Stock(s, "SMART", self.config.currency) for s in new]
            self.ensure()
            self.ib.RaiseRequestErrors = False  # an unknown symbol: None, not the batch failing
            try:
                found = self.request(lambda: self.ib.qualifyContractsAsync(*stocks))
            finally:
                self.ib.RaiseRequestErrors = True
            unknown = [s for s, c in zip(new, found, strict=True) if c is None]
            if unknown:
                raise BrokerError(
                    f"IB does not know the symbol {', '.join(unknown)} (no security definition "
                    f"for a {self.config.currency} stock on SMART)"
                )
            self._contracts.update(zip(new, found, strict=True))
        return [self._contracts[s] for s in symbols]

    def history(self, symbol: str, duration: str, end: dt.date | None = None) -> pd.DataFrame:
        """Daily TRADES bars (regular hours; IB adjusts them for splits, not dividends) of
        ``symbol`` over ``duration`` (IB's form: ``"30 D"``, ``"2 Y"``) ending with ``end``
        (None: the latest), as :data:`BAR_COLUMNS` with ``date`` a date. Paced, retried on
        error 162 (``history_retries`` times, ``history_backoff`` seconds times the attempt
        apart) and cached for the connection's life, so an identical request is never
        repeated."""
        key = (symbol, duration, end)
        if key in self._bars:
            return self._bars[key]
        contract = self.contract(symbol)
        end_text = "" if end is None else f"{end:%Y%m%d} 23:59:59 US/Eastern"
        for attempt in range(self.history_retries + 1):
            self.pacer.wait(symbol)
            try:
                bars = self.request(
                    lambda: self.ib.reqHistoricalDataAsync(
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

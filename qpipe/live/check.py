"""The connection health check behind ``qpipe live check``: one (good, text) line per step."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

from qpipe.errors import QpipeError
from qpipe.live.broker import Broker, Order

TEST_LIMIT_FRACTION = 0.5
"""The test order's buy limit as a fraction of the last price: far from the market."""


def run_check(
    broker: Broker, symbol: str, place_test_order: bool = False
) -> Iterator[tuple[bool, str]]:
    """Connect; show the server version, the account and its NAV (red when it is not
    positive, and a red line when cash is negative: the account is borrowing), positions,
    a few daily bars of ``symbol`` (data permissions) and a what-if of a one-share MOC buy; with
    ``place_test_order`` place a one-share buy limit at half the last price and cancel it.
    A failed connection ends the check; the other steps fail one line each."""
    try:
        broker.connect()
    except QpipeError as exc:
        yield False, f"connection: {exc}"
        return
    try:
        about = broker.describe()
        yield True, f"connected to the {broker.name} broker" + (f" {about[0]}" if about else "")
        for line in about[1:]:
            yield True, line
        yield from _steps(broker, symbol, place_test_order)
    finally:
        broker.close()


def _steps(broker: Broker, symbol: str, place_test_order: bool) -> Iterator[tuple[bool, str]]:
    try:
        account = broker.account()
        good = math.isfinite(account.net_liquidation) and account.net_liquidation > 0
        yield (
            good,
            (
                f"account {account.account_id}: net liquidation {account.net_liquidation:,.2f}, "
                f"cash {account.cash:,.2f}"
            ),
        )
        if not account.cash >= 0:  # negative (or NaN: the broker did not say)
            yield (
                False,
                f"cash {account.cash:,.2f} of account {account.account_id} is negative: the "
                "account is borrowing (fills above the planned prices, or costs on top)",
            )
        yield True, f"{len(broker.positions())} open positions"
    except QpipeError as exc:
        yield False, f"account: {exc}"
    last = math.nan
    try:
        bars = broker.daily_bars([symbol], 5)
        if len(bars):
            last = float(bars["close"].iloc[-1])
            yield True, f"{len(bars)} daily bars of {symbol}, last {bars['date'].max():%Y-%m-%d}"
        else:
            yield False, f"no daily bars of {symbol} (market data permissions?)"
    except QpipeError as exc:
        yield False, f"daily bars of {symbol}: {exc}"
    try:
        preview = broker.what_if(Order(symbol, "buy", 1, "MOC", "qp:check:whatif"))
        yield (
            True,
            (
                f"what-if of 1 {symbol} MOC: commission {preview.commission:.2f}, "
                f"initial margin change {preview.init_margin_change:,.2f}"
            ),
        )
    except (QpipeError, ValueError) as exc:
        yield False, f"what-if of 1 {symbol}: {exc}"
    if place_test_order:
        yield _test_order(broker, symbol, last)


def _test_order(broker: Broker, symbol: str, last: float) -> tuple[bool, str]:
    if not (math.isfinite(last) and last > 0):
        return False, f"test order: no last price of {symbol} to set a limit far from it"
    limit = max(0.01, round(last * TEST_LIMIT_FRACTION, 2))
    reference = f"qp:check:{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}"
    try:
        status = broker.submit(Order(symbol, "buy", 1, "LMT", reference, limit))
        if status.state != "submitted":
            return False, f"test order {reference} came back {status.state}: {status.message}"
        broker.cancel(reference)
    except QpipeError as exc:
        return False, f"test order {reference}: {exc}"
    return True, f"test order: 1 {symbol} buy limit {limit:.2f} placed and cancelled"

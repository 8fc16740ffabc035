"""What the live trader needs from a broker, whatever the broker: the account, positions,
bars and prices, orders and executions by reference, a what-if preview, submit and cancel.

Implementations: :class:`qpipe.live.paper.PaperBroker` (the embedded default) and, in the
``live`` extra, the Interactive Brokers broker. Orders are whole shares; a reference
identifies an order across runs and reconnects (order ids do not survive a gateway restart).
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from qpipe.errors import BrokerError

Side = Literal["buy", "sell"]
OrderType = Literal["MOC", "LOC", "MOO", "MKT", "LMT"]
ORDER_TYPES: tuple[str, ...] = ("MOC", "LOC", "MOO", "MKT", "LMT")
LIMIT_TYPES = ("LOC", "LMT")


class AlreadyPlaced(BrokerError):
    """An order whose reference the broker already holds (``action``: ``already_open`` or
    ``already_filled``); it was not sent again."""

    def __init__(self, reference: str, action: str) -> None:
        super().__init__(f"order {reference} is already at the broker ({action}); not sent again")
        self.reference = reference
        self.action = action


@dataclass(frozen=True)
class Account:
    """Account id, net liquidation value and cash, in the account's currency."""

    account_id: str
    net_liquidation: float
    cash: float


@dataclass(frozen=True)
class Position:
    """Shares held (negative: short) and their average cost per share."""

    symbol: str
    quantity: float
    avg_cost: float


@dataclass(frozen=True)
class Order:
    """An order of whole shares. ``limit_price`` is required by LOC and LMT and refused by
    the others; ``reference`` ties it to its rebalance (see
    :func:`qpipe.live.orders.order_reference`)."""

    symbol: str
    side: Side
    quantity: int
    order_type: OrderType
    reference: str
    limit_price: float | None = None

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"order {self.reference}: side must be buy or sell, got {self.side!r}")
        if (
            isinstance(self.quantity, bool)
            or int(self.quantity) != self.quantity
            or self.quantity < 1
        ):
            raise ValueError(
                f"order {self.reference}: quantity must be whole shares >= 1, got {self.quantity!r}"
            )
        object.__setattr__(self, "quantity", int(self.quantity))
        if self.order_type not in ORDER_TYPES:
            raise ValueError(
                f"order {self.reference}: type must be one of {', '.join(ORDER_TYPES)}, "
                f"got {self.order_type!r}"
            )
        needs_limit = self.order_type in LIMIT_TYPES
        if needs_limit != (self.limit_price is not None):
            raise ValueError(
                f"order {self.reference}: {self.order_type} "
                + ("needs a limit price" if needs_limit else "takes no limit price")
            )
        if needs_limit and not self.limit_price > 0:  # type: ignore[operator]
            raise ValueError(f"order {self.reference}: limit price must be > 0")
        if not self.reference:
            raise ValueError("order: a reference is required")


OrderState = Literal["submitted", "filled", "cancelled", "rejected"]


@dataclass(frozen=True)
class OrderStatus:
    """Where an order stands: ``filled`` of ``order.quantity`` shares at ``avg_price``."""

    order: Order
    order_id: int
    state: OrderState
    filled: float = 0.0
    avg_price: float = float("nan")
    message: str = ""


@dataclass(frozen=True)
class Execution:
    """One fill: its id, the order's reference, shares, price and commission."""

    exec_id: str
    reference: str
    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float
    time: dt.datetime


@dataclass(frozen=True)
class WhatIf:
    """A preview of an order: its commission and the margin and equity after it."""

    reference: str
    commission: float
    init_margin_change: float
    maint_margin_change: float
    equity_with_loan: float


class Broker(ABC):
    """The broker interface of the live trader. Use as a context manager (connects, closes)."""

    name: str = "broker"

    def __enter__(self) -> Broker:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> list[str]:
        """Lines about the connection for a person (where, versions, notices); none by
        default."""
        return []

    @abstractmethod
    def connect(self) -> None:
        """Open the connection (a no-op where there is none)."""

    @abstractmethod
    def close(self) -> None:
        """Close the connection."""

    @abstractmethod
    def account(self) -> Account:
        """The account's id, net liquidation value and cash."""

    @abstractmethod
    def positions(self) -> dict[str, Position]:
        """Open positions by symbol."""

    @abstractmethod
    def daily_bars(self, symbols: Sequence[str], sessions: int) -> pd.DataFrame:
        """The last ``sessions`` daily bars per symbol (columns date, symbol, open, high, low,
        close, volume; raw prices)."""

    @abstractmethod
    def snapshot(self, symbols: Sequence[str]) -> pd.Series:
        """The latest price per symbol (NaN where there is none)."""

    @abstractmethod
    def open_orders(self) -> list[OrderStatus]:
        """Orders placed and not yet filled or cancelled."""

    @abstractmethod
    def executions(self, since: dt.date | None = None) -> list[Execution]:
        """Fills since ``since`` (default: today)."""

    @abstractmethod
    def what_if(self, order: Order) -> WhatIf:
        """Preview ``order`` without placing it."""

    @abstractmethod
    def submit(self, order: Order) -> OrderStatus:
        """Place ``order``."""

    @abstractmethod
    def cancel(self, reference: str) -> None:
        """Cancel the open order with this reference (an error if there is none)."""

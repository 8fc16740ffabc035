"""The paper broker, the embedded default: no account needed, state kept in the lake.

Prices are the lake's latest closes. An order fills at once, whole, at that price moved
against the trader by the slippage rate, paying the commission (rate, with a minimum) from
cash; a limit order (LMT, LOC) whose limit the price does not meet stays open until
cancelled. Account, positions, orders and executions live under ``<lake>/live/paper/`` (each
file replaced atomically), so a second run sees what the first did. Corporate actions in the
lake after the session the state was saved at are booked as the backtest engine books them
(shares times the split ratio, dividends in cash), so the account tracks the engine.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qpipe.backtest.config import BacktestConfig
from qpipe.data.adjustments import book_actions
from qpipe.data.lake import Lake, write_frame
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
from qpipe.rulebook.costs import commission, fill_price

ACCOUNT_ID = "PAPER"
_ORDER_COLUMNS = ["order_id", "reference", "symbol", "side", "quantity", "order_type",
                  "limit_price", "state", "filled", "avg_price", "message"]  # fmt: skip
_EXEC_COLUMNS = ["exec_id", "reference", "symbol", "side", "quantity", "price", "commission",
                 "time"]  # fmt: skip


class PaperBroker(Broker):
    """Simulated fills on the lake's latest prices with ``costs`` (commission and slippage of
    a :class:`BacktestConfig`; its ``initial_cash`` funds a new account)."""

    name = "paper"

    def __init__(
        self,
        lake: Lake,
        costs: BacktestConfig | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.lake = lake
        self.costs = costs or BacktestConfig()
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.folder = Path(lake.root) / "live" / "paper"

    # ------------------------------------------------------------------ state

    def _read(self, name: str, columns: list[str]) -> pd.DataFrame:
        path = self.folder / f"{name}.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=columns)

    def _state(self) -> tuple[dict[str, Position], float]:
        """The positions and cash as saved, carried through the lake's corporate actions
        with ex-dates after the session the state was saved at (``as_of``, the lake's
        latest bar then) up to the lake's latest bar (later ex-dates wait), by the engine's
        rules
        (:func:`~qpipe.data.adjustments.book_actions`; the average cost divided by the
        split ratio). Nothing is written: a dry run leaves the files as they are."""
        frame = self._read("positions", ["symbol", "quantity", "avg_cost"])
        held = {
            r.symbol: Position(r.symbol, float(r.quantity), float(r.avg_cost))
            for r in frame.itertuples(index=False)
            if r.quantity != 0
        }
        account = self._read("account", ["cash", "as_of"])
        if not len(account):
            return held, self.costs.initial_cash
        cash = float(account["cash"].iloc[0])
        as_of = account["as_of"].iloc[0] if "as_of" in account else None
        if not held or as_of is None or pd.isna(as_of):
            return held, cash
        last = self._as_of()
        if "corporate_actions" not in self.lake.tables() or pd.isna(last):
            return held, cash
        since = pd.Timestamp(as_of)
        actions = self.lake.read("corporate_actions", since, last, symbols=sorted(held))
        actions = actions.loc[pd.to_datetime(actions["date"]) > since]  # ex-dates to come wait
        if actions.empty:
            return held, cash
        shares = pd.Series({s: p.quantity for s, p in held.items()}, dtype=np.float64)
        carried, cash, touched = book_actions(shares, cash, actions)
        for symbol in touched:
            old = held[symbol]
            cost = old.avg_cost * old.quantity / carried[symbol]
            held[symbol] = Position(symbol, float(carried[symbol]), cost)
        return held, cash

    def _as_of(self) -> pd.Timestamp:
        """The lake's latest bar's session (NaT without bars): the state's date."""
        dates = self.lake.dates("bars") if "bars" in self.lake.tables() else []
        return pd.Timestamp(dates[-1]) if dates else pd.NaT

    def _cash(self) -> float:
        return self._state()[1]

    def connect(self) -> None:
        """Nothing to open: the state's files are created by the first fill or order (a
        dry run leaves no trace)."""

    def close(self) -> None:
        """Nothing to close: every change is on disk when its call returns."""

    # ------------------------------------------------------------------ market data

    def daily_bars(self, symbols: Sequence[str], sessions: int) -> pd.DataFrame:
        bars = self.lake.read("bars", symbols=list(symbols))
        dates = np.sort(bars["date"].unique())[-sessions:] if len(bars) else []
        return bars.loc[bars["date"].isin(dates)].reset_index(drop=True)

    def snapshot(self, symbols: Sequence[str]) -> pd.Series:
        bars = self.lake.read("bars", columns=["close"], symbols=list(symbols))
        last = bars.dropna(subset=["close"]).groupby("symbol")["close"].last()
        return last.reindex(list(symbols)).astype(np.float64)

    # ------------------------------------------------------------------ account

    def account(self) -> Account:
        held = self.positions()
        prices = self.snapshot(list(held))  # one read of the lake for every position
        value = sum(
            p.quantity * (prices[s] if np.isfinite(prices[s]) else p.avg_cost)
            for s, p in held.items()
        )
        cash = self._cash()
        return Account(ACCOUNT_ID, cash + value, cash)

    def _price(self, symbol: str) -> float:
        return float(self.snapshot([symbol]).iloc[0])

    def positions(self) -> dict[str, Position]:
        return self._state()[0]

    # ------------------------------------------------------------------ orders

    def _orders(self) -> pd.DataFrame:
        return self._read("orders", _ORDER_COLUMNS)

    def open_orders(self) -> list[OrderStatus]:
        frame = self._orders()
        return [self._status(r) for r in frame.itertuples(index=False) if r.state == "submitted"]

    def executions(self, since: dt.date | None = None) -> list[Execution]:
        frame = self._read("executions", _EXEC_COLUMNS)
        day = since or self.clock().date()
        return [
            Execution(
                r.exec_id,
                r.reference,
                r.symbol,
                r.side,
                float(r.quantity),
                float(r.price),
                float(r.commission),
                pd.Timestamp(r.time).to_pydatetime(),
            )
            for r in frame.itertuples(index=False)
            if pd.Timestamp(r.time).date() >= day
        ]

    def what_if(self, order: Order) -> WhatIf:
        price = self._fill_price(order)
        fee = commission(order.quantity * price, self.costs.commission_rate,
                         self.costs.min_commission)  # fmt: skip
        equity = self.account().net_liquidation - fee
        return WhatIf(order.reference, fee, 0.0, 0.0, equity)

    def _fill_price(self, order: Order) -> float:
        price = self._price(order.symbol)
        if not (np.isfinite(price) and price > 0):
            raise BrokerError(
                f"{order.symbol}: no price in the lake; order {order.reference} refused"
            )
        side = 1.0 if order.side == "buy" else -1.0
        return fill_price(price, side, self.costs.slippage_rate)

    def submit(self, order: Order) -> OrderStatus:
        orders = self._orders()
        same = orders.loc[orders["reference"] == order.reference, "state"]
        if len(same):
            raise AlreadyPlaced(
                order.reference, "already_filled" if same.iloc[0] == "filled" else "already_open"
            )
        price = self._fill_price(order)
        order_id = int(orders["order_id"].max()) + 1 if len(orders) else 1
        meets = order.limit_price is None or (
            price <= order.limit_price if order.side == "buy" else price >= order.limit_price
        )
        if meets:
            status = OrderStatus(order, order_id, "filled", float(order.quantity), price)
            self._fill(order, price)
        else:
            status = OrderStatus(order, order_id, "submitted", message="limit not reached")
        self._save_order(orders, status)
        return status

    def cancel(self, reference: str) -> None:
        orders = self._orders()
        mask = (orders["reference"] == reference) & (orders["state"] == "submitted")
        if not mask.any():
            raise BrokerError(f"no open order with reference {reference}")
        orders.loc[mask, "state"] = "cancelled"
        write_frame(orders, self.folder / "orders.parquet")

    def _fill(self, order: Order, price: float) -> None:
        signed = order.quantity if order.side == "buy" else -order.quantity
        notional = order.quantity * price
        fee = commission(notional, self.costs.commission_rate, self.costs.min_commission)
        held, cash = self._state()
        cash -= signed * price + fee
        old = held.get(order.symbol, Position(order.symbol, 0.0, 0.0))
        quantity = old.quantity + signed
        if quantity == 0:
            cost = 0.0
        elif old.quantity == 0 or (old.quantity > 0) != (quantity > 0):
            cost = price  # opened or flipped
        elif abs(quantity) > abs(old.quantity):
            cost = (old.avg_cost * old.quantity + price * signed) / quantity
        else:
            cost = old.avg_cost  # reduced
        held[order.symbol] = Position(order.symbol, quantity, cost)
        positions = pd.DataFrame(
            [(p.symbol, p.quantity, p.avg_cost) for p in held.values() if p.quantity != 0],
            columns=["symbol", "quantity", "avg_cost"],
        )
        executions = self._read("executions", _EXEC_COLUMNS)
        row = pd.DataFrame([{
            "exec_id": uuid.uuid4().hex[:16], "reference": order.reference, "symbol": order.symbol,
            "side": order.side, "quantity": float(order.quantity), "price": price,
            "commission": fee, "time": pd.Timestamp(self.clock()),
        }])  # fmt: skip
        executions = row if executions.empty else pd.concat([executions, row], ignore_index=True)
        write_frame(executions, self.folder / "executions.parquet")
        write_frame(positions, self.folder / "positions.parquet")
        write_frame(pd.DataFrame({"cash": [cash], "as_of": [self._as_of()]}),
                    self.folder / "account.parquet")  # fmt: skip

    def _save_order(self, orders: pd.DataFrame, status: OrderStatus) -> None:
        o = status.order
        row = pd.DataFrame([{
            "order_id": status.order_id, "reference": o.reference, "symbol": o.symbol,
            "side": o.side, "quantity": o.quantity, "order_type": o.order_type,
            "limit_price": o.limit_price if o.limit_price is not None else np.nan,
            "state": status.state, "filled": status.filled, "avg_price": status.avg_price,
            "message": status.message,
        }])  # fmt: skip
        frame = row if orders.empty else pd.concat([orders, row], ignore_index=True)
        write_frame(frame, self.folder / "orders.parquet")

    @staticmethod
    def _status(r: Any) -> OrderStatus:
        """An order row of the state as an :class:`OrderStatus`."""
        limit = None if pd.isna(r.limit_price) else float(r.limit_price)
        order = Order(r.symbol, r.side, int(r.quantity), r.order_type, r.reference, limit)
        return OrderStatus(
            order, int(r.order_id), r.state, float(r.filled), float(r.avg_price), r.message
        )

"""The live trader: one strategy's target weights of a session into orders at a broker,
safely and idempotently.

A rebalance, in order: refuse stale data (the last bar older than the previous session);
read the account and refuse an empty or inconsistent one; price the names; refuse weights
above the per-name limit; plan the orders (:func:`qpipe.live.orders.plan_orders`); refuse an
order above the notional cap or a turnover above its cap; reconcile against the broker's open
orders and today's executions by reference (a name whose reference is open or already filled
is not sent again, so a crash and re-run never doubles an order); then, unless it is a dry
run, submit the rest, checking the kill switch (a file, or the ``QPIPE_KILL`` environment
variable) before each order. Every step is written to the live journal, refusals with their
cause; a refusal sends nothing.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from qpipe.errors import ConfigError, QpipeError
from qpipe.live.broker import AlreadyPlaced, Broker, BrokerError, Order, OrderType
from qpipe.live.journal import Journal
from qpipe.live.orders import OrderPlanError, plan_orders
from qpipe.live.sleeves import Sleeves, holdings_of, journal_fills
from qpipe.rulebook.costs import CostModel
from qpipe.rulebook.limits import LIMITS, NOT_REFUSED, limit_params, refusal
from qpipe.settings import LimitsConfig

Mode = Literal["dry_run", "execute"]
KILL_ENV = "QPIPE_KILL"


class RebalanceRefused(QpipeError):
    """The rebalance was refused before any order was sent; the message names the cause."""


@dataclass(frozen=True)
class Limits:
    """Safety limits: per-order notional, per-name weight, gross, turnover (traded notional
    / NAV), and the order plan's lot size (whole shares), minimum trade value and cash
    buffer. The configured ones are ``limits:`` in the settings (:meth:`from_settings`)."""

    max_order_notional: float | None = 100_000.0
    max_weight: float = 0.2
    max_turnover: float = 2.0
    lot_size: int = 1
    min_trade_value: float = 0.0
    cash_buffer: float = 0.0
    max_gross: float = 1.0

    @classmethod
    def from_settings(cls, limits: LimitsConfig) -> Limits:
        """The ``limits:`` section; a max order notional null is no cap; a lot size null is
        whole shares (lots of 1); one that is not a whole number of shares cannot be traded
        live: refused, naming the key."""
        lot = 1 if limits.lot_size is None else limits.lot_size
        if lot != int(lot) or lot < 1:
            raise ConfigError(
                f"limits.lot_size {limits.lot_size} is not a whole number of shares: live "
                "orders are whole shares"
            )
        return cls(
            max_order_notional=limits.max_order_notional, max_weight=limits.max_weight,
            max_turnover=limits.max_turnover, lot_size=int(lot),
            min_trade_value=limits.min_trade_value, cash_buffer=limits.cash_buffer,
            max_gross=limits.max_gross,
        )  # fmt: skip


@dataclass(frozen=True)
class RebalanceReport:
    """What a rebalance did: the planned orders with what happened to each (``action``:
    ``sent``, ``dry_run``, ``already_open``, ``already_filled``, ``killed``, ``rejected``,
    ``error``)."""

    run_id: str
    session: dt.date
    strategy: str
    mode: Mode
    orders: pd.DataFrame = field(repr=False)

    @property
    def sent(self) -> pd.DataFrame:
        return self.orders.loc[self.orders["action"] == "sent"]


@dataclass
class LiveTrader:
    """Rebalances through ``broker``, journaling under ``journal``."""

    broker: Broker
    journal: Journal
    limits: Limits = field(default_factory=Limits)
    costs: CostModel = field(default_factory=CostModel)
    """The cost model the buys are sized with (fills at its slippage and commission must
    leave the cash buffer)."""
    kill_file: Path | None = None
    order_type: OrderType = "MOC"
    sleeves_root: Path | None = None
    """The lake root the strategies' sleeves are kept under (:class:`Sleeves`, per account);
    with one, a rebalance given an ``allocation`` trades the strategy's sleeve on its share
    of the account (else the whole account)."""

    def sleeves(self, account_id: str) -> Sleeves | None:
        """The sleeves on account ``account_id`` (None without :attr:`sleeves_root`)."""
        return None if self.sleeves_root is None else Sleeves(self.sleeves_root, account_id)

    def _refuse(self, weights: pd.Series, notional: pd.Series, nav: float) -> None:
        """Raise :class:`RebalanceRefused` when the limits' refusal rule
        (:func:`qpipe.rulebook.limits.refusal`, the backtest engine's too) refuses ``weights``
        with orders of ``notional`` (by symbol; empty before planning) on ``nav``; the
        message names the limit, its value and the offending names."""
        lim = self.limits
        params = limit_params(
            max_weight=lim.max_weight, max_gross=lim.max_gross,
            max_order_notional=lim.max_order_notional, max_turnover=lim.max_turnover,
        )  # fmt: skip
        code, _ = refusal(weights.to_numpy(np.float64), notional.to_numpy(np.float64),
                          float(nav), params)  # fmt: skip
        if code == NOT_REFUSED:
            return
        key = LIMITS[code - 1]
        if key == "max_weight":
            over = weights[weights.abs() > lim.max_weight + 1e-12]
            raise RebalanceRefused(
                f"weights above the per-name limit {lim.max_weight}: "
                + ", ".join(f"{s} {w:.4f}" for s, w in over.items())
                + " (limits.max_weight)"
            )
        if key == "max_gross":
            raise RebalanceRefused(
                f"target weights sum to {float(weights.abs().sum()):.4f} gross, above the "
                f"limit {lim.max_gross} (limits.max_gross)"
            )
        if key == "max_order_notional":
            big = notional[notional > lim.max_order_notional]
            raise RebalanceRefused(
                f"orders above the notional cap {lim.max_order_notional:,.0f}: "
                + ", ".join(f"{s} {v:,.0f}" for s, v in big.items())
                + " (limits.max_order_notional)"
            )
        turnover = float(notional.sum()) / nav
        raise RebalanceRefused(
            f"turnover {turnover:.2%} of NAV above the cap {lim.max_turnover:.2%} "
            "(limits.max_turnover)"
        )

    def killed(self) -> bool:
        """The kill switch: the kill file exists or ``$QPIPE_KILL`` is set (non-empty)."""
        return bool(os.environ.get(KILL_ENV)) or bool(self.kill_file and self.kill_file.exists())

    def rebalance(
        self,
        strategy: str,
        session: dt.date,
        targets: pd.Series,
        last_bar: dt.date,
        previous_session: dt.date,
        mode: Mode = "dry_run",
        allocation: float | None = None,
    ) -> RebalanceReport:
        """Trade ``targets`` (symbol -> weight; NaN leaves a name) of ``strategy`` for
        ``session``. ``last_bar`` is the newest bar the targets were computed from.

        With ``allocation`` (a fraction of the account) and :attr:`sleeves_root`, the weights are
        fractions of the strategy's sleeve value, ``allocation x net liquidation``; the
        shares held are the sleeve's (positions it does not own are never traded); its buys
        spend at most the sleeve's cash (sleeve value less its holdings at the quoted prices,
        and never more than the account's cash); the turnover cap is on the sleeve value.
        An executed rebalance adds its fills to the sleeve."""
        run_id = uuid.uuid4().hex[:12]
        stamp = {"run_id": run_id, "session": session.isoformat(), "strategy": strategy,
                 "mode": mode}  # fmt: skip
        if allocation is not None and not 0 < allocation <= 1:
            raise ValueError(f"allocation of {strategy} must be in (0, 1], got {allocation!r}")
        try:
            return self._rebalance(strategy, session, targets, last_bar, previous_session, mode,
                                   run_id, stamp, allocation)  # fmt: skip
        except (RebalanceRefused, OrderPlanError, BrokerError) as exc:
            self._event(stamp, "refused", str(exc))
            if isinstance(exc, RebalanceRefused):
                raise
            raise RebalanceRefused(str(exc)) from exc

    def _rebalance(
        self, strategy: str, session: dt.date, targets: pd.Series, last_bar: dt.date,
        previous_session: dt.date, mode: Mode, run_id: str, stamp: dict,
        allocation: float | None = None,
    ) -> RebalanceReport:  # fmt: skip
        if last_bar < previous_session:
            raise RebalanceRefused(
                f"stale data: the last bar is {last_bar}, older than the previous session "
                f"{previous_session}"
            )
        account = self.broker.account()
        sleeves = self.sleeves(account.account_id) if allocation is not None else None
        sleeve = sleeves is not None
        start = None  # a sleeve's start from the journal, when it has no ledger yet
        if sleeves is not None and not sleeves.exists(strategy):
            start = journal_fills(self.journal.read("fills"), self.journal.read("snapshot"),
                                  strategy, account.account_id)  # fmt: skip
            if mode == "execute" and len(start):
                sleeves.record(strategy, start)
        if sleeves is not None and mode == "execute":
            self._catch_up(strategy, previous_session, stamp, sleeves)
        held = self.broker.positions()
        if not (np.isfinite(account.net_liquidation) and account.net_liquidation > 0):
            raise RebalanceRefused(
                f"account {account.account_id} is empty or inconsistent: net liquidation "
                f"{account.net_liquidation!r}"
            )
        weights = pd.Series(targets, dtype=np.float64)
        self._refuse(weights, pd.Series(dtype=np.float64), account.net_liquidation)
        cost = pd.Series({s: p.avg_cost for s, p in held.items()}, dtype=np.float64)
        if sleeve:
            shares = (
                holdings_of(start)  # a dry run writes no ledger
                if start is not None and mode == "dry_run"
                else sleeves.holdings(strategy)  # type: ignore[union-attr]
            )
        else:
            shares = pd.Series({s: p.quantity for s, p in held.items()}, dtype=np.float64)
        symbols = sorted(set(weights.index) | set(shares.index))
        prices = self.broker.snapshot(symbols)
        nav, cash = account.net_liquidation, account.cash
        if sleeve:
            value = float((shares * prices.reindex(shares.index)).sum())
            nav = account.net_liquidation * allocation  # type: ignore[operator]
            cash = min(account.cash, nav - value)
        snapshot = pd.DataFrame({
            "symbol": symbols, "held": shares.reindex(symbols).fillna(0.0).to_numpy(),
            "avg_cost": cost.reindex(symbols).to_numpy(),
            "price": prices.reindex(symbols).to_numpy(),
            "target_weight": weights.reindex(symbols).to_numpy(),
            "net_liquidation": account.net_liquidation, "cash": account.cash,
            "sizing_value": nav, "sizing_cash": cash,
            "broker": self.broker.name, "account_id": account.account_id,
        })  # fmt: skip
        self.journal.record("snapshot", snapshot, **stamp)
        plan = plan_orders(
            weights, shares, prices, nav, cash=cash,
            session=session, strategy=strategy, lot_size=self.limits.lot_size,
            min_trade_value=self.limits.min_trade_value, cash_buffer=self.limits.cash_buffer,
            commission_rate=self.costs.commission_rate, min_commission=self.costs.min_commission,
            slippage_rate=self.costs.slippage_rate, max_gross=self.limits.max_gross,
        )  # fmt: skip
        self._refuse(weights, plan.set_index("symbol")["notional"], nav)
        self.journal.record("intended", plan, **stamp)
        plan = self._reconcile(plan, session, stamp)
        actions, messages = [], []
        for row in plan.itertuples():
            if row.action:
                actions.append(row.action)
                messages.append("")
                continue
            if mode == "dry_run":
                actions.append("dry_run")
                messages.append("")
                continue
            if self.killed():
                actions.append("killed")
                messages.append("kill switch on: not sent")
                continue
            order = Order(row.symbol, row.side, int(row.quantity), self.order_type, row.reference)
            try:
                status = self.broker.submit(order)
                rejected = status.state == "rejected"
                actions.append("rejected" if rejected else "sent")
                messages.append(status.message if rejected else status.state)
            except AlreadyPlaced as exc:
                actions.append(exc.action)
                messages.append(str(exc))
            except BrokerError as exc:
                actions.append("error")
                messages.append(str(exc))
        report = plan.assign(action=actions, message=messages)
        self.journal.record("submitted", report, **stamp)
        if mode == "execute":
            self._record_fills(set(report["reference"]), session, stamp, sleeves)
        return RebalanceReport(run_id, session, strategy, mode, report)

    def _reconcile(self, plan: pd.DataFrame, session: dt.date, stamp: dict) -> pd.DataFrame:
        """Mark the planned names whose reference is already open or filled today."""
        open_refs = {s.order.reference for s in self.broker.open_orders()}
        filled_refs = {e.reference for e in self.broker.executions(session)}
        action = [
            "already_open" if ref in open_refs else ("already_filled" if ref in filled_refs else "")
            for ref in plan["reference"]
        ]
        plan = plan.assign(action=action)
        self.journal.record("reconciliation", plan.loc[plan["action"] != "",
                            ["symbol", "reference", "action"]], **stamp)  # fmt: skip
        return plan

    def _catch_up(self, strategy: str, since: dt.date, stamp: dict, sleeves: Sleeves) -> None:
        """Add to ``strategy``'s sleeve the fills since ``since`` of the orders it placed
        earlier (journaled as intended) that came after their run (MOC orders fill at the
        close)."""
        intended = self.journal.read("intended")
        if intended.empty:
            return
        refs = set(intended.loc[intended["strategy"] == strategy, "reference"])
        if refs:
            self._record_fills(refs, since, stamp, sleeves)

    def _record_fills(
        self, references: set[str], session: dt.date, stamp: dict, sleeves: Sleeves | None = None
    ) -> None:
        """Journal the broker's fills of ``references`` so far (MOC orders fill at the close:
        a later run records the rest); with ``sleeves``, add them to the strategy's sleeve."""
        seen = self.journal.read("fills")
        seen_ids = set(seen["exec_id"]) if len(seen) else set()
        try:
            executions = self.broker.executions(session)
        except BrokerError as exc:  # the orders went out; their fills wait for the next run
            self._event(stamp, "fills_unavailable", str(exc))
            return
        ours = [e for e in executions if e.reference in references]
        if sleeves is not None:
            sleeves.record(stamp["strategy"], ours)  # each fill once
        fills = [e for e in ours if e.exec_id not in seen_ids]
        frame = pd.DataFrame([vars(e) for e in fills] if fills else [])
        self.journal.record("fills", frame, **stamp)  # each fill once

    def connect(self, session: dt.date, mode: Mode | str) -> None:
        """Connect the broker; a refused or failed connection (a live port or an account the
        configuration does not allow, a gateway that does not answer) is journaled as a
        refusal and re-raised."""
        try:
            self.broker.connect()
        except QpipeError as exc:
            self.note(session, "*", mode, "refused", str(exc))
            raise

    def note(self, session: dt.date, strategy: str, mode: str, event: str, detail: str) -> None:
        """Journal one event outside a rebalance's own steps (a refusal before it, a risk
        rule acting on its targets)."""
        stamp = {"run_id": uuid.uuid4().hex[:12], "session": session.isoformat(),
                 "strategy": strategy, "mode": mode}  # fmt: skip
        self._event(stamp, event, detail)

    def _event(self, stamp: dict, event: str, detail: str) -> None:
        self.journal.record("events", pd.DataFrame({"event": [event], "detail": [detail]}), **stamp)

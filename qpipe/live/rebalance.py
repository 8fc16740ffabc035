"""One market-close rebalance of the configured strategies on the configured broker: the
core step behind ``qpipe live rebalance`` and the Dagster market-close job.

Each strategy is its own step (:func:`run_strategy`): a refusal or failure of one is
journaled and reported for that strategy and never stops the others. A strategy with no
orders says why (not a rebalance day, and the next one). A strategy that holds nothing on a
day that is not one of its rebalance days starts: it trades to the targets of its last
rebalance at this session (:func:`starting_targets`) and says so."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from qpipe.backtest.runner import engine_config
from qpipe.live.bridge import LiveDataBridge
from qpipe.live.broker import Broker, BrokerError, Position
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.live.risk_book import RiskBook, RiskStateAhead
from qpipe.live.sleeves import Sleeves, unowned
from qpipe.live.trader import Limits, LiveTrader, RebalanceRefused, RebalanceReport
from qpipe.project import Project
from qpipe.settings import LiveConfig
from qpipe.strategies.schedule import next_rebalance
from qpipe.strategies.signals import lake_last_rebalance, lake_previous_weights

RunMode = Literal["dry_run", "paper", "execute"]


@dataclass(frozen=True)
class SessionPlan:
    """The session a rebalance trades, the newest bar and the session before it."""

    session: dt.date
    last_bar: dt.date
    previous: dt.date


def session_plan(project: Project, session: dt.date | None = None) -> SessionPlan:
    """``session`` (default: today in the exchange's time zone if it is a session, else the
    last synced one) with the lake's newest bar and the previous session."""
    lake, cal = project.lake, project.calendar
    bars = lake.dates("bars") if "bars" in lake.tables() else []
    if not bars:
        raise ValueError("no bars in the lake: run `qpipe sync` first")
    if session is None:
        today = pd.Timestamp.now(tz=cal.tz).date()
        session = today if cal.is_session(today) else bars[-1]
    elif not cal.is_session(session):
        raise ValueError(f"{session} is not a {cal.exchange} session")
    return SessionPlan(session, bars[-1], cal.previous_session(session))


def live_settings(project: Project, **overrides: object) -> LiveConfig:
    """``project``'s live settings with ``overrides`` (None values ignored), validated."""
    data = project.settings.live.model_dump()
    data.update({k: v for k, v in overrides.items() if v is not None})
    return LiveConfig.model_validate(data)


def broker_for(project: Project, mode: RunMode = "execute", **overrides: object) -> Broker:
    """The paper broker for ``mode`` paper, else the configured ``live.broker`` (a dry run
    plans against it and sends nothing). ``overrides``: live settings such as host, port,
    client_id."""
    cfg = live_settings(project, **overrides)
    if mode == "paper" or cfg.broker == "paper":
        return PaperBroker(project.lake, engine_config(project.settings.backtest))
    from qpipe.live.ib import IBBroker

    return IBBroker(cfg)


def trader_for(project: Project, mode: RunMode = "execute", **overrides: object) -> LiveTrader:
    """The live trader of ``project``'s live settings on :func:`broker_for`'s broker; its
    kill file is ``<lake>/live/KILL``."""
    limits = Limits.from_settings(project.settings.limits)
    costs = engine_config(project.settings.backtest).costs
    broker = broker_for(project, mode, **overrides)
    kill_file = Path(project.lake.root) / "live" / "KILL"
    return LiveTrader(broker, Journal(project.lake.root), limits, costs, kill_file=kill_file,
                      sleeves_root=Path(project.lake.root))  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    """One strategy's rebalance of a session: ``planned`` (the dry-run plan) and ``sent``
    (None unless orders went out); ``note`` says why there are no orders; ``error`` is why
    it failed (a refusal sends nothing; orders the broker rejected or failed are in
    ``sent``). Empty ``error``: it succeeded. ``targets``: the weights traded to, after the
    risk rules (NaN: no decision)."""

    strategy: str
    session: dt.date
    planned: RebalanceReport | None = None
    sent: RebalanceReport | None = None
    note: str = ""
    error: str = ""
    targets: pd.Series | None = field(default=None, repr=False)
    unowned: pd.Series | None = field(default=None, repr=False)
    """Shares per symbol of the account's positions that no strategy's sleeve owns
    (negative: the sleeves hold more than the broker); never traded."""

    @property
    def failed(self) -> bool:
        return bool(self.error)


FAILED_ACTIONS = ("rejected", "error")
"""Order actions that make a strategy's rebalance a failure."""


def run_strategy(
    project: Project, name: str, plan: SessionPlan, trader: LiveTrader, mode: RunMode
) -> Outcome:
    """:func:`rebalance` of strategy ``name`` as its own step: any refusal or failure is
    caught and returned as the outcome's ``error`` (journaled: refusals by the trader, other
    failures here as event ``failed``; orders rejected or failed at the broker as event
    ``failed`` too), so the caller goes on with the other strategies. No orders: the
    ``note`` (journaled as event ``no_orders``) says why."""
    try:
        outcome = rebalance(project, name, plan, trader, mode)
    except RebalanceRefused as exc:  # journaled where it was refused
        return Outcome(name, plan.session, error=f"refused: {exc}")
    except Exception as exc:  # one strategy's failure never stops the others
        error = f"failed: {type(exc).__name__}: {exc}"
        trader.note(plan.session, name, mode, "failed", error)
        return Outcome(name, plan.session, error=error)
    note, error = outcome.note, ""
    if outcome.unowned is not None and len(outcome.unowned):
        trader.note(plan.session, name, mode, "unowned", describe_unowned(outcome.unowned))
    if outcome.planned is not None and outcome.planned.orders.empty:
        note = no_orders_reason(project, name, plan.session, outcome.targets)
        trader.note(plan.session, name, mode, "no_orders", note)
    if outcome.sent is not None:
        orders = outcome.sent.orders
        bad = orders.loc[orders["action"].isin(FAILED_ACTIONS)]
        if len(bad):
            error = f"failed: {len(bad)} of {len(orders)} orders not accepted: " + "; ".join(
                f"{r.symbol} {r.action}: {r.message}" for r in bad.itertuples()
            )
            trader.note(plan.session, name, mode, "failed", error)
    return replace(outcome, note=note, error=error)


def describe_unowned(shares: pd.Series) -> str:
    """``shares`` (symbol -> shares no sleeve owns) as one line for a person."""
    parts = ", ".join(f"{s} {q:+g}" for s, q in shares.items())
    return f"positions no strategy owns (not traded): {parts}"


def no_orders_reason(
    project: Project, name: str, session: dt.date, targets: pd.Series | None = None
) -> str:
    """Why strategy ``name`` has no orders at ``session``: not a rebalance day (and the next
    one); on a rebalance day, no weights decided, or the account already holds ``targets``
    (all in cash when every weight is 0)."""
    frequency = project.strategies[name].rebalance
    following = next_rebalance(session, frequency, project.calendar)
    upcoming = None if following is None else following.date()
    if upcoming == session:
        weights = pd.Series(dtype=np.float64) if targets is None else targets.dropna()
        if weights.empty:
            return f"a rebalance day for {name}, but it decided no weights (no usable data)"
        if (weights == 0).all():
            return f"a rebalance day for {name} with nothing to trade: its targets are all cash"
        return (
            f"a rebalance day for {name} with nothing to trade: the positions already match "
            "its targets (or every trade is below a lot or the minimum trade value)"
        )
    when = f"next one on {upcoming}" if upcoming else "no next one in the calendar"
    return f"not a rebalance day for {name}; {when}"


def rebalance(
    project: Project, name: str, plan: SessionPlan, trader: LiveTrader, mode: RunMode
) -> Outcome:
    """Strategy ``name``'s orders for ``plan.session``: always planned (a dry run, journaled),
    then sent unless ``mode`` is ``dry_run``. Returns the plan, what was sent and the
    targets; a refusal raises :class:`RebalanceRefused` (see :func:`run_strategy`)."""
    bridge = LiveDataBridge(project, name, trader.broker)
    strategy = project.strategies[name]
    universe = strategy.universe.select(project.instruments)
    in_lake = plan.session in set(project.lake.dates("bars"))  # else: today's snapshot
    try:
        snapshot = None if in_lake else trader.broker.snapshot(universe)
    except BrokerError as exc:  # e.g. a symbol the broker does not know
        trader.note(plan.session, name, mode, "refused", str(exc))
        raise RebalanceRefused(str(exc)) from exc
    targets = bridge.targets(plan.session, snapshot)
    note = ""
    allocation = project.settings.strategies[name].allocation
    held = trader.broker.positions()
    sleeves = trader.sleeves(trader.broker.account().account_id)
    if sleeves is not None:  # the strategy's own book, not the account's
        held = sleeve_positions(held, sleeves.holdings(name))
    start = starting_targets(project, name, plan.session, held, universe)
    if start is not None:
        day, targets = start
        note = f"starting: trading to the targets of {day}"
        trader.note(plan.session, name, mode, "starting", note)
    if strategy.stop_loss is not None or strategy.circuit_breaker is not None:
        targets = apply_risk(project, name, plan.session, targets, trader, mode)
    last_bar = max([plan.last_bar, *bridge.filled])  # gaps the broker filled count
    args = (name, plan.session, targets, last_bar, plan.previous)
    planned = trader.rebalance(*args, "dry_run", allocation)
    sent = None
    if mode != "dry_run" and not planned.orders.empty:
        sent = trader.rebalance(*args, "execute", allocation)
    return Outcome(name, plan.session, planned, sent, note=note, targets=targets,
                   unowned=account_unowned(project, trader))  # fmt: skip


def sleeve_positions(positions: dict[str, Position], shares: pd.Series) -> dict[str, Position]:
    """The sleeve's ``shares`` as positions, at the account's average cost per symbol (NaN
    where the account holds none)."""
    return {
        s: Position(s, float(q), positions[s].avg_cost if s in positions else float("nan"))
        for s, q in shares.items()
    }


def account_unowned(project: Project, trader: LiveTrader) -> pd.Series:
    """The broker's positions less every configured strategy's sleeve (see
    :func:`qpipe.live.sleeves.unowned`)."""
    sleeves = Sleeves(project.lake.root, trader.broker.account().account_id)
    return unowned(trader.broker.positions(), sleeves.owned(project.settings.strategies))


def holds_nothing(held: Mapping[str, Position], names: Iterable[str]) -> bool:
    """Whether the positions ``held`` (symbol -> position) hold none of ``names`` (no
    non-zero quantity): the strategy's book is empty."""
    return all(held[s].quantity == 0 for s in names if s in held)


def starting_targets(
    project: Project,
    name: str,
    session: dt.date,
    held: Mapping[str, Position],
    universe: Iterable[str],
) -> tuple[dt.date, pd.Series] | None:
    """The targets strategy ``name`` starts with at ``session``: when ``session`` is not one
    of its rebalance days and it :func:`holds_nothing` of its ``universe`` (a first live
    day, or a book emptied), the weights of its last rebalance in the lake
    (:func:`~qpipe.strategies.signals.lake_last_rebalance`) with the date of that rebalance,
    names delisted by ``session`` left out (NaN, as a strategy never decides on them).
    None: not starting (a rebalance day, something held, no rebalance in the lake, or one
    all in cash)."""
    frequency = project.strategies[name].rebalance
    following = next_rebalance(session, frequency, project.calendar)
    if following is not None and following.date() == session:
        return None
    names = set(universe)
    if not holds_nothing(held, names):
        return None
    last = lake_last_rebalance(project.lake, project.calendar, name, session)
    if last is None:
        return None
    day, weights = last
    if not (weights.fillna(0.0) != 0.0).any():
        return None  # all cash: nothing to start with
    instruments = project.instruments
    gone = instruments.loc[instruments["last_date"] <= pd.Timestamp(session), "symbol"]
    weights = weights.astype(np.float64)
    weights[weights.index.isin(gone)] = np.nan
    return day.date(), weights


def apply_risk(
    project: Project,
    name: str,
    session: dt.date,
    targets: pd.Series,
    trader: LiveTrader,
    mode: RunMode,
) -> pd.Series:
    """Strategy ``name``'s stop loss and circuit breaker on ``targets`` against the broker's
    positions, prices and NAV (:class:`~qpipe.live.risk_book.RiskBook`, with the
    instruments' delistings and the strategy's last rebalance in the lake); each rule that
    acts is journaled as an event. A dry run decides the same way and saves no state."""
    strategy = project.strategies[name]
    book = RiskBook(project.lake.root, name, strategy.stop_loss, strategy.circuit_breaker)
    broker = trader.broker
    account = broker.account()
    sleeve = Sleeves(project.lake.root, account.account_id).holdings(name)
    held = sleeve_positions(broker.positions(), sleeve)
    prices = broker.snapshot(sorted(set(targets.index) | set(held)))
    # the strategy's share of the account's value (the value its orders are sized on)
    nav = account.net_liquidation * (project.settings.strategies[name].allocation or 1.0)
    if not (np.isfinite(nav) and nav > 0):
        return targets  # the trader refuses an empty or inconsistent account
    instruments = project.instruments
    delisted = instruments.loc[instruments["last_date"] <= pd.Timestamp(session), "symbol"]
    previous = lake_previous_weights(project.lake, project.calendar, name, session)
    try:
        decision = book.apply(
            session, targets, held, prices, nav, delisted=delisted, previous=previous,
            save=mode != "dry_run",
        )  # fmt: skip
    except RiskStateAhead as exc:
        trader.note(session, name, mode, "refused", str(exc))
        raise RebalanceRefused(str(exc)) from exc
    for row in decision.events.itertuples():
        detail = f"{row.symbol}: {row.reason}" if row.symbol else row.reason
        trader.note(session, name, mode, row.rule, detail)
    return decision.targets

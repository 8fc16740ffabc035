"""One market-close rebalance of the configured strategies on the configured broker: the
core step behind ``qpipe live rebalance`` and the Dagster market-close job."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from qpipe.backtest.runner import engine_config
from qpipe.live.bridge import LiveDataBridge
from qpipe.live.broker import Broker, BrokerError
from qpipe.live.journal import Journal
from qpipe.live.paper import PaperBroker
from qpipe.live.risk_book import RiskBook, RiskStateAhead
from qpipe.live.trader import Limits, LiveTrader, RebalanceRefused, RebalanceReport
from qpipe.project import Project
from qpipe.settings import LiveConfig
from qpipe.strategies.signals import lake_previous_weights

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
    return LiveTrader(broker, Journal(project.lake.root), limits, costs, kill_file=kill_file)


def rebalance(
    project: Project, name: str, plan: SessionPlan, trader: LiveTrader, mode: RunMode
) -> tuple[RebalanceReport, RebalanceReport | None]:
    """Strategy ``name``'s orders for ``plan.session``: always planned (a dry run, journaled),
    then sent unless ``mode`` is ``dry_run``. Returns the plan and what was sent."""
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
    if strategy.stop_loss is not None or strategy.circuit_breaker is not None:
        targets = apply_risk(project, name, plan.session, targets, trader, mode)
    last_bar = max([plan.last_bar, *bridge.filled])  # gaps the broker filled count
    args = (name, plan.session, targets, last_bar, plan.previous)
    planned = trader.rebalance(*args, "dry_run")
    if mode == "dry_run" or planned.orders.empty:
        return planned, None
    return planned, trader.rebalance(*args, "execute")


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
    acts is journaled as an event."""
    strategy = project.strategies[name]
    book = RiskBook(project.lake.root, name, strategy.stop_loss, strategy.circuit_breaker)
    broker = trader.broker
    held = broker.positions()
    prices = broker.snapshot(sorted(set(targets.index) | set(held)))
    nav = broker.account().net_liquidation
    if not (np.isfinite(nav) and nav > 0):
        return targets  # the trader refuses an empty or inconsistent account
    instruments = project.instruments
    delisted = instruments.loc[instruments["last_date"] <= pd.Timestamp(session), "symbol"]
    previous = lake_previous_weights(project.lake, project.calendar, name, session)
    try:
        decision = book.apply(
            session, targets, held, prices, nav, delisted=delisted, previous=previous
        )
    except RiskStateAhead as exc:
        trader.note(session, name, mode, "refused", str(exc))
        raise RebalanceRefused(str(exc)) from exc
    for row in decision.events.itertuples():
        detail = f"{row.symbol}: {row.reason}" if row.symbol else row.reason
        trader.note(session, name, mode, row.rule, detail)
    return decision.targets

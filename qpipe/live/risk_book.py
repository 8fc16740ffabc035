"""A strategy's stop loss and circuit breaker run against the live account, with their state
kept in the lake between sessions.

The rules are the backtest's own (:mod:`qpipe.strategies.risk`); at a session's rebalance
they see what the engine sees at that close: the shares held, today's price (the snapshot)
and the account's net liquidation value. A stop that triggers sets its symbol's target to 0;
the breaker scales every target by its exposure and, on the session it changes mode, first
fills the "no decision" (NaN) targets as the engine does
(:func:`~qpipe.strategies.risk.breaker_targets`): with the held weights when it leaves
ACTIVE, so exposure drops at once, and with the strategy's current targets when it resumes
ACTIVE, so the book returns to them at once. The current targets
(:func:`~qpipe.strategies.risk.current_targets`) are kept with the state: the latest weight
the strategy gave each name, 0 once the stop exited it, none once delisted. A position the
state has not seen yet enters at its average cost.

State lives in ``<lake>/live/risk/<strategy>/{stops,breaker,targets}.parquet``: the state
before and after the latest session stepped. A re-run of the same session steps again from
the "before" state, so re-runs decide the same way and never step twice. A dry run decides
the same way and saves nothing (``save=False``): it never moves the state, so an earlier
session can still be stepped after it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from qpipe.data.lake import write_frame
from qpipe.errors import QpipeError
from qpipe.live.broker import Position
from qpipe.strategies.risk import (
    BreakerState,
    CircuitBreaker,
    StopLoss,
    StopState,
    breaker_targets,
    current_targets,
)

_STOP_COLUMNS = ["session", "phase", "symbol", "entry", "peak", "side"]
_BREAKER_COLUMNS = ["session", "phase", "mode", "peak_nav", "last_nav", "halted_sessions",
                    "since"]  # fmt: skip
_TARGET_COLUMNS = ["session", "phase", "symbol", "weight"]


class RiskStateAhead(QpipeError):
    """The saved risk state is at a later session than the one asked for."""


@dataclass(frozen=True)
class RiskDecision:
    """The targets after the rules, the rules' events (columns symbol, rule, reason) and the
    breaker's mode (None without a breaker)."""

    targets: pd.Series
    events: pd.DataFrame
    mode: str | None


class RiskBook:
    """The persisted risk state of ``strategy`` under ``<lake_root>/live/risk/<strategy>/``."""

    def __init__(
        self,
        lake_root: Path | str,
        strategy: str,
        stop_loss: StopLoss | None,
        circuit_breaker: CircuitBreaker | None,
    ) -> None:
        self.folder = Path(lake_root) / "live" / "risk" / strategy
        self.stop_loss = stop_loss
        self.circuit_breaker = circuit_breaker

    def apply(
        self,
        session: dt.date,
        targets: pd.Series,
        held: dict[str, Position],
        prices: pd.Series,
        nav: float,
        *,
        delisted: Iterable[str] = (),
        previous: pd.Series | None = None,
        save: bool = True,
    ) -> RiskDecision:
        """The rules' decision for ``session`` on ``targets`` (symbol -> weight, NaN: no
        decision) given the positions ``held``, ``prices`` (NaN: none today) and ``nav``;
        saves the state. ``delisted``: names delisted on or before ``session``;
        ``previous``: the strategy's last rebalance weights before ``session``, the current
        targets to start from when none are saved yet (e.g. the first session with a
        breaker). ``save``: write the state (False for a dry run: nothing is written); the
        state files are written together, once every rule has decided."""
        self._pending: dict[str, pd.DataFrame] = {}
        targets = pd.Series(targets, dtype=np.float64).copy()
        given = targets.copy()
        events: list[tuple[str, str, str]] = []
        exited: list[str] = []
        if self.stop_loss is not None:
            targets, exited = self._stops(session, targets, held, prices, events)
        mode = None
        if self.circuit_breaker is not None:
            current = self._current(session, given, exited, set(delisted), previous)
            targets, mode = self._breaker(session, targets, held, prices, nav, current, events)
        frame = pd.DataFrame(events, columns=["symbol", "rule", "reason"])
        if save:
            for name, state in self._pending.items():
                write_frame(state, self.folder / f"{name}.parquet")
        return RiskDecision(targets, frame, mode)

    # ------------------------------------------------------------------ stop loss

    def _stops(
        self,
        session: dt.date,
        targets: pd.Series,
        held: dict[str, Position],
        prices: pd.Series,
        events: list[tuple[str, str, str]],
    ) -> tuple[pd.Series, list[str]]:
        before = _before(self._read("stops", _STOP_COLUMNS), session, self.folder)
        known = before.set_index("symbol") if len(before) else None
        symbols = sorted(set(held) | (set(known.index) if known is not None else set()))
        state = StopLoss.initial(len(symbols))
        if known is not None and symbols:
            rows = known.reindex(symbols)
            side = rows["side"].fillna(0).to_numpy()
            state = StopState(rows["entry"].to_numpy(), rows["peak"].to_numpy(), side)
        qty = np.array([held[s].quantity if s in held else 0.0 for s in symbols])
        price = pd.Series(prices, dtype=np.float64).reindex(symbols).to_numpy()
        cost = np.array([held[s].avg_cost if s in held else np.nan for s in symbols])
        fill = np.where((state.side == 0) & (qty != 0), cost, np.nan)
        result = self.stop_loss.step(state, qty, price, fill)  # type: ignore[union-attr]
        exited = []
        for i, reason in result.reasons.items():
            if qty[i] != 0:
                targets[symbols[i]] = 0.0
                events.append((symbols[i], "stop_loss", reason))
                exited.append(symbols[i])
        after = pd.DataFrame({"symbol": symbols, "entry": result.state.entry,
                              "peak": result.state.peak, "side": result.state.side})  # fmt: skip
        self._save("stops", session, before.drop(columns=["session", "phase"]), after)
        return targets, exited

    # ------------------------------------------------------------------ current targets

    def _current(
        self,
        session: dt.date,
        given: pd.Series,
        exited: list[str],
        delisted: set[str],
        previous: pd.Series | None,
    ) -> pd.Series:
        """The strategy's current targets after ``session`` (symbol -> weight), saved."""
        before = _before(self._read("targets", _TARGET_COLUMNS), session, self.folder)
        if len(before):
            prior = before.set_index("symbol")["weight"].astype(np.float64)
        elif previous is not None:
            prior = pd.Series(previous, dtype=np.float64)
        else:
            prior = pd.Series(dtype=np.float64)
        symbols = sorted(set(prior.index) | set(given.index) | set(exited))
        weights = current_targets(
            prior.reindex(symbols).to_numpy(),
            given.reindex(symbols).to_numpy(),
            np.isin(symbols, exited),
            np.isin(symbols, sorted(delisted)),
        )
        current = pd.Series(weights, index=pd.Index(symbols, dtype=object)).dropna()
        after = pd.DataFrame({"symbol": current.index, "weight": current.to_numpy()})
        self._save("targets", session, before.drop(columns=["session", "phase"]), after)
        return current

    # ------------------------------------------------------------------ circuit breaker

    def _breaker(
        self,
        session: dt.date,
        targets: pd.Series,
        held: dict[str, Position],
        prices: pd.Series,
        nav: float,
        current: pd.Series,
        events: list[tuple[str, str, str]],
    ) -> tuple[pd.Series, str]:
        breaker: CircuitBreaker = self.circuit_breaker  # type: ignore[assignment]
        before = _before(self._read("breaker", _BREAKER_COLUMNS), session, self.folder)
        if before.empty:
            state = breaker.initial(nav, session)
        else:
            r = before.iloc[0]
            last = None if pd.isna(r["last_nav"]) else float(r["last_nav"])
            since = None if pd.isna(r["since"]) else dt.date.fromisoformat(str(r["since"]))
            prior = BreakerState(r["mode"], float(r["peak_nav"]), last,
                                 int(r["halted_sessions"]), since)  # fmt: skip
            step = breaker.step(prior, session, nav)
            state = step.state
            if step.transition is not None:  # the whole book moves now, as in the engine
                events.append(("", "circuit_breaker", step.transition.reason))
                symbols = sorted(set(targets.index) | set(held) | set(current.index))
                quotes = pd.Series(prices, dtype=np.float64).reindex(symbols).to_numpy()
                qty = np.array([held[s].quantity if s in held else 0.0 for s in symbols])
                ok = (qty != 0) & np.isfinite(quotes)
                weights = np.where(ok, qty * np.where(ok, quotes, 0.0) / nav, 0.0)
                order = breaker_targets(
                    state.mode,
                    targets.reindex(symbols).to_numpy(),
                    current.reindex(symbols).to_numpy(),
                    weights,
                )
                targets = pd.Series(order, index=pd.Index(symbols, dtype=object))
        targets = targets * breaker.exposure(state.mode)
        row = pd.DataFrame([{
            "mode": state.mode.value, "peak_nav": state.peak_nav, "last_nav": state.last_nav,
            "halted_sessions": state.halted_sessions,
            "since": None if state.since is None else str(state.since),
        }])  # fmt: skip
        self._save("breaker", session, before.drop(columns=["session", "phase"]), row)
        return targets, state.mode.value

    # ------------------------------------------------------------------ storage

    def _read(self, name: str, columns: list[str]) -> pd.DataFrame:
        path = self.folder / f"{name}.parquet"
        return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=columns)

    def _save(self, name: str, session: dt.date, before: pd.DataFrame, after: pd.DataFrame) -> None:
        """Stage state ``name`` (before and after ``session``); :meth:`apply` writes it."""
        marked = [before.assign(phase="before"), after.assign(phase="after")]
        parts = [p for p in marked if len(p)] or marked[1:]
        frame = pd.concat(parts, ignore_index=True).assign(session=session.isoformat())
        self._pending[name] = frame


def _before(saved: pd.DataFrame, session: dt.date, where: Path) -> pd.DataFrame:
    """The state to step ``session`` from: the saved "before" of the same session (a re-run),
    else the saved "after" of an earlier one; refuses a saved session after ``session``."""
    if saved.empty:
        return saved
    day = session.isoformat()
    stored = str(saved["session"].iloc[0])
    if stored > day:
        raise RiskStateAhead(
            f"risk state in {where} is already at session {stored}; {day} is earlier and "
            "cannot step it (the stop loss and circuit breaker step once per session, in order)"
        )
    phase = "before" if stored == day else "after"
    return saved.loc[saved["phase"] == phase].reset_index(drop=True)

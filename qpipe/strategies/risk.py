"""Risk rules declared on a strategy: a per-position stop loss and a portfolio circuit breaker.

Both rules are pure: ``step`` takes the previous state and today's observations and returns
the new state with the actions and their reasons. There is no I/O, no clock and no hidden
memory, so the backtest engine's day loop and the live trader at the close run the same code
and, fed the same sequence of observations, reach the same decisions; a decision at ``t``
depends on observations up to ``t`` only. States and results are frozen dataclasses and the
numpy arrays they hold are read-only copies, so a caller can keep old states around.

Comparisons against a threshold allow a relative slack of ``1e-9`` so that a value equal to
the threshold in decimal (a close of 90.00 against ``100 x (1 - 0.10)``, a drawdown of
``1 - 90 / 100`` against 10%) counts as reaching it despite binary rounding.
"""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeAlias

import numba as nb
import numpy as np

Day: TypeAlias = date | str
"""A session: a ``datetime.date`` (``datetime`` and ``pd.Timestamp`` are dates too) or an ISO
string. The rules only record it and print it."""

_SLACK = 1e-9
"""Relative slack of the threshold comparisons (see the module docstring)."""


# --------------------------------------------------------------------------- helpers


def _fmt(x: float, min_decimals: int, max_decimals: int = 4) -> str:
    """``x`` with the fewest decimals in ``[min_decimals, max_decimals]`` that show it
    faithfully (``90.00000000000001`` -> ``90.00``, ``1.234`` -> ``1.234``)."""
    for d in range(min_decimals, max_decimals):
        if abs(round(x, d) - x) <= _SLACK * max(1.0, abs(x)):
            return f"{x:.{d}f}"
    return f"{x:.{max_decimals}f}"


def _pct(x: float, min_decimals: int = 1) -> str:
    """A parameter (a fraction) as a percentage, e.g. ``0.075`` -> ``7.5%``."""
    return f"{_fmt(100.0 * x, min_decimals)}%"


def _obs(x: float) -> str:
    """An observed fraction as a percentage to 0.1%, e.g. ``0.12345`` -> ``12.3%``."""
    return f"{100.0 * x:.1f}%"


def _day(day: Day | None) -> str:
    """``day`` for messages: dates in ISO form, midnight timestamps without their time."""
    if isinstance(day, datetime) and day.time() == datetime.min.time() and day.tzinfo is None:
        return day.date().isoformat()
    if isinstance(day, date):
        return day.isoformat()
    return str(day)


def _ge(value: float, threshold: float) -> bool:
    """``value >= threshold`` with the relative slack."""
    return value >= threshold - _SLACK * max(1.0, abs(threshold))


def _le(value: float, threshold: float) -> bool:
    """``value <= threshold`` with the relative slack."""
    return value <= threshold + _SLACK * max(1.0, abs(threshold))


def _real(owner: str, name: str, value: object) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
        raise ValueError(f"{owner}: {name} must be a number, got {value!r}")
    return float(value)


def _fraction(owner: str, name: str, value: object, *, allow_zero: bool = False) -> float:
    """``value`` as a float in ``(0, 1)`` (``[0, 1)`` with ``allow_zero``), else ValueError."""
    v = _real(owner, name, value)
    low_ok = v >= 0.0 if allow_zero else v > 0.0
    if not (low_ok and v < 1.0):
        interval = "[0, 1)" if allow_zero else "(0, 1)"
        raise ValueError(f"{owner}: {name} must be in {interval}, got {value!r}")
    return v


def _readonly(values: object, name: str, dtype: type, n: int | None = None) -> np.ndarray:
    """A read-only 1-D copy of ``values`` (of length ``n`` when given), else ValueError."""
    a = np.array(values, dtype=dtype)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if n is not None and a.shape[0] != n:
        raise ValueError(f"{name} must have length {n} (the state's symbols), got {a.shape[0]}")
    a.flags.writeable = False
    return a


# --------------------------------------------------------------------------- stop loss


@dataclass(frozen=True, eq=False)
class StopState:
    """Per symbol (in the caller's fixed symbol order) the entry price of the open position
    and its extreme close since entry: the highest for a long, the lowest (the trough) for a
    short; NaN where there is no position.

    ``side`` is the sign of the position the entry belongs to (1 long, -1 short, 0 none); it
    is what tells a sign flip from a held position. Omitted, every finite entry is taken as
    long. Arrays are stored as read-only float (``side``: int8) copies. Two states are equal
    when their arrays are, NaN equal to NaN.
    """

    entry: np.ndarray
    peak: np.ndarray
    side: np.ndarray | None = None

    def __post_init__(self) -> None:
        entry = _readonly(self.entry, "StopState: entry", np.float64)
        peak = _readonly(self.peak, "StopState: peak", np.float64, entry.shape[0])
        if self.side is None:
            side = _readonly(np.isfinite(entry), "StopState: side", np.int8)
        else:
            raw = np.asarray(self.side, dtype=np.float64)
            if not ((raw == 0.0) | (np.abs(raw) == 1.0)).all():
                raise ValueError(f"StopState: side must hold -1, 0 or 1, got {self.side!r}")
            side = _readonly(raw, "StopState: side", np.int8, entry.shape[0])
        open_ = side != 0
        if not (
            np.array_equal(np.isfinite(entry), open_) and np.array_equal(np.isfinite(peak), open_)
        ):
            raise ValueError(
                "StopState: entry and peak must be finite exactly where side is non-zero, got "
                f"entry={entry!r}, peak={peak!r}, side={side!r}"
            )
        object.__setattr__(self, "entry", entry)
        object.__setattr__(self, "peak", peak)
        object.__setattr__(self, "side", side)

    @classmethod
    def _trusted(cls, entry: np.ndarray, peak: np.ndarray, side: np.ndarray) -> StopState:
        """A state from arrays the rules computed themselves (read-only, consistent): no
        validation, no copies."""
        state = object.__new__(cls)
        object.__setattr__(state, "entry", entry)
        object.__setattr__(state, "peak", peak)
        object.__setattr__(state, "side", side)
        return state

    @property
    def n(self) -> int:
        """Number of symbols."""
        return int(self.entry.shape[0])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StopState):
            return NotImplemented
        return (
            np.array_equal(self.entry, other.entry, equal_nan=True)
            and np.array_equal(self.peak, other.peak, equal_nan=True)
            and np.array_equal(self.side, other.side)
        )


@dataclass(frozen=True, eq=False)
class StopResult:
    """One :meth:`StopLoss.step`: the new state, ``exit`` (bool per symbol: the stop
    triggered, sell at the next opportunity) and a reason per triggered index."""

    state: StopState
    exit: np.ndarray
    reasons: dict[int, str]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, StopResult):
            return NotImplemented
        return (
            self.state == other.state
            and np.array_equal(self.exit, other.exit)
            and self.reasons == other.reasons
        )


@dataclass(frozen=True)
class StopLoss:
    """Per-position stop loss at ``stop`` (a fraction in ``(0, 1)``) below the entry price
    (fixed) or below the highest close since entry (``trailing``); for shorts, above the entry
    or above the lowest close since entry. Prices are in any currency, consistently."""

    stop: float
    trailing: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", _fraction("StopLoss", "stop", self.stop))
        if not isinstance(self.trailing, bool | np.bool_):
            raise ValueError(f"StopLoss: trailing must be a bool, got {self.trailing!r}")
        object.__setattr__(self, "trailing", bool(self.trailing))

    @staticmethod
    def initial(n: int) -> StopState:
        """The state of ``n`` symbols with no position (all NaN)."""
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 0:
            raise ValueError(f"StopLoss: n must be an int >= 0, got {n!r}")
        nan = np.full(int(n), np.nan)
        return StopState(nan, nan, np.zeros(int(n), dtype=np.int8))

    def step(
        self,
        state: StopState,
        quantity: np.ndarray,
        price: np.ndarray,
        fill_price: np.ndarray | None = None,
    ) -> StopResult:
        """Today's state and exits from yesterday's ``state``.

        ``quantity`` is the position held after today's trades (> 0 long, < 0 short, 0 flat;
        must be finite), ``price`` today's close (NaN or inf: no price today, e.g. a halt) and
        ``fill_price`` today's fill price of the trades that opened positions (NaN where none).
        All are aligned on the state's symbols. Per symbol:

        - flat now: entry and peak are cleared (whatever the price);
        - a position opened or whose sign flipped: a new entry at ``fill_price`` when finite,
          else at the close; with neither price the symbol stays flat in the state and is
          entered at the next close seen;
        - a position held or entered today: peak = max(entry or peak, close) for a long, min
          for a short (an entry at the open followed by a higher close starts its peak at that
          close); no price today: the state carries unchanged and it cannot trigger.

        The stop then triggers (also on the entry day) for a long when ``close <= ref x (1 -
        stop)`` and for a short when ``close >= ref x (1 + stop)``, where ref is the entry
        (fixed) or the peak / trough (trailing). A triggered symbol keeps its entry: it
        triggers again each day until the caller reports the position closed (quantity 0).
        """
        n = state.n
        q = _readonly(quantity, "StopLoss.step: quantity", np.float64, n)
        if not np.isfinite(q).all():
            raise ValueError(f"StopLoss.step: quantity must be finite, got {q!r}")
        p = _readonly(price, "StopLoss.step: price", np.float64, n)
        if fill_price is None:
            f = np.full(n, np.nan)
        else:
            f = _readonly(fill_price, "StopLoss.step: fill_price", np.float64, n)
        entry, peak, side, exit_ = _stop_step(
            state.entry, state.peak, state.side, q, p, f, self.stop, self.trailing, _SLACK
        )
        ref = peak if self.trailing else entry
        kind = "trailing stop" if self.trailing else "stop loss"
        stop = _fmt(self.stop, 2)
        reasons: dict[int, str] = {}
        for i in np.flatnonzero(exit_):
            close, r = _fmt(float(p[i]), 2), _fmt(float(ref[i]), 2)
            if side[i] > 0:
                name = "peak" if self.trailing else "entry"
                thr = _fmt(float(ref[i] * (1.0 - self.stop)), 2)
                reasons[int(i)] = f"{kind}: close {close} <= {thr} = {name} {r} x (1 - {stop})"
            else:
                name = "trough" if self.trailing else "entry"
                thr = _fmt(float(ref[i] * (1.0 + self.stop)), 2)
                reasons[int(i)] = (
                    f"{kind} (short): close {close} >= {thr} = {name} {r} x (1 + {stop})"
                )
        for a in (entry, peak, side, exit_):
            a.flags.writeable = False
        return StopResult(StopState._trusted(entry, peak, side), exit_, reasons)


@nb.njit(cache=True, nogil=True)
def _stop_step(
    entry: np.ndarray, peak: np.ndarray, side: np.ndarray, q: np.ndarray, p: np.ndarray,
    f: np.ndarray, stop: float, trailing: bool, slack: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """The arithmetic of :meth:`StopLoss.step`, one symbol at a time (new arrays out)."""
    n = q.shape[0]
    new_entry, new_peak = entry.copy(), peak.copy()
    new_side = side.copy()
    exits = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        has_price = np.isfinite(p[i])
        now = np.int8(1) if q[i] > 0 else (np.int8(-1) if q[i] < 0 else np.int8(0))
        changed = now != side[i]  # closed, opened or flipped: the old entry is gone
        if changed:
            new_entry[i] = np.nan
            new_peak[i] = np.nan
            new_side[i] = 0
        at = f[i] if np.isfinite(f[i]) else (p[i] if has_price else np.nan)
        enter = changed and now != 0 and np.isfinite(at)
        if enter:
            new_entry[i] = at
            new_peak[i] = at
            new_side[i] = now
        # Held since before today, or entered today at a fill before the close (an open):
        # the close counts toward the peak (trough) since entry.
        if (not changed or enter) and now != 0 and has_price:
            beyond = p[i] > new_peak[i] if now > 0 else p[i] < new_peak[i]
            if beyond:
                new_peak[i] = p[i]
        if new_side[i] != 0 and has_price:
            ref = new_peak[i] if trailing else new_entry[i]
            tol = slack * max(1.0, abs(ref))
            if new_side[i] > 0:
                exits[i] = p[i] <= ref * (1.0 - stop) + tol
            else:
                exits[i] = p[i] >= ref * (1.0 + stop) - tol
    return new_entry, new_peak, new_side, exits


# --------------------------------------------------------------------------- circuit breaker


class BreakerMode(enum.Enum):
    """The circuit breaker's mode: full exposure, reduced exposure, or out of the market."""

    ACTIVE = "active"
    REDUCING = "reducing"
    HALTED = "halted"


@dataclass(frozen=True)
class Transition:
    """A mode change on ``day`` with a reason that states the numbers."""

    day: Day | None
    from_mode: BreakerMode
    to_mode: BreakerMode
    reason: str


@dataclass(frozen=True)
class BreakerState:
    """The circuit breaker after a session: its ``mode``, the NAV high-water mark
    ``peak_nav`` (reset on resuming from a halt), the last session's NAV ``last_nav`` (None:
    unknown, no daily-loss check), the sessions spent in HALTED after the one that halted
    (0 outside HALTED) and the day the current mode began (``since``; None if unknown).
    ``mode`` may be given by its value (``"halted"``), e.g. when restoring a saved state."""

    mode: BreakerMode
    peak_nav: float
    last_nav: float | None
    halted_sessions: int
    since: Day | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "mode", BreakerMode(self.mode))
        except ValueError:
            msg = f"BreakerState: mode must be a BreakerMode, got {self.mode!r}"
            raise ValueError(msg) from None
        peak = _real("BreakerState", "peak_nav", self.peak_nav)
        if not (math.isfinite(peak) and peak > 0):
            raise ValueError(f"BreakerState: peak_nav must be finite and > 0, got {peak!r}")
        object.__setattr__(self, "peak_nav", peak)
        if self.last_nav is not None:
            last = _real("BreakerState", "last_nav", self.last_nav)
            if not (math.isfinite(last) and last > 0):
                raise ValueError(f"BreakerState: last_nav must be finite and > 0, got {last!r}")
            object.__setattr__(self, "last_nav", last)
        h = self.halted_sessions
        if isinstance(h, bool) or not isinstance(h, numbers.Integral) or h < 0:
            raise ValueError(f"BreakerState: halted_sessions must be an int >= 0, got {h!r}")
        object.__setattr__(self, "halted_sessions", int(h))


@dataclass(frozen=True)
class BreakerResult:
    """One :meth:`CircuitBreaker.step`: the new state, the exposure multiplier the caller
    applies to target weights (1.0 ACTIVE, ``reduce_to`` REDUCING, 0.0 HALTED; for the trades
    decided at this session's close) and the mode change of the session, if any."""

    state: BreakerState
    exposure: float
    transition: Transition | None


@dataclass(frozen=True)
class CircuitBreaker:
    """Portfolio circuit breaker on the end-of-day NAV. Thresholds are fractions of NAV.

    - ``reduce_drawdown``: drawdown from the peak NAV at which exposure drops to
      ``reduce_to`` (a multiplier in ``(0, 1)``); recovers to full exposure once the drawdown
      is back to ``recover_drawdown`` or less (``recover_drawdown < reduce_drawdown``).
    - ``halt_drawdown`` (``> reduce_drawdown``) and ``max_daily_loss`` (loss from the last
      session's NAV): go flat for ``cooldown_sessions`` sessions, then resume with the peak
      reset to that day's NAV.

    ``reduce_drawdown``, ``halt_drawdown`` and ``max_daily_loss`` may be None to disable that
    trigger.
    """

    reduce_drawdown: float | None = 0.10
    reduce_to: float = 0.5
    halt_drawdown: float | None = 0.20
    max_daily_loss: float | None = 0.05
    recover_drawdown: float = 0.05
    cooldown_sessions: int = 5

    def __post_init__(self) -> None:
        owner = "CircuitBreaker"
        for name in ("reduce_drawdown", "halt_drawdown", "max_daily_loss"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _fraction(owner, name, value))
        object.__setattr__(self, "reduce_to", _fraction(owner, "reduce_to", self.reduce_to))
        recover = _fraction(owner, "recover_drawdown", self.recover_drawdown, allow_zero=True)
        object.__setattr__(self, "recover_drawdown", recover)
        reduce, halt = self.reduce_drawdown, self.halt_drawdown
        if reduce is not None and halt is not None and not halt > reduce:
            raise ValueError(
                f"{owner}: halt_drawdown must be > reduce_drawdown ({reduce!r}), got {halt!r}"
            )
        if reduce is not None and not recover < reduce:
            raise ValueError(
                f"{owner}: recover_drawdown must be < reduce_drawdown ({reduce!r}), got {recover!r}"
            )
        c = self.cooldown_sessions
        if isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 1:
            raise ValueError(f"{owner}: cooldown_sessions must be an int >= 1, got {c!r}")
        object.__setattr__(self, "cooldown_sessions", int(c))

    def exposure(self, mode: BreakerMode) -> float:
        """The exposure multiplier of ``mode``: 1.0, ``reduce_to`` or 0.0."""
        if mode is BreakerMode.ACTIVE:
            return 1.0
        if mode is BreakerMode.REDUCING:
            return self.reduce_to
        return 0.0

    @staticmethod
    def initial(nav: float, day: Day | None = None) -> BreakerState:
        """ACTIVE with the peak and last NAV at ``nav`` (finite, > 0), since ``day``."""
        nav = _check_nav(day, nav)
        return BreakerState(BreakerMode.ACTIVE, nav, nav, 0, day)

    def step(self, state: BreakerState, day: Day, nav: float) -> BreakerResult:
        """The breaker after the session ``day`` with end-of-day NAV ``nav`` (finite and > 0,
        else ValueError naming the day and the value).

        The peak is first raised to ``nav`` when it is a new high; drawdown = 1 - nav / peak,
        daily loss = 1 - nav / last_nav. At most one mode change per session:

        - ACTIVE or REDUCING -> HALTED when daily loss >= ``max_daily_loss`` or drawdown >=
          ``halt_drawdown``;
        - else ACTIVE -> REDUCING when drawdown >= ``reduce_drawdown``, REDUCING -> ACTIVE
          when drawdown <= ``recover_drawdown``;
        - HALTED counts the sessions after the one that halted; on the ``cooldown_sessions``-th
          -> ACTIVE with the peak reset to ``nav``. Nothing else leaves HALTED.
        """
        nav = _check_nav(day, nav)
        peak = max(state.peak_nav, nav)
        drawdown = 1.0 - nav / peak
        loss = None if state.last_nav is None else 1.0 - nav / state.last_nav
        mode, halted = state.mode, state.halted_sessions
        to: BreakerMode | None = None
        reason = ""
        if mode is BreakerMode.HALTED:
            halted += 1
            if halted >= self.cooldown_sessions:
                to, peak, halted = BreakerMode.ACTIVE, nav, 0
                c = self.cooldown_sessions
                reason = f"cool-down of {c} session{'s' if c != 1 else ''} over: resume"
        else:
            why = []
            mdl, halt = self.max_daily_loss, self.halt_drawdown
            if mdl is not None and loss is not None and _ge(loss, mdl):
                why.append(f"daily loss {_obs(loss)} >= {_pct(mdl)}")
            if halt is not None and _ge(drawdown, halt):
                why.append(f"drawdown {_obs(drawdown)} >= {_pct(halt)}")
            reduce = self.reduce_drawdown
            if why:
                to, halted = BreakerMode.HALTED, 0
                reason = "; ".join(why) + ": halt"
            elif mode is BreakerMode.ACTIVE and reduce is not None and _ge(drawdown, reduce):
                to = BreakerMode.REDUCING
                reason = (
                    f"drawdown {_obs(drawdown)} >= {_pct(reduce)}: "
                    f"reduce exposure to {_pct(self.reduce_to, 0)}"
                )
            elif mode is BreakerMode.REDUCING and _le(drawdown, self.recover_drawdown):
                to = BreakerMode.ACTIVE
                reason = f"drawdown {_obs(drawdown)} <= {_pct(self.recover_drawdown)}: recovered"
        transition = None if to is None else Transition(day, mode, to, reason)
        new_mode = mode if to is None else to
        since = state.since if to is None else day
        new_state = BreakerState(new_mode, peak, nav, halted, since)
        return BreakerResult(new_state, self.exposure(new_mode), transition)

    def run(
        self, navs: Iterable[tuple[Day, float]]
    ) -> tuple[list[BreakerResult], list[Transition]]:
        """Fold :meth:`step` over ``(day, nav)`` pairs in session order: the first pair only
        initialises (:meth:`initial`), every later one gives a result. Returns the results
        (one fewer than the pairs; none for fewer than two) and the transitions in order."""
        results: list[BreakerResult] = []
        state: BreakerState | None = None
        for day, nav in navs:
            if state is None:
                state = self.initial(nav, day)
                continue
            result = self.step(state, day, nav)
            results.append(result)
            state = result.state
        return results, [r.transition for r in results if r.transition is not None]


# --------------------------------------------------------------------------- breaker orders


def current_targets(
    current: np.ndarray, weights: np.ndarray, exited: np.ndarray, delisted: np.ndarray
) -> np.ndarray:
    """The strategy's current targets after a session (per symbol, fractions of NAV; NaN:
    none): the latest weight it gave (``weights`` are today's, NaN where it gave none, as
    between rebalances), 0 for a name the stop loss exited today (not bought back before the
    strategy gives it a weight again), NaN for a name ``delisted`` (bool) by today.
    ``current`` is the result of the session before (all NaN to start). A new array."""
    out = np.where(np.isnan(weights), current, weights)
    out[np.asarray(exited, dtype=bool)] = 0.0
    out[np.asarray(delisted, dtype=bool)] = np.nan
    return out


def breaker_targets(
    mode: BreakerMode, decided: np.ndarray, current: np.ndarray, held: np.ndarray
) -> np.ndarray:
    """What to trade at the close of a session on which the circuit breaker changed to
    ``mode``, before its exposure scales it (per symbol, fractions of NAV; NaN: no trade).

    Today's decisions (``decided``: the strategy's weights and the stop loss's exits, NaN
    where none) stand; every other name gets, entering REDUCING or HALTED, its ``held``
    weight (so exposure drops at once, not at the next rebalance), and resuming ACTIVE, its
    :func:`current_targets` weight (so the book returns to the strategy's targets at once;
    names without one are left as they are). A new array."""
    fill = current if mode is BreakerMode.ACTIVE else held
    return np.where(np.isnan(decided), fill, decided)


def _check_nav(day: Day | None, nav: float) -> float:
    """``nav`` as a float if finite and > 0, else ValueError naming ``day`` and the value."""
    try:
        v = float(nav)
    except (TypeError, ValueError):
        v = math.nan
    if isinstance(nav, bool) or not (math.isfinite(v) and v > 0):
        raise ValueError(f"CircuitBreaker: nav on {_day(day)} must be finite and > 0, got {nav!r}")
    return v

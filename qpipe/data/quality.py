"""Data-quality checks on bars: pure functions returning a :class:`CheckOutcome` each.

Each check looks at a frame of bars (and what it needs beside it) and reports whether it
passed, how serious a failure is, and a few offending examples. Dagster asset checks and the
CLI are thin shells over these.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

import numpy as np
import pandas as pd

from qpipe.data.adjustments import MAX_SPLIT_TERM, SPLIT_TOLERANCE, nearest_split
from qpipe.data.universe import listed_on

Severity = Literal["error", "warn"]
MAX_EXAMPLES = 5
MAX_IN_SUMMARY = 3
"""Offending rows a check's one-line description names before it counts the rest."""
MAX_DETAILS = 1000
"""Offending rows a check lists in its details."""


@dataclass(frozen=True)
class CheckOutcome:
    """Result of one check: ``failures`` counts offending rows (or symbol-days)."""

    name: str
    passed: bool
    severity: Severity
    description: str
    failures: int = 0
    examples: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    details: list[str] = field(default_factory=list)
    """One line per offending row (at most :data:`MAX_DETAILS`), for checks whose rows need
    more than a date and a symbol to be understood."""


def _examples(frame: pd.DataFrame, mask: np.ndarray | pd.Series) -> list[str]:
    rows = frame.loc[np.asarray(mask)].head(MAX_EXAMPLES)
    return [f"{d:%Y-%m-%d} {s}" for d, s in zip(rows["date"], rows["symbol"], strict=True)]


def _outcome(
    name: str, severity: Severity, ok_text: str, bad_text: str, frame: pd.DataFrame, mask
) -> CheckOutcome:
    n = int(np.count_nonzero(mask))
    return CheckOutcome(
        name=name,
        passed=n == 0,
        severity=severity,
        description=ok_text if n == 0 else f"{n} {bad_text}",
        failures=n,
        examples=_examples(frame, mask) if n else [],
    )


def check_ohlc(bars: pd.DataFrame) -> CheckOutcome:
    """Prices positive; ``low <= open, close <= high`` where those fields are present (NaN
    open/high/low, as in close-only data, is not a failure; NaN close is)."""
    o, h, lo, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    with np.errstate(invalid="ignore"):
        bad = ~(c > 0)
        for x in (o, h, lo):
            bad |= x <= 0
        bad |= h < lo
        bad |= (o > h) | (c > h) | (o < lo) | (c < lo)
    return _outcome(
        "ohlc_sanity", "error", "all bars consistent", "bars violate OHLC sanity", bars, bad
    )


def check_unique_keys(bars: pd.DataFrame) -> CheckOutcome:
    """No two rows share ``(date, symbol)``."""
    dup = bars.duplicated(["date", "symbol"], keep="first").to_numpy()
    return _outcome(
        "unique_keys", "error", "no duplicate (date, symbol)", "duplicate (date, symbol)", bars, dup
    )


def check_universe_coverage(
    bars: pd.DataFrame, instruments: pd.DataFrame, sessions: Sequence[pd.Timestamp]
) -> CheckOutcome:
    """Every universe symbol listed on a session has a bar that session (halts make this a
    warning, not an error)."""
    present = bars.groupby("date")["symbol"].agg(set)
    missing: list[str] = []
    count = 0
    for day in sessions:
        gone = listed_on(instruments, day) - present.get(day, set())
        count += len(gone)
        missing.extend(f"{day:%Y-%m-%d} {s}" for s in sorted(gone)[: MAX_EXAMPLES - len(missing)])
    return CheckOutcome(
        name="universe_coverage",
        passed=count == 0,
        severity="warn",
        description="every listed symbol has bars"
        if count == 0
        else f"{count} listed symbol-sessions without a bar (halts or gaps)",
        failures=count,
        examples=missing[:MAX_EXAMPLES],
        metadata={"sessions": len(sessions)},
    )


def check_stale_bars(bars: pd.DataFrame, previous_close: pd.Series | None = None) -> CheckOutcome:
    """Zero-volume bars, and flat bars (open = high = low = close) repeating the previous
    close, which usually mean a feed that stopped updating."""
    ordered = bars.sort_values(["symbol", "date"], kind="stable")
    prev = ordered.groupby("symbol")["close"].shift(1)
    if previous_close is not None:
        first = prev.isna()
        prev = prev.where(~first, ordered["symbol"].map(previous_close))
    vol = ordered["volume"].to_numpy()
    flat = (
        (ordered["open"] == ordered["close"])
        & (ordered["high"] == ordered["close"])
        & (ordered["low"] == ordered["close"])
        & (ordered["close"] == prev)
    ).to_numpy()
    bad = (vol == 0) | flat
    return _outcome(
        "stale_bars",
        "warn",
        "no zero-volume or stale bars",
        "zero-volume or stale bars",
        ordered,
        bad,
    )


def check_extreme_returns(
    bars: pd.DataFrame,
    actions: pd.DataFrame,
    previous_close: pd.Series | None = None,
    threshold: float = 0.5,
) -> CheckOutcome:
    """Close-to-close moves beyond ``threshold`` (0.5 = +50% or -33%, symmetric in log
    terms) after removing the day's corporate-action ``factor``. ``previous_close`` (by
    symbol) supplies the close before the first bar of each symbol.

    Each move is named with its symbol, date, size and the two closes (:func:`describe_move`);
    the description names the first few and says how many more the details list."""
    ordered = bars.sort_values(["symbol", "date"], kind="stable")
    prev = ordered.groupby("symbol")["close"].shift(1)
    if previous_close is not None:
        prev = prev.where(prev.notna(), ordered["symbol"].map(previous_close))
    factor = pd.Series(1.0, index=ordered.index)
    if len(actions):
        f = actions.set_index(["date", "symbol"])["factor"]
        keys = pd.MultiIndex.from_arrays([ordered["date"], ordered["symbol"]])
        factor = pd.Series(f.reindex(keys).fillna(1.0).to_numpy(), index=ordered.index)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_ret = np.log(ordered["close"].to_numpy() / (prev.to_numpy() * factor.to_numpy()))
    bad = np.abs(log_ret) > np.log1p(threshold)
    name, severity = "extreme_returns", "warn"
    n = int(np.count_nonzero(bad))
    if n == 0:
        return CheckOutcome(name, True, severity, f"no unexplained move beyond {threshold:.0%}")
    rows = ordered.loc[bad].head(MAX_DETAILS)
    details = [
        describe_move(sym, day, before, after, f)
        for sym, day, before, after, f in zip(
            rows["symbol"],
            rows["date"],
            prev.loc[rows.index],
            rows["close"],
            factor.loc[rows.index],
            strict=True,
        )
    ]
    moves = "move" if n == 1 else "moves"
    description = f"{n} unexplained {moves} beyond {threshold:.0%}: " + "; ".join(
        details[:MAX_IN_SUMMARY]
    )
    if n > MAX_IN_SUMMARY:
        listed = (
            "the check's details list them all"
            if n <= MAX_DETAILS
            else f"the check's details list the first {MAX_DETAILS}"
        )
        description += f"; and {n - MAX_IN_SUMMARY} more ({listed})"
    return CheckOutcome(
        name=name,
        passed=False,
        severity=severity,
        description=description,
        failures=n,
        examples=details[:MAX_EXAMPLES],
        details=details,
    )


def describe_move(
    symbol: str, day: pd.Timestamp, before: float, after: float, factor: float = 1.0
) -> str:
    """``1990-04-10 RRC -66.7% (close 30.01 -> 10; before/after 3.0009, like an unadjusted
    3-for-1 split)``: a close-to-close move after the day's action ``factor``, and the simple
    split ratio (:data:`~qpipe.data.adjustments.SPLIT_RATIOS`, within 0.5%) it resembles."""
    base = before * factor
    move = after / base - 1.0
    text = f"{day:%Y-%m-%d} {symbol} {move:+.1%} (close {before:g} -> {after:g}"
    if factor != 1.0:
        text += f" with an action factor {factor:g}"
    ratio = base / after
    split, distance = nearest_split(np.array([ratio]))
    if distance[0] <= SPLIT_TOLERANCE:
        terms = Fraction(float(split[0])).limit_denominator(MAX_SPLIT_TERM)
        text += (
            f"; before/after {ratio:.4f}, like an unadjusted "
            f"{terms.numerator}-for-{terms.denominator} split"
        )
    return text + ")"


def run_all(
    bars: pd.DataFrame,
    actions: pd.DataFrame,
    instruments: pd.DataFrame,
    sessions: Sequence[pd.Timestamp],
    previous_close: pd.Series | None = None,
) -> list[CheckOutcome]:
    """Every bars check, in a stable order."""
    return [
        check_ohlc(bars),
        check_unique_keys(bars),
        check_universe_coverage(bars, instruments, sessions),
        check_stale_bars(bars, previous_close),
        check_extreme_returns(bars, actions, previous_close),
    ]

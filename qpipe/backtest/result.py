"""What a backtest returns: equity, positions, fills, daily accounts and metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from qpipe.backtest.metrics import performance_metrics
from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR
from qpipe.rulebook.limits import LIMITS

FILL_COLUMNS = ["date", "symbol", "side", "quantity", "price", "fee", "reason"]
UNPRICED_WARNING = 0.05
"""Share of the orders without a fill price above which a backtest warns."""
SKIPPED_WARNING = 0.01
"""Share of the notional skipped (fee above the trade's value) above which a backtest warns."""


@dataclass(frozen=True)
class BacktestResult:
    """A backtest's outputs.

    - ``equity``: end-of-day net asset value (cash + positions at the close), by date.
    - ``positions``: shares held at the end of each day (dates x symbols; 0 = none).
    - ``fills``: one row per fill: date, symbol, side (buy/sell), quantity (> 0), price (after
      slippage), fee, reason (rebalance, stop_loss, circuit_breaker, delisting).
    - ``daily``: cash, gross and net exposure (fractions of NAV; the positions valued at the
      engine's marks, the very numbers NAV is made of: the last close, divided by the split
      ratio and less the dividend on an ex-date without a bar), turnover (traded notional /
      NAV), fees, slippage (cost against the quoted price), costs (fees + slippage),
      dividends received, buy shortfall (notional the cash could not pay for), unfilled
      notional (participation cap), skipped notional (trades not made because their fee
      would have exceeded their value, at the fill price), unpriced (the number of orders,
      non-zero targets or held names, that found no fill price), and the circuit breaker's
      mode when there is one.
    - ``risk_events``: date, symbol, rule, reason of every stop and breaker transition.
    - ``metrics``: see :func:`qpipe.backtest.metrics.performance_metrics` (annualised with
      the engine's ``periods_per_year``).
    - ``warnings``: what makes the numbers doubtful, for a person: no fills at all (and why,
      when orders found no price), more than :data:`UNPRICED_WARNING` of the orders without
      a fill price, more than :data:`SKIPPED_WARNING` of the notional skipped for its fee.
    """

    equity: pd.Series
    positions: pd.DataFrame
    fills: pd.DataFrame
    daily: pd.DataFrame
    risk_events: pd.DataFrame
    metrics: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def build(
        cls,
        *,
        dates: pd.DatetimeIndex,
        symbols: pd.Index,
        nav: np.ndarray,
        cash: np.ndarray,
        positions: np.ndarray,
        daily: dict[str, np.ndarray],
        fills: np.ndarray,
        risk_events: list[tuple[Any, str, str, str]],
        reasons: tuple[str, ...],
        benchmark: pd.Series | None,
        breaker_mode: np.ndarray | None,
        fill: str = "next_open",
        periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR,
    ) -> BacktestResult:
        """The result from the engine's arrays: ``daily`` holds its per-session accounts
        (:data:`qpipe.backtest.matching.DAILY_COLUMNS`, with the positions' ``net_value`` and
        ``gross_value`` at the marks NAV was computed from), ``fills`` its ledger rows;
        ``fill`` (the fill mode) words the warnings."""
        dates = pd.DatetimeIndex(dates, name="date")
        equity = pd.Series(nav, index=dates, name="equity")
        with np.errstate(invalid="ignore", divide="ignore"):
            frame = pd.DataFrame(
                {
                    "cash": cash,
                    "nav": nav,
                    "gross_exposure": daily["gross_value"] / nav,
                    "net_exposure": daily["net_value"] / nav,
                    "turnover": daily["traded"] / nav,
                    "fees": daily["fees"],
                    "slippage": daily["slippage"],
                    "costs": daily["fees"] + daily["slippage"],
                    "dividends": daily["dividends"],
                    "shortfall": daily["shortfall"],
                    "unfilled": daily["unfilled"],
                    "skipped": daily["skipped"],
                    "unpriced": daily["unpriced"],
                    "refused": daily["refused"],
                    "refused_limit": _limit_names(daily["refused_limit"]),
                    "refused_notional": daily["refused_notional"],
                },
                index=dates,
            )
        if breaker_mode is not None:
            frame["breaker"] = breaker_mode
        if len(fills):
            signed = fills[:, 2]
            fill_frame = pd.DataFrame(
                {
                    "date": dates[fills[:, 0].astype(np.int64)],
                    "symbol": pd.Categorical.from_codes(
                        fills[:, 1].astype(np.int64), categories=pd.Index(symbols)
                    ),
                    "side": pd.Categorical.from_codes(
                        (signed > 0).astype(np.int8), categories=["sell", "buy"]
                    ),
                    "quantity": np.abs(signed),
                    "price": fills[:, 3],
                    "fee": fills[:, 4],
                    "reason": pd.Categorical.from_codes(
                        fills[:, 5].astype(np.int8), categories=list(reasons)
                    ),
                }
            )
        else:
            fill_frame = pd.DataFrame({c: [] for c in FILL_COLUMNS})
        events = pd.DataFrame(risk_events, columns=["date", "symbol", "rule", "reason"])
        result = cls(
            equity=equity,
            positions=pd.DataFrame(positions, index=dates, columns=symbols),
            fills=fill_frame,
            daily=frame,
            risk_events=events,
            warnings=backtest_warnings(frame, *_orders(fills, reasons), fill),
        )
        metrics = performance_metrics(equity, frame, benchmark, periods_per_year)
        object.__setattr__(result, "metrics", metrics)
        return result


def _limit_names(codes: np.ndarray) -> np.ndarray:
    """The ``limits:`` key of each refusal code ("" for none)."""
    names = np.array(["", *LIMITS], dtype=object)
    return names[np.asarray(codes, dtype=np.int64)]


def _refusals(daily: pd.DataFrame) -> list[str]:
    """The warning naming the sessions whose rebalance live would refuse, if any."""
    refused = daily.loc[daily["refused"] > 0]
    if refused.empty:
        return []
    shown = ", ".join(
        f"{d:%Y-%m-%d} (limits.{k})" for d, k in refused["refused_limit"].iloc[:5].items()
    )
    more = f" and {len(refused) - 5} more" if len(refused) > 5 else ""
    return [
        f"live would refuse the rebalance of {len(refused)} session(s): {shown}{more}; their "
        f"orders (worth {refused['refused_notional'].sum():,.2f}) were not traded (daily "
        "columns refused, refused_limit, refused_notional)"
    ]


def _orders(fills: np.ndarray, reasons: tuple[str, ...]) -> tuple[int, float]:
    """The number and notional of the ledger's ``fills`` that were orders (not delistings)."""
    ordered = fills[:, 5] != reasons.index("delisting")
    notional = np.abs(fills[:, 2]) * fills[:, 3]
    return int(np.count_nonzero(ordered)), float(notional.sum(where=ordered))


def backtest_warnings(daily: pd.DataFrame, orders: int, notional: float, fill: str) -> list[str]:
    """What makes a backtest's numbers doubtful (see :attr:`BacktestResult.warnings`), from
    its ``daily`` accounts, the number and notional of its filled ``orders`` and its ``fill``
    mode."""
    out = []
    unpriced = int(daily["unpriced"].sum())
    skipped = float(daily["skipped"].sum())
    if orders == 0:
        why = []
        if unpriced:
            hint = " (the data has no opens? use backtest.fill: next_close or close)"
            why.append(
                f"{unpriced:,} orders found no {fill} price" + (hint if fill == "next_open" else "")
            )
        if skipped > 0:
            why.append(
                f"trades worth {skipped:,.2f} were skipped, each one's fee above its value "
                "(backtest.min_commission too high for the capital?)"
            )
        if daily["unfilled"].sum() > 0:
            why.append(
                f"orders worth {daily['unfilled'].sum():,.2f} were over the participation cap "
                "(backtest.participation; no volume in the session before the fill?)"
            )
        if daily["shortfall"].sum() > 0:
            why.append("the cash paid for no buy")
        out.append("no fills: " + ("; ".join(why) or "the strategy never asked for a trade"))
        return out + _refusals(daily)
    if unpriced > UNPRICED_WARNING * (unpriced + orders):
        out.append(
            f"{unpriced / (unpriced + orders):.0%} of orders ({unpriced:,} of "
            f"{unpriced + orders:,}) found no {fill} price (halted or unlisted names?)"
        )
    if skipped > SKIPPED_WARNING * (skipped + notional):
        out.append(
            f"trades worth {skipped:,.2f} ({skipped / (skipped + notional):.0%} of the notional "
            "ordered) were skipped, each one's fee above its value (see backtest.min_commission)"
        )
    return out + _refusals(daily)

"""Performance metrics of an equity curve, on daily (session) returns.

Conventions (empyrical's, the reference the tests compare with, except where said):

- Returns are simple returns of the end-of-day NAV. ``P`` is the number of sessions per year
  (``periods_per_year``: the configured calendar's
  :attr:`~qpipe.calendars.TradingCalendar.sessions_per_year`, 252 when none is given).
- Annualised volatility: the sample std (ddof 1) of daily returns x sqrt(P). A series whose
  values are all equal has a std of exactly 0 (ratios over it are NaN).
- Sharpe: the mean daily return over its std x sqrt(P), zero risk-free rate. Sortino: the
  mean daily return over the downside deviation ``sqrt(mean(min(r, 0)^2))`` x sqrt(P).
- CAGR compounds the total return over ``n / P`` years (``n`` daily returns).
- Maximum drawdown: the largest fall from a running peak, a positive fraction (empyrical
  reports it negative); its duration the longest stretch of sessions below a previous peak.
  Calmar: CAGR over the maximum drawdown.
- Hit rate: the share of sessions with a positive return among those with a non-zero one.
- Against a benchmark (prices or NAV), on the sessions where both have a return: beta is
  ``cov(r, b) / var(b)``; alpha is the mean daily excess over beta, ``mean(r - beta b)``,
  compounded to a year, ``(1 + mean)^P - 1`` (a yearly rate like CAGR, as empyrical; not
  ``mean x P``); the tracking error is the std of the active returns ``r - b`` x sqrt(P); the
  information ratio ``mean(r - b) / std(r - b) x sqrt(P)`` (empyrical's ``excess_sharpe`` is
  the same ratio before annualisation).
- Undefined values are NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR

HEADLINE = ("total_return", "cagr", "volatility", "sharpe", "max_drawdown", "calmar")
"""The metrics shown first (the demo's table, the backtest assets' metadata)."""


def daily_returns(equity: pd.Series) -> pd.Series:
    """Simple returns of ``equity`` (the first session has none)."""
    return equity.pct_change(fill_method=None).iloc[1:]


def sample_std(values: pd.Series) -> float:
    """The sample standard deviation (ddof 1); exactly 0 when every value is equal (the
    floating-point mean can miss identical values by an ulp, leaving a residue of about
    1e-18 that would turn an undefined ratio into an arbitrary huge one); NaN for fewer than
    two values."""
    if len(values) < 2:
        return np.nan
    if values.max() == values.min():
        return 0.0
    return float(values.std(ddof=1))


def drawdown(equity: pd.Series) -> pd.Series:
    """Fall from the running peak, as a non-negative fraction."""
    return 1.0 - equity / equity.cummax()


def max_drawdown_duration(equity: pd.Series) -> int:
    """The longest run of sessions spent below a previous peak."""
    below = (drawdown(equity) > 0).to_numpy()
    longest = run = 0
    for b in below:
        run = run + 1 if b else 0
        longest = max(longest, run)
    return longest


def performance_metrics(
    equity: pd.Series,
    daily: pd.DataFrame | None = None,
    benchmark: pd.Series | None = None,
    periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR,
) -> dict[str, float]:
    """The headline metrics of ``equity`` (see the module docstring), annualised with
    ``periods_per_year`` sessions (recorded as the ``periods_per_year`` entry); ``daily``
    adds average turnover (and its yearly sum) and total costs, ``benchmark`` beta, alpha,
    tracking error and IR."""
    if not periods_per_year > 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    year = float(periods_per_year)
    r = daily_returns(equity)
    n = len(r)
    out: dict[str, float] = {"periods_per_year": year}
    total = float(equity.iloc[-1] / equity.iloc[0] - 1.0) if len(equity) else np.nan
    years = n / year
    out["total_return"] = total
    out["cagr"] = (
        float((1.0 + total) ** (1.0 / years) - 1.0) if years > 0 and total > -1 else np.nan
    )
    std = sample_std(r)
    out["volatility"] = std * np.sqrt(year)
    out["sharpe"] = float(r.mean() / std * np.sqrt(year)) if std and std > 0 else np.nan
    downside = float(np.sqrt(np.mean(np.minimum(r.to_numpy(), 0.0) ** 2))) if n else np.nan
    out["sortino"] = float(r.mean() / downside * np.sqrt(year)) if downside > 0 else np.nan
    dd = drawdown(equity)
    out["max_drawdown"] = float(dd.max()) if len(dd) else np.nan
    out["max_drawdown_duration"] = float(max_drawdown_duration(equity))
    out["calmar"] = out["cagr"] / out["max_drawdown"] if out["max_drawdown"] > 0 else np.nan
    moving = r[r != 0]
    out["hit_rate"] = float((moving > 0).mean()) if len(moving) else np.nan
    if daily is not None and len(daily):
        out["avg_turnover"] = float(daily["turnover"].mean())
        out["annual_turnover"] = out["avg_turnover"] * year
        out["total_costs"] = float(daily["costs"].sum())
    if benchmark is not None:
        out.update(relative_metrics(r, benchmark, year))
    return out


def relative_metrics(
    returns: pd.Series,
    benchmark: pd.Series,
    periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR,
) -> dict[str, float]:
    """Beta, alpha (compounded to a year of ``periods_per_year`` sessions), tracking error
    and information ratio (annualised) of daily ``returns`` against the daily returns of
    ``benchmark`` (prices or NAV), on the sessions where both have a return."""
    year = float(periods_per_year)
    b = daily_returns(benchmark.astype(float))
    joined = pd.concat([returns.rename("r"), b.rename("b")], axis=1, join="inner").dropna()
    nan = {"beta": np.nan, "alpha": np.nan, "tracking_error": np.nan, "information_ratio": np.nan}
    if len(joined) < 2:
        return nan
    var_b = sample_std(joined["b"]) ** 2
    beta = float(joined["r"].cov(joined["b"]) / var_b) if var_b > 0 else np.nan
    alpha = float((1.0 + (joined["r"] - beta * joined["b"]).mean()) ** year - 1.0)
    active = joined["r"] - joined["b"]
    active_std = sample_std(active)
    te = active_std * np.sqrt(year)
    ir = float(active.mean() / active_std * np.sqrt(year)) if active_std > 0 else np.nan
    return {"beta": beta, "alpha": alpha, "tracking_error": te, "information_ratio": ir}


def monthly_returns(equity: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month: years as rows, months 1-12 as columns (the
    first month counts from the first NAV)."""
    month_end = equity.groupby([equity.index.year, equity.index.month]).last()
    previous = month_end.shift(1)
    previous.iloc[0] = equity.iloc[0]
    table = (month_end / previous - 1.0).unstack()
    table.index.name, table.columns.name = "year", "month"
    return table


def yearly_returns(equity: pd.Series) -> pd.Series:
    """Compounded return of each calendar year (the first from the first NAV)."""
    year_end = equity.groupby(equity.index.year).last()
    previous = year_end.shift(1)
    previous.iloc[0] = equity.iloc[0]
    out = year_end / previous - 1.0
    out.index.name = "year"
    return out

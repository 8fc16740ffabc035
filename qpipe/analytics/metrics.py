"""Performance metrics of an equity curve, on daily (session) returns.

Conventions: returns are simple returns of the end-of-day NAV; a year is 252 sessions;
annualised volatility is the sample std (ddof 1) of daily returns x sqrt(252); Sharpe is the
mean daily return over its std x sqrt(252) with a zero risk-free rate; Sortino uses the
downside deviation ``sqrt(mean(min(r, 0)^2))``; CAGR compounds over ``sessions / 252`` years;
the maximum drawdown is the largest fall from a running peak (a positive fraction) and its
duration the longest stretch of sessions below a previous peak; Calmar is CAGR over the
maximum drawdown; the hit rate is the share of sessions with a positive return among those
with a non-zero one. Against a benchmark (prices or NAV): beta and alpha from an OLS of the
daily returns (alpha annualised x 252), tracking error (std of active returns x sqrt(252)) and
information ratio (annualised mean active return over tracking error). Undefined values are
NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

YEAR = 252


def daily_returns(equity: pd.Series) -> pd.Series:
    """Simple returns of ``equity`` (the first session has none)."""
    return equity.pct_change(fill_method=None).iloc[1:]


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
    equity: pd.Series, daily: pd.DataFrame | None = None, benchmark: pd.Series | None = None
) -> dict[str, float]:
    """The headline metrics of ``equity`` (see the module docstring); ``daily`` adds
    average turnover and total costs, ``benchmark`` beta, alpha, tracking error and IR."""
    r = daily_returns(equity)
    n = len(r)
    out: dict[str, float] = {}
    total = float(equity.iloc[-1] / equity.iloc[0] - 1.0) if len(equity) else np.nan
    years = n / YEAR
    out["total_return"] = total
    out["cagr"] = (
        float((1.0 + total) ** (1.0 / years) - 1.0) if years > 0 and total > -1 else np.nan
    )
    std = float(r.std(ddof=1)) if n > 1 else np.nan
    out["volatility"] = std * np.sqrt(YEAR)
    out["sharpe"] = float(r.mean() / std * np.sqrt(YEAR)) if std and std > 0 else np.nan
    downside = float(np.sqrt(np.mean(np.minimum(r.to_numpy(), 0.0) ** 2))) if n else np.nan
    out["sortino"] = float(r.mean() / downside * np.sqrt(YEAR)) if downside > 0 else np.nan
    dd = drawdown(equity)
    out["max_drawdown"] = float(dd.max()) if len(dd) else np.nan
    out["max_drawdown_duration"] = float(max_drawdown_duration(equity))
    out["calmar"] = out["cagr"] / out["max_drawdown"] if out["max_drawdown"] > 0 else np.nan
    moving = r[r != 0]
    out["hit_rate"] = float((moving > 0).mean()) if len(moving) else np.nan
    if daily is not None and len(daily):
        out["avg_turnover"] = float(daily["turnover"].mean())
        out["annual_turnover"] = out["avg_turnover"] * YEAR
        out["total_costs"] = float(daily["costs"].sum())
    if benchmark is not None:
        out.update(relative_metrics(r, benchmark))
    return out


def relative_metrics(returns: pd.Series, benchmark: pd.Series) -> dict[str, float]:
    """Beta, alpha (annualised), tracking error and information ratio of daily ``returns``
    against the daily returns of ``benchmark`` (prices or NAV), on the common sessions."""
    b = daily_returns(benchmark.astype(float))
    joined = pd.concat([returns.rename("r"), b.rename("b")], axis=1, join="inner").dropna()
    nan = {"beta": np.nan, "alpha": np.nan, "tracking_error": np.nan, "information_ratio": np.nan}
    if len(joined) < 2:
        return nan
    var_b = float(joined["b"].var(ddof=1))
    beta = float(joined["r"].cov(joined["b"]) / var_b) if var_b > 0 else np.nan
    alpha = float((joined["r"].mean() - beta * joined["b"].mean()) * YEAR)
    active = joined["r"] - joined["b"]
    te = float(active.std(ddof=1) * np.sqrt(YEAR))
    ir = float(active.mean() * YEAR / te) if te > 0 else np.nan
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

"""Plotly figures of a backtest, usable from a notebook and from the tear sheet."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from qpipe.backtest.metrics import daily_returns, drawdown, monthly_returns
from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def _layout(fig: go.Figure, title: str, y: str) -> go.Figure:
    fig.update_layout(
        title=title, yaxis_title=y, template="plotly_white", height=360,
        margin={"l": 60, "r": 20, "t": 50, "b": 40}, legend={"orientation": "h"},
    )  # fmt: skip
    return fig


def equity_chart(
    equity: pd.Series, benchmark: pd.Series | None = None, log: bool = False
) -> go.Figure:
    """Equity against the benchmark, both rebased to the equity's first value."""
    fig = go.Figure(go.Scatter(x=equity.index, y=equity, name="strategy", mode="lines"))
    if benchmark is not None and len(benchmark.dropna()):
        b = benchmark.reindex(equity.index).ffill()
        b = b / b.dropna().iloc[0] * equity.iloc[0]
        fig.add_trace(go.Scatter(x=b.index, y=b, name=str(benchmark.name or "benchmark"),
                                 mode="lines"))  # fmt: skip
    if log:
        fig.update_yaxes(type="log")
    return _layout(fig, "Equity", "NAV")


def drawdown_chart(equity: pd.Series) -> go.Figure:
    """Underwater curve: the fall from the running peak, as a negative percentage."""
    dd = -100.0 * drawdown(equity)
    fig = go.Figure(go.Scatter(x=dd.index, y=dd, fill="tozeroy", mode="lines", name="drawdown"))
    return _layout(fig, "Drawdown", "% below peak")


def monthly_heatmap(equity: pd.Series) -> go.Figure:
    """Monthly returns (%) by year and month."""
    table = monthly_returns(equity).reindex(columns=range(1, 13)) * 100.0
    text = table.map(lambda v: "" if pd.isna(v) else f"{v:.1f}")
    fig = go.Figure(
        go.Heatmap(
            z=table.to_numpy(),
            x=MONTHS,
            y=[str(y) for y in table.index],
            colorscale="RdYlGn",
            zmid=0.0,
            text=text.to_numpy(),
            texttemplate="%{text}",
            colorbar={"title": "%"},
        )
    )
    return _layout(fig, "Monthly returns", "year")


def rolling_sharpe_chart(
    equity: pd.Series, window: int = 126, periods_per_year: float = DEFAULT_SESSIONS_PER_YEAR
) -> go.Figure:
    """Sharpe ratio over a rolling window of sessions (annualised with ``periods_per_year``
    sessions, zero risk-free rate)."""
    r = daily_returns(equity)
    sharpe = r.rolling(window).mean() / r.rolling(window).std() * np.sqrt(periods_per_year)
    fig = go.Figure(go.Scatter(x=sharpe.index, y=sharpe, mode="lines", name="rolling Sharpe"))
    return _layout(fig, f"Rolling Sharpe ({window} sessions)", "Sharpe")


def exposure_chart(daily: pd.DataFrame) -> go.Figure:
    """Gross and net exposure and daily turnover, fractions of NAV."""
    fig = go.Figure()
    for column in ("gross_exposure", "net_exposure", "turnover"):
        fig.add_trace(go.Scatter(x=daily.index, y=daily[column], mode="lines", name=column))
    return _layout(fig, "Exposure and turnover", "fraction of NAV")


# --------------------------------------------------------------------------- factor EDA


def ic_chart(ic: pd.DataFrame, window: int = 21, title: str = "Rank IC") -> go.Figure:
    """Per horizon (a column each), the IC by session as faint points and its rolling mean
    over ``window`` sessions as a line."""
    fig = go.Figure()
    for horizon in ic.columns:
        series = ic[horizon]
        fig.add_trace(go.Scatter(x=series.index, y=series, mode="markers", opacity=0.25,
                                 marker={"size": 3}, name=f"{horizon}d", legendgroup=str(horizon),
                                 showlegend=False))  # fmt: skip
        rolling = series.rolling(window, min_periods=max(1, window // 2)).mean()
        fig.add_trace(go.Scatter(x=rolling.index, y=rolling, mode="lines",
                                 name=f"{horizon}d ({window}-session mean)",
                                 legendgroup=str(horizon)))  # fmt: skip
    fig.add_hline(y=0.0, line_width=1, line_color="grey")
    return _layout(fig, title, "correlation")


def quantile_chart(quantile_mean: pd.DataFrame) -> go.Figure:
    """Mean forward return per factor quantile (x) and horizon (a bar group each), in basis
    points."""
    fig = go.Figure()
    for horizon in quantile_mean.columns:
        fig.add_trace(go.Bar(x=[str(q) for q in quantile_mean.index],
                             y=quantile_mean[horizon] * 1e4, name=f"{horizon}d"))  # fmt: skip
    fig.update_layout(barmode="group", xaxis_title="quantile (1 = lowest factor values)")
    return _layout(fig, "Mean forward return by quantile", "bp")


def decay_chart(autocorrelation: pd.Series) -> go.Figure:
    """The factor's mean rank autocorrelation by lag in sessions (how slowly it changes)."""
    fig = go.Figure(go.Scatter(x=list(autocorrelation.index), y=autocorrelation,
                               mode="lines+markers", name="rank autocorrelation"))  # fmt: skip
    fig.update_layout(xaxis_title="lag (sessions)")
    return _layout(fig, "Rank autocorrelation (decay)", "correlation")


def correlation_heatmap(matrix: pd.DataFrame) -> go.Figure:
    """A factor correlation matrix (mean cross-sectional rank correlation)."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix.to_numpy(),
            x=list(matrix.columns),
            y=list(matrix.index),
            colorscale="RdBu",
            zmin=-1.0,
            zmax=1.0,
            colorbar={"title": "corr"},
        )
    )
    fig = _layout(fig, "Factor rank correlation", "")
    fig.update_layout(height=max(360, 22 * len(matrix) + 120))
    return fig


def turnover_chart(daily: pd.DataFrame, window: int = 21) -> go.Figure:
    """A backtest's daily turnover (traded notional / NAV) and its rolling mean."""
    turnover = daily["turnover"]
    fig = go.Figure(go.Bar(x=turnover.index, y=turnover, name="turnover", opacity=0.4))
    rolling = turnover.rolling(window, min_periods=1).mean()
    fig.add_trace(go.Scatter(x=rolling.index, y=rolling, mode="lines",
                             name=f"{window}-session mean"))  # fmt: skip
    return _layout(fig, "Turnover", "fraction of NAV")


def equity_comparison_chart(equities: dict[str, pd.Series], log: bool = False) -> go.Figure:
    """Several equity curves, each rebased to 1 at its first value."""
    fig = go.Figure()
    for name, equity in equities.items():
        values = equity.dropna()
        if len(values):
            fig.add_trace(go.Scatter(x=values.index, y=values / values.iloc[0], mode="lines",
                                     name=name))  # fmt: skip
    if log:
        fig.update_yaxes(type="log")
    return _layout(fig, "Equity (rebased to 1)", "growth of 1")


def tracking_difference_chart(drift: pd.DataFrame) -> go.Figure:
    """The live account's cumulative tracking difference against the backtest engine, per
    strategy: the ``tracking`` column of the drift report (``live_drift``; the running sum
    of each session's NAV difference over its starting NAV), in basis points, by session."""
    fig = go.Figure()
    for name, rows in drift.sort_values("date").groupby("strategy", sort=True):
        fig.add_trace(go.Scatter(x=rows["date"], y=1e4 * rows["tracking"],
                                 mode="lines+markers", name=str(name)))  # fmt: skip
    return _layout(fig, "Cumulative tracking difference (live - backtest)", "basis points of NAV")

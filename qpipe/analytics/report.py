"""The tear sheet: one self-contained HTML file (Plotly embedded, works offline) per backtest."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd
import plotly.io as pio

from qpipe.analytics.charts import (
    drawdown_chart,
    equity_chart,
    exposure_chart,
    monthly_heatmap,
    rolling_sharpe_chart,
)
from qpipe.backtest.result import BacktestResult
from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR

LARGEST_TRADES = 20
REPORTS = "reports"
"""The folder of the data directory that holds the tear sheets."""


def report_path(root: Path, strategy: str) -> Path:
    """Where the tear sheet of ``strategy`` goes by default: ``<root>/reports/<strategy>.html``
    (``root``: the data directory)."""
    return root / REPORTS / f"{strategy}.html"


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(border=0, classes="table", float_format=lambda v: f"{v:,.4f}")


def tear_sheet(
    name: str, result: BacktestResult, benchmark: pd.Series | None = None, log: bool = False
) -> str:
    """The HTML of a tear sheet: equity vs benchmark, drawdown, monthly heatmap, rolling
    Sharpe (annualised like the metrics: their ``periods_per_year``), exposure and turnover,
    the metrics and the largest trades."""
    year = result.metrics.get("periods_per_year", DEFAULT_SESSIONS_PER_YEAR)
    figures = [
        equity_chart(result.equity, benchmark, log=log),
        drawdown_chart(result.equity),
        monthly_heatmap(result.equity),
        rolling_sharpe_chart(result.equity, periods_per_year=year),
        exposure_chart(result.daily),
    ]
    parts = [pio.to_html(figures[0], include_plotlyjs=True, full_html=False)]
    parts += [pio.to_html(f, include_plotlyjs=False, full_html=False) for f in figures[1:]]
    metrics = pd.Series(result.metrics, name="value").to_frame()
    fills = result.fills.assign(notional=result.fills["quantity"] * result.fills["price"])
    trades = fills.nlargest(LARGEST_TRADES, "notional")
    title = html.escape(f"qpipe backtest: {name}")
    first, last = result.equity.index[0].date(), result.equity.index[-1].date()
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}
.table{{border-collapse:collapse}} .table td,.table th{{padding:2px 10px;text-align:right}}</style>
</head><body><h1>{title}</h1><p>{first} .. {last}, {len(result.equity)} sessions</p>
{"".join(parts)}
<h2>Metrics</h2>{_table(metrics)}
<h2>Largest trades</h2>{_table(trades)}
</body></html>"""


def write_report(
    path: Path | str,
    name: str,
    result: BacktestResult,
    benchmark: pd.Series | None = None,
    log: bool = False,
) -> Path:
    """Write the tear sheet to ``path`` and return it."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(tear_sheet(name, result, benchmark, log), encoding="utf-8")
    return out

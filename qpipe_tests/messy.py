"""A small messy market, built in the tests: what real daily data does to a backtester.

Seven names over 80 XNYS sessions from 2024-01-02:

- ``AAA`` trades every session and pays a dividend on an ordinary day (session 10);
- ``BBB`` halts in mid-history (sessions 20-24 have no bar) and pays a dividend on the day it
  resumes (session 25);
- ``CCC`` lists late (first bar at session 30);
- ``DDD`` is delisted: its last bar and declared delisting are session 50;
- ``EEE`` splits 2-for-1 during a halt (no bars on sessions 40-44, ex-date session 42);
- ``FFF`` halts across the last session (no bar on sessions 77-79), with no delisting;
- ``GGG`` trades every session and pays a dividend while ``BBB`` is halted (session 22).

Prices are a seeded random walk; the split halves EEE's raw price from its ex-date on. Every
expected value a test needs is computed from these frames with plain pandas in the test.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from qpipe.calendars import TradingCalendar

N_SESSIONS = 80
SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF", "GGG")
HALTS = {"BBB": range(20, 25), "EEE": range(40, 45), "FFF": range(77, 80)}
FIRST_BAR = {"CCC": 30}
DELISTED = {"DDD": 50}
SPLITS = {("EEE", 42): 2.0}
DIVIDENDS = {("AAA", 10): 0.80, ("BBB", 25): 1.20, ("GGG", 22): 0.50}


@dataclass(frozen=True)
class MessyMarket:
    """Raw bars, corporate actions and instruments (qpipe's contract frames)."""

    sessions: pd.DatetimeIndex
    bars: pd.DataFrame
    actions: pd.DataFrame
    instruments: pd.DataFrame


def sessions(n: int = N_SESSIONS) -> pd.DatetimeIndex:
    days = TradingCalendar("XNYS", "2024-01-02").sessions("2024-01-02", "2024-12-31")[:n]
    return pd.DatetimeIndex(days, name="date")


def messy_market(seed: int = 0) -> MessyMarket:
    """The market described in the module docstring."""
    rng = np.random.default_rng(seed)
    days = sessions()
    rows = []
    for k, symbol in enumerate(SYMBOLS):
        level = 20.0 + 10.0 * k
        for t, day in enumerate(days):
            level *= float(np.exp(rng.normal(0.0005, 0.02)))
            if (symbol, t) in SPLITS:
                level /= SPLITS[(symbol, t)]
            if t < FIRST_BAR.get(symbol, 0) or t > DELISTED.get(symbol, N_SESSIONS):
                continue
            if t in HALTS.get(symbol, ()):
                continue
            close = round(level, 4)
            gap = float(rng.normal(0.0, 0.005))
            rows.append(
                {
                    "date": day,
                    "symbol": symbol,
                    "open": round(close * (1 + gap), 4),
                    "high": round(close * (1 + abs(gap) + 0.01), 4),
                    "low": round(close * (1 - abs(gap) - 0.01), 4),
                    "close": close,
                    "volume": float(100_000 + 1_000 * t + 10_000 * k),
                }
            )
    bars = pd.DataFrame(rows).sort_values(["date", "symbol"], ignore_index=True)
    bars["date"] = bars["date"].astype("datetime64[ns]")
    action_rows = []
    for (symbol, t), ratio in SPLITS.items():
        action_rows.append((days[t], symbol, ratio, 0.0))
    for (symbol, t), cash in DIVIDENDS.items():
        action_rows.append((days[t], symbol, 1.0, cash))
    actions = pd.DataFrame(action_rows, columns=["date", "symbol", "split_ratio", "dividend"])
    actions["date"] = actions["date"].astype("datetime64[ns]")
    actions["factor"] = [
        _factor(bars, row.symbol, row.date, row.split_ratio, row.dividend)
        for row in actions.itertuples()
    ]
    actions = actions.sort_values(["date", "symbol"], ignore_index=True)
    first = bars.groupby("symbol")["date"].min()
    instruments = pd.DataFrame(
        {
            "symbol": list(SYMBOLS),
            "kind": "stock",
            "sector": ["S1", "S1", "S2", "S2", "S3", "S3", "S1"],
            "first_date": [first[s] for s in SYMBOLS],
            "last_date": [days[DELISTED[s]] if s in DELISTED else pd.NaT for s in SYMBOLS],
        }
    )
    instruments["last_date"] = instruments["last_date"].astype("datetime64[ns]")
    return MessyMarket(days, bars, actions, instruments)


def _factor(bars: pd.DataFrame, symbol: str, day: pd.Timestamp, split: float, cash: float) -> float:
    """``1 / split - dividend / previous traded close`` (the schema's backward factor)."""
    before = bars.loc[(bars["symbol"] == symbol) & (bars["date"] < day), "close"]
    return 1.0 / split - cash / float(before.iloc[-1])


def adjusted_closes(market: MessyMarket) -> pd.DataFrame:
    """The vendor's adjusted close of every bar, by plain backward adjustment: each close times
    the product of the ``factor`` of every later ex-date of its symbol."""
    out = market.bars.loc[:, ["date", "symbol", "close"]].copy()
    multiplier = np.ones(len(out))
    for row in market.actions.itertuples():
        earlier = (out["symbol"] == row.symbol).to_numpy() & (out["date"] < row.date).to_numpy()
        multiplier[earlier] *= row.factor
    out["adj_close"] = out["close"] * multiplier
    return out

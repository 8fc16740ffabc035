"""From the lake and today's prices to today's target weights, with the same factor and
strategy code as the ``signals_<strategy>`` assets.

For a session, the bridge reads from the lake the strategy's look-back of bars before it (and
every corporate action up to it, as the assets do), takes the sessions missing after the
lake's last bar from the broker when it has one (a missed nightly sync; no corporate actions
come with them), appends the session's bar (from the lake
when it is there, else today's snapshot as open = high = low = close), computes the
strategy's factors for that one session in memory, takes the last rebalance before it from
the strategy's signal table, and runs the strategy. For a past session this reproduces the
signal table's row exactly (the parity test).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from qpipe.data.schema import MarketData
from qpipe.factors.factory import library_for, to_long
from qpipe.factors.panel import compute
from qpipe.live.broker import Broker
from qpipe.project import Project
from qpipe.strategies.signals import compute_signals, lake_previous_weights


class LiveDataBridge:
    """Today's signals of strategy ``name`` of ``project``."""

    def __init__(self, project: Project, name: str, broker: Broker | None = None) -> None:
        if name not in project.strategies:
            raise KeyError(f"no strategy {name!r}; configured: {', '.join(project.strategies)}")
        self.project = project
        self.name = name
        self.strategy = project.strategies[name]
        self.broker = broker
        self.filled: list[dt.date] = []
        """Sessions of the last :meth:`market` whose bars came from the broker."""
        library = library_for(project.settings.factors)
        self.lookback = max(
            [self.strategy.lookback, *(library[f].lookback for f in self.strategy.factors)]
        )
        """Sessions of bars before a session that its signals read: the strategy's own
        look-back and each of its factors' (what the signals assets read incrementally)."""

    def market(self, session: dt.date, snapshot: pd.Series | None = None) -> MarketData:
        """The bars the strategy reads for ``session``: :attr:`lookback` sessions from the lake
        and the session's own bar (the lake's, else ``snapshot`` as a bar of one price)."""
        cal, lake = self.project.calendar, self.project.lake
        before = cal.sessions_index(None, session)
        before = before[before < pd.Timestamp(session)]
        window = before[max(len(before) - self.lookback, 0) :] if self.lookback else before[:0]
        first = window[0] if len(window) else pd.Timestamp(session)
        bars = lake.read("bars", first, session)
        bars = self._fill_gaps(bars, window, session)
        if not (bars["date"] == pd.Timestamp(session)).any():
            if snapshot is None:
                raise ValueError(f"no bars of {session} in the lake and no snapshot given")
            prices = snapshot.dropna()
            prices = prices[prices > 0]
            today = pd.DataFrame({"date": pd.Timestamp(session), "symbol": prices.index.astype(str),
                                  "open": prices.values, "high": prices.values,
                                  "low": prices.values, "close": prices.values,
                                  "volume": np.nan})  # fmt: skip
            bars = pd.concat([bars, today], ignore_index=True)
        return MarketData(bars, lake.read("corporate_actions", None, session))

    def _fill_gaps(
        self, bars: pd.DataFrame, window: pd.DatetimeIndex, session: dt.date
    ) -> pd.DataFrame:
        """``bars`` with the window's sessions after the lake's last bar taken from the
        broker (a missed nightly sync), for the symbols of the lake's last bar."""
        self.filled = []
        last = bars["date"].max() if len(bars) else None
        gap = window[window > last] if last is not None else window[:0]
        if self.broker is None or not len(gap):
            return bars
        symbols = sorted(bars.loc[bars["date"] == last, "symbol"])
        count = len(self.project.calendar.sessions(gap[0].date(), session))
        extra = self.broker.daily_bars(symbols, count)
        extra = extra.assign(date=pd.to_datetime(extra["date"]))
        extra = extra.loc[extra["date"].isin(gap)]
        self.filled = sorted({d.date() for d in extra["date"]})
        return pd.concat([bars, extra[bars.columns]], ignore_index=True)

    def signals(self, session: dt.date, snapshot: pd.Series | None = None) -> pd.DataFrame:
        """The strategy's signal rows of ``session`` (score and target weight per symbol;
        weights NaN unless the session is a rebalance)."""
        market = self.market(session, snapshot)
        names = list(self.strategy.factors)
        if names:
            library = library_for(self.project.settings.factors)
            panels = compute(market, names, session, session, library=library,
                             sectors=self.project.sectors,
                             calendar=self.project.calendar)  # fmt: skip
            factors = to_long(panels, market.bars)
        else:
            factors = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"),
                                    "symbol": pd.Series(dtype=object)})  # fmt: skip
        previous = lake_previous_weights(
            self.project.lake, self.project.calendar, self.name, session
        )
        return compute_signals(self.strategy, market, factors, self.project.instruments,
                               self.project.calendar,
                               session, session, previous)  # fmt: skip

    def targets(self, session: dt.date, snapshot: pd.Series | None = None) -> pd.Series:
        """Target weight per symbol for ``session`` (NaN: no decision, leave the position)."""
        rows = self.signals(session, snapshot)
        return rows.set_index("symbol")["target_weight"]

"""Daily bars from Interactive Brokers, so ``qpipe sync`` can fill the lake from TWS or IB
Gateway (``data.source: ib``).

Bars are IB's daily TRADES bars in regular trading hours. IB adjusts its daily history for
splits (not dividends) and the API offers no corporate-action records, so the source
reports no actions: a split after bars were synced shows as a jump until the symbol is
re-synced with ``qpipe sync --refresh``. Requests go through the IB adapter's connection
(:class:`~qpipe.ib.connection.IBConnection`, the one under the IB broker too; ``live.host``,
``live.port``, ``data.ib.client_id``), paced at IB's limits and retried on error 162; a sync
asks each symbol once for the whole range it needs, so the nightly incremental sync costs one
request per symbol.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence

import pandas as pd

from qpipe.calendars import DateLike, TradingCalendar
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, MarketData, empty_frame, normalize
from qpipe.data.source import DataSource, clip_range
from qpipe.ib.connection import IBConnection
from qpipe.settings import IBSourceConfig, LiveConfig


def ib_duration(start: dt.date, today: dt.date) -> str:
    """IB's ``durationStr`` reaching back from ``today`` to ``start``: days up to a year,
    whole years beyond (IB refuses more than 365 days)."""
    days = (today - start).days + 1
    if days <= 365:
        return f"{max(days, 1)} D"
    return f"{math.ceil(days / 365.25)} Y"


class IBSource(DataSource):
    """The configured symbols' daily bars from IB, from ``config.start`` onwards."""

    name = "ib"

    def __init__(
        self,
        calendar: TradingCalendar,
        config: IBSourceConfig,
        live: LiveConfig,
        connection: IBConnection | None = None,
    ) -> None:
        super().__init__(calendar)
        self.config = config
        self.live = live.model_copy(update={"client_id": config.client_id})
        self.connection = connection or IBConnection(self.live)

    def instruments(self) -> pd.DataFrame:
        """The configured stocks and ETFs, listed from ``config.start``. ``last_date`` (the
        declared delisting) is always NaT: IB's contract details carry no delisting date for
        stocks or ETFs (``realExpirationDate`` and ``lastTradeTime`` are for derivatives, and
        IB stops resolving a delisted stock's contract), so a backtest on IB data never closes a
        position for a delisting; a name whose bars stop is held at its last close."""
        rows = [(s, "stock") for s in self.config.stocks] + [(s, "etf") for s in self.config.etfs]
        return pd.DataFrame(
            {
                "symbol": [s for s, _ in rows],
                "kind": [k for _, k in rows],
                "sector": [self.config.sectors.get(s) for s, _ in rows],
                "first_date": pd.Timestamp(self.config.start),
                "last_date": pd.NaT,
            }
        )

    def coverage(self) -> tuple[dt.date, dt.date | None]:
        return self.config.start, None

    def fetch(
        self, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> MarketData:
        """Bars of ``symbols`` (None: every configured one) for the sessions in ``[start,
        end]``: one paced request per symbol reaching back to ``start``."""
        lo, hi = clip_range(self, start, end)
        lo = max(lo, self.config.start)
        names = list(symbols) if symbols is not None else list(self.instruments()["symbol"])
        if lo > hi or not names:
            return MarketData.empty()
        ib = self.connection
        today = dt.datetime.now(dt.UTC).date()
        duration = ib_duration(lo, min(today, max(hi, lo)))
        ib.connect()
        try:
            frames = [ib.history(s, duration, end=hi if hi < today else None) for s in names]
        finally:
            ib.close()
        bars = pd.concat([f for f in frames if len(f)] or [empty_frame(BAR_COLUMNS)])
        dates = pd.to_datetime(bars["date"])
        sessions = pd.DatetimeIndex(pd.to_datetime(self.calendar.sessions(lo, hi)))
        bars = bars.loc[dates.isin(sessions).to_numpy()]
        return MarketData(normalize(bars, BAR_COLUMNS), empty_frame(ACTION_COLUMNS))

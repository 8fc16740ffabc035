"""The real sample shipped with qpipe: daily bars of AAPL, IBM, MSFT, GOOG and FB (2000-2013).

It is read and validated like the user's files (:class:`~qpipe.data.files.FilesSource`) with the
file's fixed column names; splits and dividends come from its ``Adj Close``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from qpipe.calendars import TradingCalendar
from qpipe.data.files import FilesSource
from qpipe.settings import ColumnMap, FilesSourceConfig, SampleSourceConfig

SAMPLE_PATH = Path(__file__).with_name("sample_data") / "wiki_prices_5.csv.gz"
"""The packaged file (see ``sample_data/README.md`` for its origin and licence)."""

SAMPLE_COLUMNS = ColumnMap(
    date="Date",
    symbol="Ticker",
    open="Open",
    high="High",
    low="Low",
    close="Close",
    volume="Volume",
    adj_close="Adj Close",
)
"""Column names of ``wiki_prices_5.csv.gz``: unadjusted OHLCV plus a split- and
dividend-adjusted close."""

SAMPLE_SECTORS: dict[str, str] = {
    "AAPL": "Information Technology",
    "IBM": "Information Technology",
    "MSFT": "Information Technology",
    "GOOG": "Communication Services",
    "FB": "Communication Services",
}
"""Current GICS sectors of the sample's companies (other symbols get no sector)."""


class SampleSource(FilesSource):
    """The packaged sample (or ``config.path``, a file with the same columns) as a source."""

    name = "sample"

    def __init__(self, calendar: TradingCalendar, config: SampleSourceConfig | None = None) -> None:
        path = (config.path if config is not None else None) or SAMPLE_PATH
        files = FilesSourceConfig(path=path, layout="long", format="csv", columns=SAMPLE_COLUMNS)
        super().__init__(calendar, files)

    def instruments(self) -> pd.DataFrame:
        """The sample's stocks with their first date of data and GICS sector (the file
        declares no delisting: ``last_date`` is NaT)."""
        out = super().instruments()
        out["sector"] = out["symbol"].map(SAMPLE_SECTORS).astype(object)
        out["sector"] = out["sector"].where(out["sector"].notna(), None)
        return out

"""What a factor function receives: adjusted price and volume panels of dims (date, symbol).

Prices are *forward* adjusted for splits and dividends: ``price_t * prod(1 / factor_e)`` over
ex-dates ``e <= t`` since the start of the lake, so a value at ``t`` never depends on actions
after ``t`` (backward adjustment would rescale history at every new action and break the
point-in-time guarantee). Ratios and returns equal those of any other adjustment.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields

import xarray as xr

from qpipe.calendars import DEFAULT_SESSIONS_PER_YEAR

_PRIVATE = {"init": False, "repr": False, "compare": False}
_NOT_DATED = ("sector", "sessions_per_year")


@dataclass(frozen=True)
class FactorInputs:
    """Input panels over the same ``date`` x ``symbol`` grid (NaN where no bar). Built with a
    trading calendar, the dates are its sessions, so a session missing from the data is a row
    of NaN and windows of ``d`` dates are ``d`` calendar sessions.

    - ``open``, ``high``, ``low``, ``close``: forward-adjusted prices.
    - ``volume``: shares, adjusted for splits (divided by the cumulative split ratio).
    - ``vwap``: the day's volume-weighted price if the data has one, else the typical price
      ``(high + low + close) / 3`` (NaN where high or low is missing).
    - ``returns``: close-to-close total returns of the adjusted close.
    - ``dollar_volume``: raw close times raw volume (currency units).
    - ``sector``: one label per symbol (dim ``symbol``), empty string where unknown.
    - ``sessions_per_year``: the calendar's sessions per year, which annualises volatilities
      (:attr:`qpipe.calendars.TradingCalendar.sessions_per_year`; 252 without a calendar).
    """

    open: xr.DataArray
    high: xr.DataArray
    low: xr.DataArray
    close: xr.DataArray
    volume: xr.DataArray
    vwap: xr.DataArray
    returns: xr.DataArray
    dollar_volume: xr.DataArray
    sector: xr.DataArray
    sessions_per_year: float = DEFAULT_SESSIONS_PER_YEAR
    _since: dict[int, FactorInputs] = field(**_PRIVATE, default_factory=dict)
    _lock: threading.Lock = field(**_PRIVATE, default_factory=threading.Lock)

    def adv(self, days: int) -> xr.DataArray:
        """Average daily dollar volume over the last ``days`` sessions (today included; NaN
        until ``days`` values are available or if any is missing)."""
        from qpipe.factors.operators import ts_mean

        return ts_mean(self.dollar_volume, days)

    def since(self, row: int) -> FactorInputs:
        """The inputs from date row ``row`` on (views, made once per ``row``); ``row <= 0``
        gives ``self``. A factor with a look-back of ``L`` needs rows from ``first - L`` on to
        compute dates from row ``first``."""
        if row <= 0:
            return self
        with self._lock:
            if row not in self._since:
                cut = {
                    f.name: getattr(self, f.name).isel(date=slice(row, None))
                    for f in fields(self)
                    if f.init and f.name not in _NOT_DATED
                }
                kept = {name: getattr(self, name) for name in _NOT_DATED}
                self._since[row] = FactorInputs(**cut, **kept)
            return self._since[row]

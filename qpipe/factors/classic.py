"""Classic equity factors, each declared once with its look-back (sessions before the date).

Conventions: returns are daily total returns of the adjusted close; volatilities are
annualised with the square root of the calendar's sessions per year (``sessions_per_year`` of
the inputs: about 252 on XNYS, 242 on XSHG); the market return is the equal-weighted mean
return of the names on the grid that day. Windows are strict (NaN unless every day of the
window is present) and are counts of sessions whatever the calendar: ``mom_12_1``'s 252, the
52-week high's 252 and ``beta_252``'s 252 are definitions, not annualisation, and do not
follow ``sessions_per_year``.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from qpipe.factors.inputs import FactorInputs
from qpipe.factors.operators import delay, ts_cov, ts_max, ts_mean, ts_std
from qpipe.factors.registry import FactorLibrary

CLASSIC = FactorLibrary()


def annualised(daily: xr.DataArray, x: FactorInputs) -> xr.DataArray:
    """A daily volatility scaled to a year: times sqrt of the inputs' sessions per year."""
    return daily * np.sqrt(x.sessions_per_year)


def market_return(x: FactorInputs) -> xr.DataArray:
    """Equal-weighted mean of the day's returns across names, broadcast to every name."""
    return x.returns.mean("symbol", skipna=True).broadcast_like(x.returns)


@CLASSIC.register("mom_12_1", lookback=252, inputs=("close",))
def mom_12_1(x: FactorInputs) -> xr.DataArray:
    """12-1 month momentum: return from 252 to 21 sessions ago (skips the last month); the
    windows are session counts on every calendar (not the calendar's sessions per year)."""
    return delay(x.close, 21) / delay(x.close, 252) - 1.0


@CLASSIC.register("reversal_1m", lookback=21, inputs=("close",))
def reversal_1m(x: FactorInputs) -> xr.DataArray:
    """1-month reversal: minus the return over the last 21 sessions."""
    return -(x.close / delay(x.close, 21) - 1.0)


@CLASSIC.register("vol_20", lookback=20, inputs=("returns",))
def vol_20(x: FactorInputs) -> xr.DataArray:
    """Annualised volatility of daily returns over 20 sessions (ddof 1; see the module doc)."""
    return annualised(ts_std(x.returns, 20), x)


@CLASSIC.register("vol_60", lookback=60, inputs=("returns",))
def vol_60(x: FactorInputs) -> xr.DataArray:
    """Annualised volatility of daily returns over 60 sessions (ddof 1; see the module doc)."""
    return annualised(ts_std(x.returns, 60), x)


@CLASSIC.register("downside_vol_60", lookback=60, inputs=("returns",))
def downside_vol_60(x: FactorInputs) -> xr.DataArray:
    """Annualised downside deviation over 60 sessions: sqrt(mean(min(r, 0)^2))."""
    down = np.minimum(x.returns, 0.0)
    return annualised(np.sqrt(ts_mean(down * down, 60)), x)


@CLASSIC.register("beta_252", lookback=252, inputs=("returns",))
def beta_252(x: FactorInputs) -> xr.DataArray:
    """Beta to the equal-weighted market over 252 sessions: cov(r, m) / var(m)."""
    m = market_return(x)
    var_m = ts_std(m, 252) ** 2
    return ts_cov(x.returns, m, 252) / var_m.where(var_m > 0)


@CLASSIC.register("idio_vol_60", lookback=60, inputs=("returns",))
def idio_vol_60(x: FactorInputs) -> xr.DataArray:
    """Annualised idiosyncratic volatility over 60 sessions: the residual standard deviation
    of a rolling regression of returns on the market, sqrt(var(r) - cov(r, m)^2 / var(m))."""
    m = market_return(x)
    var_r = ts_std(x.returns, 60) ** 2
    var_m = ts_std(m, 60) ** 2
    cov = ts_cov(x.returns, m, 60)
    resid = (var_r - cov * cov / var_m.where(var_m > 0)).clip(min=0.0)
    return annualised(np.sqrt(resid), x)


@CLASSIC.register("amihud_20", lookback=20, inputs=("returns", "dollar_volume"))
def amihud_20(x: FactorInputs) -> xr.DataArray:
    """Amihud illiquidity: mean of |return| per million of dollar volume over 20 sessions."""
    per_million = abs(x.returns) / (x.dollar_volume / 1e6).where(x.dollar_volume > 0)
    return ts_mean(per_million, 20)


@CLASSIC.register("volume_trend", lookback=119, inputs=("volume",))
def volume_trend(x: FactorInputs) -> xr.DataArray:
    """Volume trend: log of 20-session over 120-session mean share volume (split adjusted)."""
    short, long = ts_mean(x.volume, 20), ts_mean(x.volume, 120)
    return np.log(short.where(short > 0) / long.where(long > 0))


@CLASSIC.register("high_52w", lookback=251, inputs=("close",))
def high_52w(x: FactorInputs) -> xr.DataArray:
    """Proximity to the 52-week high: close over the highest close of 252 sessions (<= 1)."""
    return x.close / ts_max(x.close, 252)


@CLASSIC.register("max_ret_21", lookback=21, inputs=("returns",))
def max_ret_21(x: FactorInputs) -> xr.DataArray:
    """Maximum daily return over the last 21 sessions (lottery demand)."""
    return ts_max(x.returns, 21)


@CLASSIC.register("skew_60", lookback=60, inputs=("returns",))
def skew_60(x: FactorInputs) -> xr.DataArray:
    """Sample skewness of daily returns over 60 sessions (biased moment estimator)."""
    r = x.returns
    mu = ts_mean(r, 60)
    m2 = ts_mean(r * r, 60) - mu * mu
    m3 = ts_mean(r * r * r, 60) - 3.0 * mu * ts_mean(r * r, 60) + 2.0 * mu**3
    return m3 / (m2.where(m2 > 0) ** 1.5)

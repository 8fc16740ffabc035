"""A seeded synthetic daily equity market: the default data source.

:class:`SyntheticSource` generates ``n_stocks`` stocks in ``n_sectors`` sectors and ``n_etfs``
ETFs on the trading calendar's sessions from ``config.start`` onward (open-ended).

Model (daily, simple returns; annual figures use 252 sessions):

- **Factors.** A market factor (drift 7%/yr, long-run vol 18%/yr, GARCH 0.10/0.88), one
  factor per sector (vol 10%/yr) and one per "other" ETF (bond-, gold-, international-like
  ...). Each factor and each stock's idiosyncratic component has its own GARCH(1,1) variance
  and Student-t innovations (5 degrees of freedom, scaled to unit variance): volatility
  clusters and tails are fat.
- **Stocks.** ``r = beta * market + gamma * sector + idio + drift`` with ``beta`` around 1,
  ``gamma`` in [0.5, 1.2] and idiosyncratic vol lognormal around 24%/yr.
- **Momentum.** ``drift`` is a latent Ornstein-Uhlenbeck process per stock (half-life one
  year, stationary std 15%/yr times ``momentum_strength``), so past returns predict future
  ones.
- **ETFs.** Market ETF ``EMKT`` = equal-weighted average of all stocks' factor exposures; one
  ETF per sector (as many as ``n_etfs - 1`` allows) = average exposure of its sector's
  stocks; the rest follow their own factor plus a small market beta (``EBOND`` -0.08,
  ``EGOLD`` 0.05, ``EINTL`` 0.85, ...). All get 1%/yr tracking noise, have no corporate
  actions and are listed throughout.
- **Bars.** The open is the previous close times a small gap (so it jumps after a halt),
  high/low bracket open and close, prices are rounded to cents and then high/low re-bounded.
  Volume in shares: lognormal base level per instrument, higher on big-move days, multiplied
  by splits; float64 whole numbers.
- **Listings.** 80% of stocks list on the first session, the rest within 10 years; a lifetime
  (3%/yr hazard, pre-drawn over a 40-year horizon) sets the last session, and a close below
  $1 makes that session the last one. Stocks are halted for 2-10 sessions about once every
  six years (no bars; the price moves underneath).
- **Corporate actions** (stocks only, only on a session traded right after a traded one):
  a close above the stock's own threshold ($120-300) triggers a 2:1 split (3:1 if above 1.5x
  the threshold) on the next such session; 40% of stocks reverse-split 1:2 once after a
  close below $2.50; 45% pay quarterly dividends of ``yield / 4 * previous close`` (yield
  1-4%/yr, in cents, post-split basis). On an ex-date with split ratio ``s`` and dividend
  ``D`` the close is ``(prev_close / s - D) * (1 + r)``, so the back-adjusted close (factor
  ``1/s - D/prev_close``) has exactly the generator's total returns, up to cent rounding.

Measured on the default config (seed 7, XNYS, 2015-01-02 .. 2024-12-31):

- mean monthly rank IC of 12-1 momentum (t-252 .. t-21) against the next 21-session return
  on adjusted closes: 0.067 (t-stat 7.1 over 107 months); 0.007 (t-stat 0.7) with
  ``momentum_strength=0``;
- annualised vol: ``EMKT`` 17.1%, sector ETFs 17.8-19.7%, ``EBOND`` 6.4%, ``EGOLD`` 13.5%,
  stocks median 30.6% (5%-95%: 22-46%);
- median excess kurtosis of daily stock returns 3.0; lag-1 autocorrelation of squared
  ``EMKT`` returns 0.14;
- by the calendar's end (2027-11): 37 late listings, 58 delistings; 81 splits, 2,686
  dividends in the ten years;
- ``fetch`` of 2015-01-02 .. 2025-12-31 (2,766 sessions, 212 instruments, 468k bars) on a
  fresh instance: about 1.0 s on 2 cores, 0.2 s once cached.

Determinism: session ``k`` (counted from the first session >= ``config.start``) draws from
``numpy.random.default_rng([seed, 1, k])``; static traits from ``default_rng([seed, 0])``.
The state is simulated forward from the first session and cached, so a day's rows never
depend on the range asked for and extending a range never changes earlier days.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence

import numpy as np
import pandas as pd

from qpipe.calendars import DateLike, TradingCalendar
from qpipe.data.schema import (
    ACTION_COLUMNS,
    BAR_COLUMNS,
    INSTRUMENT_COLUMNS,
    MarketData,
    empty_frame,
    normalize,
)
from qpipe.data.source import DataSource, clip_range
from qpipe.settings import SyntheticSourceConfig

DAYS_PER_YEAR = 252
HORIZON_SESSIONS = 40 * DAYS_PER_YEAR
"""Listing and delisting sessions are pre-drawn over this many sessions after the start."""

SECTORS: tuple[tuple[str, str], ...] = (
    ("Technology", "TECH"),
    ("Financials", "FIN"),
    ("Health Care", "HLTH"),
    ("Energy", "ENRG"),
    ("Industrials", "INDU"),
    ("Consumer Discretionary", "DISC"),
    ("Consumer Staples", "STPL"),
    ("Utilities", "UTIL"),
    ("Materials", "MATL"),
    ("Real Estate", "REIT"),
    ("Communication Services", "COMM"),
    ("Semiconductors", "SEMI"),
    ("Software", "SOFT"),
    ("Biotechnology", "BIOT"),
    ("Transportation", "TRAN"),
    ("Retail", "RETL"),
    ("Media", "MDIA"),
    ("Aerospace", "AERO"),
    ("Insurance", "INSR"),
    ("Autos", "AUTO"),
)
"""Sector names and the short codes of their ETFs (``E`` + code)."""

OTHER_ETFS: tuple[tuple[str, float, float, float], ...] = (
    # code, market beta, own-factor vol (annual), total drift (annual)
    ("BOND", -0.08, 0.05, 0.03),
    ("GOLD", 0.05, 0.15, 0.04),
    ("INTL", 0.85, 0.10, 0.05),
    ("EMRG", 1.00, 0.16, 0.05),
    ("TIPS", 0.00, 0.04, 0.02),
    ("COMD", 0.30, 0.18, 0.02),
    ("HYLD", 0.30, 0.05, 0.04),
    ("SMAL", 1.15, 0.08, 0.02),
)
"""Templates of the non-equity-sector ETFs; repeated with a numeric suffix if more are asked."""

MARKET_ETF = "EMKT"

_T_DOF = 5.0
_T_SCALE = float(np.sqrt((_T_DOF - 2.0) / _T_DOF))  # Student-t scaled to unit variance
_MARKET_VOL, _MARKET_DRIFT, _MARKET_GARCH = 0.18, 0.07, (0.10, 0.88)
_SECTOR_VOL, _SECTOR_GARCH = 0.10, (0.06, 0.92)
_OTHER_GARCH = (0.05, 0.93)
_IDIO_VOL_MEDIAN, _IDIO_VOL_DISPERSION, _IDIO_GARCH = 0.24, 0.30, (0.05, 0.93)
_MOMENTUM_VOL = 0.15  # stationary std of the latent drift, annual, at momentum_strength=1
_MOMENTUM_HALF_LIFE = DAYS_PER_YEAR  # sessions
_TRACKING_VOL = 0.01  # ETF tracking noise, annual
_LISTED_AT_START, _LISTING_WINDOW = 0.8, 10 * DAYS_PER_YEAR
_DELIST_HAZARD = 0.03  # per year
_DELIST_PRICE = 1.0
_HALT_PROB = 1.0 / (6 * DAYS_PER_YEAR)  # per stock and session
_HALT_MIN, _HALT_MAX = 2, 10
_SPLIT_THRESHOLD = (120.0, 300.0)
_REVERSE_SPLIT_SHARE, _REVERSE_SPLIT_PRICE = 0.4, 2.5
_DIVIDEND_SHARE, _DIVIDEND_YIELD, _DIVIDEND_PERIOD = 0.45, (0.01, 0.04), 63
_MIN_RETURN = -0.8


class SyntheticSource(DataSource):
    """Seeded synthetic market on ``calendar``'s sessions from ``config.start`` (see module).

    ``fetch`` returns raw bars (prices in dollars, volume in shares) and corporate actions;
    :meth:`total_returns` exposes the generator's daily total returns for checking adjustments.
    """

    name = "synthetic"

    def __init__(
        self, calendar: TradingCalendar, config: SyntheticSourceConfig | None = None
    ) -> None:
        super().__init__(calendar)
        self.config = config if config is not None else SyntheticSourceConfig()
        self._seed = int(self.config.seed) % (1 << 64)
        start = self.config.start
        if calendar.start <= start:
            sim_sessions = calendar.sessions_index(start)
        else:  # the simulation always starts at config.start, even if the calendar starts later
            sim_sessions = calendar.from_start(start).sessions_index(start)
        self._sessions = pd.DatetimeIndex(sim_sessions).astype("datetime64[ns]")
        self._first_visible = int(
            self._sessions.searchsorted(pd.Timestamp(max(start, calendar.start)))
        )
        self._init_static()
        self._init_state()

    # ------------------------------------------------------------------ public API

    def coverage(self) -> tuple[dt.date, dt.date | None]:
        """First session >= ``config.start`` (and the calendar's start); open-ended."""
        if self._first_visible < len(self._sessions):
            return self._sessions[self._first_visible].date(), None
        return self.config.start, None

    def instruments_key(self) -> str:
        """The configuration, the calendar and today's date (in the exchange's time zone):
        the instruments are a function of these alone (simulating up to today is what makes
        :meth:`instruments` slow)."""
        today = pd.Timestamp.now(tz=self.calendar.tz).date()
        spec = f"{self.config.model_dump_json()}|{self.calendar.exchange}|{self.calendar.start}"
        digest = hashlib.sha256(spec.encode()).hexdigest()[:16]
        return f"synthetic-{digest}-{today:%Y%m%d}"

    def instruments(self) -> pd.DataFrame:
        """Stocks and ETFs listed by today, sorted by symbol (nothing about the future: a
        listing or delisting after today is not shown).

        ``first_date`` is the listing session; ``last_date`` the last session with a bar if the
        instrument has delisted by today, else NaT (simulates up to today).
        """
        today = pd.Timestamp.now(tz=self.calendar.tz).tz_localize(None).normalize()
        n = int(self._sessions.searchsorted(today, side="right"))
        self._extend(n)
        keep = self._list_ord < n
        sessions = self._sessions
        first = np.full(self._n_all, np.datetime64("NaT"), dtype="datetime64[ns]")
        last = first.copy()
        first[keep] = sessions.values[self._list_ord[keep]]
        gone = self._last_ord < n
        last[gone] = sessions.values[self._last_ord[gone]]
        frame = pd.DataFrame(
            {
                "symbol": pd.Series(self._symbols, dtype=object),
                "kind": pd.Series(self._kinds, dtype=object),
                "sector": pd.Series(self._sector_names, dtype=object),
                "first_date": pd.Series(first, dtype="datetime64[ns]"),
                "last_date": pd.Series(last, dtype="datetime64[ns]"),
            }
        )
        frame = frame.loc[keep].loc[:, list(INSTRUMENT_COLUMNS)]
        return frame.sort_values("symbol", kind="stable").reset_index(drop=True)

    def fetch(
        self, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> MarketData:
        """Raw bars and corporate actions for sessions in ``[start, end]`` (see module doc)."""
        t0, t1 = self._ordinal_range(start, end)
        cols = self._columns(symbols)
        if t0 >= t1 or len(cols) == 0:
            return MarketData.empty()
        self._extend(t1)
        has = self._has[t0:t1][:, cols]
        ti, ci = np.nonzero(has)
        rows = t0 + ti
        idx = cols[ci]
        bars = pd.DataFrame(
            {
                "date": self._sessions.values[rows],
                "symbol": self._symbols[idx],
                "open": self._open[rows, idx],
                "high": self._high[rows, idx],
                "low": self._low[rows, idx],
                "close": self._close[rows, idx],
                "volume": self._volume[rows, idx],
            }
        )
        return MarketData(normalize(bars, BAR_COLUMNS), self._actions_frame(t0, t1, cols))

    def total_returns(
        self, start: DateLike, end: DateLike, symbols: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The generator's daily total returns (simple, as fractions): sessions x symbols.

        Defined on every listed session, halts included (a bar-to-bar return over a halt is the
        compounded product); NaN before listing and after delisting. Columns sorted by symbol.
        """
        t0, t1 = self._ordinal_range(start, end)
        cols = self._columns(symbols)
        t1 = max(t0, t1)
        self._extend(t1)
        return pd.DataFrame(
            self._ret[t0:t1][:, cols],
            index=pd.DatetimeIndex(self._sessions[t0:t1], name="date"),
            columns=pd.Index(self._symbols[cols], name="symbol"),
        )

    # ------------------------------------------------------------------ static traits

    def _init_static(self) -> None:
        cfg = self.config
        rng = np.random.default_rng([self._seed, 0])
        n, k = cfg.n_stocks, cfg.n_sectors
        sectors = SECTORS[:k]

        # ETFs: market, sectors (as many as fit), then "other" templates.
        n_etf = cfg.n_etfs
        n_sector_etf = min(k, max(n_etf - 1, 0))
        n_other = max(n_etf - 1 - n_sector_etf, 0)
        others = [
            (
                OTHER_ETFS[j % len(OTHER_ETFS)][0]
                + (str(j // len(OTHER_ETFS) + 1) if j >= len(OTHER_ETFS) else ""),
                *OTHER_ETFS[j % len(OTHER_ETFS)][1:],
            )
            for j in range(n_other)
        ]
        width = max(4, len(str(n)))
        stock_symbols = [f"S{i + 1:0{width}d}" for i in range(n)]
        etf_symbols = ([MARKET_ETF] if n_etf > 0 else []) + [
            "E" + code for _, code in sectors[:n_sector_etf]
        ]
        etf_symbols += ["E" + o[0] for o in others]
        self._n, self._e = n, len(etf_symbols)
        self._n_all = n + self._e
        self._symbols = np.array(stock_symbols + etf_symbols, dtype=object)
        self._kinds = np.array(["stock"] * n + ["etf"] * self._e, dtype=object)
        self._order = np.argsort(self._symbols.astype(str), kind="stable")
        self._index = {s: i for i, s in enumerate(self._symbols)}

        # Stocks.
        sector = rng.permutation(np.arange(n) % k)
        self._sector = sector
        self._beta = np.clip(rng.normal(1.0, 0.25, n), 0.3, 1.8)
        self._gamma = rng.uniform(0.5, 1.2, n)
        idio_vol = np.clip(
            np.exp(rng.normal(np.log(_IDIO_VOL_MEDIAN), _IDIO_VOL_DISPERSION, n)), 0.12, 0.6
        )
        late = rng.random(n) >= _LISTED_AT_START
        list_ord = np.where(late, rng.integers(1, _LISTING_WINDOW, n), 0)
        lifetime = np.ceil(rng.exponential(DAYS_PER_YEAR / _DELIST_HAZARD, n)).astype(np.int64)
        delist = list_ord + np.maximum(lifetime, 21)
        never = np.iinfo(np.int64).max // 2
        self._delist_pre = np.where(delist <= HORIZON_SESSIONS, delist, never)
        self._payer = rng.random(n) < _DIVIDEND_SHARE
        self._yield = rng.uniform(*_DIVIDEND_YIELD, n)
        self._phase = rng.integers(0, _DIVIDEND_PERIOD, n)
        self._split_threshold = rng.uniform(*_SPLIT_THRESHOLD, n)
        ipo_price = np.exp(rng.normal(np.log(40.0), 0.8, n))
        ipo_price = np.round(np.clip(ipo_price, 5.0, 0.8 * self._split_threshold), 2)
        self._reverse_ok = rng.random(n) < _REVERSE_SPLIT_SHARE
        stock_volume = np.exp(rng.normal(np.log(8e5), 1.0, n))
        self._mu0 = rng.standard_normal(n)
        etf_volume = np.exp(rng.normal(np.log(3e6), 0.8, self._e))
        etf_price = np.round(rng.uniform(40.0, 150.0, self._e), 2)

        # Factors: market, sectors, others; then idiosyncratic components (one GARCH each).
        n_fac = 1 + k + n_other
        self._n_fac = n_fac
        vol = np.concatenate(
            [[_MARKET_VOL], np.full(k, _SECTOR_VOL), [o[2] for o in others], idio_vol]
        )
        garch = np.array(
            [_MARKET_GARCH] + [_SECTOR_GARCH] * k + [_OTHER_GARCH] * n_other + [_IDIO_GARCH] * n
        ).reshape(-1, 2)
        self._alpha, self._garch_beta = garch[:, 0], garch[:, 1]
        self._h_long = vol**2 / DAYS_PER_YEAR
        self._omega = self._h_long * (1.0 - self._alpha - self._garch_beta)
        market_mean = _MARKET_DRIFT / DAYS_PER_YEAR
        self._fac_mean = np.concatenate(
            [
                [market_mean],
                np.zeros(k),
                [(o[3] - o[1] * _MARKET_DRIFT) / DAYS_PER_YEAR for o in others],
            ]
        )

        # ETF loadings on the factors.
        load = np.zeros((self._e, n_fac))
        beta_mean = self._beta.mean() if n else 1.0
        if n_etf > 0:
            load[0, 0] = beta_mean
            for s in range(k):
                load[0, 1 + s] = self._gamma[sector == s].sum() / n if n else 0.0
        for s in range(n_sector_etf):
            members = sector == s
            load[1 + s, 0] = self._beta[members].mean() if members.any() else 1.0
            load[1 + s, 1 + s] = self._gamma[members].mean() if members.any() else 1.0
        for j, o in enumerate(others):
            load[1 + n_sector_etf + j, 0] = o[1]
            load[1 + n_sector_etf + j, 1 + k + j] = 1.0
        self._load = load

        # Typical daily vol per instrument (for gaps, ranges and volume).
        stock_sd = np.sqrt(
            self._beta**2 * _MARKET_VOL**2 + self._gamma**2 * _SECTOR_VOL**2 + idio_vol**2
        )
        etf_sd = np.sqrt((load**2) @ (vol[:n_fac] ** 2))
        self._daily_sd = np.concatenate([stock_sd, etf_sd]) / np.sqrt(DAYS_PER_YEAR)
        self._base_volume = np.concatenate([stock_volume, etf_volume])
        self._start_price = np.concatenate([ipo_price, etf_price])
        self._list_ord = np.concatenate([list_ord, np.zeros(self._e, dtype=np.int64)])
        self._sector_names = np.array(
            [sectors[s][0] for s in sector]
            + [None] * min(n_etf, 1)
            + [name for name, _ in sectors[:n_sector_etf]]
            + [None] * n_other,
            dtype=object,
        )

        self._phi = 0.5 ** (1.0 / _MOMENTUM_HALF_LIFE)
        self._mom_scale = cfg.momentum_strength * _MOMENTUM_VOL / DAYS_PER_YEAR

    def _init_state(self) -> None:
        n, m = self._n, self._n_all
        self._t = 0  # next session ordinal to simulate
        self._h = self._h_long.copy()
        self._eps = np.zeros_like(self._h)
        self._mu = self._mu0.copy()
        self._price = self._start_price.astype(np.float64).copy()
        self._prev_bar = np.zeros(m, dtype=bool)
        self._halt_left = np.zeros(n, dtype=np.int64)
        self._last_ord = np.concatenate(
            [self._delist_pre, np.full(self._e, np.iinfo(np.int64).max // 2)]
        )
        self._pending_split = np.ones(n)
        self._pending_div = np.zeros(n, dtype=bool)
        self._reverse_done = np.zeros(n, dtype=bool)
        self._share_mult = np.ones(m)
        empty = np.empty((0, m))
        self._open, self._high, self._low = empty, empty.copy(), empty.copy()
        self._close, self._volume, self._ret = empty.copy(), empty.copy(), empty.copy()
        self._has = np.zeros((0, m), dtype=bool)
        self._act: list[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []

    # ------------------------------------------------------------------ simulation

    def _extend(self, t_end: int) -> None:
        """Simulate sessions ``self._t .. t_end - 1`` and append them to the cache."""
        t_end = min(t_end, len(self._sessions))
        if t_end <= self._t:
            return
        steps, m = t_end - self._t, self._n_all
        block = {name: np.empty((steps, m)) for name in ("o", "h", "l", "c", "v", "r")}
        has = np.zeros((steps, m), dtype=bool)
        for j in range(steps):
            self._step(self._t, j, block, has)
            self._t += 1
        self._open = np.concatenate([self._open, block["o"]])
        self._high = np.concatenate([self._high, block["h"]])
        self._low = np.concatenate([self._low, block["l"]])
        self._close = np.concatenate([self._close, block["c"]])
        self._volume = np.concatenate([self._volume, block["v"]])
        self._ret = np.concatenate([self._ret, block["r"]])
        self._has = np.concatenate([self._has, has])

    def _step(self, t: int, j: int, out: dict[str, np.ndarray], has_out: np.ndarray) -> None:
        """Advance the state by session ordinal ``t``; write its row ``j`` of ``out``."""
        n, e, m, nf = self._n, self._e, self._n_all, self._n_fac
        rng = np.random.default_rng([self._seed, 1, t])
        z = rng.standard_t(_T_DOF, size=nf + n) * _T_SCALE
        g = rng.standard_normal(size=e + n + 4 * m)
        u = rng.random(n)
        halt_len = rng.integers(_HALT_MIN, _HALT_MAX + 1, size=n)
        g_track, g_mu = g[:e], g[e : e + n]
        g_gap, g_hi, g_lo, g_vol = g[e + n :].reshape(4, m)

        # Returns: GARCH variances, factor and idiosyncratic shocks, latent momentum drift.
        self._h = self._omega + self._alpha * self._eps**2 + self._garch_beta * self._h
        eps = np.sqrt(self._h) * z
        f = self._fac_mean + eps[:nf]
        ret = np.empty(m)
        ret[:n] = (
            self._beta * f[0]
            + self._gamma * f[1 + self._sector]
            + eps[nf:]
            + self._mom_scale * self._mu
        )
        ret[n:] = self._load @ f + (_TRACKING_VOL / np.sqrt(DAYS_PER_YEAR)) * g_track
        np.maximum(ret, _MIN_RETURN, out=ret)
        self._eps = eps
        self._mu = self._phi * self._mu + np.sqrt(1.0 - self._phi**2) * g_mu

        # Listing status and halts.
        list_ord = self._list_ord[:n]
        listed = (list_ord <= t) & (t <= self._last_ord[:n])
        halted = self._halt_left > 0
        self._halt_left[halted] -= 1
        start_halt = (
            listed & ~halted & (u < _HALT_PROB) & (t > list_ord) & (t + halt_len < self._delist_pre)
        )
        if start_halt.any():
            self._halt_left[start_halt] = halt_len[start_halt] - 1
            halted = halted | start_halt
        has = np.ones(m, dtype=bool)
        has[:n] = listed & ~halted

        # Corporate actions, only on a traded session after a traded session.
        price = self._price
        eligible = has[:n] & self._prev_bar[:n]
        if self._payer.any():
            self._pending_div |= self._payer & (t % _DIVIDEND_PERIOD == self._phase)
        split = np.where(eligible, self._pending_split, 1.0)
        pay = eligible & self._pending_div
        div = np.where(
            pay, np.maximum(np.round(self._yield / 4.0 * price[:n] / split, 2), 0.01), 0.0
        )
        ref = price.copy()  # previous close, restated for today's actions
        ref[:n] = price[:n] / split - div
        acted = (split != 1.0) | pay
        if acted.any():
            idx = np.flatnonzero(acted)
            prev_close = np.round(price[idx], 2)
            factor = 1.0 / split[idx] - div[idx] / prev_close
            self._act.append((t, idx, split[idx], div[idx], factor))
            self._pending_split[idx] = 1.0
            self._pending_div[idx] = False
            self._share_mult[idx] *= split[idx]

        # Prices: the path moves while listed (halts included); unlisted stocks stay put.
        new_price = ref * (1.0 + ret)
        moving = np.ones(m, dtype=bool)
        moving[:n] = listed
        new_price = np.where(moving, new_price, price)
        close = np.round(new_price, 2)

        # Triggers from today's close: delisting below $1, splits on the next traded session.
        cs = close[:n]
        traded = has[:n]
        low_price = traded & (cs < _DELIST_PRICE)
        if low_price.any():
            self._last_ord[np.flatnonzero(low_price)] = t
        free = traded & (self._pending_split == 1.0) & ~low_price
        up = free & (cs > self._split_threshold)
        if up.any():
            self._pending_split[up] = np.where(cs[up] > 1.5 * self._split_threshold[up], 3.0, 2.0)
        down = free & self._reverse_ok & ~self._reverse_done & (cs < _REVERSE_SPLIT_PRICE)
        if down.any():
            self._pending_split[down] = 0.5
            self._reverse_done |= down

        # OHLC and volume.
        sd = self._daily_sd
        opened = ref * np.exp(0.3 * sd * g_gap)
        high = np.maximum(opened, new_price) * np.exp(0.5 * sd * np.abs(g_hi))
        low = np.minimum(opened, new_price) * np.exp(-0.5 * sd * np.abs(g_lo))
        opened = np.round(opened, 2)
        high = np.maximum(np.round(high, 2), np.maximum(opened, close))
        low = np.minimum(np.maximum(np.round(low, 2), 0.01), np.minimum(opened, close))
        volume = (
            self._base_volume
            * self._share_mult
            * np.exp(0.3 * g_vol - 0.045)
            * (1.0 + 0.5 * np.abs(ret) / sd)
        )
        out["o"][j], out["h"][j], out["l"][j], out["c"][j] = opened, high, low, close
        out["v"][j] = np.maximum(np.round(volume), 1.0)
        out["r"][j] = np.where(moving, ret, np.nan)
        has_out[j] = has
        self._price = new_price
        self._prev_bar = has

    # ------------------------------------------------------------------ helpers

    def _ordinal_range(self, start: DateLike, end: DateLike) -> tuple[int, int]:
        """Half-open range of simulation ordinals of visible sessions in ``[start, end]``."""
        s, e = clip_range(self, start, end)
        t0 = int(self._sessions.searchsorted(pd.Timestamp(s), side="left"))
        t1 = int(self._sessions.searchsorted(pd.Timestamp(e), side="right"))
        return max(t0, self._first_visible), t1

    def _columns(self, symbols: Sequence[str] | None) -> np.ndarray:
        """Internal indices of ``symbols`` (None: all) in symbol order; unknown ones dropped."""
        if symbols is None:
            return self._order
        if isinstance(symbols, str):
            symbols = [symbols]
        wanted = {self._index[s] for s in symbols if s in self._index}
        return np.array([i for i in self._order if i in wanted], dtype=np.int64)

    def _actions_frame(self, t0: int, t1: int, cols: np.ndarray) -> pd.DataFrame:
        rows = [a for a in self._act if t0 <= a[0] < t1]
        if not rows:
            return empty_frame(ACTION_COLUMNS)
        t = np.concatenate([np.full(len(a[1]), a[0]) for a in rows])
        idx, split, div, factor = (np.concatenate([a[k] for a in rows]) for k in range(1, 5))
        keep = np.isin(idx, cols)
        if not keep.any():
            return empty_frame(ACTION_COLUMNS)
        actions = pd.DataFrame(
            {
                "date": self._sessions.values[t[keep]],
                "symbol": self._symbols[idx[keep]],
                "split_ratio": split[keep],
                "dividend": div[keep],
                "factor": factor[keep],
            }
        )
        return normalize(actions, ACTION_COLUMNS)

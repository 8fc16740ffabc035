"""Tests of the synthetic market source: contract, determinism, realism and calibration."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.calendars import TradingCalendar
from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, INSTRUMENT_COLUMNS, normalize
from qpipe.data.synthetic import MARKET_ETF, SyntheticSource
from qpipe.settings import SyntheticSourceConfig

START = dt.date(2015, 1, 2)
SMALL_END = dt.date(2018, 12, 31)
SMALL = SyntheticSourceConfig(seed=7, n_stocks=40, n_sectors=3, n_etfs=6, start=START)
"""40 stocks, 3 sectors, 6 ETFs: has late listings, delistings, halts, splits and dividends
by ``SMALL_END``."""


@pytest.fixture(scope="module")
def xnys() -> TradingCalendar:
    return TradingCalendar("XNYS", START)


@pytest.fixture(scope="module")
def default(xnys: TradingCalendar) -> SyntheticSource:
    """The default config (200 stocks, 8 sectors, 12 ETFs from 2015-01-02), shared so the full
    size is simulated once."""
    return SyntheticSource(xnys)


@pytest.fixture(scope="module")
def small(xnys: TradingCalendar) -> SyntheticSource:
    return SyntheticSource(xnys, SMALL)


@pytest.fixture(scope="module")
def small_data(small: SyntheticSource) -> tuple[pd.DataFrame, pd.DataFrame]:
    data = small.fetch(START, SMALL_END)
    return data.bars, data.actions


def adjusted_close(bars: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Back-adjusted closes (sessions x symbols): close times the factors of later ex-dates."""
    close = bars.pivot(index="date", columns="symbol", values="close")
    factor = (
        actions.pivot(index="date", columns="symbol", values="factor")
        .reindex(index=close.index, columns=close.columns)
        .fillna(1.0)
    )
    after = factor.iloc[::-1].cumprod().iloc[::-1].shift(-1).fillna(1.0)
    return close * after


def momentum_ics(adj: pd.DataFrame) -> np.ndarray:
    """Monthly rank IC of 12-1 momentum (t-252 .. t-21) against the next 21-session return."""
    momentum = adj.shift(21) / adj.shift(252) - 1.0
    forward = adj.shift(-21) / adj - 1.0
    ics = []
    for t in range(252, len(adj) - 21, 21):
        x, y = momentum.iloc[t], forward.iloc[t]
        ok = x.notna() & y.notna()
        if ok.sum() >= 20:
            ics.append(x[ok].rank().corr(y[ok].rank()))
    return np.array(ics)


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a.reset_index(drop=True), b.reset_index(drop=True))


# --------------------------------------------------------------------------- contract


def test_frames_follow_the_contract(small_data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, actions = small_data
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert list(actions.columns) == list(ACTION_COLUMNS)
    assert_same(bars, normalize(bars, BAR_COLUMNS))
    assert_same(actions, normalize(actions, ACTION_COLUMNS))
    for frame in (bars, actions):
        assert not frame.duplicated(["date", "symbol"]).any()
        keys = list(zip(frame["date"], frame["symbol"], strict=True))
        assert keys == sorted(keys)
    assert not bars.isna().any().any()


def test_only_sessions_from_the_start(small: SyntheticSource, xnys: TradingCalendar) -> None:
    bars = small.fetch("2014-06-01", "2015-03-31").bars
    sessions = xnys.sessions_index(START, "2015-03-31")
    assert bars["date"].min() == sessions[0]
    assert set(bars["date"]) == set(sessions)
    assert small.coverage() == (START, None)
    # Before the start, on a weekend and on a holiday: nothing.
    assert small.fetch("2010-01-01", "2014-12-31").bars.empty
    assert small.fetch("2016-01-02", "2016-01-03").bars.empty  # Saturday, Sunday
    assert small.fetch("2015-12-25", "2015-12-25").bars.empty  # Christmas
    with pytest.raises(ValueError):
        small.fetch("2016-01-05", "2016-01-04")


def test_coverage_starts_at_first_session_on_or_after_start(xnys: TradingCalendar) -> None:
    src = SyntheticSource(xnys, SMALL.model_copy(update={"start": dt.date(2015, 1, 3)}))
    assert src.coverage() == (dt.date(2015, 1, 5), None)


def test_symbols_filter_and_unknown_symbols(small: SyntheticSource) -> None:
    full = small.fetch(START, "2015-06-30")
    data = small.fetch(START, "2015-06-30", symbols=["S0002", "EMKT", "NOPE"])
    assert set(data.bars["symbol"]) == {"S0002", "EMKT"}
    assert_same(data.bars, full.bars[full.bars["symbol"].isin(["S0002", "EMKT"])])
    assert set(data.actions["symbol"]) <= {"S0002"}
    assert small.fetch(START, "2015-06-30", symbols=["NOPE"]).bars.empty
    assert small.fetch(START, "2015-06-30", symbols=[]).bars.empty


# --------------------------------------------------------------------------- determinism


def test_same_seed_same_data_other_seed_other_data(xnys: TradingCalendar) -> None:
    # A late start keeps the simulation up to the calendar's end (for instruments()) short.
    begin = dt.date(2025, 1, 2)
    cfg = SMALL.model_copy(update={"n_stocks": 10, "start": begin})
    first, second = SyntheticSource(xnys, cfg), SyntheticSource(xnys, cfg)
    a, b = first.fetch(begin, xnys.end), second.fetch(begin, xnys.end)
    assert len(a.bars) > 0 and len(a.actions) > 0
    assert_same(a.bars, b.bars)
    assert_same(a.actions, b.actions)
    assert_same(first.instruments(), second.instruments())
    other = SyntheticSource(xnys, cfg.model_copy(update={"seed": 8}))
    c = other.fetch(begin, xnys.end)
    merged = a.bars.merge(c.bars, on=["date", "symbol"])
    assert len(merged) > 0.5 * len(a.bars)
    assert (merged["close_x"] != merged["close_y"]).mean() > 0.9
    assert not other.instruments().equals(first.instruments())


@settings(max_examples=30, deadline=None)
@given(
    lo=st.integers(min_value=-30, max_value=1000),
    length=st.integers(min_value=0, max_value=300),
    symbols=st.none() | st.lists(st.sampled_from(["S0001", "S0017", "S0040", "EMKT", "X"])),
)
def test_sub_range_is_a_slice_of_a_longer_range(
    small: SyntheticSource,
    small_data: tuple[pd.DataFrame, pd.DataFrame],
    lo: int,
    length: int,
    symbols: list[str] | None,
) -> None:
    start = pd.Timestamp(START) + pd.Timedelta(days=lo)
    end = start + pd.Timedelta(days=length)
    got = small.fetch(start, end, symbols)
    for frame, full in zip((got.bars, got.actions), small_data, strict=True):
        want = full[(full["date"] >= start) & (full["date"] <= end)]
        if symbols is not None:
            want = want[want["symbol"].isin(symbols)]
        assert_same(frame, want)


def test_extending_day_by_day_never_changes_earlier_days(
    xnys: TradingCalendar, small_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    src = SyntheticSource(xnys, SMALL)  # fresh: simulates only as far as asked
    first = src.fetch(START, "2016-03-31")
    pieces = [first.bars]
    for day in xnys.sessions("2016-04-01", "2016-05-31"):
        pieces.append(src.fetch(day, day).bars)
    again = src.fetch(START, "2016-05-31")
    bars, _ = small_data
    want = bars[bars["date"] <= pd.Timestamp("2016-05-31")]
    assert_same(pd.concat(pieces), want)
    assert_same(again.bars, want)
    assert_same(first.bars, want[want["date"] <= pd.Timestamp("2016-03-31")])


def test_calendar_starting_after_config_start_sees_the_same_days(
    small_data: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    later = TradingCalendar("XNYS", "2016-01-04")
    src = SyntheticSource(later, SMALL)
    assert src.coverage() == (dt.date(2016, 1, 4), None)
    got = src.fetch(START, "2016-03-31").bars
    bars, _ = small_data
    window = (bars["date"] >= pd.Timestamp("2016-01-04")) & (
        bars["date"] <= pd.Timestamp("2016-03-31")
    )
    assert_same(got, bars[window])


# --------------------------------------------------------------------------- bars


def test_ohlc_and_volume_are_consistent(small_data: tuple[pd.DataFrame, pd.DataFrame]) -> None:
    bars, _ = small_data
    o, h, lo, c, v = (bars[k].to_numpy() for k in ("open", "high", "low", "close", "volume"))
    assert (h >= np.maximum(o, c)).all()
    assert (lo <= np.minimum(o, c)).all()
    assert (lo > 0).all()
    for x in (o, h, lo, c):
        np.testing.assert_allclose(x * 100, np.round(x * 100), atol=1e-6)
    assert (v > 0).all()
    np.testing.assert_array_equal(v, np.round(v))
    # Open near the previous close: overnight gaps are small on ordinary days.
    prev = bars.groupby("symbol")["close"].shift(1)
    gap = (bars["open"] / prev - 1.0).abs().dropna()
    assert gap.median() < 0.01
    # More volume on big moves: rank correlation of relative volume and |return| is positive.
    ret = bars.groupby("symbol")["close"].pct_change().abs()
    rel_volume = bars["volume"] / bars.groupby("symbol")["volume"].transform("median")
    assert ret.rank().corr(rel_volume.rank()) > 0.1  # Spearman, without scipy


# --------------------------------------------------------------------------- instruments


def test_instruments_and_etfs(default: SyntheticSource, xnys: TradingCalendar) -> None:
    ins = default.instruments()
    assert list(ins.columns) == list(INSTRUMENT_COLUMNS)
    assert ins["symbol"].is_unique and ins["symbol"].is_monotonic_increasing
    assert ins["first_date"].dtype == "datetime64[ns]"
    assert ins["last_date"].dtype == "datetime64[ns]"
    stocks, etfs = ins[ins["kind"] == "stock"], ins[ins["kind"] == "etf"]
    assert len(stocks) == 200
    assert stocks["symbol"].str.fullmatch(r"S\d{4}").all()
    assert stocks["sector"].nunique() == 8
    assert len(etfs) == 12
    assert MARKET_ETF in set(etfs["symbol"])
    sector_etfs = etfs[etfs["sector"].notna()]
    assert len(sector_etfs) == 8
    assert set(sector_etfs["sector"]) == set(stocks["sector"])
    assert {"EBOND", "EGOLD"} <= set(etfs["symbol"])
    assert (etfs["first_date"] == pd.Timestamp(START)).all()
    assert etfs["last_date"].isna().all()
    # Few ETFs: the market one first, then sector ones; none at all works too.
    few = SyntheticSource(xnys, SMALL.model_copy(update={"n_etfs": 3})).instruments()
    assert list(few.loc[few["kind"] == "etf", "symbol"]) == ["EFIN", "EMKT", "ETECH"]
    none = SyntheticSource(xnys, SMALL.model_copy(update={"n_etfs": 0})).instruments()
    assert (none["kind"] == "stock").all()


def test_listings_and_delistings_are_respected(
    small: SyntheticSource, small_data: tuple[pd.DataFrame, pd.DataFrame], xnys: TradingCalendar
) -> None:
    bars, _ = small_data
    ins = small.instruments().set_index("symbol")
    end = pd.Timestamp(SMALL_END)
    span = bars.groupby("symbol")["date"].agg(["min", "max", "count"])
    late = ins[(ins["first_date"] > pd.Timestamp(START)) & (ins["first_date"] <= end)]
    gone = ins[ins["last_date"] <= end]
    assert len(late) > 0 and len(gone) > 0
    for sym, row in ins.iterrows():
        if row["first_date"] > end:
            assert sym not in span.index
            continue
        assert span.loc[sym, "min"] == row["first_date"]
        if pd.notna(row["last_date"]) and row["last_date"] <= end:
            assert span.loc[sym, "max"] == row["last_date"]
        else:
            assert span.loc[sym, "max"] == end
    # ETFs trade on every session.
    n_sessions = len(xnys.sessions(START, SMALL_END))
    etfs = ins.index[ins["kind"] == "etf"]
    assert (span.loc[etfs, "count"] == n_sessions).all()


def test_last_date_is_reported_only_up_to_the_calendar_end(small: SyntheticSource) -> None:
    ins = small.instruments()
    last = ins["last_date"].dropna()
    assert (last <= pd.Timestamp(small.calendar.end)).all()
    assert ins["last_date"].isna().sum() > 0


def test_price_below_one_dollar_delists_and_low_prices_reverse_split(
    xnys: TradingCalendar,
) -> None:
    # A strong planted drift spreads prices out enough to hit both low-price rules quickly.
    cfg = SMALL.model_copy(update={"momentum_strength": 10.0})
    src = SyntheticSource(xnys, cfg)
    data = src.fetch(START, SMALL_END)
    bars = data.bars
    below = bars[bars["close"] < 1.0]
    assert len(below) > 0
    last_bar = bars.groupby("symbol")["date"].max()
    ins = src.instruments().set_index("symbol")
    for _, row in below.iterrows():
        assert last_bar[row["symbol"]] == row["date"]
        assert ins.loc[row["symbol"], "last_date"] == row["date"]
    reverse = data.actions[data.actions["split_ratio"] < 1.0]
    assert len(reverse) > 0
    assert (reverse["split_ratio"] == 0.5).all()


def test_halts_leave_gaps_of_two_to_ten_sessions(
    small: SyntheticSource, small_data: tuple[pd.DataFrame, pd.DataFrame], xnys: TradingCalendar
) -> None:
    bars, _ = small_data
    ordinal = {d: i for i, d in enumerate(xnys.sessions_index(START, SMALL_END))}
    pos = bars["date"].map(ordinal)
    step = pos.groupby(bars["symbol"]).diff().dropna()
    gaps = step[step > 1] - 1  # sessions without a bar between two bars of a symbol
    assert len(gaps) >= 5
    assert gaps.min() >= 2 and gaps.max() <= 10
    assert bars.loc[gaps.index, "symbol"].str.startswith("S").all()  # ETFs never halt
    # The price moves during the halt: the first bar after it opens away from the last close.
    prev_close = bars.groupby("symbol")["close"].shift(1)
    jump = (bars.loc[gaps.index, "open"] / prev_close[gaps.index] - 1.0).abs()
    assert jump.median() > 0.02


# --------------------------------------------------------------------------- corporate actions


def test_splits_dividends_and_adjusted_continuity(
    small: SyntheticSource, small_data: tuple[pd.DataFrame, pd.DataFrame]
) -> None:
    bars, actions = small_data
    splits = actions[actions["split_ratio"] != 1.0]
    dividends = actions[actions["dividend"] > 0]
    assert len(splits) > 0 and len(dividends) > 0
    assert set(splits["split_ratio"]) <= {0.5, 2.0, 3.0}
    assert (actions["dividend"] >= 0).all()
    assert actions["symbol"].str.startswith("S").all()
    # Quarterly payers at 1-4%/yr: a payer's dividends sum to roughly 0.5-5% of its price a year.
    close = bars.pivot(index="date", columns="symbol", values="close")
    prev_close = close.ffill().shift(1)
    keyed = actions.set_index(["date", "symbol"])
    prev = np.array([prev_close.at[d, s] for d, s in keyed.index])
    expected = 1.0 / keyed["split_ratio"] - keyed["dividend"] / prev
    np.testing.assert_allclose(keyed["factor"], expected, rtol=1e-12)
    paid = actions["dividend"].to_numpy() > 0
    quarterly = dividends["dividend"] * dividends["split_ratio"] / prev[paid]
    yearly = quarterly.groupby(dividends["symbol"]).mean() * 4
    assert yearly.between(0.005, 0.05).all()

    # Back-adjusted closes compound exactly the generator's total returns (halts included).
    adj = adjusted_close(bars, actions)
    growth = (1.0 + small.total_returns(START, SMALL_END).fillna(0.0)).cumprod()
    growth = growth.reindex(columns=adj.columns)
    mask = adj.notna()
    last_growth = growth.where(mask).ffill().shift(1)
    true_ratio = growth / last_growth
    adj_ratio = adj / adj.ffill().shift(1)
    split = (
        actions.pivot(index="date", columns="symbol", values="split_ratio")
        .reindex_like(adj)
        .fillna(1.0)
    )
    dividend = (
        actions.pivot(index="date", columns="symbol", values="dividend")
        .reindex_like(adj)
        .fillna(0.0)
    )
    # Cent rounding of two raw closes bounds the difference.
    tol = 0.0051 / close + 0.0051 / (prev_close - split * dividend)
    err = ((adj_ratio - true_ratio).abs() / true_ratio)[mask].stack().dropna()
    assert len(err) == mask.sum().sum() - len(adj.columns)  # all but each symbol's first bar
    assert (err <= tol.stack().reindex(err.index)).all()
    # Raw closes do jump on split days: without the factors continuity would fail.
    raw_ratio = close / close.ffill().shift(1)
    split_days = split.ne(1.0) & mask
    jumps = (raw_ratio - true_ratio).abs()[split_days].stack().dropna()
    assert len(jumps) == len(splits)
    assert (jumps > 0.2).all()


# --------------------------------------------------------------------------- realism


@pytest.fixture(scope="module")
def decade(xnys: TradingCalendar) -> pd.DataFrame:
    """Adjusted closes of 30 stocks and 4 ETFs over ten years."""
    cfg = SyntheticSourceConfig(seed=7, n_stocks=30, n_sectors=3, n_etfs=4, start=START)
    data = SyntheticSource(xnys, cfg).fetch(START, "2024-12-31")
    return adjusted_close(data.bars, data.actions)


def test_fat_tails_and_volatility_clustering(decade: pd.DataFrame) -> None:
    returns = decade.pct_change(fill_method=None)
    stocks = [c for c in returns.columns if c.startswith("S")]
    assert returns[stocks].kurt().median() > 1.0
    market = returns[MARKET_ETF].dropna()
    assert (market**2).autocorr(1) > 0.05
    assert 0.14 < market.std() * np.sqrt(252) < 0.22
    stock_vol = returns[stocks].std() * np.sqrt(252)
    assert 0.22 < stock_vol.median() < 0.45
    assert (stock_vol > market.std() * np.sqrt(252)).mean() > 0.9


def test_momentum_has_a_positive_rank_ic_on_the_default_market(default: SyntheticSource) -> None:
    data = default.fetch(START, "2024-12-31")
    adj = adjusted_close(data.bars, data.actions)
    ics = momentum_ics(adj[[c for c in adj.columns if c.startswith("S")]])
    assert len(ics) > 90
    t_stat = ics.mean() / ics.std(ddof=1) * np.sqrt(len(ics))
    assert ics.mean() > 0.01
    assert t_stat > 2.0


def test_works_on_the_shanghai_calendar() -> None:
    xshg = TradingCalendar("XSHG", START)
    cfg = SMALL.model_copy(update={"n_stocks": 10})
    src = SyntheticSource(xshg, cfg)
    data = src.fetch(START, "2015-12-31")
    sessions = set(xshg.sessions_index(START, "2015-12-31"))
    assert set(data.bars["date"]) == sessions
    assert pd.Timestamp("2015-10-01") not in set(data.bars["date"])  # National Day, a Thursday
    assert_same(data.bars, SyntheticSource(xshg, cfg).fetch(START, "2015-12-31").bars)
    assert src.coverage()[0] == xshg.sessions(START)[0]

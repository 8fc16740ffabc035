"""Input panels, forward adjustment, and incremental == full computation."""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.calendars import TradingCalendar
from qpipe.data.schema import ACTION_COLUMNS, MarketData
from qpipe.factors.classic import CLASSIC
from qpipe.factors.expressions import library_from_expressions
from qpipe.factors.factory import to_long
from qpipe.factors.lookahead import lookahead_violations, truncated
from qpipe.factors.panel import build_inputs, compute, forward_multipliers
from qpipe.factors.registry import FactorLibrary

T = pd.Timestamp


def random_market(n_dates: int = 320, n_symbols: int = 12, seed: int = 0) -> MarketData:
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2020-01-01", periods=n_dates)
    symbols = [f"S{i:02d}" for i in range(n_symbols)]
    rets = rng.normal(0.0003, 0.02, (n_dates, n_symbols))
    close = 50 * np.exp(np.cumsum(rets, axis=0))
    frame = pd.DataFrame(
        {
            "date": np.repeat(dates, n_symbols),
            "symbol": np.tile(symbols, n_dates),
            "close": close.ravel(),
        }
    )
    frame["open"] = frame["close"] * (1 + rng.normal(0, 0.005, len(frame)))
    frame["high"] = frame[["open", "close"]].max(axis=1) * 1.01
    frame["low"] = frame[["open", "close"]].min(axis=1) * 0.99
    frame["volume"] = rng.integers(1_000, 100_000, len(frame)).astype(float)
    frame = frame.drop(
        index=frame.index[
            (frame["symbol"] == "S03") & (frame["date"].between(dates[100], dates[104]))
        ]
    )
    actions = pd.DataFrame(
        [(dates[150], "S01", 2.0, 0.0, 0.5), (dates[200], "S02", 1.0, 0.4, 0.99)],
        columns=list(ACTION_COLUMNS),
    )
    # Raw prices of S01 halve from its split on.
    after = (frame["symbol"] == "S01") & (frame["date"] >= dates[150])
    frame.loc[after, ["open", "high", "low", "close"]] /= 2
    frame.loc[after, "volume"] *= 2
    return MarketData(frame.reset_index(drop=True), actions)


def test_forward_multipliers_accumulate_from_the_ex_date():
    dates = pd.DatetimeIndex(pd.bdate_range("2024-01-01", periods=5))
    symbols = pd.Index(["A", "B"])
    actions = pd.DataFrame(
        [
            (dates[2], "A", 2.0, 0.0, 0.5),
            (dates[3], "A", 1.0, 1.0, 0.9),
            (dates[1], "B", 1.0, 0.5, 0.95),
        ],
        columns=list(ACTION_COLUMNS),
    )
    price, shares = forward_multipliers(actions, dates, symbols)
    np.testing.assert_allclose(price[:, 0], [1, 1, 2, 2 / 0.9, 2 / 0.9])
    np.testing.assert_allclose(price[:, 1], [1, 1 / 0.95, 1 / 0.95, 1 / 0.95, 1 / 0.95])
    np.testing.assert_allclose(shares[:, 0], [1, 1, 2, 2, 2])
    np.testing.assert_allclose(shares[:, 1], 1.0)


def test_split_leaves_adjusted_prices_and_volume_continuous():
    market = random_market()
    inputs = build_inputs(market.bars, market.actions)
    c = inputs.close.sel(symbol="S01").values
    r = c[1:] / c[:-1] - 1
    assert np.nanmax(np.abs(r)) < 0.15  # no -50% jump on the split
    raw = market.bars.set_index(["date", "symbol"])
    day = inputs.close.indexes["date"][160]
    assert inputs.volume.sel(symbol="S01", date=day) == raw.loc[(day, "S01"), "volume"] / 2
    assert inputs.dollar_volume.sel(symbol="S01", date=day) == pytest.approx(
        raw.loc[(day, "S01"), "volume"] * raw.loc[(day, "S01"), "close"]
    )
    # Missing bars stay NaN, and vwap falls back to the typical price.
    assert np.isnan(inputs.close.sel(symbol="S03").values[100:105]).all()
    np.testing.assert_allclose(
        inputs.vwap.values, (inputs.high + inputs.low + inputs.close).values / 3, equal_nan=True
    )


def test_incremental_equals_full_for_the_classic_factors():
    market = random_market()
    full = compute(market, library=CLASSIC)
    dates = full.indexes["date"]
    for a in (dates[-1], dates[-40]):
        lookback = max(f.lookback for f in CLASSIC)
        part = compute(truncated(market, a, lookback), start=a, end=a, library=CLASSIC)
        for name in CLASSIC.names():
            np.testing.assert_allclose(
                part[name].isel(date=0).values,
                full[name].sel(date=a).reindex(symbol=part.indexes["symbol"]).values,
                rtol=1e-9, equal_nan=True, err_msg=name,
            )  # fmt: skip


def test_no_classic_factor_looks_ahead_and_a_leak_is_caught():
    market = random_market()
    dates = list(pd.bdate_range("2020-01-01", periods=320)[[280, 300, 319]])
    assert lookahead_violations(market, CLASSIC, CLASSIC.names(), dates) == {}
    leaky = FactorLibrary()
    leaky.register("tomorrow", lookback=1, inputs=("close",))(
        lambda x: x.close.shift(date=-1) / x.close - 1
    )
    assert lookahead_violations(market, leaky, ["tomorrow"], dates[:2]) == {
        "tomorrow": [f"{d:%Y-%m-%d}" for d in dates[:2]]
    }
    under = FactorLibrary()  # declares less history than it uses
    under.register("short", lookback=5, inputs=("close",))(
        lambda x: x.close / x.close.shift(date=20)
    )
    assert "short" in lookahead_violations(market, under, ["short"], dates[:1])


def test_compute_window_and_names():
    market = random_market()
    ds = compute(market, ["mom_12_1", "vol_20"], "2021-01-04", "2021-01-08", library=CLASSIC)
    assert list(ds.data_vars) == ["mom_12_1", "vol_20"]
    assert list(ds.indexes["date"]) == list(pd.bdate_range("2021-01-04", "2021-01-08"))
    assert ds["mom_12_1"].dtype == np.float64
    # Too little history gives NaN, not an error.
    early = compute(market, ["mom_12_1"], "2020-01-01", "2020-03-01", library=CLASSIC)
    assert early["mom_12_1"].isnull().all()
    with pytest.raises(KeyError, match="unknown factor 'nope'"):
        compute(market, ["nope"], library=CLASSIC)


def test_classic_momentum_by_hand():
    market = random_market()
    ds = compute(market, ["mom_12_1", "high_52w"], library=CLASSIC)
    close = build_inputs(market.bars, market.actions).close
    t = 300
    want = close.values[t - 21] / close.values[t - 252] - 1
    np.testing.assert_allclose(ds["mom_12_1"].values[t], want, equal_nan=True)
    want = close.values[t] / np.max(close.values[t - 251 : t + 1], axis=0)
    np.testing.assert_allclose(ds["high_52w"].values[t], want, equal_nan=True)


def test_threads_change_nothing_and_errors_surface():
    """Factors on several threads give the same bits as one by one, in library order, and a
    failing factor's error reaches the caller."""
    market = random_market(n_dates=240, n_symbols=9)
    from qpipe.factors.panel import default_library

    library = default_library()
    one = compute(market, library=library, workers=1)
    many = compute(market, library=library, workers=3)
    assert list(many.data_vars) == library.names()
    for name in library.names():
        np.testing.assert_array_equal(one[name].values, many[name].values, err_msg=name)

    broken = FactorLibrary()
    broken.register("ok", lookback=0, inputs=("close",))(lambda x: x.close)
    broken.register("bad", lookback=0, inputs=("close",))(lambda x: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        compute(market, library=broken, workers=2)


def test_each_factor_reads_only_its_own_lookback():
    """With a start date, a factor gets the dates from ``start - h`` on, ``h`` its look-back
    rounded up to a power of two, whatever longer history the bars hold, and its values equal
    those of the full computation."""
    market = random_market(n_dates=260, n_symbols=5)
    seen: dict[str, int] = {}
    spy = FactorLibrary()
    for lookback in (0, 3, 40):

        def fn(x, lookback=lookback):
            seen[f"f{lookback}"] = x.close.sizes["date"]
            return x.close - x.close.shift(date=lookback) if lookback else x.close

        spy.register(f"f{lookback}", lookback=lookback, inputs=("close",))(fn)
    days = sorted(market.bars["date"].unique())
    part = compute(market, start=days[200], end=days[205], library=spy)
    assert seen == {"f0": 60, "f3": 64, "f40": 124}  # rows 200-259 + 0, 4, 64 of history
    full = compute(market, library=spy)
    for name in spy.names():
        np.testing.assert_array_equal(part[name].values, full[name].sel(date=part.date).values)


# --- Windows over missing sessions -------------------------------------------------------
# Bars of four names over 64 XNYS sessions from 2024-01-02 with the whole session GAP
# (2024-02-15) missing; A splits 2:1 on the session after it (2024-02-16), B pays a dividend
# whose ex-date is GAP itself; C is halted on rows 10-12 and over the last two sessions; D
# lists on row 15 and its bars end on row 50.
GAP = 31
N_GAPPED = 64
SPLIT_ROW, B_FACTOR = GAP + 1, 0.98


@cache
def xnys_calendar() -> TradingCalendar:
    return TradingCalendar("XNYS", "2023-12-01")


@pytest.fixture
def xnys() -> TradingCalendar:
    return xnys_calendar()


def gapped_sessions(calendar: TradingCalendar) -> pd.DatetimeIndex:
    sessions = calendar.sessions_index("2024-01-02")[:N_GAPPED]
    assert f"{sessions[GAP]:%Y-%m-%d}" == "2024-02-15"
    return sessions


def gapped_market(calendar: TradingCalendar, seed: int = 7) -> tuple[MarketData, pd.DataFrame]:
    """The market described above, and its adjusted closes as a plain (date x symbol) frame
    on the calendar's sessions (NaN where there is no bar)."""
    sessions = gapped_sessions(calendar)
    rng = np.random.default_rng(seed)
    symbols = ["A", "B", "C", "D"]
    true = 40 * np.exp(np.cumsum(rng.normal(0, 0.02, (N_GAPPED, 4)), axis=0))
    adjusted = pd.DataFrame(true, index=sessions, columns=symbols)
    adjusted.iloc[GAP] = np.nan
    adjusted.iloc[[10, 11, 12, -2, -1], 2] = np.nan
    adjusted.iloc[:15, 3] = np.nan
    adjusted.iloc[51:, 3] = np.nan
    rows = adjusted.stack().dropna().rename("adjusted").reset_index()
    rows.columns = ["date", "symbol", "adjusted"]
    # Raw prices: A's halve from its split on, B's are the adjusted ones times the dividend's
    # factor from its ex-date on (forward adjustment divides by it again).
    multiplier = np.where((rows["symbol"] == "A") & (rows["date"] >= sessions[SPLIT_ROW]), 0.5, 1)
    multiplier = np.where(
        (rows["symbol"] == "B") & (rows["date"] >= sessions[GAP]), B_FACTOR, multiplier
    )
    close = rows["adjusted"] * multiplier
    bars = pd.DataFrame({
        "date": rows["date"], "symbol": rows["symbol"], "open": close, "high": close * 1.01,
        "low": close * 0.99, "close": close, "volume": 1e5,
    })  # fmt: skip
    actions = pd.DataFrame(
        [(sessions[SPLIT_ROW], "A", 2.0, 0.0, 0.5), (sessions[GAP], "B", 1.0, 0.8, B_FACTOR)],
        columns=list(ACTION_COLUMNS),
    )
    return MarketData(bars, actions), adjusted.rename_axis(index="date", columns="symbol")


WINDOWED = (
    FactorLibrary()
    .merged(CLASSIC)
    .merged(
        library_from_expressions({"mean_5": "ts_mean(close, 5)", "std_5": "ts_std(returns, 5)"})
    )
)


def test_windows_count_calendar_sessions_across_a_missing_session(xnys):
    market, close = gapped_market(xnys)
    sessions = close.index
    names = ["reversal_1m", "mean_5", "std_5"]
    got = compute(market, names, library=WINDOWED, calendar=xnys)
    assert list(got.indexes["date"]) == list(sessions)  # the missing session is a row
    returns = close / close.shift(1) - 1
    want = {
        "reversal_1m": -(close / close.shift(21) - 1),
        "mean_5": close.rolling(5).mean(),
        "std_5": returns.rolling(5).std(),
    }
    for name in names:
        np.testing.assert_allclose(
            got[name].transpose("date", "symbol").values,
            want[name].to_numpy(),
            rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=name,
        )  # fmt: skip
    mean_5 = got["mean_5"].values
    # Every 5-session window that spans the missing session is NaN; the ones after it are not.
    assert np.isnan(mean_5[GAP : GAP + 5]).all()
    assert np.isfinite(mean_5[GAP + 5, :2]).all() and np.isfinite(mean_5[GAP - 1, :2]).all()
    # 21 calendar sessions back from GAP + 20 is GAP - 1 (21 sessions of bars would reach
    # GAP - 2); from GAP + 21 it is the missing session itself.
    rev = got["reversal_1m"].sel(symbol="A").values
    assert rev[GAP + 20] == pytest.approx(
        -(close["A"].iloc[GAP + 20] / close["A"].iloc[GAP - 1] - 1)
    )
    assert np.isnan(rev[GAP + 21]) and np.isfinite(rev[GAP + 22])
    # The factors table gets rows only where a bar exists: none on the missing session.
    long = to_long(got, market.bars)
    assert len(long) == len(market.bars) and not (long["date"] == sessions[GAP]).any()


def test_incremental_and_lookahead_count_calendar_sessions(xnys):
    market, close = gapped_market(xnys)
    sessions = close.index
    names = ["reversal_1m", "mean_5", "std_5", "vol_20"]
    lookback = max(WINDOWED[n].lookback for n in names)
    # The look-back read of an incremental run counts calendar sessions.
    cut = truncated(market, sessions[GAP + 20], 21, xnys)
    assert cut.bars["date"].min() == sessions[GAP - 1]
    full = compute(market, names, library=WINDOWED, calendar=xnys)
    days = [sessions[i] for i in (GAP - 1, GAP + 1, GAP + 4, GAP + 5, GAP + 21, GAP + 22, -1)]
    for a in days:
        part = compute(
            truncated(market, a, lookback, xnys), names, a, a, library=WINDOWED, calendar=xnys
        )
        for name in names:
            np.testing.assert_allclose(
                part[name].isel(date=0).values,
                full[name].sel(date=a).reindex(symbol=part.indexes["symbol"]).values,
                rtol=1e-9, equal_nan=True, err_msg=f"{name} {a:%Y-%m-%d}",
            )  # fmt: skip
    check = [*days, sessions[GAP]]  # the missing session itself has nothing to check
    assert lookahead_violations(market, WINDOWED, names, check, full=full, calendar=xnys) == {}
    # A factor that reaches one session further back than it declares is caught.
    under = FactorLibrary()
    under.register("long_reach", lookback=5, inputs=("close",))(
        lambda x: x.close / x.close.shift(date=6)
    )
    found = lookahead_violations(market, under, ["long_reach"], [sessions[GAP + 8]], calendar=xnys)
    assert found == {"long_reach": [f"{sessions[GAP + 8]:%Y-%m-%d}"]}


@settings(max_examples=25, deadline=None)
@given(
    missing=st.sets(st.integers(1, N_GAPPED - 2), max_size=3),
    window=st.integers(2, 12),
)
def test_ts_mean_over_missing_sessions_is_the_reindexed_rolling_mean(missing, window):
    calendar = xnys_calendar()
    market, close = gapped_market(calendar, seed=window)
    drop = close.index[sorted(missing)]
    bars = market.bars.loc[~market.bars["date"].isin(drop)]
    close = close.copy()
    close.loc[drop] = np.nan
    library = library_from_expressions({"m": f"ts_mean(close, {window})"})
    got = compute(MarketData(bars, market.actions), ["m"], library=library, calendar=calendar)
    want = close.loc[bars["date"].min() : bars["date"].max()].rolling(window).mean()
    assert list(got.indexes["date"]) == list(want.index)
    np.testing.assert_allclose(got["m"].values, want.to_numpy(), rtol=1e-9, equal_nan=True)


def test_bars_off_the_calendar_are_an_error_naming_the_dates(xnys):
    market, _ = gapped_market(xnys)
    holiday = market.bars.loc[market.bars["date"] == T("2024-01-12")].assign(
        date=T("2024-01-15")  # Martin Luther King Jr. Day: no XNYS session
    )
    bars = pd.concat([market.bars, holiday], ignore_index=True)
    with pytest.raises(ValueError, match="bars dated 2024-01-15: not XNYS sessions"):
        build_inputs(bars, market.actions, calendar=xnys)


def test_bars_before_the_calendar_start_get_their_sessions(xnys):
    market, close = gapped_market(xnys)
    late = TradingCalendar("XNYS", "2024-03-01")
    inputs = build_inputs(market.bars, market.actions, calendar=late)
    assert list(inputs.close.indexes["date"]) == list(close.index)

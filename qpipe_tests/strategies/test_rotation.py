"""ETF rotation on a tiny hand-made market: month-end rebalances, ranking, absolute momentum."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpipe.calendars import TradingCalendar
from qpipe.data.schema import ACTION_COLUMNS, MarketData, empty_frame
from qpipe.factors.panel import build_inputs
from qpipe.strategies.base import Signals, StrategyData, last_weights
from qpipe.strategies.lookahead import signal_lookahead_violations
from qpipe.strategies.portfolio import Book
from qpipe.strategies.rotation import AbsoluteMomentum, EtfRotationStrategy
from qpipe.strategies.signals import compute_signals, strategy_data

NAN = np.nan
# Universe order (deliberately not alphabetical); BOND is the defensive ETF.
ETFS = ["SPY", "QQQ", "IWM", "EFA"]
ALL = [*ETFS, "BOND"]
N_SESSIONS = 80
START = "2024-01-02"
# Daily growth rate of each ETF by the month of the session (the return of session t, t >= 1).
# Month-ends in the data: 2024-01-31 (row 20), 02-29 (row 40), 03-28 (row 60); each 20-session
# window ending there holds the returns of that month only.
RATES = {
    1: {"SPY": 0.010, "QQQ": 0.005, "IWM": -0.002, "EFA": -0.005, "BOND": 0.001},
    2: {"SPY": 0.003, "QQQ": -0.004, "IWM": -0.001, "EFA": -0.006, "BOND": 0.020},
    3: {"SPY": -0.001, "QQQ": -0.002, "IWM": -0.003, "EFA": -0.0005, "BOND": -0.001},
    4: {"SPY": 0.002, "QQQ": 0.004, "IWM": 0.001, "EFA": 0.003, "BOND": 0.0},
}
JAN31, FEB29, MAR28 = 20, 40, 60


@pytest.fixture(scope="module")
def calendar() -> TradingCalendar:
    return TradingCalendar("XNYS", "2023-12-01")


@pytest.fixture(scope="module")
def sessions(calendar: TradingCalendar) -> pd.DatetimeIndex:
    s = calendar.sessions_index(START, None)[:N_SESSIONS]
    assert [str(s[i].date()) for i in (JAN31, FEB29, MAR28)] == [
        "2024-01-31",
        "2024-02-29",
        "2024-03-28",
    ]
    assert str(s[-1].date()) == "2024-04-25"
    return s


@pytest.fixture(scope="module")
def closes(sessions: pd.DatetimeIndex) -> pd.DataFrame:
    """Close paths (date x symbol): 100 on the first session, then the month's rate."""
    growth = np.ones((len(sessions), len(ALL)))
    for t in range(1, len(sessions)):
        growth[t] = [1.0 + RATES[sessions[t].month][s] for s in ALL]
    return pd.DataFrame(100.0 * np.cumprod(growth, axis=0), index=sessions, columns=ALL)


def market(closes: pd.DataFrame, symbols: list[str]) -> StrategyData:
    rows = closes[symbols].stack().rename("close").reset_index()
    rows.columns = ["date", "symbol", "close"]
    for column in ("open", "high", "low"):
        rows[column] = rows["close"]
    rows["volume"] = 1000.0
    inputs = build_inputs(rows[["date", "symbol", "open", "high", "low", "close", "volume"]])
    instruments = pd.DataFrame({"symbol": symbols, "kind": "etf"})
    return StrategyData(bars=inputs, factors=xr.Dataset(), instruments=instruments)


@pytest.fixture(scope="module")
def data(closes: pd.DataFrame) -> StrategyData:
    return market(closes, ALL)


def rotation(**kwargs: object) -> EtfRotationStrategy:
    options: dict[str, object] = {
        "symbols": ALL,
        "lookback": 20,
        "top_k": 2,
        "min_return": 0.0,
        "defensive": "BOND",
    }
    options.update(kwargs)
    return EtfRotationStrategy("rot", **options)  # type: ignore[arg-type]


def weight_of(signals: Signals, symbols: list[str] = ALL) -> np.ndarray:
    """Target weights (date x symbol) in the order of ``symbols``, whatever the output's
    symbol order."""
    return signals.weight.sel(symbol=symbols).values


def score_of(signals: Signals, symbols: list[str] = ALL) -> np.ndarray:
    return signals.score.sel(symbol=symbols).values


def expected_weights(rows: dict[int, list[float]], n_symbols: int = len(ALL)) -> np.ndarray:
    out = np.full((N_SESSIONS, n_symbols), NAN)
    for row, values in rows.items():
        out[row] = values
    return out


@pytest.fixture(scope="module")
def signals(data: StrategyData, calendar: TradingCalendar) -> Signals:
    return rotation().signals(data, calendar)


def test_market_is_what_the_rates_say(closes: pd.DataFrame) -> None:
    # Jan 31 closes: 100 * (1 + rate) ** 20.
    np.testing.assert_allclose(
        closes.iloc[JAN31].to_numpy(), [100 * (1 + RATES[1][s]) ** 20 for s in ALL]
    )


def test_weights_only_on_month_end_sessions(signals: Signals, sessions: pd.DatetimeIndex) -> None:
    expected = np.zeros(N_SESSIONS, dtype=bool)
    expected[[JAN31, FEB29, MAR28]] = True
    np.testing.assert_array_equal(signals.rebalance, expected)
    weight = weight_of(signals)
    assert np.isnan(weight[~expected]).all()
    assert not np.isnan(weight[expected]).any()
    assert list(signals.weight.indexes["date"]) == list(sessions)
    assert set(signals.weight.indexes["symbol"]) == set(ALL)
    assert list(signals.score.indexes["symbol"]) == list(signals.weight.indexes["symbol"])
    assert signals.weight.dims == ("date", "symbol")


def test_rotation_weights_by_hand(signals: Signals) -> None:
    expected = expected_weights(
        {
            # January: SPY (+1%/day) and QQQ (+0.5%/day) are the best two, both positive.
            JAN31: [0.5, 0.5, 0.0, 0.0, 0.0],
            # February: BOND is best (+2%/day) but never ranked; SPY and IWM rank first;
            # IWM is negative, so its 0.5 goes to BOND.
            FEB29: [0.5, 0.0, 0.0, 0.0, 0.5],
            # March: everything falls; EFA and SPY rank first, both negative: all to BOND.
            MAR28: [0.0, 0.0, 0.0, 0.0, 1.0],
        }
    )
    np.testing.assert_allclose(weight_of(signals), expected)


def test_scores_are_lookback_returns(signals: Signals, closes: pd.DataFrame) -> None:
    by_hand = (closes / closes.shift(20) - 1.0).to_numpy()
    assert np.isnan(by_hand[:20]).all()
    np.testing.assert_allclose(score_of(signals), by_hand, rtol=1e-12)
    # At the month-ends, in closed form: (1 + rate) ** 20 - 1 (BOND's return is reported).
    for row, month in ((JAN31, 1), (FEB29, 2), (MAR28, 3)):
        np.testing.assert_allclose(
            score_of(signals)[row], [(1 + RATES[month][s]) ** 20 - 1 for s in ALL], rtol=1e-12
        )


def test_without_defensive_the_weak_slot_stays_in_cash(
    closes: pd.DataFrame, calendar: TradingCalendar
) -> None:
    out = rotation(symbols=ETFS, defensive=None).signals(market(closes, ETFS), calendar)
    expected = expected_weights(
        {
            JAN31: [0.5, 0.5, 0.0, 0.0],
            FEB29: [0.5, 0.0, 0.0, 0.0],
            MAR28: [0.0, 0.0, 0.0, 0.0],
        },
        n_symbols=len(ETFS),
    )
    np.testing.assert_allclose(weight_of(out, ETFS), expected)
    assert weight_of(out, ETFS)[FEB29].sum() == pytest.approx(0.5)
    assert set(out.weight.indexes["symbol"]) == set(ETFS)


def test_defensive_none_with_bond_listed_ranks_bond_like_any_etf(
    data: StrategyData, calendar: TradingCalendar
) -> None:
    # Without a defensive ETF, BOND is an ordinary rotation member: best in February.
    out = rotation(defensive=None).signals(data, calendar)
    expected = expected_weights(
        {
            JAN31: [0.5, 0.5, 0.0, 0.0, 0.0],
            FEB29: [0.5, 0.0, 0.0, 0.0, 0.5],
            MAR28: [0.0, 0.0, 0.0, 0.0, 0.0],
        }
    )
    np.testing.assert_allclose(weight_of(out), expected)


def test_bond_is_never_chosen_by_ranking(data: StrategyData, calendar: TradingCalendar) -> None:
    # top_k = 1: in February BOND has the best return but SPY (positive) is chosen.
    out = rotation(top_k=1).signals(data, calendar)
    expected = expected_weights(
        {
            JAN31: [1.0, 0.0, 0.0, 0.0, 0.0],
            FEB29: [1.0, 0.0, 0.0, 0.0, 0.0],
            MAR28: [0.0, 0.0, 0.0, 0.0, 1.0],  # EFA chosen, negative: to BOND
        }
    )
    np.testing.assert_allclose(weight_of(out), expected)
    # Even with room for every ETF, BOND only gets the negative names' slots.
    out = rotation(top_k=5).signals(data, calendar)
    expected = expected_weights(
        {
            JAN31: [0.25, 0.25, 0.0, 0.0, 0.5],
            FEB29: [0.25, 0.0, 0.0, 0.0, 0.75],
            MAR28: [0.0, 0.0, 0.0, 0.0, 1.0],
        }
    )
    np.testing.assert_allclose(weight_of(out), expected)


def test_min_return_threshold(data: StrategyData, calendar: TradingCalendar) -> None:
    # min_return 0.15: in January SPY (1.01**20 - 1 = 22%) passes, QQQ (10.5%) does not.
    out = rotation(min_return=0.15).signals(data, calendar)
    np.testing.assert_allclose(weight_of(out)[JAN31], [0.5, 0.0, 0.0, 0.0, 0.5])
    # min_return -0.05: in March EFA (-1.0%) and SPY (-2.0%) are above it; in February
    # SPY and IWM (-2.0%) are too.
    out = rotation(min_return=-0.05).signals(data, calendar)
    np.testing.assert_allclose(weight_of(out)[FEB29], [0.5, 0.0, 0.5, 0.0, 0.0])
    np.testing.assert_allclose(weight_of(out)[MAR28], [0.5, 0.0, 0.0, 0.5, 0.0])


def test_no_weights_before_the_lookback_is_available(
    data: StrategyData, calendar: TradingCalendar
) -> None:
    # lookback 25: the first score is on row 25, after the January month-end (row 20).
    out = rotation(lookback=25).signals(data, calendar)
    assert np.isnan(score_of(out)[:25]).all()
    assert not np.isnan(score_of(out)[25:]).any()
    np.testing.assert_array_equal(weight_of(out)[JAN31], [0.0] * 5)
    # February: 25-session return = 5 January sessions then 20 February ones.
    feb = {s: (1 + RATES[1][s]) ** 5 * (1 + RATES[2][s]) ** 20 - 1 for s in ALL}
    np.testing.assert_allclose(score_of(out)[FEB29], list(feb.values()), rtol=1e-12)
    assert feb["SPY"] > 0 > feb["IWM"] > feb["QQQ"]
    np.testing.assert_allclose(weight_of(out)[FEB29], [0.5, 0.0, 0.0, 0.0, 0.5])


def test_lookback_property_and_validation() -> None:
    assert rotation().lookback == 20
    assert rotation(lookback=126).lookback == 126
    with pytest.raises(ValueError, match="lookback"):
        rotation(lookback=0)
    with pytest.raises(ValueError, match="no rotation symbols"):
        rotation(symbols=["BOND"])


def test_signals_frame(signals: Signals, sessions: pd.DatetimeIndex) -> None:
    frame = signals.to_frame()
    assert list(frame.columns) == ["date", "symbol", "strategy", "score", "target_weight"]
    assert len(frame) == N_SESSIONS * len(ALL)
    assert (frame["strategy"] == "rot").all()
    assert set(frame["symbol"]) == set(ALL)
    assert frame["date"].nunique() == N_SESSIONS
    assert list(pd.DatetimeIndex(frame["date"].unique())) == list(sessions)
    jan31 = frame.loc[frame["date"] == sessions[JAN31]].set_index("symbol")
    np.testing.assert_allclose(jan31.loc[ALL, "target_weight"], [0.5, 0.5, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(
        jan31.loc[ALL, "score"], [(1 + RATES[1][s]) ** 20 - 1 for s in ALL], rtol=1e-12
    )
    assert frame["target_weight"].notna().sum() == 3 * len(ALL)


def test_signals_frame_is_sorted_by_date_and_symbol(signals: Signals) -> None:
    # Signals.to_frame documents its rows as "sorted by date, symbol".
    frame = signals.to_frame()
    keys = list(zip(frame["date"], frame["symbol"], strict=True))
    assert keys == sorted(keys)


def test_absolute_momentum_step() -> None:
    symbols = np.array(["A", "B", "C", "D"])
    b = Book(
        score=np.array([0.2, -0.1, NAN, 0.0]),
        previous=np.zeros(4),
        weight=np.array([0.4, 0.3, 0.0, 0.3]),
        symbols=symbols,
    )
    # B (negative) moves to C, the defensive symbol; D at exactly min_return stays.
    np.testing.assert_allclose(AbsoluteMomentum(0.0, "C")(b).weight, [0.4, 0.0, 0.3, 0.3])
    np.testing.assert_allclose(AbsoluteMomentum(0.0)(b).weight, [0.4, 0.0, 0.0, 0.3])
    np.testing.assert_allclose(AbsoluteMomentum(0.1, "A")(b).weight, [1.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="defensive 'Z' not in the book"):
        AbsoluteMomentum(0.0, "Z")(b)
    with pytest.raises(ValueError, match="AbsoluteMomentum: needs a weigh step"):
        AbsoluteMomentum(0.0)(Book(score=np.zeros(2), previous=np.zeros(2)))


# --- Look-back windows over a session missing from the data --------------------------------
MISSING = 45  # 2024-03-07, mid-month: the March month-end's 20-session window spans it


def gapped(closes: pd.DataFrame, missing: list[int]) -> MarketData:
    """Bars of ``closes`` (open = high = low = close) without the sessions at ``missing``."""
    kept = closes.drop(index=closes.index[missing])
    rows = kept.stack().rename("close").reset_index()
    rows.columns = ["date", "symbol", "close"]
    for column in ("open", "high", "low"):
        rows[column] = rows["close"]
    rows["volume"] = 1000.0
    bars = rows[["date", "symbol", "open", "high", "low", "close", "volume"]]
    return MarketData(bars, empty_frame(ACTION_COLUMNS))


INSTRUMENTS = pd.DataFrame({"symbol": ALL, "kind": "etf"})
NO_FACTORS = pd.DataFrame({"date": pd.Series(dtype="datetime64[ns]"), "symbol": []})


def test_rotation_lookback_counts_calendar_sessions_over_a_missing_session(
    closes: pd.DataFrame, sessions: pd.DatetimeIndex, calendar: TradingCalendar
) -> None:
    frame = compute_signals(
        rotation(), gapped(closes, [MISSING]), NO_FACTORS, INSTRUMENTS, calendar
    )
    assert not (frame["date"] == sessions[MISSING]).any()  # no rows for the missing session
    assert frame["date"].nunique() == N_SESSIONS - 1
    # Scores are the 20-session returns on the calendar-reindexed closes.
    reindexed = closes.copy()
    reindexed.iloc[MISSING] = NAN
    by_hand = (reindexed / reindexed.shift(20) - 1.0).stack().rename("want")
    got = frame.set_index(["date", "symbol"])["score"]
    np.testing.assert_allclose(got, by_hand.reindex(got.index), rtol=1e-12, equal_nan=True)
    # The window ending on the March month-end holds March's 20 returns only (20 sessions of
    # bars back would reach February 28), and the one starting on the missing session is NaN.
    mar28 = frame.loc[frame["date"] == sessions[MAR28]].set_index("symbol").loc[ALL]
    np.testing.assert_allclose(mar28["score"], [(1 + RATES[3][s]) ** 20 - 1 for s in ALL])
    np.testing.assert_allclose(mar28["target_weight"], [0.0, 0.0, 0.0, 0.0, 1.0])
    assert frame.loc[frame["date"] == sessions[MISSING + 20], "score"].isna().all()
    assert frame.loc[frame["date"] == sessions[MISSING + 21], "score"].notna().all()


def test_rotation_incremental_and_lookahead_agree_over_a_missing_session(
    closes: pd.DataFrame, sessions: pd.DatetimeIndex, calendar: TradingCalendar
) -> None:
    strategy = rotation()
    market = gapped(closes, [MISSING])
    full = compute_signals(strategy, market, NO_FACTORS, INSTRUMENTS, calendar)
    for a in (50, MISSING + 20, MISSING + 21):
        # The incremental read: the strategy's look-back in calendar sessions before a.
        read = market.bars.loc[market.bars["date"] >= sessions[a - strategy.lookback]]
        before = full.loc[full["date"] < sessions[a]]
        part = compute_signals(
            strategy,
            MarketData(read, market.actions),
            NO_FACTORS,
            INSTRUMENTS,
            calendar,
            sessions[a],
            sessions[-1],
            last_weights(before),
        )
        want = full.loc[full["date"] >= sessions[a]].reset_index(drop=True)
        pd.testing.assert_frame_equal(part, want, check_exact=False, rtol=1e-12)
    days = [sessions[i] for i in (MISSING - 1, MISSING, MISSING + 1, MAR28, MISSING + 20, 79)]
    bad = signal_lookahead_violations(
        strategy, market, NO_FACTORS, INSTRUMENTS, calendar, full, days
    )
    assert bad == {}


def test_a_missing_rebalance_session_decides_nothing(
    closes: pd.DataFrame, sessions: pd.DatetimeIndex, calendar: TradingCalendar
) -> None:
    market = gapped(closes, [FEB29])
    data = strategy_data(market, NO_FACTORS, (), INSTRUMENTS, calendar)
    out = rotation().signals(data, calendar)
    assert list(out.weight.indexes["date"]) == list(sessions)
    expected = np.zeros(N_SESSIONS, dtype=bool)
    expected[[JAN31, MAR28]] = True
    np.testing.assert_array_equal(out.rebalance, expected)
    assert np.isnan(weight_of(out)[FEB29]).all()
    # March's 20-session window starts on the missing session: no scores, nothing held.
    assert np.isnan(score_of(out)[MAR28]).all()
    np.testing.assert_array_equal(weight_of(out)[MAR28], [0.0] * 5)


def test_volatility_window_counts_calendar_sessions(
    closes: pd.DataFrame, calendar: TradingCalendar
) -> None:
    wiggly = closes * (1 + 0.01 * np.sin(np.arange(N_SESSIONS)))[:, None]
    data = strategy_data(gapped(wiggly, [MISSING]), NO_FACTORS, (), INSTRUMENTS, calendar)
    vol = rotation(vol_window=5).volatility(data).sel(symbol=ALL).values
    wiggly.iloc[MISSING] = NAN
    daily = (wiggly / wiggly.shift(1) - 1.0).rolling(5).std().to_numpy()
    # Annualised by one constant factor; NaN in every window spanning the missing session.
    np.testing.assert_array_equal(np.isnan(vol), np.isnan(daily))
    assert np.isnan(vol[MISSING : MISSING + 6]).all()
    ratio = vol[~np.isnan(vol)] / daily[~np.isnan(daily)]
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-9)

"""The total-return index and the equal-weight benchmark on messy data (halts mid-history and
across the last session, a late listing, declared delistings, a split during a halt,
dividends on halted, first-bar and resumption days) against plain loops that hold one share;
and, with zero costs, trading raw prices through all of it gives the index on every session
the name trades (the hand panel, the sample data's late listings and the synthetic market's
halted names)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.inputs import bars_dataset, delisting_dates, total_return_index
from qpipe.backtest.runner import EQUAL_WEIGHT, benchmark_series
from qpipe.data.schema import MarketData
from qpipe.project import Project
from qpipe.settings import parse_settings

DATES = pd.bdate_range("2024-01-02", periods=12)
N = None  # no bar

MESSY_CLOSES = {
    # complete; a dividend on day 3, a 2:1 split on day 7
    "A": [10, 10.5, 11, 10.8, 11.2, 11.5, 11.1, 5.8, 6, 6.2, 6.1, 6.4],
    # halted days 2-4; a 2:1 split on day 3 and a dividend on day 4 (both halted), a dividend
    # on the resumption day 5
    "B": [20, 21, N, N, N, 11, 11.5, 12, 11.8, 12.2, 12.5, 12.1],
    # listed on day 4 (dividends on day 2 and on its first bar do not count); halted on day 8,
    # a dividend on the resumption day 9
    "C": [N, N, N, N, 30, 31, 29.5, 30.2, N, 31, 32, 31.5],
    # last bar on day 5, delisting declared on day 6 (no bar that day; a dividend then)
    "D": [40, 41, 39, 40.5, 41, 42, N, N, N, N, N, N],
    # halted from day 9 across the last session, no delisting declared; a dividend on day 10
    "E": [15, 15.2, 15.1, 15.5, 15.4, 15.8, 16, 16.2, 16.1, N, N, N],
    # delisted on day 6, with a bar that day
    "F": [8, 8.2, 8.1, 8.4, 8.3, 8.6, 8.5, N, N, N, N, N],
}
MESSY_ACTIONS = [  # (day, symbol, split_ratio, dividend)
    (3, "A", 1.0, 0.3),
    (7, "A", 2.0, 0.0),
    (3, "B", 2.0, 0.0),
    (4, "B", 1.0, 0.4),
    (5, "B", 1.0, 0.3),
    (2, "C", 1.0, 0.5),
    (4, "C", 1.0, 0.6),
    (9, "C", 1.0, 0.2),
    (6, "D", 1.0, 0.5),
    (10, "E", 1.0, 0.3),
]
MESSY_DELISTINGS = {"D": DATES[6], "F": DATES[6]}


def market_from(
    closes: dict[str, list[float | None]],
    actions: list[tuple[int, str, float, float]],
    dates: pd.DatetimeIndex = DATES,
) -> MarketData:
    """Bars (open = close, volume 1e6) where a close is given, and the actions by day."""
    rows = [
        (dates[i], sym, float(c))
        for sym, values in closes.items()
        for i, c in enumerate(values)
        if c is not None
    ]
    bars = pd.DataFrame(rows, columns=["date", "symbol", "close"])
    bars = bars.assign(open=bars["close"], high=bars["close"], low=bars["close"], volume=1e6)
    acts = pd.DataFrame(
        [(dates[i], sym, split, div, 1.0) for i, sym, split, div in actions],
        columns=["date", "symbol", "split_ratio", "dividend", "factor"],
    )
    return MarketData(bars.sort_values(["date", "symbol"], ignore_index=True), acts)


def messy_market() -> tuple[MarketData, dict[str, pd.Timestamp]]:
    return market_from(MESSY_CLOSES, MESSY_ACTIONS), dict(MESSY_DELISTINGS)


def reference_index(market: MarketData, delistings: dict[str, pd.Timestamp]) -> pd.DataFrame:
    """Hold one share bought at the first close: an ex-date's split multiplies the shares and
    its dividend pays cash per share then held; the cash buys shares at the next close; the
    value is the shares at the last close (carried while no close), NaN before the first bar
    and after the declared delisting."""
    close = market.bars.pivot(index="date", columns="symbol", values="close")
    out = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    acts = market.actions
    for sym in close.columns:
        shares = cash = value = None
        for t in close.index:
            c = close.at[t, sym]
            if shares is None:
                if np.isnan(c):
                    continue
                shares, cash, value = 1.0, 0.0, c
            else:
                for _, a in acts.loc[(acts["symbol"] == sym) & (acts["date"] == t)].iterrows():
                    shares *= a["split_ratio"]
                    cash += shares * a["dividend"]
                if not np.isnan(c):
                    shares += cash / c
                    cash = 0.0
                    value = shares * c
            if sym in delistings and t > delistings[sym]:
                break
            out.at[t, sym] = value
    return out


def reference_benchmark(index: pd.DataFrame) -> pd.Series:
    """Start at 1; each session, the mean of ``TR_t / TR_{t-1}`` over the names that have
    both (1 when none)."""
    level, values = 1.0, [1.0]
    for i in range(1, len(index)):
        growth = [
            index.iat[i, j] / index.iat[i - 1, j]
            for j in range(index.shape[1])
            if not np.isnan(index.iat[i, j]) and not np.isnan(index.iat[i - 1, j])
        ]
        if growth:
            level *= sum(growth) / len(growth)
        values.append(level)
    return pd.Series(values, index=index.index)


def test_messy_index_by_hand():
    market, delistings = messy_market()
    got = total_return_index(bars_dataset(market), delistings).to_pandas()
    b = got["B"]
    assert b.iloc[1] == pytest.approx(21.0)
    assert (b.iloc[2:5] == 21.0).all()  # carried over the halt
    # Resumption: the split of the halt applied, the halted day's dividend (per post-split
    # share) and the resumption day's reinvested at its close: 21 x 2 x (11 + 0.4 + 0.3) / 21.
    assert b.iloc[5] == pytest.approx(2 * (11 + 0.4 + 0.3))
    c = got["C"]
    assert c.iloc[:4].isna().all() and c.iloc[4] == 30.0  # listed late, no earlier dividends
    assert c.iloc[8] == pytest.approx(30.2) and c.iloc[9] == pytest.approx(31 + 0.2)
    d = got["D"]
    assert d.iloc[6] == pytest.approx(d.iloc[5]) and d.iloc[7:].isna().all()
    e = got["E"]
    assert (e.iloc[9:] == e.iloc[8]).all()  # carried to the end without a delisting
    f = got["F"]
    assert f.iloc[6] == pytest.approx(8.5) and f.iloc[7:].isna().all()
    a = got["A"]
    assert a.iloc[3] == pytest.approx(11 * (10.8 + 0.3) / 11)
    assert a.iloc[7] == pytest.approx(a.iloc[6] * 2 * 5.8 / 11.1)


def test_messy_index_and_benchmark_match_the_loops():
    market, delistings = messy_market()
    bars = bars_dataset(market)
    want = reference_index(market, delistings)
    got = total_return_index(bars, delistings).to_pandas()
    pd.testing.assert_frame_equal(got, want, check_names=False, rtol=1e-12)
    universe = ["A", "B", "C", "D", "E", "F", "NOT_IN_THE_BARS"]
    bench = benchmark_series(bars, EQUAL_WEIGHT, universe, delistings)
    np.testing.assert_allclose(bench.to_numpy(), reference_benchmark(want).to_numpy(), rtol=1e-12)
    one = benchmark_series(bars, "B", universe, delistings)
    np.testing.assert_allclose(one.to_numpy(), want["B"].to_numpy(), rtol=1e-12)


def test_benchmark_holds_every_listed_member():
    """Late listings join and halted names stay (growth 1) rather than the benchmark shrinking
    to the names that never miss a bar."""
    market, delistings = messy_market()
    bars = bars_dataset(market)
    bench = benchmark_series(bars, EQUAL_WEIGHT, ["A", "B"], delistings)
    # Day 2: A grows 11 / 10.5, B is halted (growth 1): the mean of the two.
    assert bench.iloc[2] / bench.iloc[1] == pytest.approx((11 / 10.5 + 1.0) / 2)
    resumed = 2 * (11 + 0.4 + 0.3) / 21
    assert bench.iloc[5] / bench.iloc[4] == pytest.approx((11.5 / 11.2 + resumed) / 2)


def test_delisting_dates_of_instruments():
    instruments = pd.DataFrame(
        {
            "symbol": ["A", "B", "C"],
            "kind": ["stock"] * 3,
            "sector": [None] * 3,
            "first_date": pd.to_datetime(["2020-01-02"] * 3),
            "last_date": pd.to_datetime([None, "2024-01-10", None]),
        }
    )
    got = delisting_dates(instruments)
    assert got.to_dict() == {"B": pd.Timestamp("2024-01-10")}


@st.composite
def messy_markets(draw: st.DrawFn) -> tuple[MarketData, dict[str, pd.Timestamp]]:
    """Up to 4 names over up to 25 sessions (beside one that always trades): random first
    bar, halts, last bar, declared delisting, splits and dividends on any later session."""
    days = draw(st.integers(2, 25))
    dates = pd.bdate_range("2024-01-02", periods=days)
    closes: dict[str, list[float | None]] = {"ZZZ": [100.0] * days}
    actions, delistings = [], {}
    for k in range(draw(st.integers(1, 4))):
        sym = f"S{k}"
        first = draw(st.integers(0, days - 1))
        last = draw(st.integers(first, days - 1))
        prices = draw(st.lists(st.floats(1.0, 100.0), min_size=days, max_size=days))
        halted = draw(st.lists(st.booleans(), min_size=days, max_size=days))
        closes[sym] = [
            p if first <= i <= last and (i in (first, last) or not h) else None
            for i, (p, h) in enumerate(zip(prices, halted, strict=True))
        ]
        if draw(st.booleans()):
            delistings[sym] = dates[draw(st.integers(last, days - 1))]
        for i in draw(st.lists(st.integers(1, days - 1), max_size=4, unique=True)):
            split = draw(st.sampled_from([1.0, 1.0, 2.0, 0.5, 3.0]))
            dividend = draw(st.sampled_from([0.0, 0.0, 0.1, 1.5]))
            actions.append((i, sym, split, dividend))
    return market_from(closes, actions, dates), delistings


@settings(max_examples=60, deadline=None)
@given(messy_markets())
def test_index_matches_the_holding_loop(case):
    market, delistings = case
    want = reference_index(market, delistings)
    bars = bars_dataset(market)
    got = total_return_index(bars, delistings).to_pandas()
    pd.testing.assert_frame_equal(got, want, check_names=False, rtol=1e-10)
    symbols = list(want.columns)
    bench = benchmark_series(bars, EQUAL_WEIGHT, symbols, delistings)
    np.testing.assert_allclose(bench.to_numpy(), reference_benchmark(want).to_numpy(), rtol=1e-10)


def hold_all(bars: xr.Dataset, symbol: str) -> xr.DataArray:
    """Weight 1 in ``symbol`` on every session (0 elsewhere)."""
    w = xr.zeros_like(bars["close"].transpose("date", "symbol"))
    return w.where(w.symbol != symbol, 1.0)


def assert_engine_holds_the_index(bars: xr.Dataset, symbol: str, index: pd.Series) -> None:
    """Zero costs, market-on-close fills, all in ``symbol``: the equity equals the index
    rebased to the cash at its first bar, on every session the name trades."""
    engine = BacktestEngine(BacktestConfig(fill="close", initial_cash=1e6))
    equity = engine.run(bars, hold_all(bars, symbol)).equity
    traded = bars["close"].sel(symbol=symbol).notnull().to_numpy()
    expected = 1e6 * index / index.loc[traded].iloc[0]
    np.testing.assert_allclose(equity[traded].to_numpy(), expected[traded].to_numpy(), rtol=1e-9)


@pytest.mark.parametrize("symbol", ["A", "B", "C", "E"])
def test_zero_cost_equity_equals_the_index_on_the_messy_panel(symbol):
    market, delistings = messy_market()
    bars = bars_dataset(market)
    index = total_return_index(bars, delistings).to_pandas()[symbol]
    assert_engine_holds_the_index(bars, symbol, index)


def market_of(source: str, tmp_path, **data: object):
    settings = parse_settings({"data": {"source": source, **data}})
    project = Project(settings, tmp_path)
    start, end = project.source.coverage()
    return project, project.source.fetch(start, end or "2019-12-31")


@pytest.mark.parametrize("source", ["sample", "synthetic"])
def test_zero_cost_equity_equals_total_return(source, tmp_path):
    extra = {"synthetic": {"n_stocks": 40, "n_etfs": 0, "start": "2016-01-04"}}
    project, market = market_of(source, tmp_path, **(extra if source == "synthetic" else {}))
    bars = bars_dataset(market)
    close = bars["close"].transpose("date", "symbol")
    events = (bars["split_ratio"] != 1).sum("date") + (bars["dividend"] > 0).sum("date")
    first = close.notnull().argmax("date")
    gaps = (close.isnull() & (close.notnull().cumsum("date") > 0)).sum("date")
    # The names with the most splits and dividends, and those listed after the first session
    # or missing bars, with the most splits and dividends.
    messy = (first > 0) | (gaps > 0)
    busiest = events.to_pandas().sort_values().index[-2:]
    messiest = events.where(messy, -1).to_pandas().sort_values().index[-2:]
    symbols = busiest.union(messiest)
    assert int(events.sel(symbol=busiest).sum()) >= 10
    assert bool(messy.sel(symbol=messiest).all())
    index = total_return_index(bars, delisting_dates(project.instruments)).to_pandas()
    for symbol in symbols:
        assert_engine_holds_the_index(bars, symbol, index[symbol])

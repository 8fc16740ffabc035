"""The numbers on the messy market of :mod:`qpipe_tests.messy`: the total-return index, the
equal-weight benchmark, the factor report's coverage, the actions derived from rounded
adjusted closes and the engine's NAV, each against a plain loop written here."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qpipe.analytics.factor_store import lake_factor_report
from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.inputs import bars_dataset, delisting_dates, total_return_index
from qpipe.backtest.runner import EQUAL_WEIGHT, benchmark_series
from qpipe.calendars import TradingCalendar
from qpipe.data.files import FilesSource
from qpipe.data.lake import Lake
from qpipe.data.schema import MarketData
from qpipe.settings import FilesSourceConfig
from qpipe_tests.messy import (
    DELISTED,
    DIVIDENDS,
    SPLITS,
    SYMBOLS,
    MessyMarket,
    adjusted_closes,
    messy_market,
)


@pytest.fixture(scope="module")
def market() -> MessyMarket:
    return messy_market()


def closes_of(market: MessyMarket) -> pd.DataFrame:
    wide = market.bars.pivot(index="date", columns="symbol", values="close")
    return wide.reindex(index=market.sessions, columns=list(SYMBOLS))


def expected_index(market: MessyMarket) -> pd.DataFrame:
    """One share bought at the first close: splits multiply the shares, dividends pay cash per
    share held, cash buys shares at the next close; carried while halted, none after the
    declared delisting."""
    close = closes_of(market)
    out = pd.DataFrame(np.nan, index=close.index, columns=close.columns)
    for symbol in SYMBOLS:
        shares, cash, value = 0.0, 0.0, np.nan
        for t, day in enumerate(close.index):
            if symbol in DELISTED and t > DELISTED[symbol]:
                break
            price = close.at[day, symbol]
            if shares == 0.0:
                if not np.isnan(price):
                    shares, value = 1.0, price
                out.at[day, symbol] = value
                continue
            shares *= SPLITS.get((symbol, t), 1.0)
            cash += shares * DIVIDENDS.get((symbol, t), 0.0)
            if not np.isnan(price):
                shares += cash / price
                cash = 0.0
                value = shares * price
            out.at[day, symbol] = value
    return out


def test_total_return_index_over_halts_listings_and_delistings(market):
    bars = bars_dataset(MarketData(market.bars, market.actions))
    got = total_return_index(bars, delisting_dates(market.instruments)).to_pandas()
    want = expected_index(market)
    pd.testing.assert_frame_equal(
        got.reindex(index=want.index, columns=want.columns), want, check_names=False, rtol=1e-12
    )
    # Every bar has a value: the halted, late-listed and split names included.
    has_bar = closes_of(market).notna()
    assert got.reindex_like(has_bar).where(has_bar).notna().sum().sum() == has_bar.sum().sum()


def test_equal_weight_benchmark_holds_every_listed_name(market):
    bars = bars_dataset(MarketData(market.bars, market.actions))
    got = benchmark_series(bars, EQUAL_WEIGHT, list(SYMBOLS), delisting_dates(market.instruments))
    index = expected_index(market)
    level, want, members = 1.0, [], []
    for t in range(len(index)):
        if t > 0:
            growth = [
                index.iat[t, j] / index.iat[t - 1, j]
                for j in range(len(SYMBOLS))
                if not np.isnan(index.iat[t, j]) and not np.isnan(index.iat[t - 1, j])
            ]
            members.append(len(growth))
            level *= float(np.mean(growth)) if growth else 1.0
        want.append(level)
    want = pd.Series(want, index=index.index)
    np.testing.assert_allclose(
        (got / got.iloc[0]).to_numpy(), (want / want.iloc[0]).to_numpy(), rtol=1e-12
    )
    # Halted names stay members; the late listing joins; the delisted name leaves.
    assert members[22] == 6  # BBB halted, CCC not listed yet
    assert members[45] == 7  # everyone listed, DDD not yet delisted
    assert members[60] == 6  # DDD gone
    assert members[-1] == 6  # FFF halted across the last session still counts


def test_factor_report_coverage_counts_every_listed_name(market, tmp_path):
    lake = Lake(tmp_path / "lake")
    lake.write("bars", market.bars, market.sessions)
    lake.write("corporate_actions", market.actions, market.actions["date"].unique())
    rng = np.random.default_rng(3)
    factor = market.bars.loc[:, ["date", "symbol"]].copy()
    factor["f"] = rng.normal(size=len(factor))
    factor.loc[rng.random(len(factor)) < 0.2, "f"] = np.nan  # a factor with gaps of its own
    lake.write("factors", factor, market.sessions)
    tables = lake_factor_report(lake, ["f"], delisting_dates(market.instruments), horizons=(1,))

    index = expected_index(market)
    f = factor.pivot(index="date", columns="symbol", values="f").reindex_like(index)
    forward = index.shift(-1) / index - 1.0
    listed = index.notna()
    covered = (listed & f.notna() & forward.notna()).sum(axis=1) / listed.sum(axis=1)
    covered[forward.notna().sum(axis=1) == 0] = np.nan
    assert tables["summary"].set_index("factor").at["f", "coverage"] == pytest.approx(
        covered.mean(), rel=1e-12
    )


@pytest.mark.parametrize("decimals", [2, 6])
def test_rounded_adjusted_closes_give_the_planted_actions(market, tmp_path, decimals):
    frame = market.bars.merge(adjusted_closes(market), on=["date", "symbol", "close"])
    frame["adj_close"] = frame["adj_close"].round(decimals)
    path = tmp_path / "bars.csv"
    frame.to_csv(path, index=False, date_format="%Y-%m-%d")
    cal = TradingCalendar("XNYS", "2024-01-02")
    config = FilesSourceConfig(path=path, columns={"adj_close": "adj_close"})
    got = FilesSource(cal, config).fetch(market.sessions[0], market.sessions[-1]).actions
    # A file has rows on traded sessions only: an action whose ex-date falls in a halt shows
    # on the first bar after it (EEE's split), where the engine applies it all the same.
    want = market.actions.copy()
    for k, row in want.iterrows():
        traded = frame.loc[(frame["symbol"] == row.symbol) & (frame["date"] >= row.date), "date"]
        want.at[k, "date"] = traded.min()
    assert (want["date"] != market.actions["date"]).sum() == 1
    assert list(zip(got["date"], got["symbol"], strict=True)) == list(
        zip(want["date"], want["symbol"], strict=True)
    )
    np.testing.assert_array_equal(got["split_ratio"], want["split_ratio"])
    # A dividend is known to the rounding of the adjusted close (half a unit on each of the
    # two days) and of the close (4 decimals), relative to the previous close.
    unit = 10.0**-decimals
    for g, w in zip(got.itertuples(), want.itertuples(), strict=True):
        rows = frame.loc[frame["symbol"] == w.symbol].set_index("date")
        before = rows.loc[rows.index < w.date].iloc[-1]
        on = rows.loc[w.date]  # the first bar on or after the ex-date
        bound = before["close"] * (
            unit / before["adj_close"] + unit / on["adj_close"] + 1e-4 / on["close"]
        )
        assert abs(g.dividend - w.dividend) <= bound + 1e-12, (w.symbol, g.dividend, bound)


def expected_nav(market: MessyMarket, cash0: float) -> tuple[pd.Series, pd.Series]:
    """Equal weights in the names trading on the first session, bought at its close, then held:
    shares times the split ratio on an ex-date, dividends paid in cash, marks at the last
    close (divided by a split that falls while halted), the delisted name sold at its last
    close on its delisting session. NAV and gross exposure by session."""
    close = closes_of(market)
    first = close.iloc[0]
    names = [s for s in SYMBOLS if not np.isnan(first[s])]
    qty = {s: cash0 / len(names) / first[s] for s in names}
    last = {s: first[s] for s in names}
    cash, navs, gross = 0.0, [cash0], [1.0]
    for t in range(1, len(close)):
        day = close.index[t]
        for s in names:
            split = SPLITS.get((s, t), 1.0)
            qty[s] *= split
            last[s] /= split
            cash += qty[s] * DIVIDENDS.get((s, t), 0.0)
            if not np.isnan(close.at[day, s]):
                last[s] = close.at[day, s]
            if DELISTED.get(s) == t:
                cash += qty[s] * last[s]
                qty[s] = 0.0
        held = sum(qty[s] * last[s] for s in names)
        navs.append(cash + held)
        gross.append(held / (cash + held))
    return pd.Series(navs, index=close.index), pd.Series(gross, index=close.index)


def test_engine_nav_over_the_messy_market(market):
    bars = bars_dataset(MarketData(market.bars, market.actions))
    first = bars["close"].isel(date=0)
    weights = xr_weights(bars, first)
    engine = BacktestEngine(BacktestConfig(fill="close", initial_cash=1e6))
    result = engine.run(bars, weights, delistings=delisting_dates(market.instruments))
    nav, gross = expected_nav(market, 1e6)
    np.testing.assert_allclose(result.equity.to_numpy(), nav.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(
        result.daily["gross_exposure"].to_numpy(), gross.to_numpy(), rtol=1e-12
    )
    # The delisted name was sold on its delisting session; the name halted across the last
    # session is still held; cash never went negative.
    fills = result.fills
    assert list(fills.loc[fills["reason"] == "delisting", "symbol"]) == ["DDD"]
    assert result.positions["FFF"].iloc[-1] > 0
    assert (result.daily["cash"] >= 0).all()


def xr_weights(bars, first):
    """Weight 1/n on the first session in the n names that trade on it, NaN afterwards."""
    w = bars["close"].copy(data=np.full(bars["close"].shape, np.nan)).transpose("date", "symbol")
    traded = first.notnull().values
    w[0, :] = np.where(traded, 1.0 / traded.sum(), 0.0)
    return w

"""Corporate-action maths: deriving actions from an adjusted close and back-adjusting bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.data.adjustments import (
    SPLIT_RATIOS,
    SPLIT_TOLERANCE,
    actions_from_adjusted,
    adjusted_prices,
    adjustment_multipliers,
    decimals_written,
    derive_actions,
    rounding_half_units,
)
from qpipe.data.schema import ACTION_COLUMNS

DAYS = pd.to_datetime(["2001-01-02", "2001-01-03", "2001-01-04", "2001-01-05"]).astype(
    "datetime64[ns]"
)


def bars_for(symbol: str, close: list[float], ratio: list[float], volume: float = 1000.0):
    """Bars of one symbol on ``DAYS`` with ``adj_close = close * ratio``."""
    close_arr = np.asarray(close, dtype=float)
    n = len(close_arr)
    return pd.DataFrame(
        {
            "date": DAYS[:n],
            "symbol": symbol,
            "open": close_arr,
            "high": close_arr * 1.01,
            "low": close_arr * 0.99,
            "close": close_arr,
            "volume": np.full(n, volume),
            "adj_close": close_arr * np.asarray(ratio, dtype=float),
        }
    )


def action_frame(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(ACTION_COLUMNS))
    frame["date"] = pd.to_datetime(frame["date"]).astype("datetime64[ns]")
    return frame


# -- actions_from_adjusted ------------------------------------------------------------------------


def test_one_split_is_found_with_its_ratio_and_no_dividend():
    # 2-for-1 on day 3: the traded close halves, the adjusted close does not.
    bars = bars_for("X", [100.0, 102.0, 51.0, 52.0], [0.5, 0.5, 1.0, 1.0])
    actions = actions_from_adjusted(bars)
    assert list(actions.columns) == list(ACTION_COLUMNS)
    assert len(actions) == 1
    row = actions.iloc[0]
    assert row["date"] == pd.Timestamp("2001-01-04")
    assert row["symbol"] == "X"
    assert row["split_ratio"] == 2.0
    assert row["dividend"] == 0.0
    assert row["factor"] == 0.5


def test_one_dividend_is_cash_per_share_from_the_previous_close():
    # $1 dividend on day 3 after a close of 101.27: factor = 1 - 1/101.27.
    f = 1.0 - 1.0 / 101.27
    bars = bars_for("X", [100.13, 101.27, 99.42, 100.05], [f, f, 1.0, 1.0])
    actions = actions_from_adjusted(bars)
    assert len(actions) == 1
    row = actions.iloc[0]
    assert row["date"] == pd.Timestamp("2001-01-04")
    assert row["split_ratio"] == 1.0
    assert row["dividend"] == pytest.approx(1.0, rel=1e-12)
    assert row["factor"] == pytest.approx(f, rel=1e-15)


def test_split_and_dividend_on_the_same_day():
    # 2-for-1 plus $0.20 (post-split shares) after a close of 100: factor = 1/2 - 0.2/100.
    f = 0.5 - 0.2 / 100.0
    bars = bars_for("X", [100.0, 100.0, 49.8, 50.0], [f, f, 1.0, 1.0])
    row = actions_from_adjusted(bars).iloc[0]
    assert row["split_ratio"] == 2.0
    assert row["dividend"] == pytest.approx(0.2, rel=1e-9)
    assert row["factor"] == pytest.approx(f, rel=1e-15)


def test_reverse_split_and_three_for_two():
    reverse = bars_for("R", [1.0, 1.1, 11.0, 11.5], [2.0, 2.0, 1.0, 1.0])
    three_two = bars_for("T", [90.0, 90.0, 60.0, 61.0], [2 / 3, 2 / 3, 1.0, 1.0])
    actions = actions_from_adjusted(pd.concat([reverse, three_two], ignore_index=True))
    by_symbol = actions.set_index("symbol")
    assert by_symbol.loc["R", "split_ratio"] == 0.5
    assert by_symbol.loc["R", "factor"] == 2.0
    assert by_symbol.loc["T", "split_ratio"] == 1.5
    assert by_symbol.loc["T", "dividend"] == pytest.approx(0.0, abs=1e-9)


def test_large_special_dividend_is_not_a_split():
    # About 10% of the price (1/m close to 10/9), like MSFT's 2004 special dividend.
    f = 1.0 - 3.0 / 30.0
    bars = bars_for("X", [30.0, 30.0, 27.0, 27.5], [f, f, 1.0, 1.0])
    row = actions_from_adjusted(bars).iloc[0]
    assert row["split_ratio"] == 1.0
    assert row["dividend"] == pytest.approx(3.0, rel=1e-12)


def test_multiple_symbols_sorted_by_date_then_symbol():
    a = bars_for("AAA", [10.01, 10.03, 5.02, 5.07], [0.5, 0.5, 1.0, 1.0])
    b = bars_for("BBB", [20.01, 20.03, 20.07, 19.02], [0.95, 0.95, 0.95, 1.0])
    mixed = pd.concat([b, a], ignore_index=True).sample(frac=1.0, random_state=3)
    actions = actions_from_adjusted(mixed)
    assert list(actions["symbol"]) == ["AAA", "BBB"]
    assert list(actions["date"]) == [pd.Timestamp("2001-01-04"), pd.Timestamp("2001-01-05")]
    assert actions["split_ratio"].tolist() == [2.0, 1.0]
    assert actions["dividend"].iloc[1] == pytest.approx(0.05 * 20.07, rel=1e-12)


def test_constant_ratio_and_rounding_noise_give_no_actions():
    bars = bars_for("X", [10.0, 11.0, 12.0, 13.0], [0.7, 0.7 * (1 + 1e-12), 0.7, 0.7])
    actions = actions_from_adjusted(bars)
    assert actions.empty
    assert list(actions.columns) == list(ACTION_COLUMNS)


def test_nan_adjusted_close_moves_the_action_to_the_next_valid_day():
    f = 0.99
    bars = bars_for("X", [100.13, 100.21, 99.17, 99.33], [f, f, np.nan, 1.0])
    actions = actions_from_adjusted(bars)
    assert actions["date"].tolist() == [pd.Timestamp("2001-01-05")]
    # The dividend is measured against the last close that had a ratio (day 2).
    assert actions["dividend"].iloc[0] == pytest.approx(0.01 * 100.21, rel=1e-12)


# -- adjustment_multipliers / adjusted_prices -----------------------------------------------------


def test_multipliers_are_products_of_later_factors_per_symbol():
    bars = pd.concat(
        [bars_for("A", [1.0] * 4, [1.0] * 4), bars_for("B", [1.0] * 4, [1.0] * 4)],
        ignore_index=True,
    ).iloc[::-1]  # any row order: the result is aligned with bars.index
    actions = action_frame(
        [
            ("2001-01-03", "A", 2.0, 0.0, 0.5),
            ("2001-01-05", "A", 1.0, 0.1, 0.9),
            # An ex-date that is not a bar date still counts for the days before it.
            ("2001-01-04", "B", 1.0, 0.2, 0.8),
        ]
    )
    total = adjustment_multipliers(bars, actions)
    split = adjustment_multipliers(bars, actions, kind="split")
    assert total.index.equals(bars.index)
    key = list(zip(bars["symbol"], bars["date"].dt.strftime("%m-%d"), strict=True))
    got_total = dict(zip(key, total, strict=True))
    got_split = dict(zip(key, split, strict=True))
    assert got_total[("A", "01-02")] == pytest.approx(0.45)
    assert got_total[("A", "01-03")] == pytest.approx(0.9)  # ex-date itself: only later ones
    assert got_total[("A", "01-04")] == pytest.approx(0.9)
    assert got_total[("A", "01-05")] == 1.0
    assert got_total[("B", "01-03")] == pytest.approx(0.8)
    assert got_total[("B", "01-04")] == 1.0
    assert got_split[("A", "01-02")] == 0.5
    assert got_split[("A", "01-03")] == 1.0
    assert got_split[("B", "01-02")] == 1.0


def test_multipliers_without_actions_are_one():
    bars = bars_for("A", [1.0, 2.0], [1.0, 1.0])
    empty = action_frame([])
    assert adjustment_multipliers(bars, empty).tolist() == [1.0, 1.0]


def test_unknown_kind_is_rejected():
    bars = bars_for("A", [1.0, 2.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="unknown adjustment kind 'forward'"):
        adjustment_multipliers(bars, action_frame([]), kind="forward")  # type: ignore[arg-type]


def test_adjusted_prices_scale_prices_and_volume_by_split_only():
    # 2-for-1 with a $0.20 dividend on day 3 (factor 0.498).
    f = 0.5 - 0.2 / 100.0
    bars = bars_for("X", [100.0, 100.0, 49.8, 50.0], [f, f, 1.0, 1.0], volume=1000.0)
    actions = actions_from_adjusted(bars)
    total = adjusted_prices(bars, actions)
    assert total["close"].tolist() == pytest.approx([49.8, 49.8, 49.8, 50.0])
    assert total["high"].iloc[0] == pytest.approx(101.0 * f)
    assert total["volume"].tolist() == [2000.0, 2000.0, 1000.0, 1000.0]
    assert total["adj_close"].equals(bars["adj_close"])  # other columns untouched

    split = adjusted_prices(bars, actions, kind="split")
    assert split["close"].tolist() == pytest.approx([50.0, 50.0, 49.8, 50.0])
    assert split["volume"].tolist() == [2000.0, 2000.0, 1000.0, 1000.0]
    assert bars["close"].iloc[0] == 100.0  # input not modified


def test_adjusted_prices_keep_nan():
    bars = bars_for("X", [100.0, 100.0, 50.0], [0.5, 0.5, 1.0])
    bars.loc[0, "open"] = np.nan
    bars.loc[1, "volume"] = np.nan
    out = adjusted_prices(bars, actions_from_adjusted(bars))
    assert np.isnan(out.loc[0, "open"])
    assert np.isnan(out.loc[1, "volume"])
    assert out.loc[0, "close"] == 50.0


# -- rounded adjusted closes --------------------------------------------------------------------


def plant(bars: pd.DataFrame, planted: pd.DataFrame, decimals: int | None) -> pd.DataFrame:
    """``bars`` (date, symbol, close) with ``adj_close`` built from ``planted`` actions (date,
    symbol, split_ratio, dividend) with plain pandas: each ex-date's factor is
    ``1/split - dividend/previous close``, a day's adjusted close is its close times the product
    of the factors of the symbol's later ex-dates, rounded to ``decimals`` (None: not rounded).
    Returns the bars and, in ``planted``, the factor and previous close of each action."""
    out = bars.sort_values(["symbol", "date"]).reset_index(drop=True)
    out["prev_close"] = out.groupby("symbol")["close"].shift(1)
    keyed = out.merge(planted, on=["date", "symbol"], how="left")
    keyed["split_ratio"] = keyed["split_ratio"].fillna(1.0)
    keyed["dividend"] = keyed["dividend"].fillna(0.0)
    keyed["factor"] = 1.0 / keyed["split_ratio"] - keyed["dividend"] / keyed["prev_close"]
    keyed["factor"] = keyed["factor"].fillna(1.0)
    later = []
    for _, group in keyed.groupby("symbol", sort=False):
        product = 1.0
        values = []
        for factor in reversed(group["factor"].tolist()):
            values.append(product)
            product *= factor
        later.extend(reversed(values))
    out["adj_close"] = out["close"] * np.array(later)
    if decimals is not None:
        out["adj_close"] = out["adj_close"].round(decimals)
    return out.drop(columns="prev_close")


def planted_facts(bars: pd.DataFrame, planted: pd.DataFrame) -> pd.DataFrame:
    """Each planted action with its factor, previous close and adjusted closes either side."""
    ordered = bars.sort_values(["symbol", "date"])
    ordered = ordered.assign(
        prev_close=ordered.groupby("symbol")["close"].shift(1),
        prev_adj=ordered.groupby("symbol")["adj_close"].shift(1),
    )
    facts = planted.merge(ordered, on=["date", "symbol"], how="left")
    facts["factor"] = 1.0 / facts["split_ratio"] - facts["dividend"] / facts["prev_close"]
    return facts


def random_market(
    seed: int, days: pd.DatetimeIndex | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two symbols on 250 days (default: business days) with cent closes and planted actions on
    awkward days: AAA halts for 5 days mid-history (a dividend on its first day back) and has a
    3-for-2 split, a 2-for-1 split and a dividend on the last day; BBB lists late (day 40), has a
    1-for-4 reverse split and quarterly dividends."""
    rng = np.random.default_rng(seed)
    if days is None:
        days = pd.bdate_range("2001-01-02", periods=250).astype("datetime64[ns]")
    n = len(days)
    planted = pd.DataFrame(
        [
            (days[30], "AAA", 1.0, 0.31),
            (days[105], "AAA", 1.0, 0.27),  # first day back after the halt on days 100-104
            (days[140], "AAA", 1.5, 0.0),
            (days[200], "AAA", 2.0, 0.0),
            (days[n - 1], "AAA", 1.0, 0.12),  # the last session
            (days[41], "BBB", 1.0, 0.09),  # the day after listing
            (days[110], "BBB", 0.25, 0.0),
            (days[170], "BBB", 1.0, 0.41),
            (days[230], "BBB", 1.0, 0.38),
        ],
        columns=["date", "symbol", "split_ratio", "dividend"],
    )
    frames = []
    for symbol, start, price in (("AAA", 0, 45.0), ("BBB", 40, 9.0)):
        own = planted[planted["symbol"] == symbol].set_index("date")
        closes = []
        for day in days[start:]:
            if day in own.index:
                price = price / own.at[day, "split_ratio"] - own.at[day, "dividend"]
            price *= np.exp(rng.normal(0.0, 0.015))
            closes.append(round(price, 2))
        frames.append(pd.DataFrame({"date": days[start:], "symbol": symbol, "close": closes}))
    bars = pd.concat(frames, ignore_index=True)
    halted = (bars["symbol"] == "AAA") & bars["date"].isin(days[100:105])
    return bars.loc[~halted].reset_index(drop=True), planted


@pytest.mark.parametrize("decimals", [2, 6])
def test_rounded_adjusted_closes_give_exactly_the_planted_actions(decimals):
    bars, planted = random_market(seed=decimals)
    bars = plant(bars, planted, decimals)
    found = actions_from_adjusted(bars)
    facts = planted_facts(bars, planted).sort_values(["date", "symbol"]).reset_index(drop=True)
    # Nothing else: one action per planted one, on its day.
    assert list(zip(found["date"], found["symbol"], strict=True)) == list(
        zip(facts["date"], facts["symbol"], strict=True)
    )
    assert found["split_ratio"].tolist() == facts["split_ratio"].tolist()  # exactly
    splits = facts["dividend"] == 0.0
    assert (found.loc[splits, "dividend"] == 0.0).all()
    assert (found.loc[splits, "factor"] == 1.0 / facts.loc[splits, "split_ratio"]).all()
    # Dividends within what rounding the adjusted closes to `decimals` can move them: each
    # adjusted close is within half a unit of the true one, so adj/close is within that
    # relative error, and the factor and the dividend (factor times the previous close) too.
    half = 0.5 * 10.0**-decimals
    relative = half / facts["prev_adj"] + half / facts["adj_close"]
    bound = facts["prev_close"] * facts["factor"] * relative * 1.01
    error = (found["dividend"] - facts["dividend"]).abs()
    assert (error <= bound).all(), pd.DataFrame({"error": error, "bound": bound})
    # The planted dividends are all well beyond the bound: the test can tell them apart.
    assert (facts.loc[~splits, "dividend"] > 3 * bound[~splits]).all()


def test_a_falling_ratio_is_never_a_negative_dividend():
    # adj/close falls 1% on day 3 (a dividend makes it rise), and on day 4 it rises 0.3% less
    # than a 2-for-1 split makes it.
    close = [40.13, 40.55, 39.87, 20.02]
    ratio = [0.5, 0.5, 0.495, 0.495 * 2 * 0.997]
    bars = bars_for("X", close, ratio).set_axis([10, 11, 12, 13])
    derived = derive_actions(bars)
    actions = derived.actions
    assert actions["date"].tolist() == [pd.Timestamp("2001-01-05")]
    assert actions["split_ratio"].tolist() == [2.0]
    assert actions["dividend"].tolist() == [0.0] and actions["factor"].tolist() == [0.5]
    unexplained = derived.unexplained
    assert unexplained.index.tolist() == [12, 13]  # the input's row labels
    assert unexplained["previous"].tolist() == [11, 12]
    assert unexplained["split_ratio"].tolist() == [1.0, 2.0]
    np.testing.assert_allclose(unexplained["fall"], [0.01, 0.003], rtol=1e-9)


def test_a_split_on_coarse_adjusted_closes_snaps_to_its_ratio():
    # Adjusted closes of cents before a 3-for-1 split: 0.35 / 1.05 is 1/3 only within rounding
    # (the written ratio jump is 3.0009..., like RRC 1990-04-10).
    bars = pd.DataFrame(
        {
            "date": DAYS,
            "symbol": "X",
            "close": [31.52, 31.51, 10.5, 10.62],
            "adj_close": [0.35, 0.35, 0.35, 0.35],
        }
    )
    # adj_close stays 0.35 while close drops threefold: adj ratio 0.35/10.5 vs 0.35/31.51.
    row = actions_from_adjusted(bars).iloc[0]
    assert row["date"] == pd.Timestamp("2001-01-04")
    assert row["split_ratio"] == 3.0 and row["dividend"] == 0.0 and row["factor"] == 1 / 3


def test_precision_is_read_locally_where_a_file_changes_it():
    # A vendor writes 2 decimals for the first 120 days and 6 after: no action from rounding
    # in either part, and a 0.1% dividend on day 180 that only 6 decimals can show is found.
    bars, _ = random_market(seed=5)
    bars = bars[bars["symbol"] == "AAA"].reset_index(drop=True)
    day = bars["date"].iloc[180]
    planted = pd.DataFrame(
        {
            "date": [day],
            "symbol": ["AAA"],
            "split_ratio": [1.0],
            "dividend": [round(bars["close"].iloc[179] * 0.001, 4)],
        }
    )
    exact = plant(bars, planted, None)["adj_close"] * 0.71234
    bars["adj_close"] = np.where(bars.index < 120, exact.round(2), exact.round(6))
    actions = actions_from_adjusted(bars)
    assert actions["date"].tolist() == [day]
    assert actions["dividend"].iloc[0] == pytest.approx(planted["dividend"].iloc[0], rel=0.05)


def test_rounding_units_pool_decimals_within_a_symbol_and_a_window():
    # A: 2 decimals (10.5 and 10.0 have fewer written); B: 6 decimals; C: 2 decimals for 15
    # rows, then 6 (each row pools the 21 rows centred on it).
    values = [10.5, 10.25, 10.0, 3.123456, 3.1, 3.2] + [1.25] * 15 + [1.123456] * 15
    starts = np.zeros(len(values), dtype=bool)
    starts[[0, 3, 6]] = True
    half = rounding_half_units(np.array(values), starts)
    np.testing.assert_array_equal(half[:3], [0.005] * 3)
    np.testing.assert_array_equal(half[3:6], [5e-7] * 3)
    c = half[6:]
    np.testing.assert_array_equal(c[:5], [0.005] * 5)  # rows 0-4: windows end before row 15
    np.testing.assert_array_equal(c[5:], [5e-7] * 25)
    np.testing.assert_array_equal(
        decimals_written(np.array([100.0, 0.1, 2.675, 1e-7])), [0, 1, 3, 7]
    )


# -- properties ------------------------------------------------------------------------------------

positive = st.floats(min_value=1e-2, max_value=1e4, allow_nan=False, allow_infinity=False)


@st.composite
def adjusted_series(draw: st.DrawFn) -> pd.DataFrame:
    """One or two symbols with arbitrary positive close and adjusted close."""
    frames = []
    for symbol in draw(st.sampled_from([["A"], ["A", "B"]])):
        n = draw(st.integers(min_value=1, max_value=40))
        close = draw(st.lists(positive, min_size=n, max_size=n))
        adj = draw(st.lists(positive, min_size=n, max_size=n))
        # Sometimes reuse ratios so that days without actions occur too.
        if draw(st.booleans()):
            adj = [a if i % 3 else close[i] * adj[0] / close[0] for i, a in enumerate(adj)]
        frames.append(
            pd.DataFrame(
                {
                    "date": pd.bdate_range("2001-01-01", periods=n).astype("datetime64[ns]"),
                    "symbol": symbol,
                    "close": close,
                    "volume": 1.0,
                    "adj_close": adj,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


@settings(max_examples=60, deadline=None)
@given(adjusted_series())
def test_derived_actions_obey_the_schema_on_any_input(bars: pd.DataFrame):
    derived = derive_actions(bars)
    actions = derived.actions
    assert (actions["dividend"] >= 0.0).all()  # never a negative dividend
    assert actions["split_ratio"].isin([1.0, *SPLIT_RATIOS]).all()
    # The stored factor is consistent with the split ratio and dividend (schema contract).
    with_prev = bars.assign(prev=bars.groupby("symbol")["close"].shift(1))
    prev_close = actions.merge(with_prev, on=["date", "symbol"], how="left")["prev"].to_numpy()
    implied = 1.0 / actions["split_ratio"].to_numpy() - actions["dividend"].to_numpy() / prev_close
    np.testing.assert_allclose(implied, actions["factor"].to_numpy(), rtol=1e-12, atol=1e-15)
    # An action day and an unexplained rise are days of the input, each once.
    keys = set(zip(bars["date"], bars["symbol"], strict=True))
    assert set(zip(actions["date"], actions["symbol"], strict=True)) <= keys
    assert not actions.duplicated(["date", "symbol"]).any()
    assert set(derived.unexplained.index) <= set(bars.index)


def written_decimals(value: float) -> int:
    """Decimals of the shortest text that reads back as ``value`` (``10.5`` -> 1)."""
    text = repr(float(value))
    assert "e" not in text
    return len(text.partition(".")[2].rstrip("0"))


@st.composite
def planted_market(draw: st.DrawFn) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Cent closes of one or two symbols (a random walk above $1), planted splits and
    dividends (at most 10% of the price, never both on one day), an adjusted close in any base
    of at least $1, rounded to 2, 3, 4 or 6 decimals or not at all."""
    frames, rows = [], []
    for symbol in draw(st.sampled_from([["A"], ["A", "B"]])):
        n = draw(st.integers(min_value=2, max_value=60))
        days = pd.bdate_range("2001-01-01", periods=n).astype("datetime64[ns]")
        price = draw(st.floats(min_value=2.0, max_value=500.0))
        closes = []
        for i, day in enumerate(days):
            kind = draw(st.sampled_from(["none"] * 6 + ["dividend", "split"])) if i else "none"
            if kind == "split":
                split = draw(st.sampled_from([2.0, 3.0, 1.5, 4.0, 0.5, 0.25, 0.1]))
                rows.append((day, symbol, split, 0.0))
                price /= split
            elif kind == "dividend":
                cash = round(closes[-1] * draw(st.floats(min_value=0.0005, max_value=0.1)), 4)
                rows.append((day, symbol, 1.0, cash))
                price -= cash
            price = max(price * np.exp(draw(st.floats(min_value=-0.1, max_value=0.1))), 1.0)
            closes.append(round(price, 2))
        frames.append(pd.DataFrame({"date": days, "symbol": symbol, "close": closes}))
    bars = pd.concat(frames, ignore_index=True)
    planted = pd.DataFrame(rows, columns=["date", "symbol", "split_ratio", "dividend"])
    decimals = draw(st.sampled_from([2, 3, 4, 6, None]))
    exact = plant(bars, planted, None)
    lowest = (exact["adj_close"]).min()
    base = max(draw(st.floats(min_value=0.05, max_value=20.0)), 1.0 / lowest)
    bars = bars.assign(adj_close=exact["adj_close"] * base)
    if decimals is not None:
        bars["adj_close"] = bars["adj_close"].round(decimals)
    return bars, planted


@settings(max_examples=50, deadline=None)
@given(planted_market())
def test_planted_actions_are_found_and_nothing_else(market):
    bars, planted = market
    derived = derive_actions(bars)
    found = derived.actions.set_index(["date", "symbol"])
    facts = planted_facts(bars, planted).set_index(["date", "symbol"])
    assert derived.unexplained.empty  # no planted action makes adj/close fall
    assert set(found.index) <= set(facts.index)  # nothing that was not planted
    # Each value's rounding error is at most half a unit of the decimals it is written with
    # (the code pools decimals over neighbours, so its unit is never coarser than this).
    e = {}
    for name in ("close", "adj_close", "prev_close", "prev_adj"):
        e[name] = facts[name].map(lambda v: 0.5 * 10.0 ** -written_decimals(v)) / facts[name]
    spread = 3 * (e["close"] + e["adj_close"] + e["prev_close"] + e["prev_adj"]) + 1e-8
    factor = facts["factor"]
    must = (factor * (1 + spread) < 1) | (factor * (1 - spread) > 1)
    for key in facts.index[must]:
        assert key in found.index, f"planted action {key} not found"
        fact, got = facts.loc[key], found.loc[key]
        if fact["split_ratio"] != 1.0 and spread.loc[key] < SPLIT_TOLERANCE:
            assert got["split_ratio"] == fact["split_ratio"] and got["dividend"] == 0.0
    for key in found.index:
        fact, got = facts.loc[key], found.loc[key]
        bound = fact["prev_close"] * fact["factor"] * spread.loc[key]
        assert abs(got["dividend"] - fact["dividend"]) <= bound

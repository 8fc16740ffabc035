"""Corporate-action maths: deriving actions from an adjusted close and back-adjusting bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.data.adjustments import actions_from_adjusted, adjusted_prices, adjustment_multipliers
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
    # $1 dividend on day 3 after a close of 101: factor = 1 - 1/101.
    f = 1.0 - 1.0 / 101.0
    bars = bars_for("X", [100.0, 101.0, 99.0, 100.0], [f, f, 1.0, 1.0])
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
    a = bars_for("AAA", [10.0, 10.0, 5.0, 5.0], [0.5, 0.5, 1.0, 1.0])
    b = bars_for("BBB", [20.0, 20.0, 20.0, 19.0], [0.95, 0.95, 0.95, 1.0])
    mixed = pd.concat([b, a], ignore_index=True).sample(frac=1.0, random_state=3)
    actions = actions_from_adjusted(mixed)
    assert list(actions["symbol"]) == ["AAA", "BBB"]
    assert list(actions["date"]) == [pd.Timestamp("2001-01-04"), pd.Timestamp("2001-01-05")]
    assert actions["split_ratio"].tolist() == [2.0, 1.0]
    assert actions["dividend"].iloc[1] == pytest.approx(1.0, rel=1e-12)


def test_constant_ratio_and_rounding_noise_give_no_actions():
    bars = bars_for("X", [10.0, 11.0, 12.0, 13.0], [0.7, 0.7 * (1 + 1e-12), 0.7, 0.7])
    actions = actions_from_adjusted(bars)
    assert actions.empty
    assert list(actions.columns) == list(ACTION_COLUMNS)


def test_nan_adjusted_close_moves_the_action_to_the_next_valid_day():
    f = 0.99
    bars = bars_for("X", [100.0, 100.0, 99.0, 99.0], [f, f, np.nan, 1.0])
    actions = actions_from_adjusted(bars)
    assert actions["date"].tolist() == [pd.Timestamp("2001-01-05")]
    # The dividend is measured against the last close that had a ratio (day 2).
    assert actions["dividend"].iloc[0] == pytest.approx(1.0, rel=1e-12)


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


# -- round trip property --------------------------------------------------------------------------

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
def test_round_trip_rebuilds_the_adjusted_ratio(bars: pd.DataFrame):
    actions = actions_from_adjusted(bars)
    rebuilt = adjusted_prices(bars, actions)["close"]
    ratio = bars["adj_close"] / bars["close"]
    last_ratio = ratio.groupby(bars["symbol"]).transform("last")
    expected = bars["close"] * ratio / last_ratio
    n = int(bars.groupby("symbol").size().max())
    # Exact up to float rounding and the 1e-9 "no action" threshold per skipped day.
    np.testing.assert_allclose(rebuilt, expected, rtol=2e-9 * n + 1e-12)

    # The stored factor is consistent with the split ratio and dividend (schema contract).
    with_prev = bars.assign(prev=bars.groupby("symbol")["close"].shift(1))
    prev_close = actions.merge(with_prev, on=["date", "symbol"], how="left")["prev"].to_numpy()
    implied = 1.0 / actions["split_ratio"].to_numpy() - actions["dividend"].to_numpy() / prev_close
    # Dividends below 1e-9 per share are clipped to 0; the rest is float rounding.
    scale = np.abs(actions["factor"].to_numpy()) + 1.0 / actions["split_ratio"].to_numpy()
    tolerance = 1e-9 / prev_close + 1e-12 * scale
    np.testing.assert_array_less(np.abs(implied - actions["factor"].to_numpy()), tolerance)

"""The backtest engine's rules, one small hand-computed case per rule.

Every case is a few symbols over a few business days with round prices; the expected values
are worked out by hand in the comments (``dK`` is the K-th session, ``w`` a target weight,
``V`` the sizing value, ``q`` shares). Each test asserts the whole state: equity, cash and
positions every day, every fill row, the daily cost / shortfall / unfilled / dividend /
skipped / unpriced accounts (zero unless stated), the risk events and the warnings (none unless
stated).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.result import BacktestResult
from qpipe.strategies.risk import CircuitBreaker, StopLoss

NAN = np.nan
RTOL = 1e-12
ATOL = 1e-9  # only bites where the expected value is 0 (currency units or shares)
BIG_VOLUME = 1e9
# 0 unless given
ACCOUNTS = ("fees", "slippage", "shortfall", "unfilled", "dividends", "skipped", "unpriced")

Fill = tuple[int, str, str, float, float, float, str]  # day, symbol, side, qty, price, fee, reason


def dates(n: int) -> pd.DatetimeIndex:
    return pd.bdate_range("2024-01-01", periods=n)


def make_bars(
    open_: dict[str, list[float]],
    close: dict[str, list[float]],
    *,
    volume: dict[str, list[float]] | None = None,
    split_ratio: dict[str, list[float]] | None = None,
    dividend: dict[str, list[float]] | None = None,
) -> xr.Dataset:
    """Bars from per-symbol lists (one value per session); volume defaults to a huge number."""
    symbols = list(close)
    n = len(close[symbols[0]])

    def panel(values: dict[str, list[float]]) -> tuple[tuple[str, str], np.ndarray]:
        return ("date", "symbol"), np.array([values[s] for s in symbols], float).T

    variables = {"open": panel(open_), "close": panel(close)}
    variables["volume"] = panel(volume or {s: [BIG_VOLUME] * n for s in symbols})
    if split_ratio is not None:
        variables["split_ratio"] = panel(split_ratio)
    if dividend is not None:
        variables["dividend"] = panel(dividend)
    return xr.Dataset(variables, coords={"date": dates(n), "symbol": symbols})


def make_weights(symbols: list[str], n: int, rows: dict[int, list[float]]) -> xr.DataArray:
    """Target weights: the given rows by session index, NaN rows (no decision) elsewhere."""
    values = np.full((n, len(symbols)), NAN)
    for t, row in rows.items():
        values[t] = row
    return xr.DataArray(
        values, dims=("date", "symbol"), coords={"date": dates(n), "symbol": symbols}
    )


def run(
    bars: xr.Dataset,
    rows: dict[int, list[float]],
    *,
    stop_loss: StopLoss | None = None,
    circuit_breaker: CircuitBreaker | None = None,
    delistings: dict[str, object] | None = None,
    **config: object,
) -> tuple[BacktestResult, list[str]]:
    """Run the engine on ``bars`` with the weight ``rows`` and ``BacktestConfig(**config)``."""
    symbols = [str(s) for s in bars.indexes["symbol"]]
    weights = make_weights(symbols, bars.sizes["date"], rows)
    engine = BacktestEngine(BacktestConfig(**config))  # type: ignore[arg-type]
    result = engine.run(
        bars,
        weights,
        stop_loss=stop_loss,
        circuit_breaker=circuit_breaker,
        delistings=delistings,
    )
    return result, symbols


def close(actual: object, expected: object) -> None:
    np.testing.assert_allclose(
        np.asarray(actual, float), np.asarray(expected, float), rtol=RTOL, atol=ATOL
    )


def assert_state(
    result: BacktestResult,
    symbols: list[str],
    *,
    equity: list[float],
    cash: list[float],
    positions: list[list[float]],
    fills: list[Fill],
    risk_events: Sequence[tuple[int, str, str, str]] = (),
    breaker: list[str] | None = None,
    warnings: Sequence[str] = (),
    **daily: list[float],
) -> None:
    """The whole state of ``result``. Daily accounts not given must be 0 every day; ``costs``
    defaults to the expected fees + slippage; ``gross_exposure`` is checked when given."""
    n = len(equity)
    days = dates(n)
    pd.testing.assert_index_equal(result.equity.index, days, check_names=False)
    close(result.equity, equity)
    close(result.daily["nav"], equity)
    close(result.daily["cash"], cash)
    assert list(result.positions.columns) == symbols
    pd.testing.assert_index_equal(result.positions.index, days, check_names=False)
    close(result.positions, positions)

    expected = {k: np.asarray(daily.pop(k, [0.0] * n), float) for k in ACCOUNTS}
    expected["costs"] = np.asarray(
        daily.pop("costs", expected["fees"] + expected["slippage"]), float
    )
    if "gross_exposure" in daily:
        expected["gross_exposure"] = np.asarray(daily.pop("gross_exposure"), float)
    assert not daily, f"unknown daily accounts {sorted(daily)}"
    for key, values in expected.items():
        close(result.daily[key], values)

    f = result.fills
    assert len(f) == len(fills), f"{len(f)} fills, expected {len(fills)}:\n{f}"
    if fills:
        assert list(f["date"]) == [days[x[0]] for x in fills]
        assert [str(s) for s in f["symbol"]] == [x[1] for x in fills]
        assert [str(s) for s in f["side"]] == [x[2] for x in fills]
        close(f["quantity"], [x[3] for x in fills])
        close(f["price"], [x[4] for x in fills])
        close(f["fee"], [x[5] for x in fills])
        assert [str(s) for s in f["reason"]] == [x[6] for x in fills]

    events = [(days[d], s, rule, why) for d, s, rule, why in risk_events]
    assert list(result.risk_events.itertuples(index=False, name=None)) == events

    if breaker is None:
        assert "breaker" not in result.daily.columns
    else:
        assert list(result.daily["breaker"]) == breaker
    assert result.warnings == list(warnings)


# --------------------------------------------------------------------------- 1. fill modes

# One symbol, cash 1000, w = 1 decided at the close of d0 only.
FILL_BARS = {"open": {"A": [5.0, 8.0, 20.0, 40.0]}, "close": {"A": [10.0, 20.0, 25.0, 50.0]}}


def test_fill_next_open_fills_at_the_open_of_the_next_session() -> None:
    # d1 open 8: q = 1000 / 8 = 125, cash 0.
    # equity: d0 1000; d1 125 x 20 = 2500; d2 125 x 25 = 3125; d3 125 x 50 = 6250.
    result, symbols = run(
        make_bars(FILL_BARS["open"], FILL_BARS["close"]),
        {0: [1.0]},
        fill="next_open",
        initial_cash=1000.0,
    )
    assert_state(
        result,
        symbols,
        equity=[1000.0, 2500.0, 3125.0, 6250.0],
        cash=[1000.0, 0.0, 0.0, 0.0],
        positions=[[0.0], [125.0], [125.0], [125.0]],
        fills=[(1, "A", "buy", 125.0, 8.0, 0.0, "rebalance")],
    )


def test_fill_next_close_fills_at_the_close_of_the_next_session() -> None:
    # d1 close 20: q = 1000 / 20 = 50, cash 0.
    # equity: d0 1000; d1 50 x 20 = 1000; d2 50 x 25 = 1250; d3 50 x 50 = 2500.
    result, symbols = run(
        make_bars(FILL_BARS["open"], FILL_BARS["close"]),
        {0: [1.0]},
        fill="next_close",
        initial_cash=1000.0,
    )
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1000.0, 1250.0, 2500.0],
        cash=[1000.0, 0.0, 0.0, 0.0],
        positions=[[0.0], [50.0], [50.0], [50.0]],
        fills=[(1, "A", "buy", 50.0, 20.0, 0.0, "rebalance")],
    )


def test_fill_close_fills_at_the_close_of_the_decision_session() -> None:
    # d0 close 10: q = 1000 / 10 = 100, cash 0.
    # equity: d0 100 x 10 = 1000; d1 2000; d2 2500; d3 5000.
    result, symbols = run(
        make_bars(FILL_BARS["open"], FILL_BARS["close"]),
        {0: [1.0]},
        fill="close",
        initial_cash=1000.0,
    )
    assert_state(
        result,
        symbols,
        equity=[1000.0, 2000.0, 2500.0, 5000.0],
        cash=[0.0, 0.0, 0.0, 0.0],
        positions=[[100.0], [100.0], [100.0], [100.0]],
        fills=[(0, "A", "buy", 100.0, 10.0, 0.0, "rebalance")],
    )


# --------------------------------------------------------------------------- 2. sizing


def test_sizing_value_is_the_portfolio_marked_at_the_fill_prices() -> None:
    # d0 w = [1, 0] -> d1 open A 10: qA = 1000 / 10 = 100, cash 0 (B: 0 -> 0, no trade).
    # d1 close A 12: equity 1200. d1 w = [0.5, 0.5].
    # d2 open A 16, B 25: V = 100 x 16 = 1600 (not the 1200 of the last close);
    #   A target 0.5 x 1600 / 16 = 50 -> sell 50 @ 16 = 800, cash 800;
    #   B target 0.5 x 1600 / 25 = 32 -> buy 32 @ 25 = 800, cash 0.
    # d2 close A 14, B 30: 50 x 14 + 32 x 30 = 700 + 960 = 1660.
    # d3 close A 20, B 25: 50 x 20 + 32 x 25 = 1000 + 800 = 1800.
    bars = make_bars(
        {"A": [10.0, 10.0, 16.0, 20.0], "B": [20.0, 20.0, 25.0, 25.0]},
        {"A": [10.0, 12.0, 14.0, 20.0], "B": [20.0, 20.0, 30.0, 25.0]},
    )
    result, symbols = run(bars, {0: [1.0, 0.0], 1: [0.5, 0.5]}, initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1200.0, 1660.0, 1800.0],
        cash=[1000.0, 0.0, 0.0, 0.0],
        positions=[[0.0, 0.0], [100.0, 0.0], [50.0, 32.0], [50.0, 32.0]],
        fills=[
            (1, "A", "buy", 100.0, 10.0, 0.0, "rebalance"),
            (2, "A", "sell", 50.0, 16.0, 0.0, "rebalance"),
            (2, "B", "buy", 32.0, 25.0, 0.0, "rebalance"),
        ],
    )


# --------------------------------------------------------------------------- 3. lot size


def test_lot_size_truncates_targets_toward_zero_to_whole_lots() -> None:
    # lot 100, cash 10000. d0 w = [0.5, 0.5] -> d1 open A 30, B 40, V = 10000:
    #   A 5000 / 30 = 166.67 -> 100 (3000); B 5000 / 40 = 125 -> 100 (4000); cash 3000.
    # d1 close A 25, B 45: 3000 + 2500 + 4500 = 10000. d1 w = [0.45, NaN].
    # d2 open A 20, B 50: V = 3000 + 100 x 20 + 100 x 50 = 10000;
    #   A 4500 / 20 = 225 -> 200: buy 100 @ 20 = 2000, cash 1000; B left as is.
    # d2 close A 21, B 52: 1000 + 4200 + 5200 = 10400.
    # d3 close A 22, B 60: 1000 + 4400 + 6000 = 11400.
    bars = make_bars(
        {"A": [30.0, 30.0, 20.0, 22.0], "B": [40.0, 40.0, 50.0, 60.0]},
        {"A": [30.0, 25.0, 21.0, 22.0], "B": [40.0, 45.0, 52.0, 60.0]},
    )
    result, symbols = run(
        bars, {0: [0.5, 0.5], 1: [0.45, NAN]}, lot_size=100.0, initial_cash=10_000.0
    )
    assert_state(
        result,
        symbols,
        equity=[10_000.0, 10_000.0, 10_400.0, 11_400.0],
        cash=[10_000.0, 3000.0, 1000.0, 1000.0],
        positions=[[0.0, 0.0], [100.0, 100.0], [200.0, 100.0], [200.0, 100.0]],
        fills=[
            (1, "A", "buy", 100.0, 30.0, 0.0, "rebalance"),
            (1, "B", "buy", 100.0, 40.0, 0.0, "rebalance"),
            (2, "A", "buy", 100.0, 20.0, 0.0, "rebalance"),
        ],
    )


# --------------------------------------------------------------------------- 4. sells first


def test_reductions_run_before_increases_and_fund_them() -> None:
    # d0 w = [1, 0] -> d1 open A 10: qA = 100, cash 0. d1 close A 10: equity 1000.
    # d1 w = [0, 1] -> d2 open A 12, B 24: V = 1200; sell 100 A @ 12 -> cash 1200, then
    #   buy 1200 / 24 = 50 B @ 24 -> cash 0. No shortfall: the sale paid for the buy.
    # d2 close B 30: 50 x 30 = 1500. d3 close B 20: 1000.
    bars = make_bars(
        {"A": [10.0, 10.0, 12.0, 12.0], "B": [24.0, 24.0, 24.0, 20.0]},
        {"A": [10.0, 10.0, 12.0, 12.0], "B": [24.0, 24.0, 30.0, 20.0]},
    )
    result, symbols = run(bars, {0: [1.0, 0.0], 1: [0.0, 1.0]}, initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1000.0, 1500.0, 1000.0],
        cash=[1000.0, 0.0, 0.0, 0.0],
        positions=[[0.0, 0.0], [100.0, 0.0], [0.0, 50.0], [0.0, 50.0]],
        fills=[
            (1, "A", "buy", 100.0, 10.0, 0.0, "rebalance"),
            (2, "A", "sell", 100.0, 12.0, 0.0, "rebalance"),
            (2, "B", "buy", 50.0, 24.0, 0.0, "rebalance"),
        ],
    )


# --------------------------------------------------------------------------- 5. shortfall


def test_buys_lacking_cash_are_scaled_down_together_and_the_shortfall_reported() -> None:
    # cash 1000, d0 w = [1, 1] (sum 2) -> d1 open A 10, B 25, V = 1000:
    #   wanted A 100 (1000), B 40 (1000): 2000 of buys for 1000 of cash -> both x 0.5:
    #   A 50 (500), B 20 (500), cash 0, shortfall 2000 - 1000 = 1000.
    # d1 close A 12, B 25: 600 + 500 = 1100. d2 close A 11, B 30: 550 + 600 = 1150.
    bars = make_bars(
        {"A": [10.0, 10.0, 11.0], "B": [25.0, 25.0, 30.0]},
        {"A": [10.0, 12.0, 11.0], "B": [25.0, 25.0, 30.0]},
    )
    result, symbols = run(bars, {0: [1.0, 1.0]}, initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1100.0, 1150.0],
        cash=[1000.0, 0.0, 0.0],
        positions=[[0.0, 0.0], [50.0, 20.0], [50.0, 20.0]],
        fills=[
            (1, "A", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (1, "B", "buy", 20.0, 25.0, 0.0, "rebalance"),
        ],
        shortfall=[0.0, 1000.0, 0.0],
    )


# --------------------------------------------------------------------------- 6. commission


def test_commission_is_paid_from_cash_with_a_minimum_per_order() -> None:
    # 10 bps, min 5 per order, cash 10000. d0 w = [0.8, 0.01] -> d1 open A 40, B 20, V = 10000:
    #   A 8000 / 40 = 200, notional 8000, fee 8; B 100 / 20 = 5, notional 100, fee
    #   max(0.1, 5) = 5. cash 10000 - 8000 - 8 - 100 - 5 = 1887.
    # d1 close A 42, B 20: 1887 + 8400 + 100 = 10387. d1 w = [0, NaN].
    # d2 open A 50: sell 200 @ 50 = 10000, fee 10 -> cash 1887 + 9990 = 11877.
    # d2 close B 22: 11877 + 110 = 11987. d3 close B 24: 11877 + 120 = 11997.
    bars = make_bars(
        {"A": [40.0, 40.0, 50.0, 50.0], "B": [20.0, 20.0, 22.0, 24.0]},
        {"A": [40.0, 42.0, 50.0, 50.0], "B": [20.0, 20.0, 22.0, 24.0]},
    )
    result, symbols = run(
        bars,
        {0: [0.8, 0.01], 1: [0.0, NAN]},
        commission_bps=10.0,
        min_commission=5.0,
        initial_cash=10_000.0,
    )
    assert_state(
        result,
        symbols,
        equity=[10_000.0, 10_387.0, 11_987.0, 11_997.0],
        cash=[10_000.0, 1887.0, 11_877.0, 11_877.0],
        positions=[[0.0, 0.0], [200.0, 5.0], [0.0, 5.0], [0.0, 5.0]],
        fills=[
            (1, "A", "buy", 200.0, 40.0, 8.0, "rebalance"),
            (1, "B", "buy", 5.0, 20.0, 5.0, "rebalance"),
            (2, "A", "sell", 200.0, 50.0, 10.0, "rebalance"),
        ],
        fees=[0.0, 13.0, 10.0, 0.0],
        costs=[0.0, 13.0, 10.0, 0.0],
    )
    assert result.metrics["total_costs"] == pytest.approx(23.0, rel=RTOL)


def test_sell_worth_less_than_its_minimum_fee_is_skipped_and_cash_stays_positive() -> None:
    # min 5 per order, no rate, cash 105. d0 w = 1 -> d1 open 10, V = 105: 10.5 shares cost
    #   105 + 5 = 110 > 105 -> scaled: 105 k + 5 <= 105, k = 100 / 105: 10 shares (100, fee
    #   5), cash 0, shortfall 105 - 100 = 5.
    # d1 close 10: 100. d1 w = 0.95.
    # d2 open 9.9: V = 99, target 0.95 x 99 / 9.9 = 9.5 -> sell 0.5 @ 9.9 = 4.95 < fee 5:
    #   skipped (4.95), 10 shares kept, cash 0 (paying the fee would leave -0.05).
    # d2 close 9.9: 99. d3 close 10: 100.
    # Skipped 4.95 of 104.95 ordered: 5% > 1%, a warning.
    bars = make_bars({"A": [10.0, 10.0, 9.9, 9.9]}, {"A": [10.0, 10.0, 9.9, 10.0]})
    result, symbols = run(bars, {0: [1.0], 1: [0.95]}, min_commission=5.0, initial_cash=105.0)
    assert_state(
        result,
        symbols,
        equity=[105.0, 100.0, 99.0, 100.0],
        cash=[105.0, 0.0, 0.0, 0.0],
        positions=[[0.0], [10.0], [10.0], [10.0]],
        fills=[(1, "A", "buy", 10.0, 10.0, 5.0, "rebalance")],
        fees=[0.0, 5.0, 0.0, 0.0],
        shortfall=[0.0, 5.0, 0.0, 0.0],
        skipped=[0.0, 0.0, 4.95, 0.0],
        warnings=[
            "trades worth 4.95 (5% of the notional ordered) were skipped, each one's fee above "
            "its value (see backtest.min_commission)"
        ],
    )
    assert (result.daily["cash"] >= 0).all()


def test_buy_worth_less_than_its_minimum_fee_is_skipped() -> None:
    # min 5 per order, cash 1000, fill at the close. d0 w = [0.5, 0.004] at A 10, B 20:
    #   A 500 / 10 = 50 shares (500, fee 5); B 4 / 20 = 0.2 shares, notional 4 < fee 5:
    #   skipped (4). cash 1000 - 505 = 495; equity 495 + 500 = 995.
    # d1 close A 11: 495 + 550 = 1045. Skipped 4 of 504 ordered: under 1%, no warning.
    bars = make_bars({"A": [10.0, 11.0], "B": [20.0, 20.0]}, {"A": [10.0, 11.0], "B": [20.0, 20.0]})
    result, symbols = run(
        bars, {0: [0.5, 0.004]}, fill="close", min_commission=5.0, initial_cash=1000.0
    )
    assert_state(
        result,
        symbols,
        equity=[995.0, 1045.0],
        cash=[495.0, 495.0],
        positions=[[50.0, 0.0], [50.0, 0.0]],
        fills=[(0, "A", "buy", 50.0, 10.0, 5.0, "rebalance")],
        fees=[5.0, 0.0],
        skipped=[4.0, 0.0],
    )


# --------------------------------------------------------------------------- 7. slippage


def test_slippage_moves_the_fill_price_against_the_trader() -> None:
    # 100 bps slippage, 10 bps commission, cash 10000.
    # d0 w = 0.5 -> d1 open 50: target 0.5 x 10000 / 50 = 100 (sized at the quoted price);
    #   buy at 50 x 1.01 = 50.5: notional 5050, fee 5.05, slippage 100 x 0.5 = 50;
    #   cash 10000 - 5050 - 5.05 = 4944.95; costs 55.05.
    # d1 close 55: 4944.95 + 5500 = 10444.95. d1 w = 0.
    # d2 open 60: sell 100 at 60 x 0.99 = 59.4: proceeds 5940, fee 5.94, slippage 60;
    #   cash 4944.95 + 5940 - 5.94 = 10879.01; costs 65.94. Flat afterwards.
    bars = make_bars({"A": [50.0, 50.0, 60.0, 60.0]}, {"A": [50.0, 55.0, 60.0, 62.0]})
    result, symbols = run(
        bars,
        {0: [0.5], 1: [0.0]},
        slippage_bps=100.0,
        commission_bps=10.0,
        initial_cash=10_000.0,
    )
    assert_state(
        result,
        symbols,
        equity=[10_000.0, 10_444.95, 10_879.01, 10_879.01],
        cash=[10_000.0, 4944.95, 10_879.01, 10_879.01],
        positions=[[0.0], [100.0], [0.0], [0.0]],
        fills=[
            (1, "A", "buy", 100.0, 50.5, 5.05, "rebalance"),
            (2, "A", "sell", 100.0, 59.4, 5.94, "rebalance"),
        ],
        fees=[0.0, 5.05, 5.94, 0.0],
        slippage=[0.0, 50.0, 60.0, 0.0],
        costs=[0.0, 55.05, 65.94, 0.0],
    )


# --------------------------------------------------------------------------- 8. participation


def test_participation_cap_fills_part_of_a_large_order() -> None:
    # participation 10%, cash 2000. d0 w = [0.5, 0.5] -> d1 open A 10, B 20, V = 2000:
    #   A wants 1000 / 10 = 100, cap 0.1 x 500 = 50 -> buys 50 (500); unfilled 50 x 10 = 500;
    #   B wants 1000 / 20 = 50, cap 0.1 x 10000 = 1000 -> buys 50 (1000). cash 500.
    # d1 close A 12, B 20: 500 + 600 + 1000 = 2100.
    # d2 close A 10, B 22: 500 + 500 + 1100 = 2100. (The unfilled rest is not carried.)
    bars = make_bars(
        {"A": [10.0, 10.0, 10.0], "B": [20.0, 20.0, 22.0]},
        {"A": [10.0, 12.0, 10.0], "B": [20.0, 20.0, 22.0]},
        volume={"A": [500.0, 500.0, 500.0], "B": [10_000.0, 10_000.0, 10_000.0]},
    )
    result, symbols = run(bars, {0: [0.5, 0.5]}, participation=0.1, initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2100.0, 2100.0],
        cash=[2000.0, 500.0, 500.0],
        positions=[[0.0, 0.0], [50.0, 50.0], [50.0, 50.0]],
        fills=[
            (1, "A", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (1, "B", "buy", 50.0, 20.0, 0.0, "rebalance"),
        ],
        unfilled=[0.0, 500.0, 0.0],
    )


def test_participation_cap_is_on_the_decision_sessions_volume_for_next_open() -> None:
    # participation 10%, cash 2000, volume A 500 / B NaN on d0 (the decision session), 5000
    # on d1 (the fill session, not known at the decision).
    # d0 w = [0.5, 0.5] -> d1 open A 10, B 20, V = 2000:
    #   A wants 100, cap 0.1 x 500 = 50 -> buys 50 (500), unfilled 50 x 10 = 500;
    #   B wants 50, no volume on d0: no room -> no trade, unfilled 50 x 20 = 1000. cash 1500.
    # d1, d2 close A 10, B 20: 1500 + 500 = 2000.
    bars = make_bars(
        {"A": [10.0] * 3, "B": [20.0] * 3},
        {"A": [10.0] * 3, "B": [20.0] * 3},
        volume={"A": [500.0, 5000.0, 5000.0], "B": [NAN, 5000.0, 5000.0]},
    )
    result, symbols = run(bars, {0: [0.5, 0.5]}, participation=0.1, initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2000.0, 2000.0],
        cash=[2000.0, 1500.0, 1500.0],
        positions=[[0.0, 0.0], [50.0, 0.0], [50.0, 0.0]],
        fills=[(1, "A", "buy", 50.0, 10.0, 0.0, "rebalance")],
        unfilled=[0.0, 1500.0, 0.0],
    )


def test_participation_cap_of_a_close_fill_is_on_the_previous_sessions_volume() -> None:
    # fill at the close (a market-on-close order: its session's volume is not known yet),
    # participation 10%, cash 2000, A at 10, volume 600 on d0, 5000 on d1 and d2.
    # d0 w = 1: no session before d0, no room -> no trade; unfilled 200 x 10 = 2000.
    # d1 w = 1: V = 2000, wants 200, cap 0.1 x 600 (d0) = 60 -> buys 60 (600), cash 1400;
    #   unfilled 140 x 10 = 1400. d1, d2: 1400 + 600 = 2000.
    bars = make_bars({"A": [10.0] * 3}, {"A": [10.0] * 3}, volume={"A": [600.0, 5000.0, 5000.0]})
    result, symbols = run(
        bars, {0: [1.0], 1: [1.0]}, fill="close", participation=0.1, initial_cash=2000.0
    )
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2000.0, 2000.0],
        cash=[2000.0, 1400.0, 1400.0],
        positions=[[0.0], [60.0], [60.0]],
        fills=[(1, "A", "buy", 60.0, 10.0, 0.0, "rebalance")],
        unfilled=[2000.0, 1400.0, 0.0],
    )


def test_participation_cap_volume_is_split_adjusted_on_an_ex_date() -> None:
    # next_close, participation 10%, cash 4000. d1 w = 1 (close 20, volume 400 pre-split).
    # d2 is a 2-for-1 ex-date: the d1 volume is 400 x 2 = 800 post-split shares; the fill at
    #   the d2 close 10: V = 4000, wants 400, cap 0.1 x 800 = 80 -> buys 80 (800), cash 3200;
    #   unfilled 320 x 10 = 3200. (The d2 volume, 3000, is not known before the fill.)
    # d2, d3 close 10: 3200 + 800 = 4000.
    bars = make_bars(
        {"A": [20.0, 20.0, 10.0, 10.0]},
        {"A": [20.0, 20.0, 10.0, 10.0]},
        volume={"A": [1000.0, 400.0, 3000.0, 3000.0]},
        split_ratio={"A": [1.0, 1.0, 2.0, 1.0]},
    )
    result, symbols = run(
        bars, {1: [1.0]}, fill="next_close", participation=0.1, initial_cash=4000.0
    )
    assert_state(
        result,
        symbols,
        equity=[4000.0] * 4,
        cash=[4000.0, 4000.0, 3200.0, 3200.0],
        positions=[[0.0], [0.0], [80.0], [80.0]],
        fills=[(2, "A", "buy", 80.0, 10.0, 0.0, "rebalance")],
        unfilled=[0.0, 0.0, 3200.0, 0.0],
    )


# --------------------------------------------------------------------------- 9. halt


def test_halted_symbol_does_not_trade_and_carries_at_its_last_close() -> None:
    # cash 1000. d0 w = [0.5, 0.5] -> d1 open A 10, B 25: qA = 50, qB = 20, cash 0.
    # d1 close A 12, B 25: 600 + 500 = 1100. d1 w = [0, 0.25].
    # d2: A halted (open and close NaN). V = 50 x 12 (last close) + 20 x 30 = 1200;
    #   A: no trade, keeps 50 (an order without a price: unpriced 1); B target
    #   0.25 x 1200 / 30 = 10 -> sell 10 @ 30, cash 300.
    # d2 close A NaN (marked 12), B 30: 300 + 600 + 300 = 1200.
    # d3 A trades again (its exit is not queued): close A 14, B 30: 300 + 700 + 300 = 1300.
    # One order of four found no price: 25% > 5%, a warning.
    bars = make_bars(
        {"A": [10.0, 10.0, NAN, 14.0], "B": [25.0, 25.0, 30.0, 30.0]},
        {"A": [10.0, 12.0, NAN, 14.0], "B": [25.0, 25.0, 30.0, 30.0]},
    )
    result, symbols = run(bars, {0: [0.5, 0.5], 1: [0.0, 0.25]}, initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1100.0, 1200.0, 1300.0],
        cash=[1000.0, 0.0, 300.0, 300.0],
        positions=[[0.0, 0.0], [50.0, 20.0], [50.0, 10.0], [50.0, 10.0]],
        fills=[
            (1, "A", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (1, "B", "buy", 20.0, 25.0, 0.0, "rebalance"),
            (2, "B", "sell", 10.0, 30.0, 0.0, "rebalance"),
        ],
        unpriced=[0.0, 0.0, 1.0, 0.0],
        warnings=["25% of orders (1 of 4) found no next_open price (halted or unlisted names?)"],
    )


# --------------------------------------------------------------------------- 10. delisting


def test_declared_delisting_closes_at_the_last_close_without_fee() -> None:
    # 10 bps commission, cash 1000. A's bars end on d2 (NaN on d3, d4), its declared
    # delisting date.
    # d0 w = [0.4, 0.4] -> d1 open A 10, B 20: qA = 400 / 10 = 40, qB = 400 / 20 = 20,
    #   fees 0.4 + 0.4; cash 1000 - 800 - 0.8 = 199.2.
    # d1 close A 12, B 20: 199.2 + 480 + 400 = 1079.2.
    # d2 close A 15 (its last): sold 40 @ 15, no fee (reason delisting): cash 799.2;
    #   B 22: 799.2 + 440 = 1239.2.
    # d3 B 25: 799.2 + 500 = 1299.2. d4 B 20: 799.2 + 400 = 1199.2.
    bars = make_bars(
        {"A": [10.0, 10.0, 14.0, NAN, NAN], "B": [20.0, 20.0, 21.0, 25.0, 20.0]},
        {"A": [10.0, 12.0, 15.0, NAN, NAN], "B": [20.0, 20.0, 22.0, 25.0, 20.0]},
    )
    result, symbols = run(
        bars,
        {0: [0.4, 0.4]},
        commission_bps=10.0,
        initial_cash=1000.0,
        delistings={"A": dates(5)[2], "B": pd.NaT},
    )
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1079.2, 1239.2, 1299.2, 1199.2],
        cash=[1000.0, 199.2, 799.2, 799.2, 799.2],
        positions=[[0.0, 0.0], [40.0, 20.0], [0.0, 20.0], [0.0, 20.0], [0.0, 20.0]],
        fills=[
            (1, "A", "buy", 40.0, 10.0, 0.4, "rebalance"),
            (1, "B", "buy", 20.0, 20.0, 0.4, "rebalance"),
            (2, "A", "sell", 40.0, 15.0, 0.0, "delisting"),
        ],
        fees=[0.0, 0.8, 0.0, 0.0, 0.0],
    )


def test_halt_across_the_last_session_is_held_and_marked_at_its_last_close() -> None:
    # The bars of the delisting case, but no delisting declared: A is halted from d3 to the
    # end of the panel, so it is held and marked at its last close 15, not sold.
    # 10 bps commission, cash 1000. d0 w = [0.4, 0.4] -> d1 open A 10, B 20: qA 40, qB 20,
    #   fees 0.8, cash 199.2. d1 close A 12, B 20: 199.2 + 480 + 400 = 1079.2.
    # d2 close A 15, B 22: 199.2 + 600 + 440 = 1239.2.
    # d3 A halted (marked 15), B 25: 199.2 + 600 + 500 = 1299.2. d3 w = [0, NaN]: A's exit
    #   cannot trade at d4's open (no price), the position carries.
    # d4 B 20: 199.2 + 600 + 400 = 1199.2; gross exposure (600 + 400) / 1199.2.
    bars = make_bars(
        {"A": [10.0, 10.0, 14.0, NAN, NAN], "B": [20.0, 20.0, 21.0, 25.0, 20.0]},
        {"A": [10.0, 12.0, 15.0, NAN, NAN], "B": [20.0, 20.0, 22.0, 25.0, 20.0]},
    )
    result, symbols = run(
        bars, {0: [0.4, 0.4], 3: [0.0, NAN]}, commission_bps=10.0, initial_cash=1000.0
    )
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1079.2, 1239.2, 1299.2, 1199.2],
        cash=[1000.0, 199.2, 199.2, 199.2, 199.2],
        positions=[[0.0, 0.0], [40.0, 20.0], [40.0, 20.0], [40.0, 20.0], [40.0, 20.0]],
        fills=[
            (1, "A", "buy", 40.0, 10.0, 0.4, "rebalance"),
            (1, "B", "buy", 20.0, 20.0, 0.4, "rebalance"),
        ],
        fees=[0.0, 0.8, 0.0, 0.0, 0.0],
        unpriced=[0.0, 0.0, 0.0, 0.0, 1.0],  # A's exit found no open on d4
        warnings=["33% of orders (1 of 3) found no next_open price (halted or unlisted names?)"],
    )
    close(result.daily["gross_exposure"].iloc[-1], 1000.0 / 1199.2)


def test_declared_delisting_on_a_halt_or_between_sessions() -> None:
    # Sessions Mon 2024-01-01 (d0) .. Fri 01-05 (d4), Mon 01-08 (d5); cash 900, no costs.
    # A: halted from d3, delisting declared d3 -> closed on d3 at its last close 15; a stray
    #   bar on d5 after its delisting takes no order (d4 w = 0.5 for A).
    # B: delisting declared Sat 01-06 (not a session) -> closed on d5 at its last close 24.
    # C: delisting declared after the panel: not known within it, held.
    # d0 w = 1/3 each -> d1 open 10, 20, 30: qA 30, qB 15, qC 10, cash 0; d1 close: 900.
    # d2 close A 15, B 20, C 30: 450 + 300 + 300 = 1050.
    # d3: sell 30 A @ 15 (delisting), cash 450; B 22, C 30: 450 + 330 + 300 = 1080.
    # d4 close B 24, C 33: 450 + 360 + 330 = 1140.
    # d5: sell 15 B @ 24 (delisting), cash 810; C 36: 810 + 360 = 1170.
    third = 1.0 / 3.0
    bars = make_bars(
        {
            "A": [10.0, 10.0, 15.0, NAN, NAN, 16.0],
            "B": [20.0, 20.0, 20.0, 22.0, 24.0, NAN],
            "C": [30.0, 30.0, 30.0, 30.0, 33.0, 36.0],
        },
        {
            "A": [10.0, 10.0, 15.0, NAN, NAN, 16.0],
            "B": [20.0, 20.0, 20.0, 22.0, 24.0, NAN],
            "C": [30.0, 30.0, 30.0, 30.0, 33.0, 36.0],
        },
    )
    delistings = {"A": "2024-01-04", "B": pd.Timestamp("2024-01-06"), "C": "2024-02-01"}
    result, symbols = run(
        bars, {0: [third] * 3, 4: [0.5, NAN, NAN]}, initial_cash=900.0, delistings=delistings
    )
    assert_state(
        result,
        symbols,
        equity=[900.0, 900.0, 1050.0, 1080.0, 1140.0, 1170.0],
        cash=[900.0, 0.0, 0.0, 450.0, 450.0, 810.0],
        positions=[
            [0.0, 0.0, 0.0],
            [30.0, 15.0, 10.0],
            [30.0, 15.0, 10.0],
            [0.0, 15.0, 10.0],
            [0.0, 15.0, 10.0],
            [0.0, 0.0, 10.0],
        ],
        fills=[
            (1, "A", "buy", 30.0, 10.0, 0.0, "rebalance"),
            (1, "B", "buy", 15.0, 20.0, 0.0, "rebalance"),
            (1, "C", "buy", 10.0, 30.0, 0.0, "rebalance"),
            (3, "A", "sell", 30.0, 15.0, 0.0, "delisting"),
            (5, "B", "sell", 15.0, 24.0, 0.0, "delisting"),
        ],
    )


def test_bad_delistings_name_the_symbol() -> None:
    bars = make_bars({"A": [10.0, 10.0]}, {"A": [10.0, 10.0]})
    with pytest.raises(ValueError, match="delistings: symbols not in the bars: Z"):
        run(bars, {0: [1.0]}, delistings={"Z": "2024-01-02"})
    with pytest.raises(ValueError, match="delistings: 'A': not a date: 'soon'"):
        run(bars, {0: [1.0]}, delistings={"A": "soon"})


# --------------------------------------------------------------------------- 11. split


def test_split_multiplies_shares_before_the_open_and_keeps_nav_continuous() -> None:
    # cash 2000. d0 w = 1 -> d1 open 20: q = 100, cash 0. d1 close 20: equity 2000.
    # d1 w = 0.5. d2 is a 2-for-1 ex-date: q = 200 before the open; open 10 (post-split):
    #   V = 200 x 10 = 2000 -> target 0.5 x 2000 / 10 = 100: sell 100 @ 10, cash 1000.
    # d2 close 10: 1000 + 100 x 10 = 2000 (= d1: no jump from the split).
    # d3 close 11: 1000 + 1100 = 2100.
    bars = make_bars(
        {"A": [20.0, 20.0, 10.0, 11.0]},
        {"A": [20.0, 20.0, 10.0, 11.0]},
        split_ratio={"A": [1.0, 1.0, 2.0, 1.0]},
    )
    result, symbols = run(bars, {0: [1.0], 1: [0.5]}, initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2000.0, 2000.0, 2100.0],
        cash=[2000.0, 0.0, 1000.0, 1000.0],
        positions=[[0.0], [100.0], [100.0], [100.0]],
        fills=[
            (1, "A", "buy", 100.0, 20.0, 0.0, "rebalance"),
            (2, "A", "sell", 100.0, 10.0, 0.0, "rebalance"),
        ],
    )


def test_split_alone_leaves_nav_unchanged() -> None:
    # cash 2000, fill at the close. d0 w = 1 at close 20: q = 100, cash 0; equity 2000.
    # d1 close 20: 2000. d2 ex-date of a 4-for-1 split: q = 400, close 5: 400 x 5 = 2000.
    # d3 close 6: 2400.
    bars = make_bars(
        {"A": [20.0, 20.0, 5.0, 6.0]},
        {"A": [20.0, 20.0, 5.0, 6.0]},
        split_ratio={"A": [1.0, 1.0, 4.0, 1.0]},
    )
    result, symbols = run(bars, {0: [1.0]}, fill="close", initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2000.0, 2000.0, 2400.0],
        cash=[0.0, 0.0, 0.0, 0.0],
        positions=[[100.0], [100.0], [400.0], [400.0]],
        fills=[(0, "A", "buy", 100.0, 20.0, 0.0, "rebalance")],
    )


# --------------------------------------------------------------------------- 12. dividend


def test_dividend_is_credited_to_cash_on_the_ex_date() -> None:
    # cash 2000. d0 w = 1 -> d1 open 20: q = 100, cash 0. d1 close 20: 2000.
    # d2 ex-date, dividend 0.5: cash += 100 x 0.5 = 50; close 19.5: 50 + 1950 = 2000.
    # d3 close 21: 50 + 2100 = 2150.
    bars = make_bars(
        {"A": [20.0, 20.0, 19.5, 21.0]},
        {"A": [20.0, 20.0, 19.5, 21.0]},
        dividend={"A": [0.0, 0.0, 0.5, 0.0]},
    )
    result, symbols = run(bars, {0: [1.0]}, initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2000.0, 2000.0, 2150.0],
        cash=[2000.0, 0.0, 50.0, 50.0],
        positions=[[0.0], [100.0], [100.0], [100.0]],
        fills=[(1, "A", "buy", 100.0, 20.0, 0.0, "rebalance")],
        dividends=[0.0, 0.0, 50.0, 0.0],
    )


def test_split_and_dividend_on_the_same_ex_date_pay_per_post_split_share() -> None:
    # cash 2000, fill at the close. d0 w = 1 at close 20: q = 100.
    # d1 ex-date of a 2-for-1 split and a 0.25 dividend (per post-split share):
    #   q = 200, cash += 200 x 0.25 = 50; close 9.75: 50 + 1950 = 2000.
    # d2 close 10: 50 + 2000 = 2050.
    bars = make_bars(
        {"A": [20.0, 9.75, 10.0]},
        {"A": [20.0, 9.75, 10.0]},
        split_ratio={"A": [1.0, 2.0, 1.0]},
        dividend={"A": [0.0, 0.25, 0.0]},
    )
    result, symbols = run(bars, {0: [1.0]}, fill="close", initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2000.0, 2050.0],
        cash=[0.0, 50.0, 50.0],
        positions=[[100.0], [200.0], [200.0]],
        fills=[(0, "A", "buy", 100.0, 20.0, 0.0, "rebalance")],
        dividends=[0.0, 50.0, 0.0],
    )


def test_split_on_a_halted_ex_date_marks_and_exposes_in_post_split_terms() -> None:
    # cash 2000, fill at the close. d0 w = 1 at 20: q = 100, cash 0; exposure 1.
    # d2 is a 2-for-1 ex-date without a bar: q = 200, marked 20 / 2 = 10: NAV 2000 and gross
    #   exposure 200 x 10 / 2000 = 1 (not 200 x 20 / 2000 = 2 from the raw last close).
    # d3 close 10.5: 2100, exposure 1.
    bars = make_bars(
        {"A": [20.0, 20.0, NAN, 10.5]},
        {"A": [20.0, 20.0, NAN, 10.5]},
        split_ratio={"A": [1.0, 1.0, 2.0, 1.0]},
    )
    result, symbols = run(bars, {0: [1.0]}, fill="close", initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0, 2000.0, 2000.0, 2100.0],
        cash=[0.0] * 4,
        positions=[[100.0], [100.0], [200.0], [200.0]],
        fills=[(0, "A", "buy", 100.0, 20.0, 0.0, "rebalance")],
        gross_exposure=[1.0, 1.0, 1.0, 1.0],
    )
    close(result.daily["net_exposure"], [1.0] * 4)


def test_dividend_on_a_halted_ex_date_marks_the_last_close_ex_dividend() -> None:
    # cash 2000, fill at the close. d0 w = 1 at 20: q = 100, cash 0.
    # d2 ex-date of a 0.5 dividend without a bar: cash 50, mark 20 - 0.5 = 19.5:
    #   NAV 50 + 1950 = 2000 (the dividend is not counted twice); exposure 1950 / 2000.
    # d3 close 19.5: 2000.
    bars = make_bars(
        {"A": [20.0, 20.0, NAN, 19.5]},
        {"A": [20.0, 20.0, NAN, 19.5]},
        dividend={"A": [0.0, 0.0, 0.5, 0.0]},
    )
    result, symbols = run(bars, {0: [1.0]}, fill="close", initial_cash=2000.0)
    assert_state(
        result,
        symbols,
        equity=[2000.0] * 4,
        cash=[0.0, 0.0, 50.0, 50.0],
        positions=[[100.0]] * 4,
        fills=[(0, "A", "buy", 100.0, 20.0, 0.0, "rebalance")],
        dividends=[0.0, 0.0, 50.0, 0.0],
        gross_exposure=[1.0, 1.0, 0.975, 0.975],
    )


# --------------------------------------------------------------------------- 13. stop loss


def test_stop_loss_exits_at_the_next_fill_after_a_close_10pct_below_the_entry_fill() -> None:
    # cash 1000. d0 w = 1 -> d1 open 50: q = 20 (entry 50, the fill price), cash 0.
    # stop at 50 x 0.9 = 45. d1 close 52: 1040. d2 close 46 > 45 (an entry at the d1 close 52
    # would stop at 46.8 and trigger here): 920. d3 close 45 <= 45: stop -> 900.
    # d4 open 44: sell 20 @ 44 = 880 (reason stop_loss); close 43: 880. d5: 880.
    bars = make_bars(
        {"A": [50.0, 50.0, 47.0, 45.0, 44.0, 40.0]},
        {"A": [50.0, 52.0, 46.0, 45.0, 43.0, 40.0]},
    )
    result, symbols = run(bars, {0: [1.0]}, stop_loss=StopLoss(0.10), initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1040.0, 920.0, 900.0, 880.0, 880.0],
        cash=[1000.0, 0.0, 0.0, 0.0, 880.0, 880.0],
        positions=[[0.0], [20.0], [20.0], [20.0], [0.0], [0.0]],
        fills=[
            (1, "A", "buy", 20.0, 50.0, 0.0, "rebalance"),
            (4, "A", "sell", 20.0, 44.0, 0.0, "stop_loss"),
        ],
        risk_events=[
            (3, "A", "stop_loss", "stop loss: close 45.00 <= 45.00 = entry 50.00 x (1 - 0.10)")
        ],
    )


def test_trailing_stop_exits_after_a_close_10pct_below_the_peak_close() -> None:
    # cash 1000. d0 w = 1 -> d1 open 50: q = 20, cash 0.
    # d1 close 60 (peak 60, trailing stop 54): 1200. d2 close 55 > 54: 1100.
    # d3 close 54 <= 54: stop (the fixed stop would be at 45) -> 1080.
    # d4 open 53: sell 20 @ 53 = 1060 (reason stop_loss); close 52: 1060. d5: 1060.
    bars = make_bars(
        {"A": [50.0, 50.0, 58.0, 55.0, 53.0, 50.0]},
        {"A": [50.0, 60.0, 55.0, 54.0, 52.0, 50.0]},
    )
    result, symbols = run(
        bars, {0: [1.0]}, stop_loss=StopLoss(0.10, trailing=True), initial_cash=1000.0
    )
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1200.0, 1100.0, 1080.0, 1060.0, 1060.0],
        cash=[1000.0, 0.0, 0.0, 0.0, 1060.0, 1060.0],
        positions=[[0.0], [20.0], [20.0], [20.0], [0.0], [0.0]],
        fills=[
            (1, "A", "buy", 20.0, 50.0, 0.0, "rebalance"),
            (4, "A", "sell", 20.0, 53.0, 0.0, "stop_loss"),
        ],
        risk_events=[
            (
                3,
                "A",
                "stop_loss",
                "trailing stop: close 54.00 <= 54.00 = peak 60.00 x (1 - 0.10)",
            )
        ],
    )


# --------------------------------------------------------------------------- 14. breaker


def test_circuit_breaker_halves_then_flattens_on_drawdowns() -> None:
    # cash 1000. The breaker starts ACTIVE at the d0 NAV (peak 1000).
    # d0 w = 1 -> d1 open 10: q = 100, cash 0. d1 close 10: 1000 (active).
    # d2 close 9: 900, drawdown 10% -> REDUCING: hold 100 x 9 / 900 = 100% x 0.5.
    # d3 open 9: V = 900, target 0.5 x 900 / 9 = 50 -> sell 50 @ 9 (circuit_breaker),
    #   cash 450; close 8: 450 + 400 = 850, drawdown 15% (reducing).
    # d4 close 7: 450 + 350 = 800, drawdown 20% -> HALTED: target 0.
    # d5 open 7: sell 50 @ 7 = 350 (circuit_breaker), cash 800; close 6: 800 (halted, 1st
    #   session of the 2-session cool-down).
    bars = make_bars(
        {"A": [10.0, 10.0, 9.5, 9.0, 7.5, 7.0]},
        {"A": [10.0, 10.0, 9.0, 8.0, 7.0, 6.0]},
    )
    breaker = CircuitBreaker(
        reduce_drawdown=0.10,
        reduce_to=0.5,
        halt_drawdown=0.20,
        max_daily_loss=None,
        recover_drawdown=0.05,
        cooldown_sessions=2,
    )
    result, symbols = run(bars, {0: [1.0]}, circuit_breaker=breaker, initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1000.0, 900.0, 850.0, 800.0, 800.0],
        cash=[1000.0, 0.0, 0.0, 450.0, 450.0, 800.0],
        positions=[[0.0], [100.0], [100.0], [50.0], [50.0], [0.0]],
        fills=[
            (1, "A", "buy", 100.0, 10.0, 0.0, "rebalance"),
            (3, "A", "sell", 50.0, 9.0, 0.0, "circuit_breaker"),
            (5, "A", "sell", 50.0, 7.0, 0.0, "circuit_breaker"),
        ],
        risk_events=[
            (2, "", "circuit_breaker", "drawdown 10.0% >= 10.0%: reduce exposure to 50%"),
            (4, "", "circuit_breaker", "drawdown 20.0% >= 20.0%: halt"),
        ],
        breaker=["active", "active", "reducing", "reducing", "halted", "halted"],
    )


# The breaker resumes: the book is back at the strategy's current targets the session after
# the transition (at once with close fills), not at the next rebalance.

HALT_BARS = {
    "open": {"A": [10.0, 10.0, 8.0, 8.0, 10.0, 10.0, 12.0],
             "B": [20.0, 20.0, 16.0, 16.0, 20.0, 20.0, 22.0]},
    "close": {"A": [10.0, 10.0, 8.0, 9.0, 10.0, 11.0, 12.0],
              "B": [20.0, 20.0, 16.0, 18.0, 20.0, 21.0, 22.0]},
}  # fmt: skip
HALT_ON_LOSS = CircuitBreaker(
    reduce_drawdown=None, halt_drawdown=None, max_daily_loss=0.10, cooldown_sessions=2
)
HALT_EVENTS = [
    (2, "", "circuit_breaker", "daily loss 20.0% >= 10.0%: halt"),
    (4, "", "circuit_breaker", "cool-down of 2 sessions over: resume"),
]
HALT_MODES = ["active", "active", "halted", "halted", "active", "active", "active"]


def test_breaker_resumes_to_the_targets_after_the_cooldown_next_open() -> None:
    # cash 1000, d0 w = [0.5, 0.5] (the only rebalance).
    # d1 open A 10, B 20: qA 50, qB 25, cash 0; close 10, 20: 1000.
    # d2 close 8, 16: 800, a 20% daily loss -> HALTED: targets 0.
    # d3 open 8, 16: sell 50 A (400) and 25 B (400), cash 800; close: 800 (1st halted session).
    # d4 close: 800, the 2nd halted session: cool-down over -> ACTIVE; the current targets
    #   [0.5, 0.5] are ordered at this close.
    # d5 open A 10, B 20: V = 800, qA 0.5 x 800 / 10 = 40, qB 0.5 x 800 / 20 = 20, cash 0;
    #   close A 11, B 21: 440 + 420 = 860, gross exposure 1.
    # d6 close A 12, B 22: 480 + 440 = 920.
    bars = make_bars(HALT_BARS["open"], HALT_BARS["close"])
    result, symbols = run(bars, {0: [0.5, 0.5]}, circuit_breaker=HALT_ON_LOSS, initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1000.0, 800.0, 800.0, 800.0, 860.0, 920.0],
        cash=[1000.0, 0.0, 0.0, 800.0, 800.0, 0.0, 0.0],
        positions=[
            [0.0, 0.0],
            [50.0, 25.0],
            [50.0, 25.0],
            [0.0, 0.0],
            [0.0, 0.0],
            [40.0, 20.0],
            [40.0, 20.0],
        ],
        fills=[
            (1, "A", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (1, "B", "buy", 25.0, 20.0, 0.0, "rebalance"),
            (3, "A", "sell", 50.0, 8.0, 0.0, "circuit_breaker"),
            (3, "B", "sell", 25.0, 16.0, 0.0, "circuit_breaker"),
            (5, "A", "buy", 40.0, 10.0, 0.0, "circuit_breaker"),
            (5, "B", "buy", 20.0, 20.0, 0.0, "circuit_breaker"),
        ],
        risk_events=HALT_EVENTS,
        breaker=HALT_MODES,
    )
    close(result.daily["gross_exposure"], [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0])


def test_breaker_resumes_to_the_targets_after_the_cooldown_close_fill() -> None:
    # cash 1000, fills at the close. d0 w = [0.5, 0.5] at close 10, 20: qA 50, qB 25.
    # d1 close: 1000. d2 close 8, 16: 800 -> HALTED: sell both at this close, cash 800.
    # d3: 800 (1st halted session). d4 close 10, 20: cool-down over -> ACTIVE: buy at this
    #   close, V = 800: qA 40, qB 20, cash 0; 800.
    # d5 close 11, 21: 860. d6 close 12, 22: 920.
    bars = make_bars(HALT_BARS["open"], HALT_BARS["close"])
    result, symbols = run(
        bars, {0: [0.5, 0.5]}, circuit_breaker=HALT_ON_LOSS, fill="close", initial_cash=1000.0
    )
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1000.0, 800.0, 800.0, 800.0, 860.0, 920.0],
        cash=[0.0, 0.0, 800.0, 800.0, 0.0, 0.0, 0.0],
        positions=[
            [50.0, 25.0],
            [50.0, 25.0],
            [0.0, 0.0],
            [0.0, 0.0],
            [40.0, 20.0],
            [40.0, 20.0],
            [40.0, 20.0],
        ],
        fills=[
            (0, "A", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (0, "B", "buy", 25.0, 20.0, 0.0, "rebalance"),
            (2, "A", "sell", 50.0, 8.0, 0.0, "circuit_breaker"),
            (2, "B", "sell", 25.0, 16.0, 0.0, "circuit_breaker"),
            (4, "A", "buy", 40.0, 10.0, 0.0, "circuit_breaker"),
            (4, "B", "buy", 20.0, 20.0, 0.0, "circuit_breaker"),
        ],
        risk_events=HALT_EVENTS,
        breaker=HALT_MODES,
    )
    close(result.daily["gross_exposure"], [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0])


RECOVER_BARS = {
    "open": {"A": [10.0, 10.0, 9.0, 9.0, 10.0, 13.0, 15.0],
             "B": [10.0, 10.0, 9.0, 9.0, 7.5, 8.0, 8.0]},
    "close": {"A": [10.0, 10.0, 9.0, 10.0, 12.0, 15.0, 16.0],
              "B": [10.0, 10.0, 9.0, 7.5, 8.0, 8.0, 8.0]},
}  # fmt: skip
REDUCE = CircuitBreaker(
    reduce_drawdown=0.10, reduce_to=0.5, halt_drawdown=None, max_daily_loss=None,
    recover_drawdown=0.05,
)  # fmt: skip
RECOVER_EVENTS = [
    (2, "", "circuit_breaker", "drawdown 10.0% >= 10.0%: reduce exposure to 50%"),
    (3, "B", "stop_loss", "stop loss: close 7.50 <= 8.00 = entry 10.00 x (1 - 0.20)"),
    (5, "", "circuit_breaker", "drawdown 0.0% <= 5.0%: recovered"),
]
RECOVER_MODES = ["active", "active", "reducing", "reducing", "reducing", "active", "active"]


def test_breaker_recovers_to_the_targets_less_stopped_names_next_open() -> None:
    # cash 1000, stop 20% from the entry, d0 w = [0.5, 0.5] (the only rebalance).
    # d1 open 10, 10: qA 50, qB 50 (entries 10), cash 0; close 10, 10: 1000 (peak).
    # d2 close 9, 9: 900, drawdown 10% -> REDUCING: held weights 0.5 each x 0.5 = 0.25.
    # d3 open 9, 9: V = 900, 25 shares each -> sell 25 A, 25 B @ 9, cash 450.
    #   close A 10, B 7.5: 450 + 250 + 187.5 = 887.5 (drawdown 11.25%); B's stop (7.5 <= 8).
    # d4 open B 7.5: sell 25 B (stop_loss), cash 637.5; close A 12: 637.5 + 300 = 937.5
    #   (drawdown 6.25%: still reducing).
    # d5 close A 15: 637.5 + 375 = 1012.5, a new peak -> ACTIVE; the current targets are A
    #   0.5, B 0 (the stop exited it since the rebalance: not bought back).
    # d6 open A 15: V = 1012.5, qA 0.5 x 1012.5 / 15 = 33.75 -> buy 8.75 (131.25), cash
    #   506.25; close A 16: 506.25 + 540 = 1046.25.
    bars = make_bars(RECOVER_BARS["open"], RECOVER_BARS["close"])
    result, symbols = run(
        bars, {0: [0.5, 0.5]}, stop_loss=StopLoss(0.20), circuit_breaker=REDUCE,
        initial_cash=1000.0,
    )  # fmt: skip
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1000.0, 900.0, 887.5, 937.5, 1012.5, 1046.25],
        cash=[1000.0, 0.0, 0.0, 450.0, 637.5, 637.5, 506.25],
        positions=[
            [0.0, 0.0],
            [50.0, 50.0],
            [50.0, 50.0],
            [25.0, 25.0],
            [25.0, 0.0],
            [25.0, 0.0],
            [33.75, 0.0],
        ],
        fills=[
            (1, "A", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (1, "B", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (3, "A", "sell", 25.0, 9.0, 0.0, "circuit_breaker"),
            (3, "B", "sell", 25.0, 9.0, 0.0, "circuit_breaker"),
            (4, "B", "sell", 25.0, 7.5, 0.0, "stop_loss"),
            (6, "A", "buy", 8.75, 15.0, 0.0, "circuit_breaker"),
        ],
        risk_events=RECOVER_EVENTS,
        breaker=RECOVER_MODES,
    )
    close(result.daily["gross_exposure"].iloc[-1], 540.0 / 1046.25)


def test_breaker_recovers_to_the_targets_less_stopped_names_close_fill() -> None:
    # As above with fills at the close. d0: qA 50, qB 50 at 10 (entries 10); d1: 1000.
    # d2 close 9, 9: 900 -> REDUCING: sell 25 A, 25 B @ 9 at this close, cash 450; 900.
    # d3 close A 10, B 7.5: B's stop -> sell 25 B @ 7.5, cash 637.5; 637.5 + 250 = 887.5.
    # d4 close A 12: 937.5. d5 close A 15: 1012.5 -> ACTIVE: A back to 0.5 at this close,
    #   33.75 shares: buy 8.75 @ 15, cash 506.25; 1012.5, gross exposure 0.5.
    # d6 close A 16: 506.25 + 540 = 1046.25.
    bars = make_bars(RECOVER_BARS["open"], RECOVER_BARS["close"])
    result, symbols = run(
        bars, {0: [0.5, 0.5]}, stop_loss=StopLoss(0.20), circuit_breaker=REDUCE, fill="close",
        initial_cash=1000.0,
    )  # fmt: skip
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1000.0, 900.0, 887.5, 937.5, 1012.5, 1046.25],
        cash=[0.0, 0.0, 450.0, 637.5, 637.5, 506.25, 506.25],
        positions=[
            [50.0, 50.0],
            [50.0, 50.0],
            [25.0, 25.0],
            [25.0, 0.0],
            [25.0, 0.0],
            [33.75, 0.0],
            [33.75, 0.0],
        ],
        fills=[
            (0, "A", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (0, "B", "buy", 50.0, 10.0, 0.0, "rebalance"),
            (2, "A", "sell", 25.0, 9.0, 0.0, "circuit_breaker"),
            (2, "B", "sell", 25.0, 9.0, 0.0, "circuit_breaker"),
            (3, "B", "sell", 25.0, 7.5, 0.0, "stop_loss"),
            (5, "A", "buy", 8.75, 15.0, 0.0, "circuit_breaker"),
        ],
        risk_events=RECOVER_EVENTS,
        breaker=RECOVER_MODES,
    )
    close(result.daily["gross_exposure"].iloc[5], 0.5)


# --------------------------------------------------------------------------- 15. NaN vs 0


def test_nan_weight_leaves_a_position_and_zero_exits_it() -> None:
    # cash 3000. d0 w = [0.5, 0.5, 0] -> d1 open A 10, B 20, C 30: qA 150, qB 75, cash 0.
    # d1 close A 12, B 20: 1800 + 1500 = 3300. d1 w = [NaN, 0, 0.5].
    # d2 open A 12, B 24, C 30: V = 1800 + 1800 = 3600. A (NaN): left at 150;
    #   B (0): sell 75 @ 24 = 1800, cash 1800; C: 0.5 x 3600 / 30 = 60 @ 30 = 1800, cash 0.
    # d2 close A 14, C 33: 2100 + 1980 = 4080. d3 close A 10, C 30: 1500 + 1800 = 3300.
    bars = make_bars(
        {"A": [10.0, 10.0, 12.0, 10.0], "B": [20.0, 20.0, 24.0, 20.0], "C": [30.0] * 4},
        {
            "A": [10.0, 12.0, 14.0, 10.0],
            "B": [20.0, 20.0, 25.0, 20.0],
            "C": [30.0, 30.0, 33.0, 30.0],
        },
    )
    result, symbols = run(bars, {0: [0.5, 0.5, 0.0], 1: [NAN, 0.0, 0.5]}, initial_cash=3000.0)
    assert_state(
        result,
        symbols,
        equity=[3000.0, 3300.0, 4080.0, 3300.0],
        cash=[3000.0, 0.0, 0.0, 0.0],
        positions=[
            [0.0, 0.0, 0.0],
            [150.0, 75.0, 0.0],
            [150.0, 0.0, 60.0],
            [150.0, 0.0, 60.0],
        ],
        fills=[
            (1, "A", "buy", 150.0, 10.0, 0.0, "rebalance"),
            (1, "B", "buy", 75.0, 20.0, 0.0, "rebalance"),
            (2, "B", "sell", 75.0, 24.0, 0.0, "rebalance"),
            (2, "C", "buy", 60.0, 30.0, 0.0, "rebalance"),
        ],
    )


# --------------------------------------------------------------------------- 16. metrics


def test_total_return_and_max_drawdown_on_a_hand_equity_curve() -> None:
    # cash 1000, fill at the close: d0 w = 1 at 10 -> q = 100.
    # closes 10, 12, 9, 15, 12 -> equity 1000, 1200, 900, 1500, 1200.
    # total return 1200 / 1000 - 1 = 0.2.
    # running peak 1000, 1200, 1200, 1500, 1500; falls 0, 0, 0.25, 0, 0.2 -> max 0.25.
    closes = [10.0, 12.0, 9.0, 15.0, 12.0]
    bars = make_bars({"A": closes}, {"A": closes})
    result, symbols = run(bars, {0: [1.0]}, fill="close", initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0, 1200.0, 900.0, 1500.0, 1200.0],
        cash=[0.0] * 5,
        positions=[[100.0]] * 5,
        fills=[(0, "A", "buy", 100.0, 10.0, 0.0, "rebalance")],
    )
    close(result.metrics["total_return"], 0.2)
    close(result.metrics["max_drawdown"], 0.25)
    assert result.metrics["max_drawdown_duration"] == 1.0  # d2 and d4, one session each


# --------------------------------------------------------------------------- 17. warnings


def test_close_only_bars_never_fill_next_open_and_say_so() -> None:
    # No opens: every next_open order finds no price. d0 and d2 decide [0.5, 0.5]: two
    # orders unpriced on d1, two on d3; nothing trades, cash stays 1000.
    closes = {"A": [10.0] * 4, "B": [20.0] * 4}
    bars = make_bars({"A": [NAN] * 4, "B": [NAN] * 4}, closes)
    rows = {0: [0.5, 0.5], 2: [0.5, 0.5]}
    result, symbols = run(bars, rows, initial_cash=1000.0)
    assert_state(
        result,
        symbols,
        equity=[1000.0] * 4,
        cash=[1000.0] * 4,
        positions=[[0.0, 0.0]] * 4,
        fills=[],
        unpriced=[0.0, 2.0, 0.0, 2.0],
        gross_exposure=[0.0] * 4,
        warnings=[
            "no fills: 4 orders found no next_open price (the data has no opens? use "
            "backtest.fill: next_close or close)"
        ],
    )
    # The same bars fill at the next close: d1 A 50, B 25; no warning.
    result, symbols = run(bars, rows, fill="next_close", initial_cash=1000.0)
    assert len(result.fills) == 2 and result.warnings == []


def test_a_backtest_that_never_trades_says_why() -> None:
    bars = make_bars({"A": [10.0] * 3}, {"A": [10.0] * 3})
    flat, _ = run(bars, {0: [0.0]}, initial_cash=1000.0)
    assert flat.warnings == ["no fills: the strategy never asked for a trade"]
    # min 200 per order on 100 of cash: the 100 buy is not worth its fee.
    costly, _ = run(bars, {0: [1.0]}, min_commission=200.0, initial_cash=100.0)
    close(costly.daily["skipped"], [0.0, 100.0, 0.0])
    assert costly.warnings == [
        "no fills: trades worth 100.00 were skipped, each one's fee above its value "
        "(backtest.min_commission too high for the capital?)"
    ]
    # Participation 10% at the close: no session before d0, and only 5 shares of volume on
    # d0 and d1 for 100 wanted: each order is capped to 0.5 shares, worth 5, under its fee.
    capped, _ = run(
        make_bars({"A": [10.0] * 3}, {"A": [10.0] * 3}, volume={"A": [5.0] * 3}),
        {0: [1.0], 1: [1.0], 2: [1.0]},
        fill="close",
        participation=0.1,
        min_commission=10.0,
        initial_cash=1000.0,
    )
    close(capped.daily["unfilled"], [1000.0, 995.0, 995.0])
    close(capped.daily["skipped"], [0.0, 5.0, 5.0])
    assert capped.warnings == [
        "no fills: trades worth 10.00 were skipped, each one's fee above its value "
        "(backtest.min_commission too high for the capital?); orders worth 2,990.00 were over "
        "the participation cap (backtest.participation; no volume in the session before the "
        "fill?)"
    ]


def test_cash_buffer_and_minimum_trade_value_of_the_limits() -> None:
    # cash 10000, buffer 5%, minimum trade 600, 10 bp commission, prices flat (A 30, B 40).
    # d0 w = [0.6, 0.4] -> d1 open: V = 10000, investable 9500: A 5700 / 30 = 190 (fee 5.70);
    #   B 3800 / 40 = 95 (fee 3.80): 9509.50, above the 9500 the buys may spend (cash less
    #   5% of V): both scaled by k = 9500 / 9509.5 (fractional shares); cash left: 500.
    #   The 9500 spent are notional and 10 bp fees: the positions are worth 9500 / 1.001.
    # d1 w = [0.6, 0.41] -> d2 open: V = 500 + 9500 / 1.001 = 9990.51, investable 9490.98:
    #   A 0.6 x 9490.98 / 30 = 189.8196 against 190 k = 189.8102: +0.0094 shares (0.28);
    #   B 0.41 x 9490.98 / 40 = 97.28 against 95 k = 94.905: +2.38 shares (95.1): both
    #   below the 600 minimum: not made, their notional reported skipped.
    bars = make_bars(
        {"A": [30.0, 30.0, 30.0], "B": [40.0, 40.0, 40.0]},
        {"A": [30.0, 30.0, 30.0], "B": [40.0, 40.0, 40.0]},
    )
    result, _ = run(
        bars, {0: [0.6, 0.4], 1: [0.6, 0.41]}, initial_cash=10_000.0, commission_bps=10.0,
        cash_buffer=0.05, min_trade_value=600.0,
    )  # fmt: skip
    k = 9500.0 / 9509.5
    held = [190 * k, 95 * k]
    assert result.daily["cash"].to_list() == pytest.approx([10_000.0, 500.0, 500.0], abs=1e-6)
    assert result.positions.iloc[1].to_list() == pytest.approx(held, rel=1e-12)
    assert result.positions.iloc[2].to_list() == pytest.approx(held, rel=1e-12)
    investable = (500.0 + 9500.0 / 1.001) * 0.95
    a_more = 0.6 * investable / 30 - held[0]
    b_more = 0.41 * investable / 40 - held[1]
    assert 0 < a_more * 30 < 600 and 0 < b_more * 40 < 600
    assert result.daily["skipped"].to_list() == pytest.approx(
        [0.0, 0.0, a_more * 30 + b_more * 40], rel=1e-9
    )
    assert len(result.fills) == 2

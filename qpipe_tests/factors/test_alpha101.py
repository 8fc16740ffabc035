"""Alpha101: declarations, shapes, point-in-time look-backs and hand-checked values."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from qpipe.data.schema import ACTION_COLUMNS, BAR_COLUMNS, MarketData, normalize
from qpipe.factors.alpha101 import ALPHA101, _corr, _cov
from qpipe.factors.inputs import FactorInputs
from qpipe.factors.lookahead import lookahead_violations
from qpipe.factors.operators import rank
from qpipe.factors.panel import build_inputs, compute
from qpipe.factors.registry import INPUT_FIELDS, FactorLibrary

NAMES = ALPHA101.names()
INDUSTRY = {48, 58, 59, 63, 67, 69, 70, 76, 79, 80, 82, 87, 89, 90, 91, 93, 97, 100}
NEEDS_INDUSTRY_OR_CAP = INDUSTRY | {56}


def random_market(n_symbols: int = 30, n_dates: int = 300, seed: int = 7) -> MarketData:
    """Random-walk bars with a few real-world wrinkles: a penny stock (its share volume exceeds
    its dollar volume), a symbol with a 15-session hole, one listed late, a split and a
    dividend."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_dates)
    symbols = [f"S{i:02d}" for i in range(n_symbols)]
    start = rng.uniform(10.0, 200.0, n_symbols)
    start[0] = 0.6
    steps = rng.normal(0.0, 0.02, (n_dates, n_symbols))
    close = start * np.exp(np.cumsum(steps, axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.01, close.shape))
    high = np.maximum(open_, close) * np.exp(np.abs(rng.normal(0.0, 0.01, close.shape)))
    low = np.minimum(open_, close) * np.exp(-np.abs(rng.normal(0.0, 0.01, close.shape)))
    volume = np.round(rng.lognormal(11.0, 0.5, close.shape))
    split_at = 150  # S05 splits 2-for-1: raw prices halve, raw volume doubles from here
    for arr in (open_, high, low, close):
        arr[split_at:, 5] /= 2.0
    volume[split_at:, 5] *= 2.0
    bars = pd.DataFrame(
        {
            "date": np.repeat(dates, n_symbols),
            "symbol": np.tile(symbols, n_dates),
            "open": open_.ravel(),
            "high": high.ravel(),
            "low": low.ravel(),
            "close": close.ravel(),
            "volume": volume.ravel(),
        }
    )
    hole = (bars["symbol"] == "S03") & bars["date"].between(dates[100], dates[114])
    late = (bars["symbol"] == "S04") & (bars["date"] < dates[60])
    bars = bars.loc[~(hole | late)]
    prev = close[199, 6]
    actions = pd.DataFrame(
        {
            "date": [dates[split_at], dates[200]],
            "symbol": ["S05", "S06"],
            "split_ratio": [2.0, 1.0],
            "dividend": [0.0, 1.5],
            "factor": [0.5, 1.0 - 1.5 / prev],
        }
    )
    return MarketData(normalize(bars, BAR_COLUMNS), normalize(actions, ACTION_COLUMNS))


MARKET = random_market()
DATES = pd.DatetimeIndex(np.unique(MARKET.bars["date"]))
CHECK_DATES = [DATES[-33], DATES[-17], DATES[-1]]


@pytest.fixture(scope="module")
def inputs() -> FactorInputs:
    return build_inputs(MARKET.bars, MARKET.actions)


@pytest.fixture(scope="module")
def full() -> xr.Dataset:
    return compute(MARKET, NAMES, library=ALPHA101)


def with_lookback(name: str, lookback: int) -> FactorLibrary:
    """A library holding only ``name``, declared with another look-back."""
    lib = FactorLibrary()
    lib.add(replace(ALPHA101[name], lookback=lookback))
    return lib


# --------------------------------------------------------------------------------------------
# Declarations


def test_declarations() -> None:
    assert len(ALPHA101) >= 40
    assert len(set(NAMES)) == len(NAMES)
    for f in ALPHA101:
        m = re.fullmatch(r"alpha(\d{3})", f.name)
        assert m, f.name
        number = int(m.group(1))
        assert 1 <= number <= 101 and number not in NEEDS_INDUSTRY_OR_CAP, f.name
        assert f.description.startswith(f"Alpha#{number}: "), f.description
        assert "(" in f.description and f.fn.__doc__, f.name
        assert set(f.inputs) <= set(INPUT_FIELDS) and f.inputs, f.name
        assert isinstance(f.lookback, int) and f.lookback >= 0


def test_every_qualifying_alpha_is_there() -> None:
    want = {f"alpha{i:03d}" for i in range(1, 102) if i not in NEEDS_INDUSTRY_OR_CAP}
    assert set(NAMES) == want


# --------------------------------------------------------------------------------------------
# Values on a random panel


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_coverage(name: str, inputs: FactorInputs) -> None:
    out = ALPHA101[name].fn(inputs)
    assert out.dims == ("date", "symbol")
    assert out.dtype == np.float64
    assert out.shape == inputs.close.shape
    values = out.values
    assert not np.isinf(values).any()
    after = values[ALPHA101[name].lookback + 1 :]
    assert np.isfinite(after).any(), "all NaN after the look-back"


@pytest.mark.parametrize("name", NAMES)
def test_lookback_invariance(name: str, full: xr.Dataset) -> None:
    """History cut to the declared look-back gives the full-history value."""
    assert lookahead_violations(MARKET, ALPHA101, [name], CHECK_DATES, full=full) == {}


@pytest.mark.parametrize("name", [n for n in NAMES if ALPHA101[n].lookback > 0])
def test_lookback_is_not_overstated(name: str, full: xr.Dataset) -> None:
    """One session less of history changes the value: the declared look-back is the exact one."""
    lib = with_lookback(name, ALPHA101[name].lookback - 1)
    assert lookahead_violations(MARKET, lib, [name], CHECK_DATES, full=full)


def test_the_check_catches_a_leak() -> None:
    lib = FactorLibrary()

    @lib.register("leak", lookback=0, inputs=("close",))
    def leak(x: FactorInputs) -> xr.DataArray:
        """Tomorrow's return (peeks ahead)."""
        return x.close.shift(date=-1) / x.close - 1.0

    assert "leak" in lookahead_violations(MARKET, lib, ["leak"], CHECK_DATES)


def test_window_statistics_ignore_earlier_history(inputs: FactorInputs) -> None:
    """Correlation and covariance of ranks depend on their window only, bit for bit (ties
    survive a shorter history), give 0 on a constant window and exactly +-1 over two
    sessions."""
    x, y = rank(inputs.high), rank(inputs.volume)
    for d in (2, 3, 5):
        for stat in (_corr, _cov):
            whole = stat(x, y, d).values[-40:]
            cut = stat(x[-60:], y[-60:], d).values[-40:]
            np.testing.assert_array_equal(whole, cut)
    two = _corr(x, y, 2).values
    assert set(np.unique(two[np.isfinite(two)])) <= {-1.0, 0.0, 1.0}
    flat = xr.full_like(x, 0.5)
    for stat in (_corr, _cov):
        v = stat(flat, y, 5).values
        assert ((v == 0.0) == np.isfinite(v)).all()  # 0, or NaN where volume has a hole
        assert (v[-1] == 0.0).mean() > 0.9


# --------------------------------------------------------------------------------------------
# Hand-checked values

TINY = {
    # symbol: open, high, low, close, volume over three sessions
    "A": ([10.0, 11.0, 12.0], [11.0, 12.5, 12.5], [9.5, 10.5, 11.0], [10.5, 12.0, 11.5],
          [100.0, 150.0, 120.0]),
    "B": ([20.0, 19.0, 21.0], [21.0, 20.0, 22.0], [19.0, 18.0, 20.0], [19.5, 19.0, 21.5],
          [300.0, 200.0, 250.0]),
    "C": ([30.0, 30.0, 30.0], [31.0, 30.5, 30.0], [29.0, 29.5, 30.0], [30.5, 30.0, 30.0],
          [50.0, 60.0, 70.0]),
}  # fmt: skip


def tiny_inputs(vwap: dict[str, list[float]] | None = None) -> FactorInputs:
    dates = pd.bdate_range("2024-01-02", periods=3)
    rows = []
    for sym, (o, h, lo, c, v) in TINY.items():
        for i, d in enumerate(dates):
            row = {"date": d, "symbol": sym, "open": o[i], "high": h[i], "low": lo[i]}
            row |= {"close": c[i], "volume": v[i]}
            if vwap is not None:
                row["vwap"] = vwap[sym][i]
            rows.append(row)
    return build_inputs(pd.DataFrame(rows))


def last(name: str, x: FactorInputs) -> dict[str, float]:
    out = ALPHA101[name].fn(x).isel(date=-1)
    return {str(s): float(v) for s, v in zip(out["symbol"].values, out.values, strict=True)}


def test_alpha101_by_hand() -> None:
    got = last("alpha101", tiny_inputs())
    assert got == pytest.approx({"A": -0.5 / 1.501, "B": 0.5 / 2.001, "C": 0.0})


def test_alpha012_by_hand() -> None:
    out = ALPHA101["alpha012"].fn(tiny_inputs())
    assert np.isnan(out.isel(date=0)).all()  # delta needs the previous session
    # sign(delta(volume, 1)) * -delta(close, 1) on the second and third sessions
    assert out.isel(date=1).values.tolist() == pytest.approx([-1.5, -0.5, 0.5])
    assert out.isel(date=2).values.tolist() == pytest.approx([-0.5, -2.5, -0.0])


def test_alpha041_by_hand() -> None:
    typical = last("alpha041", tiny_inputs())  # vwap = (high + low + close) / 3
    assert typical == pytest.approx(
        {
            "A": np.sqrt(12.5 * 11.0) - (12.5 + 11.0 + 11.5) / 3,
            "B": np.sqrt(22.0 * 20.0) - (22.0 + 20.0 + 21.5) / 3,
            "C": 0.0,
        }
    )
    real = last("alpha041", tiny_inputs({s: [0.0, 0.0, 11.9 + i] for i, s in enumerate(TINY)}))
    want = {"A": np.sqrt(137.5) - 11.9, "B": np.sqrt(440.0) - 12.9, "C": 30.0 - 13.9}
    assert real == pytest.approx(want)


def test_alpha054_by_hand() -> None:
    got = last("alpha054", tiny_inputs())
    assert got["A"] == pytest.approx(-1 * ((11.0 - 11.5) * 12.0**5) / ((11.0 - 12.5) * 11.5**5))
    assert got["B"] == pytest.approx(-1 * ((20.0 - 21.5) * 21.0**5) / ((20.0 - 22.0) * 21.5**5))
    assert np.isnan(got["C"])  # high == low: 0 / 0 is NaN, not inf


def test_alpha042_rank_ratio_by_hand() -> None:
    # vwap - close: A 1/6, B -1/3, C 0 -> ranks 1, 1/3, 2/3;
    # vwap + close: A 23.17, B 42.67, C 60 -> ranks 1/3, 2/3, 1
    got = last("alpha042", tiny_inputs())
    assert got == pytest.approx({"A": 3.0, "B": 0.5, "C": 2 / 3})


def test_comparisons_give_nan_on_nan() -> None:
    """alpha023's condition needs 20 sessions of high: before that the value is NaN, not the
    ``else`` branch (0)."""
    out = ALPHA101["alpha023"].fn(tiny_inputs())
    assert np.isnan(out.values).all()

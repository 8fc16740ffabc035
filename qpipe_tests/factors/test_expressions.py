"""Factor expressions: grammar, errors, look-back inference, evaluation, prefix invariance."""

from __future__ import annotations

import dataclasses
import math
import pickle

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qpipe.factors import operators as ops
from qpipe.factors.expressions import (
    BinOp,
    Call,
    ExpressionError,
    Name,
    Neg,
    Node,
    Num,
    compile_expression,
    library_from_expressions,
    parse,
    unparse,
)
from qpipe.factors.inputs import FactorInputs
from qpipe.factors.registry import FactorError, FactorLibrary

SYMBOLS = ["A", "B", "C", "D", "E", "F"]
SECTORS = ["tech", "tech", "energy", "energy", "", "tech"]
PANEL_FIELDS = [
    f.name
    for f in dataclasses.fields(FactorInputs)
    if f.init and f.name not in ("sector", "sessions_per_year")
]


def make_inputs(n_dates: int = 40, seed: int = 0, holes: bool = True) -> FactorInputs:
    """Random positive panels over ``n_dates`` x 6 symbols (a few NaN holes)."""
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-01", periods=n_dates, freq="B", name="date")
    coords = {"date": dates, "symbol": SYMBOLS}

    def panel(lo: float, hi: float) -> xr.DataArray:
        values = rng.uniform(lo, hi, (n_dates, len(SYMBOLS)))
        if holes:
            values[rng.random(values.shape) < 0.03] = np.nan
        return xr.DataArray(values, coords=coords, dims=("date", "symbol"))

    close = panel(10, 20)
    returns = close / close.shift(date=1) - 1.0
    return FactorInputs(
        open=panel(10, 20),
        high=panel(20, 21),
        low=panel(9, 10),
        close=close,
        volume=panel(1e5, 2e5),
        vwap=panel(10, 20),
        returns=returns,
        dollar_volume=panel(1e6, 2e6),
        sector=xr.DataArray(np.array(SECTORS, dtype=object), coords=[("symbol", SYMBOLS)]),
    )


def rows(inputs: FactorInputs, lo: int, hi: int) -> FactorInputs:
    """The inputs restricted to date rows ``[lo, hi)``."""
    cut = {f: getattr(inputs, f).isel(date=slice(lo, hi)) for f in PANEL_FIELDS}
    return FactorInputs(**cut, sector=inputs.sector)


def evaluate(text: str, inputs: FactorInputs) -> xr.DataArray:
    return compile_expression("f", text).fn(inputs)


@pytest.fixture(scope="module")
def inputs() -> FactorInputs:
    return make_inputs()


def tiny(values: list[list[float]]) -> xr.DataArray:
    data = np.array(values, dtype=float)
    dates = pd.date_range("2024-01-01", periods=data.shape[0], freq="B")
    symbols = [f"S{i}" for i in range(data.shape[1])]
    return xr.DataArray(data, coords={"date": dates, "symbol": symbols}, dims=("date", "symbol"))


def tiny_inputs(**panels: xr.DataArray) -> FactorInputs:
    """FactorInputs where the given fields are set and the others equal ``close``."""
    base = panels["close"]
    fields = {f: panels.get(f, base) for f in PANEL_FIELDS}
    sector = xr.DataArray(np.full(base.sizes["symbol"], "", dtype=object), dims=("symbol",))
    return FactorInputs(**fields, sector=sector.assign_coords(symbol=base.symbol))


# ---------------------------------------------------------------------------------------------
# Grammar

CL, OP, VO = Name("close"), Name("open"), Name("volume")


def call(func: str, *args: Node) -> Call:
    return Call(func, args)


def binop(op: str, left: Node, right: Node) -> BinOp:
    return BinOp(op, left, right)


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        ("1 + 2 * 3", binop("+", Num(1), binop("*", Num(2), Num(3)))),
        ("(1 + 2) * 3", binop("*", binop("+", Num(1), Num(2)), Num(3))),
        ("close - open - volume", binop("-", binop("-", CL, OP), VO)),
        ("close / open * volume", binop("*", binop("/", CL, OP), VO)),
        ("-close^2", Neg(binop("^", CL, Num(2)))),
        ("2^3^2", binop("^", Num(2), binop("^", Num(3), Num(2)))),
        ("close^-1", binop("^", CL, Neg(Num(1)))),
        ("--close", Neg(Neg(CL))),
        ("+close", CL),
        ("-close * open", binop("*", Neg(CL), OP)),
        ("close + open > volume * 2", binop(">", binop("+", CL, OP), binop("*", VO, Num(2)))),
        (
            "close > open && open < volume || volume == 1",
            binop(
                "||",
                binop("&&", binop(">", CL, OP), binop("<", OP, VO)),
                binop("==", VO, Num(1)),
            ),
        ),
        ("close or open and volume", binop("||", CL, binop("&&", OP, VO))),
        ("close != 1 || open >= 2", binop("||", binop("!=", CL, Num(1)), binop(">=", OP, Num(2)))),
        ("close > open ? 1 : -1", call("where", binop(">", CL, OP), Num(1), Neg(Num(1)))),
        ("close ? open : volume ? 1 : 2", call("where", CL, OP, call("where", VO, Num(1), Num(2)))),
        (
            "(close ? open : volume) ? 1 : 2",
            call("where", call("where", CL, OP, VO), Num(1), Num(2)),
        ),
        (
            "close ? open > 1 ? 2 : 3 : 4",
            call("where", CL, call("where", binop(">", OP, Num(1)), Num(2), Num(3)), Num(4)),
        ),
        (
            "rank(ts_mean(close, 20) / close)",
            call("rank", binop("/", call("ts_mean", CL, Num(20)), CL)),
        ),
        ("returns + returns(close, 5)", binop("+", Name("returns"), call("returns", CL, Num(5)))),
        ("neutralize(close, sector)", call("neutralize", CL, Name("sector"))),
        ("ts_mean(close, 1e1) * 1e-3", binop("*", call("ts_mean", CL, Num(10)), Num(0.001))),
        (".5 + 2. + 2E+2", binop("+", binop("+", Num(0.5), Num(2)), Num(200))),
        ("rank(adv20)", call("rank", Name("adv20"))),
        ("\trank(\n close )\n", call("rank", CL)),
        # operator names: case-insensitive, the paper's aliases, max(x, d) = ts_max(x, d)
        ("Ts_Rank(close, 5)", call("ts_rank", CL, Num(5))),
        ("correlation(close, open, 5)", call("ts_corr", CL, OP, Num(5))),
        ("SignedPower(close, 2)", call("signed_power", CL, Num(2))),
        ("IndNeutralize(close, sector)", call("neutralize", CL, Name("sector"))),
        ("max(close, 5)", call("ts_max", CL, Num(5))),
        ("min(close, 2 + 1)", call("ts_min", CL, binop("+", Num(2), Num(1)))),
        ("max(close, open)", call("max", CL, OP)),
    ],
)
def test_parse_trees(text: str, tree: object) -> None:
    node = parse(text)
    assert node == tree
    assert parse(unparse(node)) == node


def test_nodes_know_their_source_span() -> None:
    text = "rank(ts_mean(close, 20) / close) + -vwap"
    node = parse(text)
    assert isinstance(node, BinOp)
    assert (node.pos, node.end) == (0, len(text))
    call = node.left
    assert isinstance(call, Call)
    assert text[call.pos : call.end] == "rank(ts_mean(close, 20) / close)"
    ratio = call.args[0]
    assert text[ratio.pos : ratio.end] == "ts_mean(close, 20) / close"
    assert text[ratio.left.pos : ratio.left.end] == "ts_mean(close, 20)"  # type: ignore[attr-defined]
    assert text[node.right.pos : node.right.end] == "-vwap"
    text = "-(close + open) * 2"
    node = parse(text)
    assert isinstance(node, BinOp)
    assert isinstance(node.left, Neg)
    assert text[node.left.pos : node.left.end] == "-(close + open)"
    assert text[node.left.operand.pos : node.left.operand.end] == "(close + open)"


# ---------------------------------------------------------------------------------------------
# Evaluation semantics on tiny panels


def test_precedence_by_evaluation() -> None:
    x = tiny_inputs(close=tiny([[2.0, 3.0]]), open=tiny([[1.0, -2.0]]))
    np.testing.assert_allclose(evaluate("-close^2", x).values, [[-4.0, -9.0]])
    np.testing.assert_allclose(evaluate("2^3^2 + close", x).values, [[514.0, 515.0]])
    np.testing.assert_allclose(evaluate("close - open * 2", x).values, [[0.0, 7.0]])
    np.testing.assert_allclose(evaluate("(close - open) / 2", x).values, [[0.5, 2.5]])
    np.testing.assert_allclose(evaluate("close / open / 2", x).values, [[1.0, -0.75]])


def test_comparisons_and_logic_propagate_nan() -> None:
    nan = math.nan
    x = tiny_inputs(close=tiny([[1.0, 2.0, nan, 1.0]]), open=tiny([[2.0, 2.0, 1.0, nan]]))
    expected = {
        "close < open": [1, 0, nan, nan],
        "close <= open": [1, 1, nan, nan],
        "close > open": [0, 0, nan, nan],
        "close >= open": [0, 1, nan, nan],
        "close == open": [0, 1, nan, nan],
        "close != open": [1, 0, nan, nan],
        "close < 2 && open == 2": [1, 0, nan, nan],
        "close < 2 and open < 2": [0, 0, nan, nan],
        "close < 2 || open < 2": [1, 0, nan, nan],
        "close > 5 or open > 5": [0, 0, nan, nan],
        "close && 0": [0, 0, nan, 0],
    }
    for text, want in expected.items():
        got = evaluate(text, x)
        np.testing.assert_array_equal(got.values, [want], err_msg=text)


def test_ternary_is_where(inputs: FactorInputs) -> None:
    got = evaluate("close > open ? close : -open", inputs)
    cond = evaluate("close > open", inputs)
    want = ops.where(cond, inputs.close, -inputs.open)
    xr.testing.assert_allclose(got, want.rename("f"))
    assert np.isnan(got.values[cond.isnull().values]).all()


def test_division_by_zero_is_nan() -> None:
    x = tiny_inputs(close=tiny([[1.0, 0.0, -1.0]]))
    got = evaluate("1 / close + close / close", x)
    np.testing.assert_array_equal(got.values, [[2.0, np.nan, 0.0]])
    assert np.isnan(evaluate("1 / 0", x).values).all()


def test_constant_expression_is_a_panel_over_the_grid(inputs: FactorInputs) -> None:
    for text, value in [("3", 3.0), ("-2^2 + 10 / 4", -1.5), ("1 < 2 ? 7 : 8", 7.0)]:
        got = evaluate(text, inputs)
        assert got.dims == ("date", "symbol")
        assert got.shape == inputs.close.shape
        assert (got.values == value).all(), text
        xr.testing.assert_equal(got.date, inputs.close.date)


# ---------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize(
    ("text", "position", "fragments"),
    [
        ("rank(ts_mean(close, 20) / clos)", 26, ["unknown name 'clos'", "close"]),
        ("rank(close", 10, ["unexpected end", "'(' at position 4"]),
        ("(close + open", 13, ["unexpected end"]),
        ("close + ", 8, ["unexpected end"]),
        ("", 0, ["empty expression"]),
        ("close)", 5, ["unexpected ')'", "unbalanced"]),
        ("rank(close))", 11, ["unbalanced"]),
        ("close open", 6, ["unexpected name 'open'"]),
        ("rank(close,)", 11, ["unexpected ')'"]),
        ("close ? open", 12, ["unexpected end", "':'"]),
        ("close * / open", 8, ["unexpected '/'"]),
        ("close $ open", 6, ["unexpected character '$'"]),
        ("close & open", 6, ["'&&'"]),
        ("close = open", 6, ["'=='"]),
        ("close ** 2", 6, ["'^'"]),
        ("1.5e", 0, ["malformed number"]),
        ("close < open < vwap", 13, ["do not chain"]),
        ("cap", 0, ["unknown name 'cap'"]),
        ("rank(volme)", 5, ["unknown name 'volme'", "volume"]),
        ("rnak(close)", 0, ["unknown operator 'rnak'", "rank"]),
        ("ts_maen(close, 5)", 0, ["unknown operator 'ts_maen'", "ts_mean"]),
        ("close(5)", 0, ["'close' is an input"]),
        ("rank + 1", 0, ["'rank' is an operator"]),
        ("adv + 1", 0, ["adv20"]),
        ("adv0", 0, ["at least 1 day"]),
        ("ts_mean(close)", 0, ["ts_mean expects 2 arguments, got 1"]),
        ("rank(close, open)", 12, ["rank expects 1 argument, got 2"]),
        ("ts_corr(close, open)", 0, ["ts_corr expects 3 arguments, got 2"]),
        ("residualize()", 0, ["at least 1 argument, got 0"]),
        ("scale(close, 1, 2)", 16, ["scale expects 1 to 2 arguments, got 3"]),
        ("ts_mean(close, close)", 15, ["window", "got a panel"]),
        ("ts_mean(close, 0)", 15, ["window", "positive"]),
        ("delay(close, -3)", 13, ["window", "positive"]),
        ("ts_mean(close, 0.5)", 15, ["window", "positive"]),
        ("ts_mean(close, 0/0)", 15, ["window", "positive"]),
        ("ts_mean(20, close)", 8, ["argument 1 of ts_mean must be a panel", "number 20"]),
        ("rank(5)", 5, ["must be a panel"]),
        ("abs(-3)", 4, ["argument 1 of abs must be a panel", "-3"]),
        ("max(2, close)", 4, ["argument 1 of max must be a panel"]),
        ("max(close, 0)", 11, ["window", "positive"]),
        ("winsorize(close, 0.7)", 0, ["winsorize", "0.7"]),
        ("winsorize_mad(close, -1)", 0, ["winsorize_mad: k must be > 0"]),
        ("max(returns, 0)", 13, ["positive", "max(x, d) with a number d is ts_max(x, d)"]),
        ("(" * 300 + "close" + ")" * 300, 0, ["nested too deeply"]),
        ("signed_power(close, open)", 20, ["argument 2 of signed_power must be a number"]),
        ("neutralize(close, open)", 18, ["must be sector", "a panel"]),
        ("sector + 1", 0, ["sector", "neutralize"]),
        ("rank(sector)", 5, ["sector", "neutralize"]),
        ("neutralize(sector, sector)", 11, ["sector", "neutralize"]),
    ],
)
def test_errors_point_at_the_fault(text: str, position: int, fragments: list[str]) -> None:
    with pytest.raises(ExpressionError) as info:
        compile_expression("my_factor", text)
    err = info.value
    assert isinstance(err, FactorError)
    assert err.position == position
    message = str(err)
    for fragment in (*fragments, "my_factor", f"position {position}"):
        assert fragment in message
    source, caret = message.splitlines()[-2:]
    assert source == "    " + text
    assert caret.index("^") == 4 + position


def test_error_message_layout() -> None:
    with pytest.raises(ExpressionError) as info:
        parse("rank(ts_mean(close, 20) / clos)")
    assert str(info.value) == (
        "unknown name 'clos' (did you mean close?) at position 26 in expression:\n"
        "    rank(ts_mean(close, 20) / clos)\n"
        "                              ^^^^"
    )


def test_errors_pickle() -> None:
    err = ExpressionError("bad", "close + x", 8, 1, "f")
    back = pickle.loads(pickle.dumps(err))
    assert (back.position, back.factor, str(back)) == (8, "f", str(err))


def test_error_on_a_later_line_shows_that_line() -> None:
    text = "rank(close)\n  + ts_mean(vwap, 5)\n  - clos"
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.position == len(text) - 4
    message = str(info.value)
    assert "line 3, column 5" in message
    assert message.splitlines()[-2:] == ["      - clos", "        ^^^^"]


# ---------------------------------------------------------------------------------------------
# Look-back and inputs


@pytest.mark.parametrize(
    ("text", "lookback"),
    [
        ("close", 0),
        ("3", 0),
        ("rank(close)", 0),
        ("delay(close, 5)", 5),
        ("ts_mean(close, 20)", 19),
        ("ts_mean(delay(close, 5), 10)", 14),
        ("delta(close, 3) + ts_std(volume, 20)", 19),
        ("rank(adv20)", 19),
        ("adv1", 0),
        ("ts_corr(delta(close, 1), ts_mean(volume, 5), 10)", 13),
        ("decay_linear(ts_rank(returns(close, 2), 5), 4.9)", 2 + 4 + 3),
        ("ts_mean(close, 2 * 5) > open ? delay(vwap, 3) : ts_max(low, 7)", 9),
        ("neutralize(ts_zscore(close, 30), sector)", 29),
        ("residualize(returns, delay(returns, 1), ts_sum(returns, 5))", 5),
        ("ts_mean(close, 1)", 0),
        ("delay(delay(delay(close, 1), 1), 1)", 3),
    ],
)
def test_lookback_inference(text: str, lookback: int) -> None:
    assert compile_expression("f", text).lookback == lookback


def test_inputs_are_the_fields_used() -> None:
    f = compile_expression("f", "rank(vwap / close) + adv5 - returns + delta(returns(open, 1), 2)")
    assert f.inputs == ("open", "close", "vwap", "returns", "dollar_volume")
    assert compile_expression("g", "neutralize(volume, sector)").inputs == ("volume",)
    assert compile_expression("h", "1 + 2").inputs == ()


# ---------------------------------------------------------------------------------------------
# Evaluation equals the operators called directly


def test_evaluation_equals_direct_operator_calls(inputs: FactorInputs) -> None:
    x = inputs
    cases = {
        "rank(ts_mean(close, 5) / close)": ops.rank(ops.ts_mean(x.close, 5) / x.close),
        "ts_corr(vwap, volume, 6) * -1": ops.ts_corr(x.vwap, x.volume, 6) * -1,
        "decay_linear(delta(close, 2), 4.7)": ops.decay_linear(ops.delta(x.close, 2), 4),
        "neutralize(zscore(returns), sector)": ops.neutralize(ops.zscore(x.returns), x.sector),
        "scale(signed_power(returns, 2), 3)": ops.scale(ops.signed_power(x.returns, 2), 3),
        "residualize(returns, open, high)": ops.residualize(x.returns, x.open, x.high),
        "rank(adv5) - ts_rank(volume, 4)": ops.rank(x.adv(5)) - ops.ts_rank(x.volume, 4),
        "max(close, open) + min(open, vwap)": ops.max_(x.close, x.open) + ops.min_(x.open, x.vwap),
        "max(close, 3) - Min(open, 4.5)": ops.ts_max(x.close, 3) - ops.ts_min(x.open, 4),
        "close > open ? close : 0": ops.where(
            (x.close > x.open).astype(float).where(x.close.notnull() & x.open.notnull()),
            x.close,
            0.0,
        ),
        "log(high) ^ 0.5 + abs(returns) * sign(returns)": ops.log(x.high) ** 0.5
        + ops.abs_(x.returns) * ops.sign(x.returns),
        "returns(close, 3) + delay(low, 2)": ops.returns(x.close, 3) + ops.delay(x.low, 2),
    }
    for text, want in cases.items():
        got = evaluate(text, x)
        assert got.dims == ("date", "symbol")
        xr.testing.assert_allclose(got, want.transpose("date", "symbol").rename("f"))


def test_equal_subexpressions_are_evaluated_once(
    inputs: FactorInputs, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    spec = ops.OPERATORS["ts_mean"]
    real = spec.fn

    def counting(*args: object) -> xr.DataArray:
        calls.append(args)
        return real(*args)

    monkeypatch.setitem(ops.OPERATORS, "ts_mean", _with_fn(spec, counting))
    factor = compile_expression("f", "ts_mean(close, 5) / rank(ts_mean(close, 5))")
    calls.clear()  # compiling probes the operators on a 1 x 1 panel
    got = factor.fn(inputs)
    assert len(calls) == 1
    want = real(inputs.close, 5) / ops.rank(real(inputs.close, 5))
    xr.testing.assert_allclose(got, want.rename("f"))


def _with_fn(spec: ops.OperatorSpec, fn: object) -> ops.OperatorSpec:
    return dataclasses.replace(spec, fn=fn)


# ---------------------------------------------------------------------------------------------
# Factors and libraries


def test_compile_expression_gives_a_factor(inputs: FactorInputs) -> None:
    f = compile_expression("momentum_ratio", "rank(ts_mean(close, 20) / close)", "mean reversion")
    assert (f.name, f.description, f.lookback, f.inputs) == (
        "momentum_ratio",
        "mean reversion",
        19,
        ("close",),
    )
    out = f.fn(inputs)
    assert out.name == "momentum_ratio"
    assert out.dtype == np.float64
    assert compile_expression("g", "close * 2").description == "close * 2"


def test_library_from_expressions(inputs: FactorInputs) -> None:
    lib = library_from_expressions({"a": "rank(close)", "b": "ts_mean(volume, 3)"})
    assert isinstance(lib, FactorLibrary)
    assert lib.names() == ["a", "b"]
    assert lib["b"].lookback == 2
    assert len(library_from_expressions({})) == 0
    with pytest.raises(ExpressionError, match="factor 'b'") as info:
        library_from_expressions({"a": "rank(close)", "b": "rank(clsoe)"})
    assert info.value.factor == "b"
    with pytest.raises(FactorError, match="not an identifier"):
        library_from_expressions({"bad name": "close"})


# ---------------------------------------------------------------------------------------------
# Property: random well-formed expressions parse, evaluate, and respect their look-back

# Rolling kernels round differently on different histories, so the grammar avoids what a
# rounding difference would flip: comparing mathematically equal values (``abs(returns) >=
# returns``, ``ts_sum(x, 1) > x``, ``ts_std(ts_argmin(x, 4), 3) < 1``) and windows of a
# constant or of two points (``ts_corr(x, c ? x : 0, 3)``, ``ts_corr(x, y, 2)`` = ±1). The
# tolerance allows for cancellation in running sums over values of very different sizes
# (``ts_zscore(c ? vwap : adv3, 3)``); a look-back one session short fails far beyond it.
FIELD_NAMES = ["close", "open", "volume", "returns", "vwap", "adv3"]
WINDOWED = ["ts_mean", "ts_sum", "ts_std", "ts_min", "ts_max", "ts_rank", "ts_argmax"]
WINDOWED += ["ts_argmin", "decay_linear", "ts_zscore", "ts_product"]
SHIFTS = ["delay", "delta", "returns"]
UNARY = ["rank", "zscore", "demean", "scale", "sign", "winsorize", "log", "-"]
ARITHMETIC = ["+", "-", "*", "/", "&&", "||"]
COMPARE = ["<", ">=", ">", "!="]

numbers = st.sampled_from(["0", "1", "2", "0.5", "1e-3", "3.5"])
windows = st.sampled_from(["3", "4", "3.5"])  # 2 points: always correlate ±1, z-score ±0.71
shifts = st.sampled_from(["1", "2", "2.5"])
thresholds = st.sampled_from(["0.37", "-0.2", "1.3", "13.7"])  # no panel takes them exactly
field_pairs = st.lists(st.sampled_from(FIELD_NAMES), min_size=2, max_size=2, unique=True)


def _extend(panel: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("{}({}, {})".format, st.sampled_from(WINDOWED), panel, windows),
        st.builds("{}({}, {})".format, st.sampled_from(SHIFTS), panel, shifts),
        st.builds("{}({})".format, st.sampled_from(UNARY), panel),
        st.builds(lambda xy, d: f"ts_corr({xy[0]}, {xy[1]}, {d})", field_pairs, windows),
        st.builds("neutralize({}, sector)".format, panel),
        st.builds("({} {} {})".format, panel, st.sampled_from(ARITHMETIC), panel),
        st.builds("({} {} {})".format, panel, st.sampled_from(["*", "-", "^"]), numbers),
        st.builds("({} {} {})".format, panel, st.sampled_from(COMPARE), thresholds),
        st.builds("({} > {} ? {} : {})".format, panel, thresholds, panel, panel),
    )


HISTORY = make_inputs(n_dates=40, seed=1)
expressions = st.recursive(st.sampled_from(FIELD_NAMES), _extend, max_leaves=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=expressions, cutoff=st.integers(20, 39))
def test_random_expressions_respect_their_lookback(text: str, cutoff: int) -> None:
    factor = compile_expression("f", text)
    assume(factor.lookback <= cutoff)
    history = factor.fn(rows(HISTORY, 0, cutoff + 1))
    assert history.dims == ("date", "symbol")
    assert history.shape == (cutoff + 1, len(SYMBOLS))
    window = factor.fn(rows(HISTORY, cutoff - factor.lookback, cutoff + 1))
    np.testing.assert_allclose(
        window.values[-1], history.values[-1], rtol=1e-5, atol=1e-8, equal_nan=True, err_msg=text
    )

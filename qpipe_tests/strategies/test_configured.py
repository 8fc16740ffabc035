"""The strategies of the default configuration on the default synthetic market: the planted
momentum premium is found, every strategy is point in time, and bad strategy configs fail at
load with the key and the reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from qpipe.data.schema import MarketData
from qpipe.errors import ConfigError
from qpipe.factors.factory import to_long
from qpipe.factors.panel import compute
from qpipe.project import Project
from qpipe.settings import parse_settings
from qpipe.strategies.factory import build_strategies
from qpipe.strategies.lookahead import signal_lookahead_violations
from qpipe.strategies.signals import compute_signals, strategy_data

END = "2024-12-31"


@pytest.fixture(scope="module")
def default_run(tmp_path_factory: pytest.TempPathFactory):
    """The packaged default configuration's project, its market up to END, and the factors
    its strategies read."""
    project = Project.load(None, tmp_path_factory.mktemp("data"))
    market = project.source.fetch(project.history_start, END)
    names = sorted({f for s in project.strategies.values() for f in s.factors})
    panels = compute(market, names, sectors=project.sectors)
    factors = to_long(panels, market.bars)
    return project, market, factors


def test_default_config_ships_a_stock_and_an_etf_strategy(default_run):
    project, _, _ = default_run
    kinds = {type(s).__name__ for s in project.strategies.values()}
    assert kinds == {"LinearWeightedStrategy", "EtfRotationStrategy"}


def test_multi_factor_score_finds_the_planted_premium(default_run):
    """Mean monthly rank IC of the multi-factor score against the next month's return."""
    project, market, factors = default_run
    strategy = project.strategies["multi_factor"]
    data = strategy_data(market, factors, strategy.factors, project.instruments)
    score = strategy.score(data)
    close = data.bars.close
    month_ends = (
        pd.Series(close.indexes["date"]).groupby(close.indexes["date"].to_period("M")).max()
    )
    ics = []
    for now, nxt in zip(month_ends.iloc[12:-1], month_ends.iloc[13:], strict=True):
        forward = (close.sel(date=nxt) / close.sel(date=now) - 1.0).to_pandas()
        s = score.sel(date=now).to_pandas()
        ok = s.notna() & forward.notna()
        if ok.sum() > 30:
            ics.append(s[ok].rank().corr(forward[ok].rank()))
    ics = np.array(ics)
    t_stat = ics.mean() / ics.std(ddof=1) * np.sqrt(len(ics))
    assert len(ics) > 40
    assert ics.mean() > 0.02, ics.mean()
    assert t_stat > 2.0, t_stat


def test_every_configured_strategy_is_point_in_time(default_run):
    project, market, factors = default_run
    days = sorted(market.bars["date"].unique())
    start = days[300]  # after every look-back
    # Month ends (rebalances, where the hold band matters) and plain sessions.
    sample = [days[i] for i in (319, 340, 382, 420, len(days) - 1)]
    for name, strategy in project.strategies.items():
        full = compute_signals(
            strategy, market, factors, project.instruments, project.calendar, start
        )
        assert full["target_weight"].notna().any(), name
        bad = signal_lookahead_violations(
            strategy, market, factors, project.instruments, project.calendar, full, sample
        )
        assert bad == {}, (name, bad)


def test_a_leaking_strategy_is_caught(default_run):
    project, market, factors = default_run
    strategy = project.strategies["multi_factor"]

    class Leaky(type(strategy)):
        def score(self, data):
            # Tomorrow's return: perfect foresight.
            close = data.bars.close
            return (close.shift(date=-1) / close - 1.0).reindex(symbol=data.symbols)

    leaky = Leaky(
        "leaky",
        strategy.weights,
        universe=strategy.universe,
        portfolio=strategy.portfolio,
        rebalance="monthly",
    )
    days = sorted(market.bars["date"].unique())
    full = compute_signals(leaky, market, factors, project.instruments, project.calendar, days[300])
    bad = signal_lookahead_violations(
        leaky, market, factors, project.instruments, project.calendar, full, [days[340]]
    )
    assert "score" in bad


def test_signals_of_a_range_continue_from_the_previous_rebalance(default_run):
    """Computing the sessions in two pieces, the second starting from the first's last
    weights, gives the same rows as one run (the hold band's path is carried over)."""
    project, market, factors = default_run
    strategy = project.strategies["multi_factor"]
    days = sorted(market.bars["date"].unique())
    args = (strategy, market, factors, project.instruments, project.calendar)
    whole = compute_signals(*args, days[300], days[600])
    first = compute_signals(*args, days[300], days[450])
    decided = first.loc[first["target_weight"].notna()]
    previous = decided.loc[decided["date"] == decided["date"].max()].set_index("symbol")
    second = compute_signals(*args, days[451], days[600], previous["target_weight"])
    pd.testing.assert_frame_equal(
        pd.concat([first, second], ignore_index=True), whole.reset_index(drop=True)
    )
    held = whole.loc[whole["target_weight"] > 0].groupby("date")["target_weight"]
    assert (held.count() <= 20).all() and (held.sum() <= 1.0 + 1e-12).all()


LINEAR = {"kind": "linear", "params": {"factors": {"mom_12_1": 1.0}, "top_k": 10}}


def settings_with(params: dict, kind: str = "linear"):
    base = LINEAR["params"] if kind == "linear" else {"symbols": ["EMKT", "EGOLD"]}
    return parse_settings({"strategies": {"s": {"kind": kind, "params": {**base, **params}}}})


@pytest.mark.parametrize(
    ("params", "key", "reason"),
    [
        ({"factors": {"mom_12_1": "heavy"}}, "strategies.s.params.factors.mom_12_1", "number"),
        ({"threshold": -0.5}, "strategies.s.params.threshold", "greater than or equal to 0"),
        ({"top_k": 0}, "strategies.s.params.top_k", "greater than or equal to 1"),
        ({"top_quantile": 0.2}, "strategies.s.params", "top_k or top_quantile, not both"),
        ({"rebalance": "hourly"}, "strategies.s.params.rebalance", "'daily', 'weekly'"),
        ({"stop_loss": {"stop": 1.5}}, "strategies.s.params.stop_loss.stop", "less than 1"),
        ({"colour": "red"}, "strategies.s.params.colour", "unknown key"),
    ],
)
def test_bad_strategy_settings_fail_at_load(params, key, reason):
    with pytest.raises(ConfigError) as err:
        settings_with(params)
    assert key in str(err.value) and reason in str(err.value)


def strategy_settings(params: dict, kind: str = "linear"):
    return parse_settings({"strategies": {"s": {"kind": kind, "params": params}}})


ONE = {"factors": {"mom_12_1": 1.0}}
P = "strategies.s.params"
BREAKER_KEY = f"{P}.circuit_breaker"


@pytest.mark.parametrize(
    ("params", "kind", "key", "reason"),
    [
        # hold_band widens a top_k or top_quantile selection: without either it is ignored.
        ({**ONE, "hold_band": 2}, "linear", f"{P}.hold_band", "without top_k or top_quantile"),
        ({**ONE, "threshold": 0.5, "hold_band": 0.1}, "linear", f"{P}.hold_band", "without"),
        # With a selection, its unit: ranks (an integer) or a fraction of the names.
        ({**ONE, "top_k": 5, "hold_band": 1.5}, "linear", f"{P}.hold_band", "an integer"),
        ({**ONE, "top_quantile": 0.2, "hold_band": 1.5}, "linear", f"{P}.hold_band", "at most"),
        # vol_window sizes the volatility of inverse_vol weights only.
        ({**ONE, "vol_window": 20}, "linear", f"{P}.vol_window", "unless weighting is inv"),
        ({**ONE, "weighting": "score", "vol_window": 20}, "linear", f"{P}.vol_window", "unless"),
        # More factors required than there are: every score NaN, nothing ever selected.
        ({**ONE, "min_factors": 2}, "linear", f"{P}.min_factors", "more than the 1 factor"),
        # A zero weight leaves its factor out of the score.
        ({"factors": {"mom_12_1": 1.0, "vol_60": 0}}, "linear", f"{P}.factors.vol_60", "of 0"),
        # An explicit symbol list is the universe: kinds would be ignored.
        ({**ONE, "universe": {"symbols": ["S0001"], "kinds": ["etf"]}}, "linear",
         f"{P}.universe.kinds", "ignored with symbols"),
        # Weights sum to at most 1 (long only, no leverage): a gross above 1 never binds.
        ({**ONE, "max_gross": 1.5}, "linear", f"{P}.max_gross", "less than or equal to 1"),
        # The reduce trigger's parameters without the reduce trigger.
        ({**ONE, "circuit_breaker": {"reduce_drawdown": None, "reduce_to": 0.3}}, "linear",
         f"{BREAKER_KEY}.reduce_to", "ignored with reduce_drawdown null"),
        ({**ONE, "circuit_breaker": {"reduce_drawdown": None, "recover_drawdown": 0.01}},
         "linear", f"{BREAKER_KEY}.recover_drawdown", "ignored with reduce_drawdown null"),
        # The halt's cooldown without a halting trigger.
        ({**ONE, "circuit_breaker": {"halt_drawdown": None, "max_daily_loss": None,
                                     "cooldown_sessions": 3}}, "linear",
         f"{BREAKER_KEY}.cooldown_sessions", "ignored with halt_drawdown and max_daily_loss"),
        # No trigger at all: the breaker would never act.
        ({**ONE, "circuit_breaker": {"reduce_drawdown": None, "halt_drawdown": None,
                                     "max_daily_loss": None}}, "linear", BREAKER_KEY,
         "would never act"),
        # Rotation: at -inf the absolute-momentum filter and the defensive ETF never act (NaN
        # would send every pick to the defensive ETF).
        ({"symbols": ["EMKT", "EGOLD"], "defensive": "EBOND", "min_return": float("-inf")},
         "rotation", f"{P}.min_return", "finite"),
        ({"symbols": ["EMKT", "EGOLD"], "min_return": float("nan")}, "rotation",
         f"{P}.min_return", "finite"),
        # A return is always above -1 (-100%): the filter would never act either.
        ({"symbols": ["EMKT", "EGOLD"], "defensive": "EBOND", "min_return": -1.0}, "rotation",
         f"{P}.min_return", "greater than -1"),
        ({"symbols": ["EMKT"], "circuit_breaker": {"reduce_drawdown": None, "reduce_to": 0.3}},
         "rotation", f"{BREAKER_KEY}.reduce_to", "ignored with reduce_drawdown null"),
    ],
)  # fmt: skip
def test_ignored_strategy_settings_are_refused_at_load(params, kind, key, reason):
    with pytest.raises(ConfigError) as err:
        strategy_settings(params, kind)
    lines = [x.strip() for x in str(err.value).splitlines()]
    assert any(x.startswith(f"{key}: ") and reason in x for x in lines), lines


def test_unused_defaults_the_file_does_not_give_are_not_refused():
    # Each would be refused if written (see above); left to its default it loads.
    plain = strategy_settings({**ONE}).strategies["s"].params
    assert plain.vol_window == 60 and plain.hold_band == 0 and plain.weighting == "equal"
    listed = strategy_settings({**ONE, "universe": {"symbols": ["S0001"]}})
    assert listed.strategies["s"].params.universe.kinds == ["stock"]
    breaker = {"reduce_drawdown": None, "halt_drawdown": None}
    calm = strategy_settings({**ONE, "circuit_breaker": breaker})
    assert calm.strategies["s"].params.circuit_breaker.max_daily_loss == 0.05
    # Written where they are used, they load.
    used = {**ONE, "top_quantile": 0.2, "hold_band": 0.1, "weighting": "inverse_vol",
            "vol_window": 20, "min_factors": 1, "max_gross": 1.0}  # fmt: skip
    assert strategy_settings(used).strategies["s"].params.vol_window == 20


def test_a_dump_leaves_unused_keys_out_and_loads_again():
    settings = strategy_settings(
        {**ONE, "universe": {"symbols": ["S0001", "S0002"]},
         "circuit_breaker": {"reduce_drawdown": None}}
    )  # fmt: skip
    dumped = settings.model_dump(mode="json")
    params = dumped["strategies"]["s"]["params"]
    assert "vol_window" not in params and "hold_band" not in params
    assert "kinds" not in params["universe"]
    assert set(params["circuit_breaker"]) == {
        "reduce_drawdown", "halt_drawdown", "max_daily_loss", "cooldown_sessions"
    }  # fmt: skip
    assert parse_settings(dumped) == settings


def test_a_circuit_breaker_the_rule_refuses_names_the_section():
    # halt_drawdown (0.20 by default) must be above reduce_drawdown.
    settings = strategy_settings({**ONE, "circuit_breaker": {"reduce_drawdown": 0.3}})
    instruments = pd.DataFrame({"symbol": ["S0001", "S0002"], "kind": ["stock", "stock"]})
    with pytest.raises(ConfigError, match=rf"^{BREAKER_KEY}: CircuitBreaker: halt_drawdown"):
        build_strategies(settings, ["mom_12_1"], instruments)


def test_unknown_kind_and_bad_names_fail_at_load():
    with pytest.raises(
        ConfigError, match=r"strategies\.s\.kind: must be one of 'linear', 'rotation', got 'ml'"
    ):
        parse_settings({"strategies": {"s": {"kind": "ml", "params": {}}}})
    with pytest.raises(ConfigError, match="strategy name 'my strategy'"):
        parse_settings({"strategies": {"my strategy": LINEAR}})


@pytest.mark.parametrize(
    ("params", "kind", "message"),
    [
        ({"factors": {"momentum": 1.0}}, "linear", "params.factors.momentum: unknown factor"),
        ({"top_k": 500}, "linear", "params.top_k: 500 is larger than the universe (200"),
        ({"universe": {"symbols": ["NOPE"]}}, "linear", "params.universe.symbols: unknown"),
        ({"symbols": ["EMKT", "XXX"]}, "rotation", "params.symbols.1: unknown symbol 'XXX'"),
        ({"defensive": "CASH"}, "rotation", "params.defensive: unknown symbol 'CASH'"),
        ({"top_k": 3}, "rotation", "params.top_k: 3 is larger than the rotation universe (2"),
    ],
)
def test_strategies_checked_against_factors_and_instruments(default_run, params, kind, message):
    project, _, _ = default_run
    settings = settings_with(params, kind)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        build_strategies(settings, project.factor_names, project.instruments)


def test_strategy_data_puts_factors_on_the_bars_grid(default_run):
    _, market, factors = default_run
    cut = MarketData(market.bars.loc[market.bars["date"] >= "2020-06-01"], market.actions)
    few = factors.loc[factors["date"] >= "2020-06-15"]
    data = strategy_data(cut, few, ["mom_12_1"], pd.DataFrame({"symbol": [], "kind": []}))
    panel = data.factor("mom_12_1")
    assert panel.sizes == data.bars.close.sizes
    assert panel.sel(date=slice(None, "2020-06-12")).isnull().all()
    row = few.loc[few["date"] == "2020-06-15"].set_index("symbol")["mom_12_1"]
    got = panel.sel(date="2020-06-15").to_pandas().reindex(row.index)
    np.testing.assert_array_equal(got.to_numpy(), row.to_numpy())
    with pytest.raises(KeyError, match="no column 'nope'"):
        strategy_data(cut, few, ["nope"], pd.DataFrame({"symbol": [], "kind": []}))

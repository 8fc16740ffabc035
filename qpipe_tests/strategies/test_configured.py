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

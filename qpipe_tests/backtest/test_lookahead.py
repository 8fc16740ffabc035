"""The backtest's point-in-time guarantee on the default demo market and strategies: the
backtest over the data through session T equals, on every date up to T, the backtest over all
of it (equity, daily accounts, positions, fills; exactly), for sessions T chosen where the
data is messy: a held name halted across T, the eve and the day of a declared delisting of a
held name, a split of a held name, the circuit breaker's halt and its resume."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.lookahead import Difference, first_difference, lookahead_difference
from qpipe.backtest.result import BacktestResult
from qpipe.backtest.runner import run_backtest
from qpipe.factors.factory import library_for, to_long
from qpipe.factors.panel import compute
from qpipe.project import Project
from qpipe.strategies.risk import CircuitBreaker, StopLoss
from qpipe.strategies.signals import compute_signals
from qpipe_tests.backtest.test_reference import make_case
from qpipe_tests.conftest import demo_config

START, END = "2021-09-01", "2023-04-28"
"""A window of the default market in which the default multi_factor strategy holds two names
on their declared delistings, names halted across sessions and names through splits, and its
circuit breaker halts (a 7.3% daily loss) and resumes after its cool-down."""


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory):
    """The default strategies' signals and full backtests over the window."""
    tmp = tmp_path_factory.mktemp("pit")
    project = Project.load(demo_config(tmp / "c.yaml", START, END), tmp / "data")
    market = project.source.fetch(START, END)
    names = list(project.settings.factors.names or [])
    panels = compute(market, names, library=library_for(project.settings.factors),
                     sectors=project.sectors, calendar=project.calendar)  # fmt: skip
    factors = to_long(panels, market.bars)
    out = {}
    for name, strategy in project.strategies.items():
        signals = compute_signals(strategy, market, factors, project.instruments, project.calendar)
        full, _ = run_backtest(
            strategy, market, signals, project.settings.backtest, project.instruments,
            periods_per_year=project.calendar.sessions_per_year,
        )  # fmt: skip
        out[name] = (strategy, signals, full)
    return project, market, out


def halted_across(market, full: BacktestResult) -> list[pd.Timestamp]:
    """Sessions T on which a name held the session before has no bar but trades again after
    T (a halt across T: the data through T ends before T for that name)."""
    close = market.bars.pivot(index="date", columns="symbol", values="close")
    close = close.reindex(index=full.positions.index, columns=full.positions.columns)
    held = full.positions.shift(1).fillna(0.0).to_numpy() != 0
    missing = close.isna().to_numpy()
    resumes = np.flip(np.maximum.accumulate(np.flip(~missing, 0), 0), 0)  # a bar on or after
    resumes = np.vstack([resumes[1:], np.zeros((1, resumes.shape[1]), bool)])  # ... after T
    days = np.flatnonzero((held & missing & resumes).any(axis=1))
    return [full.positions.index[d] for d in days]


def test_backtest_through_t_equals_the_backtest_through_a_later_session(demo) -> None:
    project, market, runs = demo
    strategy, signals, full = runs["multi_factor"]
    sessions = full.equity.index
    halts = halted_across(market, full)
    delisted = full.fills.loc[full.fills["reason"] == "delisting", "date"]
    breaker = full.risk_events.loc[full.risk_events["rule"] == "circuit_breaker", "date"]
    splits = market.actions.loc[market.actions["split_ratio"] != 1.0]
    held_splits = [
        d for d, s in zip(splits["date"], splits["symbol"], strict=True)
        if d in full.positions.index and full.positions.at[d, s] != 0
    ]  # fmt: skip
    # The window is messy where it matters (else the test could not fail).
    assert halts and len(delisted) >= 2 and len(breaker) >= 2 and held_splits
    before_delisting = sessions[sessions.get_loc(delisted.iloc[0]) - 1]
    after_resume = sessions[sessions.get_loc(breaker.iloc[1]) + 1]
    chosen = {
        halts[0], halts[len(halts) // 2], before_delisting, delisted.iloc[0], delisted.iloc[1],
        breaker.iloc[0], breaker.iloc[1], after_resume, held_splits[0], sessions[100],
    }  # fmt: skip
    for name, (strategy, signals, full) in runs.items():
        for t in sorted(chosen):
            diff = lookahead_difference(strategy, market, signals, project.settings.backtest,
                                        project.instruments, full, t)  # fmt: skip
            assert diff is None, f"{name} through {t:%Y-%m-%d} differs on {diff}"


def test_first_difference_names_the_date_and_the_field(demo) -> None:
    _, _, runs = demo
    full = runs["etf_rotation"][2]
    traded = full.fills["date"].iloc[len(full.fills) // 2]  # a rebalance with holdings
    at = full.equity.index.get_loc(traded)
    day, end = full.equity.index[at], full.equity.index[at + 10]
    assert first_difference(full, full) is None
    shifted = full.daily.copy()
    shifted.loc[day:, "cash"] += 1.0
    changed = BacktestResult(full.equity.loc[:end], full.positions.loc[:end],
                             full.fills.loc[full.fills["date"] <= end], shifted.loc[:end],
                             full.risk_events)  # fmt: skip
    assert first_difference(full, changed) == Difference(day, ("daily.cash",))
    held = full.positions.loc[:end].copy()
    symbol = held.columns[held.loc[day].to_numpy() != 0][0]
    held.loc[day, symbol] += 1.0
    fewer = full.fills.loc[(full.fills["date"] <= end) & (full.fills["date"] != day)]
    moved = BacktestResult(full.equity.loc[:end], held, fewer, full.daily.loc[:end],
                           full.risk_events)  # fmt: skip
    fills_on_day = (full.fills["date"] == day).any()
    expected = (f"positions.{symbol}", "fills") if fills_on_day else (f"positions.{symbol}",)
    assert first_difference(full, moved) == Difference(day, expected)
    assert str(Difference(day, expected)).startswith(f"{day:%Y-%m-%d}: positions.{symbol}")


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    fill=st.sampled_from(["next_open", "next_close", "close"]),
    cut=st.floats(0.2, 0.95),
)
def test_engine_on_a_cut_panel_equals_the_whole_run_up_to_the_cut(seed, fill, cut) -> None:
    """Random panels (halts, one across the last sessions, a declared delisting, a split,
    dividends) with a stop loss and a breaker that reduces, halts and resumes often: the run
    on the panel cut at T equals the whole run up to T."""
    bars, target = make_case(seed, n_sym=6, n_days=50, delist_day=30, halt_frac=0.05)
    rules = {
        "stop_loss": StopLoss(0.05, trailing=True),
        "circuit_breaker": CircuitBreaker(reduce_drawdown=0.04, recover_drawdown=0.02,
                                          halt_drawdown=0.08, max_daily_loss=0.03,
                                          cooldown_sessions=2),
        "delistings": bars.attrs["delistings"],
    }  # fmt: skip
    engine = BacktestEngine(BacktestConfig(fill=fill, commission_bps=5.0))
    full = engine.run(bars, target, **rules)
    t = int(cut * (bars.sizes["date"] - 1))
    part = engine.run(bars.isel(date=slice(0, t + 1)), target.isel(date=slice(0, t + 1)), **rules)
    assert first_difference(full, part) is None

"""The engine's compiled fill step (:func:`qpipe.backtest.matching.execute`) on the shared
hand-computed sizing cases (:mod:`qpipe_tests.sizing_cases`), which the live planner's tests
use too: the same orders and the same cash after the fills."""

from __future__ import annotations

import numpy as np
import pytest

from qpipe.backtest import matching as m
from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.runner import engine_config
from qpipe.settings import parse_settings
from qpipe_tests.sizing_cases import CASES, SizingCase


def run_execute(case: SizingCase) -> tuple[dict[str, float], float, np.ndarray]:
    """One ``close`` fill of ``case`` through the engine's step: the signed shares traded
    per symbol, the cash after and the day's row of :data:`matching.DAILY_COLUMNS`."""
    symbols = sorted(set(case.prices) | set(case.held) | set(case.targets))
    n = len(symbols)
    price = np.array([case.prices.get(s, np.nan) for s in symbols])
    qty = np.array([float(case.held.get(s, 0.0)) for s in symbols])
    held = qty.copy()
    target = np.array([case.targets.get(s, np.nan) for s in symbols])
    day = price[None, :]
    market = (day, day, np.full((1, n), 1e9), np.ones((1, n)), np.zeros((1, n)),
              np.zeros(1, dtype=np.bool_), np.full(n, -1, dtype=np.int64))  # fmt: skip
    book = (qty, price.copy(), np.full(n, np.nan), np.array([case.cash, 0.0]), np.zeros(n),
            np.zeros(n, dtype=np.int64))  # fmt: skip
    daily = np.zeros((1, len(m.DAILY_COLUMNS)))
    ledger = np.zeros((2 * n, len(m.LEDGER_COLUMNS)))
    count = np.zeros(1, dtype=np.int64)
    cfg = BacktestConfig(
        fill="close",
        commission_bps=case.commission_rate * 1e4,
        min_commission=case.min_commission,
        slippage_bps=case.slippage_rate * 1e4,
        lot_size=case.lot_size,
        min_trade_value=case.min_trade_value,
        cash_buffer=case.cash_buffer,
    )
    params = m.params(cfg)
    reason = np.zeros(n, dtype=np.int64)
    m.execute(0, target, reason, price, market, book, daily, ledger, count, params)
    traded = {s: float(q - h) for s, q, h in zip(symbols, qty, held, strict=True) if q != h}
    return traded, float(book[3][m.CASH]), daily[0]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_engine_sizes_the_shared_cases(case: SizingCase) -> None:
    traded, cash, _ = run_execute(case)
    assert traded == pytest.approx(case.expected, abs=1e-9)
    assert cash == pytest.approx(case.cash_after, rel=1e-12)
    assert cash >= case.cash_buffer * case.nav - 1e-9


def test_engine_minimum_trade_value_and_buffer_apply() -> None:
    """The engine's step honours a minimum trade value and a cash buffer (its defaults are
    none): without them, the small C order of the shared case is made."""
    case = next(c for c in CASES if c.name == "min_trade_value_drops_a_small_order")
    plain = SizingCase(**{**case.__dict__, "min_trade_value": 0.0, "cash_buffer": 0.0})
    traded, _, _ = run_execute(plain)
    assert traded == {"A": 7_142.0, "C": 52.0}  # 50,000 / 7 = 7,142.9; 10,000 / 10.5 = 952.4


def test_the_backtest_reads_the_sizing_limits_of_the_settings() -> None:
    raw = {"limits": {"min_trade_value": 25.0, "cash_buffer": 0.02, "lot_size": 10}}
    cfg = engine_config(parse_settings(raw).backtest)
    assert (cfg.min_trade_value, cfg.cash_buffer, cfg.lot_size) == (25.0, 0.02, 10.0)
    plain = engine_config(parse_settings({}).backtest)
    assert (plain.min_trade_value, plain.cash_buffer, plain.lot_size) == (0.0, 0.0, None)

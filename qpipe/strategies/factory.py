"""Strategies from the configuration: each ``strategies.<name>`` entry becomes a strategy
object, checked against the factor library and the instruments (an unknown factor, a top-k
larger than the universe or an unknown symbol fails with the key and the reason)."""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from qpipe.errors import ConfigError
from qpipe.settings import (
    CircuitBreakerConfig,
    LinearParams,
    LinearStrategyConfig,
    RiskParams,
    RotationParams,
    Settings,
    StopLossConfig,
)
from qpipe.strategies.base import BaseStrategy, Universe
from qpipe.strategies.linear import LinearWeightedStrategy
from qpipe.strategies.portfolio import (
    EqualWeight,
    InverseVolatility,
    MaxGross,
    MaxWeight,
    MinChange,
    Portfolio,
    ScoreWeight,
    Step,
    Threshold,
    TopK,
    TopQuantile,
)
from qpipe.strategies.risk import CircuitBreaker, StopLoss
from qpipe.strategies.rotation import EtfRotationStrategy


def build_strategies(
    settings: Settings, factor_names: Iterable[str], instruments: pd.DataFrame
) -> dict[str, BaseStrategy]:
    """Every configured strategy by name, validated against ``factor_names`` (the factors the
    configuration computes) and ``instruments`` (symbol, kind)."""
    known = set(factor_names)
    out: dict[str, BaseStrategy] = {}
    for name, cfg in settings.strategies.items():
        key = f"strategies.{name}.params"
        if isinstance(cfg, LinearStrategyConfig):
            out[name] = _linear(name, cfg.params, key, known, instruments)
        else:
            out[name] = _rotation(name, cfg.params, key, instruments)
    return out


def _risk(params: RiskParams, key: str) -> dict[str, object]:
    """The risk rules of ``params``; a rule's own refusal (e.g. a ``halt_drawdown`` not above
    ``reduce_drawdown``) becomes a :class:`ConfigError` naming the section."""
    stop: StopLossConfig | None = params.stop_loss
    breaker: CircuitBreakerConfig | None = params.circuit_breaker
    try:
        circuit_breaker = CircuitBreaker(**breaker.model_dump()) if breaker else None
    except ValueError as exc:
        raise ConfigError(f"{key}.circuit_breaker: {exc}") from None
    return {
        "rebalance": params.rebalance,
        "stop_loss": StopLoss(stop.stop, stop.trailing) if stop else None,
        "circuit_breaker": circuit_breaker,
    }


def _linear(
    name: str, p: LinearParams, key: str, known: set[str], instruments: pd.DataFrame
) -> LinearWeightedStrategy:
    for factor in p.factors:
        if factor not in known:
            raise ConfigError(
                f"{key}.factors.{factor}: unknown factor (not computed by this configuration; "
                "see `qpipe factors list` and factors.names)"
            )
    universe = Universe(
        kinds=tuple(p.universe.kinds),
        symbols=tuple(p.universe.symbols) if p.universe.symbols else None,
    )
    size = _universe_size(universe, instruments, f"{key}.universe")
    if p.top_k is not None and p.top_k > size:
        raise ConfigError(f"{key}.top_k: {p.top_k} is larger than the universe ({size} symbols)")
    steps: list[Step] = []
    if p.top_k is not None:
        steps.append(TopK(p.top_k, int(p.hold_band)))
    elif p.top_quantile is not None:
        steps.append(TopQuantile(p.top_quantile, float(p.hold_band)))
    if p.threshold is not None:
        steps.append(Threshold(p.threshold))
    weigh = {"equal": EqualWeight, "score": ScoreWeight, "inverse_vol": InverseVolatility}
    steps.append(weigh[p.weighting]())
    if p.max_weight is not None:
        steps.append(MaxWeight(p.max_weight))
    steps.append(MaxGross(p.max_gross))
    if p.min_change > 0:
        steps.append(MinChange(p.min_change))
    return LinearWeightedStrategy(
        name,
        p.factors,
        winsorize_q=p.winsorize,
        min_factors=p.min_factors,
        universe=universe,
        portfolio=Portfolio(tuple(steps)),
        vol_window=p.vol_window,
        **_risk(p, key),
    )


def _rotation(
    name: str, p: RotationParams, key: str, instruments: pd.DataFrame
) -> EtfRotationStrategy:
    known = set(instruments["symbol"])
    for i, symbol in enumerate(p.symbols):
        if symbol not in known:
            raise ConfigError(f"{key}.symbols.{i}: unknown symbol {symbol!r}")
    if p.defensive is not None and p.defensive not in known:
        raise ConfigError(f"{key}.defensive: unknown symbol {p.defensive!r}")
    ranked = [s for s in p.symbols if s != p.defensive]
    if p.top_k > len(ranked):
        raise ConfigError(
            f"{key}.top_k: {p.top_k} is larger than the rotation universe ({len(ranked)} symbols)"
        )
    return EtfRotationStrategy(
        name,
        p.symbols,
        lookback=p.lookback,
        top_k=p.top_k,
        min_return=p.min_return,
        defensive=p.defensive,
        **_risk(p, key),
    )


def _universe_size(universe: Universe, instruments: pd.DataFrame, key: str) -> int:
    if universe.symbols is not None:
        missing = [s for s in universe.symbols if s not in set(instruments["symbol"])]
        if missing:
            raise ConfigError(f"{key}.symbols: unknown symbol(s) {', '.join(missing)}")
    size = len(universe.select(instruments))
    if size == 0:
        raise ConfigError(f"{key}: no instrument matches")
    return size

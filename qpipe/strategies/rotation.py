"""ETF rotation on momentum.

Each rebalance (monthly by default): rank the rotation ETFs by their total return over the
last ``lookback`` sessions (forward-adjusted close, so dividends count), hold the best
``top_k`` with equal weights; a holding whose return is below ``min_return`` (absolute
momentum) hands its slot to the ``defensive`` ETF, or to cash when there is none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import xarray as xr

from qpipe.factors.operators import delay
from qpipe.strategies.base import BaseStrategy, StrategyData, Universe
from qpipe.strategies.portfolio import Book, EqualWeight, Portfolio, Step, TopK


@dataclass(frozen=True)
class AbsoluteMomentum(Step):
    """Move the weight of chosen names whose score is below ``min_return`` to the
    ``defensive`` symbol, or to cash when it is None."""

    min_return: float
    defensive: str | None = None

    def __call__(self, book: Book) -> Book:
        if book.weight is None:
            raise ValueError("AbsoluteMomentum: needs a weigh step before it")
        w = book.weight.copy()
        with np.errstate(invalid="ignore"):
            weak = (w > 0) & ~(book.score >= self.min_return)
        moved = w[weak].sum()
        w[weak] = 0.0
        if self.defensive is not None and moved > 0:
            where = np.flatnonzero(np.asarray(book.symbols) == self.defensive)
            if len(where) == 0:
                raise ValueError(f"AbsoluteMomentum: defensive {self.defensive!r} not in the book")
            w[where[0]] += moved
        return replace(book, weight=w)


class EtfRotationStrategy(BaseStrategy):
    """Momentum rotation over ``symbols`` with an absolute-momentum filter."""

    def __init__(
        self,
        name: str,
        symbols: Sequence[str],
        *,
        lookback: int = 126,
        top_k: int = 3,
        min_return: float = 0.0,
        defensive: str | None = None,
        **kwargs: object,
    ) -> None:
        rotation = tuple(s for s in symbols if s != defensive)
        if not rotation:
            raise ValueError(f"strategy {name!r}: no rotation symbols")
        if lookback < 1:
            raise ValueError(f"strategy {name!r}: lookback must be >= 1, got {lookback}")
        members = rotation + ((defensive,) if defensive else ())
        steps: list[Step] = [TopK(top_k), EqualWeight()]
        steps.append(AbsoluteMomentum(min_return, defensive))
        kwargs.setdefault("rebalance", "monthly")
        super().__init__(
            name,
            universe=Universe(symbols=members),
            portfolio=Portfolio(steps),
            **kwargs,  # type: ignore[arg-type]
        )
        self.rotation = rotation
        self.defensive = defensive
        self.momentum_window = lookback
        self.top_k = top_k
        self.min_return = min_return

    @property
    def lookback(self) -> int:
        return self.momentum_window

    def score(self, data: StrategyData) -> xr.DataArray:
        """Total return over the last ``lookback`` sessions (NaN until that much history)."""
        close = data.bars.close
        return close / delay(close, self.momentum_window) - 1.0

    def ranking_score(self, score: xr.DataArray) -> xr.DataArray:
        """The defensive ETF is never ranked: it is held only through the absolute-momentum
        filter (its return is still reported as its score)."""
        if self.defensive is None or self.defensive not in score.indexes["symbol"]:
            return score
        return score.where(score.symbol != self.defensive)

"""Multi-factor linear weighting.

Per factor and per date, over the strategy's universe: winsorize at the ``winsorize``
quantiles, then z-score (mean 0, std 1, ddof 0). The score is ``sum_f w_f z_f / sum_f |w_f|``
over the factors available for that name that date (NaN z-scores are left out and the weights
re-normalised over the rest), and NaN when fewer than ``min_factors`` are available. A
negative weight favours low values of its factor.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import xarray as xr

from qpipe.factors.operators import winsorize, zscore
from qpipe.strategies.base import BaseStrategy, StrategyData


class LinearWeightedStrategy(BaseStrategy):
    """Scores = re-normalised signed combination of winsorized, z-scored factors."""

    def __init__(
        self,
        name: str,
        weights: Mapping[str, float],
        *,
        winsorize_q: float = 0.01,
        min_factors: int = 1,
        **kwargs: object,
    ) -> None:
        if not weights:
            raise ValueError(f"strategy {name!r}: needs at least one factor weight")
        for factor, w in weights.items():
            if isinstance(w, bool) or not isinstance(w, (int, float)) or not np.isfinite(w):
                raise ValueError(f"strategy {name!r}: weight of {factor!r} must be a number")
        if all(w == 0 for w in weights.values()):
            raise ValueError(f"strategy {name!r}: every factor weight is 0")
        super().__init__(name, **kwargs)  # type: ignore[arg-type]
        self.weights = {f: float(w) for f, w in weights.items()}
        self.factors = tuple(self.weights)
        self.winsorize_q = winsorize_q
        self.min_factors = min_factors

    def standardised(self, data: StrategyData, factor: str) -> xr.DataArray:
        """``factor`` over the universe, winsorized then z-scored per date."""
        symbols = [s for s in self.universe.select(data.instruments) if s in set(data.symbols)]
        panel = data.factor(factor).sel(symbol=symbols)
        return zscore(winsorize(panel, self.winsorize_q))

    def score(self, data: StrategyData) -> xr.DataArray:
        total = None
        norm = None
        count = None
        for factor, w in self.weights.items():
            if w == 0:
                continue
            z = self.standardised(data, factor)
            present = z.notnull()
            term = (z * w).fillna(0.0)
            total = term if total is None else total + term
            absw = present * abs(w)
            norm = absw if norm is None else norm + absw
            count = present * 1 if count is None else count + present
        assert total is not None and norm is not None and count is not None
        score = (total / norm).where(count >= self.min_factors)
        return score.reindex(symbol=data.symbols)

"""Portfolio construction: scores in, target weights out, through small single-purpose steps.

A :class:`Portfolio` runs its steps in order on one rebalance date's cross-section (a
:class:`Book`): *select* steps choose names (:class:`TopK`, :class:`TopQuantile`,
:class:`Threshold`), *weigh* steps give the chosen names weights (:class:`EqualWeight`,
:class:`ScoreWeight`, :class:`InverseVolatility`), *limit* steps bound them
(:class:`MaxWeight`, :class:`MaxGross`, :class:`MinChange`). Weights are fractions of the
portfolio's value, long only; whatever they leave below 1 is cash.

Limit steps come after every select and weigh step (a weigh step after them would undo them).
After the whole pipeline every weight is at most the tightest ``MaxWeight`` cap and the
weights sum to at most the tightest ``MaxGross`` (and never to more than 1), whatever the
order of the limit steps: ``MaxWeight`` never raises the total, ``MaxGross`` never raises a
weight, and ``MinChange`` keeps an old weight only where keeping it stays within the
portfolio's limits (:attr:`Book.max_weight`, :attr:`Book.max_gross`).

A name with a NaN score is not eligible that date (not in the universe, not listed, no data);
``Book.previous`` holds the weights decided at the previous rebalance, which the hold band and
the turnover buffer use (so construction is path dependent, through its own past decisions
only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np


@dataclass(frozen=True)
class Book:
    """One rebalance date's cross-section while it is being built (arrays share one symbol
    order)."""

    score: np.ndarray
    """Higher is better; NaN: not eligible today."""
    previous: np.ndarray
    """Weights decided at the previous rebalance (0 where none)."""
    volatility: np.ndarray | None = None
    """Annualised or daily volatility (any consistent unit) for inverse-volatility weights."""
    selected: np.ndarray | None = None
    """Chosen names (None until a select step ran: every eligible name)."""
    weight: np.ndarray | None = None
    """Target weights (None until a weigh step ran)."""
    symbols: np.ndarray | None = None
    """The symbols, for steps that name one (e.g. a defensive asset)."""
    max_weight: float = 1.0
    """The portfolio's cap on one weight (its tightest ``MaxWeight``; 1 without one)."""
    max_gross: float = 1.0
    """The portfolio's cap on the sum of the weights (its tightest ``MaxGross``, at most 1)."""

    @property
    def eligible(self) -> np.ndarray:
        return ~np.isnan(self.score)

    @property
    def chosen(self) -> np.ndarray:
        return self.eligible if self.selected is None else self.selected & self.eligible


class Step:
    """One construction step: ``Book -> Book``."""

    def __call__(self, book: Book) -> Book:  # pragma: no cover - interface
        raise NotImplementedError


def _descending_rank(score: np.ndarray) -> np.ndarray:
    """0-based position of each score from the best down (NaN last; ties by symbol order, so
    the result is deterministic)."""
    order = np.argsort(np.where(np.isnan(score), np.inf, -score), kind="stable")
    rank = np.empty(len(score), dtype=np.int64)
    rank[order] = np.arange(len(score))
    return rank


def _top(book: Book, k: int, band: int) -> Book:
    """The best ``k`` eligible names; with a hold band, names held at the previous rebalance
    stay while they rank within ``k + band``, and the rest of the ``k`` slots go to the best
    other names."""
    eligible = book.chosen
    rank = _descending_rank(np.where(eligible, book.score, np.nan))
    chosen = eligible & (rank < k)
    if band > 0:
        keep = eligible & (book.previous > 0) & (rank < k + band)
        if keep.sum() > k:  # more held names than slots (k was lowered): the best of them
            keep &= _descending_rank(np.where(keep, book.score, np.nan)) < k
        free = max(0, k - int(keep.sum()))
        newcomers = eligible & ~keep
        new_rank = _descending_rank(np.where(newcomers, book.score, np.nan))
        chosen = keep | (newcomers & (new_rank < free))
    return replace(book, selected=chosen)


@dataclass(frozen=True)
class TopK(Step):
    """Select the ``k`` best scores (fewer if fewer are eligible), with an optional hold band
    of ``hold_band`` ranks for names already held."""

    k: int
    hold_band: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise ValueError(f"TopK: k must be an integer >= 1, got {self.k!r}")
        if not isinstance(self.hold_band, int) or self.hold_band < 0:
            raise ValueError(f"TopK: hold_band must be an integer >= 0, got {self.hold_band!r}")

    def __call__(self, book: Book) -> Book:
        return _top(book, self.k, self.hold_band)


@dataclass(frozen=True)
class TopQuantile(Step):
    """Select the best fraction ``q`` of the eligible names (at least one), with an optional
    hold band of ``hold_band`` (a fraction of the eligible names) for names already held."""

    q: float
    hold_band: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 < self.q <= 1.0:
            raise ValueError(f"TopQuantile: q must be in (0, 1], got {self.q!r}")
        if not 0.0 <= self.hold_band <= 1.0:
            raise ValueError(f"TopQuantile: hold_band must be in [0, 1], got {self.hold_band!r}")

    def __call__(self, book: Book) -> Book:
        n = int(book.chosen.sum())
        if n == 0:
            return replace(book, selected=np.zeros(len(book.score), dtype=bool))
        k = max(1, int(np.ceil(self.q * n)))
        return _top(book, k, int(np.ceil(self.hold_band * n)))


@dataclass(frozen=True)
class Threshold(Step):
    """Keep the chosen names whose score is at least ``minimum``."""

    minimum: float

    def __call__(self, book: Book) -> Book:
        with np.errstate(invalid="ignore"):
            return replace(book, selected=book.chosen & (book.score >= self.minimum))


def _normalised(raw: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """``raw`` over the chosen names scaled to sum 1 (0 elsewhere; all 0 if nothing)."""
    w = np.where(chosen, raw, 0.0)
    total = w.sum()
    return w / total if total > 0 else np.zeros_like(w)


@dataclass(frozen=True)
class EqualWeight(Step):
    """``1 / n`` on each of the n chosen names."""

    def __call__(self, book: Book) -> Book:
        return replace(book, weight=_normalised(np.ones(len(book.score)), book.chosen))


@dataclass(frozen=True)
class ScoreWeight(Step):
    """Weights proportional to the score minus the lowest chosen score plus the spread's
    mean (so every chosen name gets a positive weight whatever the scores' sign); equal
    weights when the chosen scores are all equal."""

    def __call__(self, book: Book) -> Book:
        chosen = book.chosen
        if not chosen.any():
            return replace(book, weight=np.zeros(len(book.score)))
        s = book.score[chosen]
        spread = s - s.min()
        top = spread.max()
        if top <= 0:
            return EqualWeight()(book)
        spread = spread / top  # scale-free: a spread of denormals keeps a positive mean
        raw = np.zeros(len(book.score))
        raw[chosen] = spread + spread.mean()
        return replace(book, weight=_normalised(raw, chosen))


@dataclass(frozen=True)
class InverseVolatility(Step):
    """Weights proportional to ``1 / volatility``; chosen names without a positive finite
    volatility are dropped."""

    def __call__(self, book: Book) -> Book:
        if book.volatility is None:
            raise ValueError("InverseVolatility: the strategy gives no volatility")
        vol = book.volatility
        usable = book.chosen & np.isfinite(vol) & (vol > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            raw = np.where(usable, 1.0 / vol, 0.0)
        return replace(book, selected=usable, weight=_normalised(raw, usable))


class Limit(Step):
    """A limit step: bounds the weights a weigh step gave (comes after every select and weigh
    step)."""


def _weights(book: Book, step: str) -> np.ndarray:
    if book.weight is None:
        raise ValueError(f"{step}: needs a weigh step (EqualWeight, ScoreWeight, ...) before it")
    return book.weight


@dataclass(frozen=True)
class MaxWeight(Limit):
    """Cap every weight at ``cap``, handing the excess to the uncapped names in proportion to
    their weights (repeated until nothing exceeds the cap); what cannot be placed stays in
    cash (e.g. 3 names with a cap of 0.2 hold 60%)."""

    cap: float

    def __post_init__(self) -> None:
        if not 0.0 < self.cap <= 1.0:
            raise ValueError(f"MaxWeight: cap must be in (0, 1], got {self.cap!r}")

    def __call__(self, book: Book) -> Book:
        w = _weights(book, "MaxWeight").copy()
        total = w.sum()
        capped = np.zeros(len(w), dtype=bool)
        for _ in range(len(w) + 1):
            over = w > self.cap * (1 + 1e-12)
            if not over.any():
                break
            capped |= over
            w[capped] = self.cap
            free = (w > 0) & ~capped
            room = total - w[capped].sum()
            if not free.any() or room <= 0:
                break
            w[free] *= room / w[free].sum()
        return replace(book, weight=np.minimum(w, self.cap))


@dataclass(frozen=True)
class MaxGross(Limit):
    """Scale all weights down so that their sum is at most ``gross``."""

    gross: float

    def __post_init__(self) -> None:
        if not self.gross > 0:
            raise ValueError(f"MaxGross: gross must be > 0, got {self.gross!r}")

    def __call__(self, book: Book) -> Book:
        w = _weights(book, "MaxGross")
        total = np.abs(w).sum()
        return replace(book, weight=w * (self.gross / total) if total > self.gross else w)


@dataclass(frozen=True)
class MinChange(Limit):
    """Turnover buffer: a name whose weight would change by less than ``threshold``
    (absolute) keeps its previous weight, as far as the portfolio's limits allow; exits (a
    target of 0) always trade.

    Keeping a previous weight below the target (a small increase skipped) always fits. Keeping
    one above the target (a small reduction skipped) needs room: the previous weight must be
    at most :attr:`Book.max_weight`, and the weights must still sum to at most
    :attr:`Book.max_gross`; when the room does not take every small reduction, the smallest
    ones are skipped first (ties in symbol order) and the others trade to their target. The
    freed or used cash is not redistributed.
    """

    threshold: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.threshold < 1.0:
            raise ValueError(f"MinChange: threshold must be in [0, 1), got {self.threshold!r}")

    def __call__(self, book: Book) -> Book:
        target = _weights(book, "MinChange")
        previous = book.previous
        small = (np.abs(target - previous) < self.threshold) & (target > 0)
        w = np.where(small & (previous <= target), previous, target)
        # Small reductions cost room: keep the cheapest first while the total fits.
        down = np.flatnonzero(small & (previous > target) & (previous <= book.max_weight))
        cost = previous[down] - target[down]
        order = np.argsort(cost, kind="stable")
        room = book.max_gross - w.sum()
        fits = np.cumsum(cost[order]) <= room + 1e-12
        keep = down[order[fits]]
        w[keep] = previous[keep]
        return replace(book, weight=w)


@dataclass(frozen=True)
class Portfolio:
    """Steps run in order on each rebalance date; without a weigh step the chosen names are
    equally weighted at the end. Limit steps (:class:`Limit`) come last; their limits hold
    after the whole pipeline (see the module docstring)."""

    steps: Sequence[Step] = field(default_factory=lambda: (EqualWeight(),))

    def __post_init__(self) -> None:
        limit: Step | None = None
        for step in self.steps:
            if isinstance(step, Limit):
                limit = limit or step
            elif limit is not None:
                raise ValueError(
                    f"Portfolio: {type(step).__name__} after {type(limit).__name__}: select "
                    "and weigh steps come before the limit steps (MaxWeight, MaxGross, "
                    "MinChange), which they would undo"
                )

    @property
    def max_weight(self) -> float:
        """The tightest ``MaxWeight`` cap (1 without one)."""
        return min((s.cap for s in self.steps if isinstance(s, MaxWeight)), default=1.0)

    @property
    def max_gross(self) -> float:
        """The tightest ``MaxGross`` (1 without one: weights never sum above 1)."""
        return min([1.0, *(s.gross for s in self.steps if isinstance(s, MaxGross))])

    def build(
        self,
        score: np.ndarray,
        previous: np.ndarray | None = None,
        volatility: np.ndarray | None = None,
        symbols: np.ndarray | None = None,
    ) -> np.ndarray:
        """Target weights for one date's ``score`` (NaN = not eligible); ``previous``: the
        weights decided at the previous rebalance (NaN or None: none)."""
        score = np.asarray(score, dtype=np.float64)
        prev = np.zeros(len(score)) if previous is None else np.nan_to_num(previous, nan=0.0)
        book = Book(
            score=score,
            previous=prev,
            volatility=volatility,
            symbols=symbols,
            max_weight=self.max_weight,
            max_gross=self.max_gross,
        )
        for step in self.steps:
            book = step(book)
        if book.weight is None:
            book = EqualWeight()(book)
        assert book.weight is not None
        return book.weight

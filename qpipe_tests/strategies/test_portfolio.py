"""Portfolio construction steps on small hand-computed books, validation, and properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import event, example, given, settings
from hypothesis import strategies as st

from qpipe.strategies.portfolio import (
    Book,
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

NAN = np.nan
T, F = True, False
SYMBOLS = np.array(["A", "B", "C", "D", "E", "F"])
# Ranks from the best: B (0.9), F (0.7), D (0.5), A (0.3), E (0.1); C is not eligible.
SCORE = [0.3, 0.9, NAN, 0.5, 0.1, 0.7]


def book(
    score: list[float],
    previous: list[float] | None = None,
    volatility: list[float] | None = None,
    weight: list[float] | None = None,
) -> Book:
    n = len(score)
    return Book(
        score=np.array(score, dtype=float),
        previous=np.zeros(n) if previous is None else np.array(previous, dtype=float),
        volatility=None if volatility is None else np.array(volatility, dtype=float),
        weight=None if weight is None else np.array(weight, dtype=float),
        symbols=SYMBOLS[:n] if n <= len(SYMBOLS) else None,
    )


def selected(step: Step, b: Book) -> np.ndarray:
    out = step(b)
    assert out.selected is not None
    assert out.selected.dtype == bool
    return out.selected


def weights(step: Step, b: Book) -> np.ndarray:
    out = step(b)
    assert out.weight is not None
    return out.weight


def build(steps: list[Step], score: list[float], **kwargs: object) -> np.ndarray:
    return Portfolio(steps).build(np.array(score, dtype=float), **kwargs)  # type: ignore[arg-type]


# --- TopK ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "expected"),
    [
        (1, [F, T, F, F, F, F]),
        (2, [F, T, F, F, F, T]),
        (3, [F, T, F, T, F, T]),
        (4, [T, T, F, T, F, T]),
        (5, [T, T, F, T, T, T]),
    ],
)
def test_topk_picks_the_k_best(k: int, expected: list[bool]) -> None:
    np.testing.assert_array_equal(selected(TopK(k), book(SCORE)), expected)


def test_topk_never_picks_nan_even_with_fewer_eligible_than_k() -> None:
    b = book([NAN, NAN, 1.0, NAN, 2.0, NAN])
    for k in (2, 3, 6, 10):
        np.testing.assert_array_equal(selected(TopK(k), b), [F, F, T, F, T, F])
    np.testing.assert_array_equal(selected(TopK(10), book(SCORE)), [T, T, F, T, T, T])
    np.testing.assert_array_equal(selected(TopK(3), book([NAN] * 5)), [F] * 5)


def test_topk_breaks_ties_by_symbol_order() -> None:
    b = book([1.0, 2.0, 2.0, 2.0, 0.0, NAN])
    np.testing.assert_array_equal(selected(TopK(1), b), [F, T, F, F, F, F])
    np.testing.assert_array_equal(selected(TopK(2), b), [F, T, T, F, F, F])
    np.testing.assert_array_equal(selected(TopK(3), b), [F, T, T, T, F, F])
    np.testing.assert_array_equal(selected(TopK(4), b), [T, T, T, T, F, F])
    flat = book([-1.0] * 6)
    np.testing.assert_array_equal(selected(TopK(3), flat), [T, T, T, F, F, F])
    # Deterministic: the same input always gives the same choice.
    for _ in range(5):
        np.testing.assert_array_equal(selected(TopK(2), b), [F, T, T, F, F, F])


def test_topk_respects_an_earlier_selection() -> None:
    # Threshold(0.6) leaves B and F: TopK(3) cannot add D or A back.
    np.testing.assert_array_equal(
        selected(TopK(3), Threshold(0.6)(book(SCORE))), [F, T, F, F, F, T]
    )
    # Threshold(0.3) leaves A, B, D, F: TopK(3) keeps B, F, D.
    np.testing.assert_array_equal(
        selected(TopK(3), Threshold(0.3)(book(SCORE))), [F, T, F, T, F, T]
    )


def test_topk_then_equal_weight_through_portfolio() -> None:
    np.testing.assert_allclose(
        build([TopK(3), EqualWeight()], SCORE), [0, 1 / 3, 0, 1 / 3, 0, 1 / 3], atol=1e-15
    )


# --- TopK hold band -----------------------------------------------------------------------

# Scores A..F from the best down: rank 0 = A, ..., rank 5 = F.
RANKED = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]


@pytest.mark.parametrize(
    ("held", "expected"),
    [
        # Held C ranks k+1 (within k + band): stays; the best newcomer A fills the other slot.
        ("C", [T, F, T, F, F, F]),
        # Held D ranks k+2 = the last rank inside the band: stays.
        ("D", [T, F, F, T, F, F]),
        # Held E ranks k+3, beyond the band: leaves; the plain top 2.
        ("E", [T, T, F, F, F, F]),
        # Held B already in the top k: stays, A fills the other slot.
        ("B", [T, T, F, F, F, F]),
        # Two held names inside the band take both slots: no newcomer.
        ("CD", [F, F, T, T, F, F]),
        # Held B in and F far out: B stays, F leaves, A takes the free slot.
        ("BF", [T, T, F, F, F, F]),
        # Nothing held: the plain top 2.
        ("", [T, T, F, F, F, F]),
    ],
)
def test_topk_hold_band(held: str, expected: list[bool]) -> None:
    previous = [0.5 if s in held else 0.0 for s in "ABCDEF"]
    np.testing.assert_array_equal(selected(TopK(2, hold_band=2), book(RANKED, previous)), expected)


def test_topk_hold_band_more_held_than_k_keeps_the_best_k() -> None:
    # A, C, D held and all within k + band = 4: only the best two of them (A, C) stay.
    previous = [0.3, 0.0, 0.3, 0.3, 0.0, 0.0]
    np.testing.assert_array_equal(
        selected(TopK(2, hold_band=2), book(RANKED, previous)), [T, F, T, F, F, F]
    )
    # Every name held with a wide band and k = 3: the best three.
    np.testing.assert_array_equal(
        selected(TopK(3, hold_band=5), book(RANKED, [0.1] * 6)), [T, T, T, F, F, F]
    )


def test_topk_hold_band_drops_a_held_name_that_is_no_longer_eligible() -> None:
    score = [6.0, 5.0, NAN, 3.0, 2.0, 1.0]
    previous = [0.0, 0.0, 0.5, 0.5, 0.0, 0.0]
    # C held but NaN today: out; D (rank 2 among eligible, within band) stays; A fills.
    np.testing.assert_array_equal(
        selected(TopK(2, hold_band=1), book(score, previous)), [T, F, F, T, F, F]
    )


def test_topk_without_band_ignores_previous() -> None:
    previous = [0.0, 0.0, 0.5, 0.5, 0.0, 0.0]
    np.testing.assert_array_equal(selected(TopK(2), book(RANKED, previous)), [T, T, F, F, F, F])


def test_hold_band_through_portfolio_build_uses_previous() -> None:
    w = build([TopK(2, hold_band=2), EqualWeight()], RANKED, previous=[0, 0, 0, 0.5, 0, 0])
    np.testing.assert_allclose(w, [0.5, 0, 0, 0.5, 0, 0])
    # NaN previous weights count as not held.
    w = build([TopK(2, hold_band=2), EqualWeight()], RANKED, previous=[NAN, 0, 0, NAN, 0, 0])
    np.testing.assert_allclose(w, [0.5, 0.5, 0, 0, 0, 0])


# --- TopQuantile --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        (0.01, [F, T, F, F, F, F]),  # ceil(0.05) = 1: at least one
        (0.2, [F, T, F, F, F, F]),  # 0.2 * 5 = 1
        (0.21, [F, T, F, F, F, T]),  # ceil(1.05) = 2
        (0.5, [F, T, F, T, F, T]),  # ceil(2.5) = 3
        (0.6, [F, T, F, T, F, T]),  # 0.6 * 5 = 3
        (0.8, [T, T, F, T, F, T]),  # 4
        (1.0, [T, T, F, T, T, T]),  # every eligible name
    ],
)
def test_top_quantile_uses_ceil_of_the_eligible_count(q: float, expected: list[bool]) -> None:
    np.testing.assert_array_equal(selected(TopQuantile(q), book(SCORE)), expected)


def test_top_quantile_with_nothing_eligible_selects_nothing() -> None:
    np.testing.assert_array_equal(selected(TopQuantile(0.5), book([NAN] * 4)), [F] * 4)


def test_top_quantile_hold_band() -> None:
    # 5 eligible, q = 0.4 -> k = 2; hold_band 0.2 -> ceil(1.0) = 1 extra rank.
    # Held D (rank 2 = k) stays with the best (B); held A (rank 3) is beyond the band.
    b = book(SCORE, previous=[0, 0, 0, 0.5, 0, 0])
    np.testing.assert_array_equal(selected(TopQuantile(0.4, hold_band=0.2), b), [F, T, F, T, F, F])
    b = book(SCORE, previous=[0.5, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(selected(TopQuantile(0.4, hold_band=0.2), b), [F, T, F, F, F, T])


# --- Threshold ----------------------------------------------------------------------------


def test_threshold_keeps_scores_at_or_above_minimum() -> None:
    np.testing.assert_array_equal(selected(Threshold(0.5), book(SCORE)), [F, T, F, T, F, T])
    np.testing.assert_array_equal(selected(Threshold(0.95), book(SCORE)), [F] * 6)
    np.testing.assert_array_equal(selected(Threshold(-1.0), book(SCORE)), [T, T, F, T, T, T])
    # After a select step it only narrows: TopK(2) = B, F; >= 0.8 leaves B.
    np.testing.assert_array_equal(
        selected(Threshold(0.8), TopK(2)(book(SCORE))), [F, T, F, F, F, F]
    )


def test_threshold_then_portfolio_weights() -> None:
    np.testing.assert_allclose(
        build([Threshold(0.5)], SCORE), [0, 1 / 3, 0, 1 / 3, 0, 1 / 3], atol=1e-15
    )


# --- EqualWeight --------------------------------------------------------------------------


def test_equal_weight_on_every_eligible_name_without_selection() -> None:
    np.testing.assert_allclose(weights(EqualWeight(), book(SCORE)), [0.2, 0.2, 0, 0.2, 0.2, 0.2])


def test_equal_weight_on_the_selection() -> None:
    np.testing.assert_allclose(
        weights(EqualWeight(), TopK(4)(book(SCORE))), [0.25, 0.25, 0, 0.25, 0, 0.25]
    )


def test_equal_weight_with_nothing_chosen_is_all_cash() -> None:
    np.testing.assert_array_equal(weights(EqualWeight(), book([NAN] * 5)), [0.0] * 5)
    np.testing.assert_array_equal(weights(EqualWeight(), Threshold(5.0)(book(SCORE))), [0.0] * 6)


# --- ScoreWeight --------------------------------------------------------------------------


def test_score_weight_on_negative_scores() -> None:
    # Chosen scores -1, -2, -4, -3, -2.5: spread from the min (-4) = 3, 2, 0, 1, 1.5
    # (mean 1.5), raw = spread + 1.5 = 4.5, 3.5, 1.5, 2.5, 3.0 (sum 15).
    w = weights(ScoreWeight(), book([-1.0, -2.0, NAN, -4.0, -3.0, -2.5]))
    np.testing.assert_allclose(w, [4.5 / 15, 3.5 / 15, 0, 1.5 / 15, 2.5 / 15, 3.0 / 15])
    assert (w[[0, 1, 3, 4, 5]] > 0).all()


def test_score_weight_does_not_depend_on_a_shift_of_the_scores() -> None:
    base = [-1.0, -2.0, NAN, -4.0, -3.0, -2.5]
    shifted = [s + 100.0 for s in base]
    np.testing.assert_allclose(
        weights(ScoreWeight(), book(shifted)), weights(ScoreWeight(), book(base)), rtol=1e-12
    )


def test_score_weight_after_topk() -> None:
    # TopK(2) on -1, -2, ... keeps A, B: spread 1, 0 (mean 0.5) -> raw 1.5, 0.5.
    w = weights(ScoreWeight(), TopK(2)(book([-1.0, -2.0, NAN, -4.0, -3.0, -2.5])))
    np.testing.assert_allclose(w, [0.75, 0.25, 0, 0, 0, 0])


def test_score_weight_equal_when_all_scores_equal() -> None:
    np.testing.assert_allclose(
        weights(ScoreWeight(), book([-2.0, -2.0, NAN, -2.0, NAN])), [1 / 3, 1 / 3, 0, 1 / 3, 0]
    )
    np.testing.assert_allclose(weights(ScoreWeight(), book([NAN, -7.0, NAN])), [0, 1, 0])
    np.testing.assert_array_equal(weights(ScoreWeight(), book([NAN, NAN, NAN])), [0, 0, 0])


# --- InverseVolatility --------------------------------------------------------------------


def test_inverse_volatility_drops_nan_zero_and_negative_volatility() -> None:
    # usable: A (0.1), B (0.2), F (0.4): raw 10, 5, 2.5 (sum 17.5). C has a NaN score,
    # D a NaN volatility, E zero volatility.
    b = book([1.0, 1.0, NAN, 1.0, 1.0, 1.0], volatility=[0.1, 0.2, 0.3, NAN, 0.0, 0.4])
    out = InverseVolatility()(b)
    np.testing.assert_allclose(out.weight, [4 / 7, 2 / 7, 0, 0, 0, 1 / 7])
    np.testing.assert_array_equal(out.selected, [T, T, F, F, F, T])
    b = book([1.0] * 4, volatility=[-0.1, np.inf, 0.5, 0.25])
    np.testing.assert_allclose(weights(InverseVolatility(), b), [0, 0, 1 / 3, 2 / 3])


def test_inverse_volatility_on_a_selection() -> None:
    b = TopK(2)(book(SCORE, volatility=[0.1, 0.3, 0.1, 0.1, 0.1, 0.1]))  # B, F
    np.testing.assert_allclose(weights(InverseVolatility(), b), [0, 0.25, 0, 0, 0, 0.75])


def test_inverse_volatility_without_volatility_raises() -> None:
    with pytest.raises(ValueError, match="InverseVolatility"):
        InverseVolatility()(book(SCORE))


# --- MaxWeight ----------------------------------------------------------------------------


def test_max_weight_redistributes_the_excess_in_proportion() -> None:
    # Cap A at 0.4; the 0.1 excess goes to B and C in proportion 3:2 -> 0.36, 0.24.
    w = weights(MaxWeight(0.4), book([1.0] * 3, weight=[0.5, 0.3, 0.2]))
    np.testing.assert_allclose(w, [0.4, 0.36, 0.24], rtol=1e-12)


def test_max_weight_cascades() -> None:
    # A capped (0.35) -> B grows to 0.39 and is capped too; C and D share the last 0.3.
    w = weights(MaxWeight(0.35), book([1.0] * 4, weight=[0.5, 0.3, 0.1, 0.1]))
    np.testing.assert_allclose(w, [0.35, 0.35, 0.15, 0.15], rtol=1e-12)


def test_max_weight_all_capped_leaves_cash() -> None:
    w = build([EqualWeight(), MaxWeight(0.2)], [1.0, 2.0, 3.0, NAN])
    np.testing.assert_allclose(w, [0.2, 0.2, 0.2, 0.0], rtol=1e-12)
    assert w.sum() == pytest.approx(0.6)
    # A cascade ending with every name capped: 0.3 each, 0.1 in cash.
    w = weights(MaxWeight(0.3), book([1.0] * 3, weight=[0.6, 0.25, 0.15]))
    np.testing.assert_allclose(w, [0.3, 0.3, 0.3], rtol=1e-12)


def test_max_weight_leaves_zero_weights_at_zero() -> None:
    w = weights(MaxWeight(0.5), book([1.0] * 3, weight=[0.7, 0.0, 0.3]))
    np.testing.assert_allclose(w, [0.5, 0.0, 0.5], rtol=1e-12)


def test_max_weight_below_cap_is_unchanged() -> None:
    w = weights(MaxWeight(1.0), book([1.0] * 3, weight=[0.5, 0.3, 0.2]))
    np.testing.assert_array_equal(w, [0.5, 0.3, 0.2])
    w = weights(MaxWeight(0.4), book([1.0] * 3, weight=[0.4, 0.3, 0.2]))
    np.testing.assert_array_equal(w, [0.4, 0.3, 0.2])


def test_limit_steps_without_weights_raise() -> None:
    for step, name in ((MaxWeight(0.3), "MaxWeight"), (MaxGross(0.5), "MaxGross")):
        with pytest.raises(ValueError, match=f"{name}: needs a weigh step"):
            step(book(SCORE))
    with pytest.raises(ValueError, match="MinChange: needs a weigh step"):
        MinChange(0.1)(book(SCORE))


# --- MaxGross -----------------------------------------------------------------------------


def test_max_gross_scales_down_only() -> None:
    w = weights(MaxGross(0.8), book([1.0] * 3, weight=[0.5, 0.3, 0.2]))
    np.testing.assert_allclose(w, [0.4, 0.24, 0.16], rtol=1e-12)
    w = weights(MaxGross(1.5), book([1.0] * 3, weight=[0.5, 0.3, 0.2]))
    np.testing.assert_array_equal(w, [0.5, 0.3, 0.2])
    w = build([EqualWeight(), MaxGross(0.5)], [1.0, 2.0, NAN, 3.0, 4.0])
    np.testing.assert_allclose(w, [0.125, 0.125, 0, 0.125, 0.125], rtol=1e-12)


# --- MinChange ----------------------------------------------------------------------------


def test_min_change_keeps_small_changes_and_always_exits() -> None:
    previous = [0.30, 0.20, 0.03, 0.25, 0.00, 0.00]
    target = [0.32, 0.10, 0.00, 0.25, 0.03, 0.30]
    w = weights(MinChange(0.05), book([1.0] * 6, previous=previous, weight=target))
    # A: +0.02 kept at 0.30; B: -0.10 trades; C: exit (0.03 -> 0) trades although small;
    # D: unchanged; E: a 0.03 entry is below the threshold (stays 0); F: 0.30 entry trades.
    np.testing.assert_array_equal(w, [0.30, 0.10, 0.00, 0.25, 0.00, 0.30])


def test_min_change_zero_threshold_changes_nothing() -> None:
    target = [0.32, 0.10, 0.00, 0.25, 0.03, 0.30]
    w = weights(MinChange(0.0), book([1.0] * 6, previous=[0.3] * 6, weight=target))
    np.testing.assert_array_equal(w, target)


def test_min_change_through_portfolio_build() -> None:
    # TopK(2) + equal = B 0.5, F 0.5; previously B 0.48, D 0.02 (D exits), F 0.4.
    w = build([TopK(2), EqualWeight(), MinChange(0.05)], SCORE, previous=[0, 0.48, 0, 0.02, 0, 0.4])
    np.testing.assert_array_equal(w, [0, 0.48, 0, 0, 0, 0.5])


def test_min_change_keeps_no_old_weight_beyond_max_gross() -> None:
    # Previous A 0.5, B 0.5; new equal thirds. A and B move by 1/6 < 0.2, C enters by 1/3.
    # Keeping A and B at 0.5 with C bought would hold 4/3; keeping one of them 7/6: both
    # trade, whatever the order of the limit steps (the old code gave 0.5, 0.5, 1/3).
    previous = [0.5, 0.5, 0.0]
    for steps in (
        [EqualWeight(), MaxWeight(0.5), MaxGross(1.0), MinChange(0.2)],
        [EqualWeight(), MinChange(0.2), MaxWeight(0.5), MaxGross(1.0)],
        [EqualWeight(), MaxGross(1.0), MinChange(0.2)],
        [EqualWeight(), MinChange(0.2)],  # weights never sum above 1, MaxGross or not
    ):
        w = build(steps, [1.0, 1.0, 1.0], previous=previous)
        np.testing.assert_allclose(w, [1 / 3, 1 / 3, 1 / 3], rtol=1e-15)


def test_min_change_skips_the_smallest_reductions_the_room_allows() -> None:
    # Targets 0.25 on A..D, E exits. C's small increase (0.20 -> 0.25) is skipped: 0.05 room.
    # A's reduction (0.30 -> 0.25) costs 0.05 and fits; B's (0.32 -> 0.25, 0.07) does not.
    score = [1.0, 1.0, 1.0, 1.0, NAN]
    previous = [0.30, 0.32, 0.20, 0.00, 0.18]
    w = build([EqualWeight(), MinChange(0.1)], score, previous=previous)
    np.testing.assert_allclose(w, [0.30, 0.25, 0.20, 0.25, 0.0], rtol=1e-12)
    assert w.sum() <= 1.0 + 1e-12
    # Ties in cost: the first in symbol order is kept.
    w = build([EqualWeight(), MinChange(0.1)], score, previous=[0.30, 0.30, 0.20, 0.0, 0.2])
    np.testing.assert_allclose(w, [0.30, 0.25, 0.20, 0.25, 0.0], rtol=1e-12)
    # MaxGross(0.9): targets 0.225, C kept at 0.20 leaves 0.025: neither reduction fits.
    w = build([EqualWeight(), MaxGross(0.9), MinChange(0.1)], score, previous=previous)
    np.testing.assert_allclose(w, [0.225, 0.225, 0.20, 0.225, 0.0], rtol=1e-12)


def test_min_change_keeps_no_old_weight_above_max_weight() -> None:
    # Same books with a cap of 0.28: A (0.30) and B (0.32) cannot keep their old weights.
    score = [1.0, 1.0, 1.0, 1.0, NAN]
    previous = [0.30, 0.32, 0.20, 0.00, 0.18]
    for steps in (
        [EqualWeight(), MaxWeight(0.28), MinChange(0.1)],
        [EqualWeight(), MinChange(0.1), MaxWeight(0.28)],
    ):
        w = build(steps, score, previous=previous)
        np.testing.assert_allclose(w, [0.25, 0.25, 0.20, 0.25, 0.0], rtol=1e-12)
    # A previous weight exactly at the cap may be kept.
    w = build([EqualWeight(), MaxWeight(0.3), MinChange(0.1)], score, previous=previous)
    np.testing.assert_allclose(w, [0.30, 0.25, 0.20, 0.25, 0.0], rtol=1e-12)


def test_min_change_on_a_bare_book_uses_a_gross_of_one() -> None:
    # Without a Portfolio the book's limits are 1 and 1.
    b = book([1.0] * 3, previous=[0.5, 0.5, 0.0], weight=[1 / 3, 1 / 3, 1 / 3])
    np.testing.assert_allclose(weights(MinChange(0.2), b), [1 / 3, 1 / 3, 1 / 3])
    # Targets of 0.3 leave 0.1 of room: one of the two 0.1 reductions fits.
    b = book([1.0] * 3, previous=[0.4, 0.4, 0.0], weight=[0.3, 0.3, 0.3])
    np.testing.assert_allclose(weights(MinChange(0.2), b), [0.4, 0.3, 0.3])


# --- Portfolio ----------------------------------------------------------------------------


def test_portfolio_without_weigh_step_defaults_to_equal_weights() -> None:
    np.testing.assert_allclose(build([TopK(2)], SCORE), [0, 0.5, 0, 0, 0, 0.5])
    np.testing.assert_allclose(build([], SCORE), [0.2, 0.2, 0, 0.2, 0.2, 0.2])
    np.testing.assert_allclose(Portfolio().build(np.array(SCORE)), [0.2, 0.2, 0, 0.2, 0.2, 0.2])
    np.testing.assert_array_equal(build([TopK(2)], [NAN] * 3), [0.0] * 3)


def test_portfolio_full_pipeline_by_hand() -> None:
    # Scores -1, -2, NaN, -4, -3, -2.5: TopK(3) = A, B, F (spread 1.5, 0.5, 0; mean 2/3)
    # raw 13/6, 7/6, 4/6 (sum 4) -> 13/24, 7/24, 4/24; cap 0.4: A -> 0.4, the remaining
    # 0.6 split 7:4 -> 42/110, 24/110; gross 0.9 scales all by 0.9.
    w = build(
        [TopK(3), ScoreWeight(), MaxWeight(0.4), MaxGross(0.9)],
        [-1.0, -2.0, NAN, -4.0, -3.0, -2.5],
    )
    np.testing.assert_allclose(
        w, [0.36, 0.9 * 42 / 110, 0, 0, 0, 0.9 * 24 / 110], rtol=1e-12, atol=1e-15
    )


def test_portfolio_limits_are_the_tightest_of_its_steps() -> None:
    p = Portfolio([EqualWeight(), MaxWeight(0.3), MaxGross(0.9), MaxWeight(0.2), MaxGross(1.5)])
    assert (p.max_weight, p.max_gross) == (0.2, 0.9)
    assert (Portfolio().max_weight, Portfolio().max_gross) == (1.0, 1.0)
    assert Portfolio([EqualWeight(), MaxGross(1.5)]).max_gross == 1.0


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        ([EqualWeight(), MaxWeight(0.2), EqualWeight()], "EqualWeight after MaxWeight"),
        ([TopK(2), MaxGross(0.5), Threshold(0.0)], "Threshold after MaxGross"),
        ([EqualWeight(), MinChange(0.1), MaxGross(0.5), ScoreWeight()], "ScoreWeight after"),
    ],
)
def test_portfolio_refuses_select_or_weigh_steps_after_a_limit(steps, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Portfolio(steps)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: TopK(0), "TopK: k"),
        (lambda: TopK(-1), "TopK: k"),
        (lambda: TopK(1.5), "TopK: k"),  # type: ignore[arg-type]
        (lambda: TopK(True), "TopK: k"),
        (lambda: TopK(2, hold_band=-1), "TopK: hold_band"),
        (lambda: TopQuantile(0), "TopQuantile: q"),
        (lambda: TopQuantile(1.5), "TopQuantile: q"),
        (lambda: TopQuantile(NAN), "TopQuantile: q"),
        (lambda: TopQuantile(0.5, hold_band=-0.1), "TopQuantile: hold_band"),
        (lambda: MaxWeight(1.5), "MaxWeight: cap"),
        (lambda: MaxWeight(0), "MaxWeight: cap"),
        (lambda: MaxGross(0), "MaxGross: gross"),
        (lambda: MaxGross(-1.0), "MaxGross: gross"),
        (lambda: MinChange(-0.1), "MinChange: threshold"),
        (lambda: MinChange(1.0), "MinChange: threshold"),
    ],
)
def test_invalid_parameters_raise_naming_step_and_parameter(make, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


def test_valid_boundary_parameters_are_accepted() -> None:
    TopK(1)
    TopK(1, hold_band=0)
    TopQuantile(1.0)
    TopQuantile(0.1, hold_band=1.0)
    MaxWeight(1.0)
    MinChange(0.0)


# --- properties ---------------------------------------------------------------------------

scores = st.lists(
    st.one_of(st.just(NAN), st.floats(-1e6, 1e6, allow_nan=False)), min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None)
@given(
    score=scores,
    k=st.integers(1, 14),
    band=st.integers(0, 4),
    cap=st.floats(0.01, 1.0),
    held=st.lists(st.booleans(), min_size=12, max_size=12),
)
def test_topk_equal_maxweight_property(
    score: list[float], k: int, band: int, cap: float, held: list[bool]
) -> None:
    s = np.array(score)
    previous = np.where(np.array(held[: len(s)]), 1.0 / len(s), 0.0)
    w = Portfolio([TopK(k, hold_band=band), EqualWeight(), MaxWeight(cap)]).build(s, previous)
    assert w.shape == s.shape
    assert (w >= 0).all()
    assert w.sum() <= 1 + 1e-12
    assert (w[np.isnan(s)] == 0).all()
    assert np.count_nonzero(w) <= k
    assert (w <= cap).all()
    n = min(k, int((~np.isnan(s)).sum()))
    assert np.count_nonzero(w) == n
    assert w.sum() == pytest.approx(min(1.0, n * cap) if n else 0.0, abs=1e-9)


@settings(max_examples=300, deadline=None)
@given(score=scores, cap=st.floats(0.01, 1.0))
@example(score=[0.0, 5e-324], cap=1.0)  # scores a denormal apart: both still weighted
def test_score_weight_maxweight_property(score: list[float], cap: float) -> None:
    # Every eligible name gets a positive weight; capping keeps min(1, n * cap) invested.
    s = np.array(score)
    w = Portfolio([ScoreWeight(), MaxWeight(cap)]).build(s)
    n = int((~np.isnan(s)).sum())
    assert (w[np.isnan(s)] == 0).all()
    assert (w[~np.isnan(s)] > 0).all()
    assert (w <= cap).all()
    assert w.sum() == pytest.approx(min(1.0, n * cap) if n else 0.0, abs=1e-9)


LIMITS = {"cap": MaxWeight, "gross": MaxGross, "change": MinChange}


@st.composite
def limited_pipelines(
    draw: st.DrawFn, change_last: bool = False
) -> tuple[list[Step], dict[str, float]]:
    """A select step (or none), a weigh step, then some of the limit steps in any order (with
    ``change_last``: MinChange last, after some of the others)."""
    select = draw(
        st.sampled_from(
            [[], [TopK(draw(st.integers(1, 8)), draw(st.integers(0, 3)))],
             [TopQuantile(draw(st.floats(0.05, 1.0)))], [Threshold(draw(st.floats(-1, 1)))]]
        )
    )  # fmt: skip
    weigh = draw(st.sampled_from([EqualWeight(), ScoreWeight(), InverseVolatility()]))
    if change_last:
        order = draw(st.permutations(["cap", "gross"]))
        chosen = [*order[: draw(st.integers(0, 2))], "change"]
    else:
        order = draw(st.permutations(list(LIMITS)))
        chosen = order[: draw(st.integers(1, 3))]
    values = {
        "cap": draw(st.floats(0.01, 1.0)),
        "gross": draw(st.floats(0.01, 1.5)),
        "change": draw(st.floats(0.0, 0.99)),
    }
    limits = [LIMITS[name](values[name]) for name in chosen]
    return [*select, weigh, *limits], {name: values[name] for name in chosen}


# Previous weights: none, NaN (none), round fractions a target often lands near, any.
previous_weights = st.lists(
    st.one_of(
        st.just(0.0),
        st.just(NAN),
        st.sampled_from([0.05, 0.1, 0.125, 0.2, 0.25, 1 / 3, 0.5, 1.0]),
        st.floats(0.0, 1.0),
    ),
    min_size=10,
    max_size=10,
)
volatilities = st.lists(
    st.one_of(st.just(NAN), st.just(0.0), st.floats(0.01, 1.0)), min_size=10, max_size=10
)
many_scores = st.lists(st.one_of(st.just(NAN), st.floats(-5, 5)), min_size=1, max_size=10)


def check_limits(steps: list[Step], limits: dict[str, float], score, previous, vol) -> None:
    """Every limit holds after the pipeline; with MinChange last, each name trades to its
    target or keeps its previous weight by MinChange's rule, as far as the limits allow."""
    s = np.array(score)
    n = len(s)
    raw_previous, vol = np.array(previous[:n]), np.array(vol[:n])
    w = Portfolio(steps).build(s, raw_previous, vol)
    assert w.shape == s.shape
    assert (w >= 0).all()
    assert (w[np.isnan(s)] == 0).all()
    cap = limits.get("cap", 1.0)
    gross = min(1.0, limits.get("gross", 1.0))
    assert (w <= cap).all()
    assert w.sum() <= gross + 1e-9
    if not isinstance(steps[-1], MinChange):
        return
    # The targets MinChange saw: the rest of the pipeline's weights.
    target = Portfolio(steps[:-1]).build(s, raw_previous, vol)
    prev = np.nan_to_num(raw_previous, nan=0.0)
    skipped, traded = [], []
    for i in range(n):
        small = abs(target[i] - prev[i]) < limits["change"] and target[i] > 0
        if not small:
            assert w[i] == target[i]  # exits and large changes trade
        elif prev[i] <= target[i]:
            assert w[i] == prev[i]  # a small increase (or none) is always skipped
        elif w[i] == prev[i]:
            assert prev[i] <= cap
            skipped.append(prev[i] - target[i])
            event("small reduction skipped")
        else:
            assert w[i] == target[i]
            if prev[i] <= cap:  # it traded because skipping it would break the gross
                assert w.sum() + prev[i] - target[i] > gross - 1e-12
                traded.append(prev[i] - target[i])
                event("small reduction traded for lack of room")
    if skipped and traded:
        assert max(skipped) <= min(traded)  # the smallest reductions are skipped first


@settings(max_examples=300, deadline=None)
@given(
    pipeline=limited_pipelines(),
    score=many_scores,
    previous=previous_weights,
    vol=volatilities,
)
def test_every_limit_holds_after_the_pipeline_in_any_order(pipeline, score, previous, vol) -> None:
    check_limits(*pipeline, score, previous, vol)


@settings(max_examples=600, deadline=None)
@given(
    pipeline=limited_pipelines(change_last=True),
    score=many_scores,
    previous=previous_weights,
    vol=volatilities,
)
def test_min_change_last_skips_small_changes_as_far_as_the_limits_allow(
    pipeline, score, previous, vol
) -> None:
    check_limits(*pipeline, score, previous, vol)

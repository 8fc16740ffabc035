"""Factor EDA: how well a factor's cross-section predicts forward returns, vectorised over
``(date, symbol)`` panels (numpy arrays, one row per session).

Conventions:

- ``prices`` is a total-return price panel, NaN exactly where a name is not listed (before its
  first bar, after its declared delisting): the total-return index of
  :func:`qpipe.backtest.inputs.total_return_index`, which carries its last value over halts.
  The forward return at ``t`` over ``h`` sessions is ``prices[t + h] / prices[t] - 1`` (NaN
  where either is missing and for the last ``h`` sessions).
- A cross-section uses the names where both the factor and the forward return are present
  ("jointly valid"); a date with fewer than :data:`MIN_NAMES` such names gives NaN.
- The rank IC is the Spearman correlation (ranks with ties averaged, on the jointly valid
  names); the IC is the Pearson correlation.
- Quantile ``q`` (1 = lowest factor values, ``quantiles`` = highest) holds the names whose
  percentile rank (over the jointly valid names, ties averaged) lies in ``((q - 1) / Q, q / Q]``.
- Coverage is the share of the listed names that are jointly valid (first horizon).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import bottleneck as bn
import numpy as np
import pandas as pd

from qpipe.factors.kernels import cross_rank

HORIZONS = (1, 5, 20)
DECAY_LAGS = (1, 5, 10, 20)
MIN_NAMES = 3
"""Fewest jointly valid names a date needs for a correlation."""


def forward_returns(prices: np.ndarray, horizon: int) -> np.ndarray:
    """``prices[t + horizon] / prices[t] - 1`` per session and symbol (NaN at the end)."""
    if horizon < 1:
        raise ValueError(f"horizon must be >= 1 session, got {horizon}")
    out = np.full(prices.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        out[:-horizon] = prices[horizon:] / prices[:-horizon] - 1.0
    out[~np.isfinite(out)] = np.nan
    return out


def joint(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` with NaN wherever either is NaN."""
    bad = np.isnan(a) | np.isnan(b)
    return np.where(bad, np.nan, a), np.where(bad, np.nan, b)


def row_correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per row, the Pearson correlation of ``x`` and ``y`` over the columns where both are
    present; NaN for fewer than :data:`MIN_NAMES` such columns or a constant row."""
    x, y = joint(x, y)
    n = np.sum(~np.isnan(x), axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        xm = x - bn.nanmean(x, axis=1)[:, None]
        ym = y - bn.nanmean(y, axis=1)[:, None]
        cov = bn.nansum(xm * ym, axis=1)
        var = bn.nansum(xm * xm, axis=1) * bn.nansum(ym * ym, axis=1)
        corr = cov / np.sqrt(var)
    corr[(n < MIN_NAMES) | ~(var > 0)] = np.nan
    return corr


def information_coefficient(
    factor: np.ndarray, forward: np.ndarray, rank: bool = True
) -> np.ndarray:
    """Per session, the rank IC (``rank=True``) or IC of the factor against the forward
    return, over the jointly valid names."""
    f, r = joint(factor, forward)
    if rank:
        f, r = cross_rank(f), cross_rank(r)
    return row_correlation(f, r)


@dataclass(frozen=True)
class ICSummary:
    """Mean, standard deviation, information ratio (mean / std), t-statistic (IR x
    sqrt(n)) and number ``n`` of sessions of an IC series (NaN sessions skipped)."""

    mean: float
    std: float
    ir: float
    t_stat: float
    n: int

    @classmethod
    def of(cls, ic: np.ndarray) -> ICSummary:
        values = ic[~np.isnan(ic)]
        n = len(values)
        mean = float(values.mean()) if n else np.nan
        std = float(values.std(ddof=1)) if n > 1 else np.nan
        ir = mean / std if n > 1 and std > 0 else np.nan
        return cls(mean, std, ir, ir * np.sqrt(n) if n > 1 else np.nan, n)


def quantile_labels(factor: np.ndarray, forward: np.ndarray, quantiles: int = 5) -> np.ndarray:
    """Per session and symbol, the factor quantile (1 .. ``quantiles``) among the jointly
    valid names; 0 where the name is not valid."""
    if quantiles < 2:
        raise ValueError(f"quantiles must be >= 2, got {quantiles}")
    f, _ = joint(factor, forward)
    pct = cross_rank(f)
    labels = np.ceil(np.nan_to_num(pct, nan=0.0) * quantiles - 1e-9).astype(np.int64)
    return np.clip(labels, 0, quantiles)


def quantile_returns(factor: np.ndarray, forward: np.ndarray, quantiles: int = 5) -> np.ndarray:
    """Per session (rows) and quantile (columns 0 .. Q-1 for quantiles 1 .. Q), the mean
    forward return of the names in that quantile (NaN where it holds none)."""
    labels = quantile_labels(factor, forward, quantiles)
    fwd = np.nan_to_num(forward, nan=0.0)
    out = np.full((factor.shape[0], quantiles), np.nan)
    for q in range(1, quantiles + 1):
        member = labels == q
        count = member.sum(axis=1)
        total = np.where(member, fwd, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, q - 1] = np.where(count > 0, total / count, np.nan)
    return out


def quantile_turnover(labels: np.ndarray, quantile: int) -> np.ndarray:
    """Per session, the share of the names in ``quantile`` that were not in it the session
    before (NaN on the first session and where the quantile is empty)."""
    member = labels == quantile
    size = member.sum(axis=1)
    new = (member[1:] & ~member[:-1]).sum(axis=1)
    out = np.full(labels.shape[0], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[1:] = np.where(size[1:] > 0, new / size[1:], np.nan)
    return out


def rank_autocorrelation(factor: np.ndarray, lag: int) -> np.ndarray:
    """Per session, the correlation of the factor's cross-sectional ranks with those ``lag``
    sessions earlier, over the names present both times (its decay: how fast it changes)."""
    out = np.full(factor.shape[0], np.nan)
    if lag < factor.shape[0]:
        now, before = joint(factor[lag:], factor[:-lag])
        out[lag:] = row_correlation(cross_rank(now), cross_rank(before))
    return out


def coverage(factor: np.ndarray, prices: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """Per session, the share of the listed names (``prices`` present) that have both a
    factor value and a ``forward`` return; NaN on sessions where no name has a forward
    return (the last sessions of the horizon) or none is listed."""
    listed = ~np.isnan(prices)
    valid = listed & ~np.isnan(factor) & ~np.isnan(forward)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = valid.sum(axis=1) / listed.sum(axis=1)
    share[~(~np.isnan(forward)).any(axis=1)] = np.nan
    return share


def rank_correlation_matrix(panels: Sequence[np.ndarray], names: Sequence[str]) -> pd.DataFrame:
    """The factors' mean cross-sectional rank correlation: per session, the Pearson
    correlation of two factors' percentile ranks (each ranked over its own names) over the
    names both have; averaged over the sessions where it is defined."""
    k = len(panels)
    ranks = [cross_rank(p) for p in panels]
    days, _ = ranks[0].shape if k else (0, 0)
    total = np.zeros((k, k))
    count = np.zeros((k, k))
    for t in range(days):
        r = np.stack([rk[t] for rk in ranks])  # factors x names
        m = (~np.isnan(r)).astype(np.float64)
        r = np.nan_to_num(r)
        n = m @ m.T
        sa = r @ m.T  # sum of a's ranks where b is present
        saa = (r * r) @ m.T
        sab = r @ r.T
        with np.errstate(invalid="ignore", divide="ignore"):
            cov = sab - sa * sa.T / n
            var_a = saa - sa * sa / n
            corr = cov / np.sqrt(var_a * var_a.T)
        ok = (n >= MIN_NAMES) & np.isfinite(corr) & (var_a > 0) & (var_a.T > 0)
        total += np.where(ok, corr, 0.0)
        count += ok
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
    np.fill_diagonal(mean, 1.0)
    return pd.DataFrame(mean, index=list(names), columns=list(names))


@dataclass(frozen=True)
class FactorReport:
    """One factor's EDA over one panel (see the module doc for the conventions).

    - ``ic``, ``rank_ic``: per-session series for each horizon (columns ``1, 5, 20``).
    - ``summary``: per horizon and kind (``ic``, ``rank_ic``): mean, std, IR, t-stat, n.
    - ``quantile_mean``: mean forward return per quantile (rows) and horizon (columns).
    - ``spread``: per session and horizon, top-quantile minus bottom-quantile mean return.
    - ``turnover``: per session, the top and bottom quantiles' one-session turnover.
    - ``autocorrelation``: mean rank autocorrelation per lag (decay).
    - ``coverage``: per session, the share of the listed names with both a value and the
      first horizon's forward return (NaN on its last sessions).
    """

    ic: pd.DataFrame
    rank_ic: pd.DataFrame
    summary: pd.DataFrame
    quantile_mean: pd.DataFrame
    spread: pd.DataFrame
    turnover: pd.DataFrame
    autocorrelation: pd.Series
    coverage: pd.Series


def factor_report(
    factor: np.ndarray,
    prices: np.ndarray,
    dates: pd.DatetimeIndex,
    horizons: Sequence[int] = HORIZONS,
    quantiles: int = 5,
    lags: Sequence[int] = DECAY_LAGS,
) -> FactorReport:
    """The EDA of ``factor`` against ``prices`` (both sessions x symbols, aligned; see the
    module doc: ``prices`` is NaN exactly where a name is not listed)."""
    if factor.shape != prices.shape or factor.shape[0] != len(dates):
        raise ValueError(
            f"factor {factor.shape}, prices {prices.shape} and {len(dates)} dates do not align"
        )
    if not horizons:
        raise ValueError("horizons: give at least one")
    ic, rank_ic, qmean, spread, rows = {}, {}, {}, {}, []
    labels = np.zeros(factor.shape, dtype=np.int64)
    covered = np.full(len(dates), np.nan)
    for i, h in enumerate(horizons):
        fwd = forward_returns(prices, h)
        ic[h] = information_coefficient(factor, fwd, rank=False)
        rank_ic[h] = information_coefficient(factor, fwd, rank=True)
        per_q = quantile_returns(factor, fwd, quantiles)
        qmean[h] = bn.nanmean(per_q, axis=0)
        spread[h] = per_q[:, -1] - per_q[:, 0]
        for kind, series in (("ic", ic[h]), ("rank_ic", rank_ic[h])):
            s = ICSummary.of(series)
            rows.append({"horizon": h, "kind": kind, **s.__dict__})
        if i == 0:  # turnover of the first horizon's quantiles, its coverage
            labels = quantile_labels(factor, fwd, quantiles)
            covered = coverage(factor, prices, fwd)
    index = pd.DatetimeIndex(dates, name="date")
    top, bottom = quantile_turnover(labels, quantiles), quantile_turnover(labels, 1)
    return FactorReport(
        ic=pd.DataFrame(ic, index=index),
        rank_ic=pd.DataFrame(rank_ic, index=index),
        summary=pd.DataFrame(rows).set_index(["horizon", "kind"]),
        quantile_mean=pd.DataFrame(qmean, index=pd.RangeIndex(1, quantiles + 1, name="quantile")),
        spread=pd.DataFrame(spread, index=index),
        turnover=pd.DataFrame({"top": top, "bottom": bottom}, index=index),
        autocorrelation=pd.Series(
            {lag: float(bn.nanmean(rank_autocorrelation(factor, lag))) for lag in lags},
            name="rank_autocorrelation",
        ).rename_axis("lag"),
        coverage=pd.Series(covered, index=index, name="coverage"),
    )


def long_to_panels(
    frame: pd.DataFrame, columns: Sequence[str], dates: pd.DatetimeIndex, symbols: pd.Index
) -> dict[str, np.ndarray]:
    """Columns of a long ``(date, symbol)`` frame as sessions x symbols panels on the given
    grid (NaN where the frame has no row)."""
    rows = dates.get_indexer(pd.DatetimeIndex(frame["date"]))
    cols = symbols.get_indexer(frame["symbol"].astype(str))
    keep = (rows >= 0) & (cols >= 0)
    out = {}
    for name in columns:
        panel = np.full((len(dates), len(symbols)), np.nan)
        panel[rows[keep], cols[keep]] = frame[name].to_numpy(dtype=np.float64)[keep]
        out[name] = panel
    return out


def report_tables(
    factors: dict[str, np.ndarray],
    prices: np.ndarray,
    dates: pd.DatetimeIndex,
    horizons: Sequence[int] = HORIZONS,
    quantiles: int = 5,
) -> dict[str, pd.DataFrame]:
    """The EDA of every factor as tables to store: ``summary`` (a row per factor: rank IC
    mean, IR and t-statistic and the top-minus-bottom spread per horizon, top-quantile
    turnover, rank autocorrelation at each of :data:`DECAY_LAGS`, coverage), ``ic`` (date,
    factor, horizon, ic, rank_ic), ``quantiles`` (factor, horizon, quantile, mean forward
    return) and ``correlation`` (factor x factor mean rank correlation, a ``factor`` column
    first)."""
    summary, ic_rows, q_rows = [], [], []
    for name, panel in factors.items():
        rep = factor_report(panel, prices, dates, horizons, quantiles, lags=DECAY_LAGS)
        row: dict[str, float | str] = {"factor": name}
        for h in horizons:
            s = rep.summary.loc[(h, "rank_ic")]
            row[f"rank_ic_mean_{h}"] = s["mean"]
            row[f"rank_ic_ir_{h}"] = s["ir"]
            row[f"rank_ic_t_{h}"] = s["t_stat"]
            row[f"ic_mean_{h}"] = rep.summary.loc[(h, "ic"), "mean"]
            row[f"spread_mean_{h}"] = float(bn.nanmean(rep.spread[h].to_numpy()))
        row["turnover_top"] = float(bn.nanmean(rep.turnover["top"].to_numpy()))
        for lag in DECAY_LAGS:
            row[f"autocorrelation_{lag}"] = float(rep.autocorrelation.loc[lag])
        row["coverage"] = float(bn.nanmean(rep.coverage.to_numpy()))
        summary.append(row)
        for h in horizons:
            ic_rows.append(
                pd.DataFrame(
                    {
                        "date": rep.ic.index,
                        "factor": name,
                        "horizon": h,
                        "ic": rep.ic[h].to_numpy(),
                        "rank_ic": rep.rank_ic[h].to_numpy(),
                    }
                )
            )
            q_rows.append(
                pd.DataFrame(
                    {
                        "factor": name,
                        "horizon": h,
                        "quantile": rep.quantile_mean.index,
                        "mean_return": rep.quantile_mean[h].to_numpy(),
                    }
                )
            )
    names = list(factors)
    corr = rank_correlation_matrix([factors[n] for n in names], names)
    return {
        "summary": pd.DataFrame(summary),
        "ic": pd.concat(ic_rows, ignore_index=True) if ic_rows else pd.DataFrame(),
        "quantiles": pd.concat(q_rows, ignore_index=True) if q_rows else pd.DataFrame(),
        "correlation": corr.rename_axis("factor").reset_index(),
    }

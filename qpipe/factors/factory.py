"""The factor factory for a project: which factors (built-in, user modules, config
expressions), their long-format rows, and merging recomputed columns into the lake's rows."""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from qpipe.data.lake import Lake
from qpipe.errors import ConfigError, LakeError
from qpipe.factors.panel import default_library
from qpipe.factors.registry import FactorError, FactorLibrary
from qpipe.settings import FactorsConfig


def library_for(config: FactorsConfig) -> FactorLibrary:
    """Built-in factors, the user's registered Python factors (after importing
    ``config.modules``) and the config's expressions; a duplicate name is an error."""
    from qpipe.factors.expressions import library_from_expressions
    from qpipe.factors.user import USER

    for module in config.modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ConfigError(f"factors.modules: cannot import {module!r}: {exc}") from None
    try:
        return default_library().merged(USER).merged(library_from_expressions(config.expressions))
    except FactorError as exc:
        raise ConfigError(f"factors: {exc}") from None


def selected_names(config: FactorsConfig, library: FactorLibrary) -> list[str]:
    """``config.names`` (checked against the library) or every factor."""
    if config.names is None:
        return library.names()
    unknown = [n for n in config.names if n not in library]
    if unknown:
        raise ConfigError(f"factors.names: unknown factors: {', '.join(unknown)}")
    return list(config.names)


def to_long(panels: xr.Dataset, bars: pd.DataFrame) -> pd.DataFrame:
    """Long rows ``(date, symbol, <factor>...)`` for the (date, symbol) pairs that have a bar."""
    if not panels.data_vars:
        return bars.loc[:, ["date", "symbol"]].reset_index(drop=True)
    dates = panels.indexes["date"]
    keys = bars.loc[bars["date"].isin(dates), ["date", "symbol"]]
    di = dates.get_indexer(keys["date"])
    si = panels.indexes["symbol"].get_indexer(keys["symbol"])
    out = keys.reset_index(drop=True).copy()
    for name, var in panels.data_vars.items():
        out[name] = np.asarray(var.values)[di, si]
    return out.sort_values(["date", "symbol"], kind="stable").reset_index(drop=True)


def selected_names_only(
    library: FactorLibrary, configured: Sequence[str], only: Sequence[str] | None
) -> list[str]:
    """``only`` (each a configured factor) or all ``configured`` names."""
    if only is None:
        return list(configured)
    unknown = [n for n in only if n not in configured]
    if unknown:
        raise ConfigError(
            f"not configured factors: {', '.join(unknown)} (see `qpipe factors list`)"
        )
    return list(only)


def merge_columns(
    lake: Lake, frame: pd.DataFrame, columns: Sequence[str], first: pd.Timestamp, last: pd.Timestamp
) -> pd.DataFrame:
    """``frame``'s factor columns laid over the lake's ``factors`` rows of ``[first, last]``:
    rows keep their other columns (NaN where the lake has none), giving every ``columns``."""
    keys = ["date", "symbol"]
    try:
        existing = lake.read("factors", first, last)
    except LakeError:
        existing = frame.loc[:, keys]
    merged = existing.drop(columns=[c for c in frame.columns if c not in keys], errors="ignore")
    merged = merged.merge(frame, on=keys, how="outer")
    for col in columns:
        if col not in merged:
            merged[col] = np.nan
    return merged.loc[:, [*keys, *columns]].sort_values(keys).reset_index(drop=True)

"""What the viewer reads, cached by the state of the files it comes from: a page switch
reuses the loaded frames; a new backtest or factor report (new files, new modification
times) loads again."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from qpipe.analytics.factor_store import TABLES, report_dir
from qpipe.backtest.result import BacktestResult
from qpipe.backtest.runner import lake_market
from qpipe.backtest.store import REQUIRED, backtest_dir, load_result
from qpipe.backtest.variants import VariantBase, prepare
from qpipe.project import Project
from qpipe.settings import data_dir


def lake_root() -> Path:
    """The lake of the data directory (``$QPIPE_DATA``, else ``./data``)."""
    return data_dir() / "lake"


def files_state(folder: Path, pattern: str) -> tuple[tuple[str, int, int], ...]:
    """Name, modification time and size of every file matching ``pattern`` under
    ``folder``: the cache key of what was read from them."""
    if not folder.is_dir():
        return ()
    out = []
    for path in sorted(folder.glob(pattern)):
        stat = os.stat(path)
        out.append((str(path.relative_to(folder)), stat.st_mtime_ns, stat.st_size))
    return tuple(out)


def saved_strategies(root: Path) -> list[str]:
    """Strategies with a complete saved backtest, by name."""
    folder = root / "backtests"
    if not folder.is_dir():
        return []
    return sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir() and all((d / f"{o}.parquet").exists() for o in REQUIRED)
    )


@st.cache_data(show_spinner=False, max_entries=32)
def _backtest(root: str, strategy: str, state: tuple) -> tuple[BacktestResult, pd.Series | None]:
    return load_result(root, strategy)


def backtest(root: Path, strategy: str) -> tuple[BacktestResult, pd.Series | None]:
    """A saved backtest and its benchmark (cached until its files change)."""
    state = files_state(backtest_dir(root, strategy), "*.parquet")
    return _backtest(str(root), strategy, state)


@st.cache_data(show_spinner=False, max_entries=8)
def _factor_tables(root: str, state: tuple) -> dict[str, pd.DataFrame]:
    folder = report_dir(root)
    return {name: pd.read_parquet(folder / f"{name}.parquet") for name in TABLES}


def factor_tables(root: Path) -> dict[str, pd.DataFrame] | None:
    """The saved factor report's tables, or None when there is none."""
    folder = report_dir(root)
    if not all((folder / f"{name}.parquet").exists() for name in TABLES):
        return None
    return _factor_tables(str(root), files_state(folder, "*.parquet"))


def table_state(root: Path, table: str) -> tuple[int, str, int]:
    """Partitions, last partition and its file's modification time of a lake table: the
    cache key of what was read from it (a sync or a recompute changes it)."""
    folder = root / table
    if not folder.is_dir():
        return (0, "", 0)
    parts = sorted(p.name for p in folder.iterdir() if p.name.startswith("date="))
    if not parts:
        return (0, "", 0)
    files = sorted((folder / parts[-1]).glob("*.parquet"))
    return (len(parts), parts[-1], files[-1].stat().st_mtime_ns if files else 0)


@st.cache_resource(show_spinner="Preparing the strategy's data...", max_entries=4)
def _variant_base(config: str | None, root: str, name: str, state: tuple) -> VariantBase:
    project = Project.load(config, Path(root).parent)
    strategy = project.strategies[name]
    market = lake_market(project.lake)
    factors = project.lake.read("factors", columns=list(strategy.factors))
    return prepare(name, project.settings, market, factors, project.instruments,
                   project.calendar, project.factor_names)  # fmt: skip


def variant_base(root: Path, name: str) -> VariantBase:
    """Strategy ``name``'s data for in-memory variants (cached until bars or factors change)."""
    state = (table_state(root, "bars"), table_state(root, "factors"))
    return _variant_base(os.environ.get("QPIPE_CONFIG"), str(root), name, state)


@st.cache_resource(show_spinner=False, max_entries=2)
def _project(config: str | None, data: str) -> Project:
    return Project.load(config, Path(data))


def project(root: Path) -> Project:
    """The configured project of the viewer's data directory."""
    return _project(os.environ.get("QPIPE_CONFIG"), str(root.parent))

"""``backtest_<strategy>``: the strategy's whole-history backtest from its signals and the
bars, saved under ``lake/backtests/<strategy>/`` with the headline metrics as metadata;
``report_<strategy>``: its tear sheet, ``<data>/reports/<strategy>.html``, from the saved
backtest."""

from pathlib import Path

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from qpipe.analytics.report import write_report
from qpipe.backtest.runner import run_backtest
from qpipe.backtest.store import load_result, save_result
from qpipe.data.schema import MarketData
from qpipe.defs.resources import ProjectResource
from qpipe.project import Project
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.signals import signals_table

HEADLINE = ("total_return", "cagr", "volatility", "sharpe", "max_drawdown", "calmar")


def build_backtest_assets(project: Project) -> list[AssetsDefinition]:
    """A ``backtest_<name>`` and a ``report_<name>`` asset per configured strategy."""
    return [
        a
        for name, s in project.strategies.items()
        for a in (_backtest_asset(name, s), _report_asset(name))
    ]


def report_path(project: Project, strategy: str) -> Path:
    """Where the ``report_<strategy>`` asset writes the tear sheet."""
    return project.root / "reports" / f"{strategy}.html"


def _backtest_asset(name: str, strategy: BaseStrategy) -> AssetsDefinition:
    @asset(
        name=f"backtest_{name}",
        deps=[AssetDep(signals_table(name)), AssetDep("bars")],
        description=f"Backtest of {name!r} over every session with signals (settings: the "
        "config's backtest section); equity, positions, fills and metrics in "
        f"lake/backtests/{name}/.",
        kinds={"parquet"},
        group_name="backtests",
        pool="lake_writer",
    )
    def backtest(context: AssetExecutionContext, qpipe: ProjectResource) -> MaterializeResult:
        proj = qpipe.get()
        signals = proj.lake.read(signals_table(name))
        market = MarketData(proj.lake.read("bars"), proj.lake.read("corporate_actions"))
        settings = proj.settings.backtest
        result, bench = run_backtest(strategy, market, signals, settings, proj.instruments)
        path = save_result(proj.lake.root, name, result, bench)
        metrics = {k: float(result.metrics[k]) for k in HEADLINE}
        context.log.info(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        return MaterializeResult(
            metadata={
                **{k: MetadataValue.float(v) for k, v in metrics.items()},
                "sessions": len(result.equity),
                "first_session": str(result.equity.index[0].date()),
                "last_session": str(result.equity.index[-1].date()),
                "fills": len(result.fills),
                "benchmark": settings.benchmark,
                "path": MetadataValue.path(str(path)),
            }
        )

    return backtest


def _report_asset(name: str) -> AssetsDefinition:
    @asset(
        name=f"report_{name}",
        deps=[AssetDep(f"backtest_{name}")],
        description=f"Tear sheet of {name!r}'s saved backtest: one self-contained HTML file "
        f"(Plotly, works offline), reports/{name}.html under the data directory.",
        kinds={"html"},
        group_name="backtests",
    )
    def report(context: AssetExecutionContext, qpipe: ProjectResource) -> MaterializeResult:
        proj = qpipe.get()
        result, bench = load_result(proj.lake.root, name)
        path = write_report(report_path(proj, name), name, result, bench)
        context.log.info(f"{name}: tear sheet {path}")
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(path)),
                "bytes": path.stat().st_size,
            }
        )

    return report

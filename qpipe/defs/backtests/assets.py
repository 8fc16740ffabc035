"""``backtest_<strategy>``: the strategy's whole-history backtest from its signals and the
bars, saved under ``lake/backtests/<strategy>/`` with the headline metrics and its warnings as
metadata (the warnings logged too); ``report_<strategy>``: its tear sheet,
``<data>/reports/<strategy>.html``, from the saved backtest."""

from pathlib import Path

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from qpipe.analytics.report import write_report
from qpipe.backtest.runner import backtest_lake
from qpipe.backtest.store import load_result
from qpipe.defs.resources import ProjectResource
from qpipe.project import Project
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.signals import signals_table

HEADLINE = ("total_return", "cagr", "volatility", "sharpe", "max_drawdown", "calmar")


def build_backtest_assets(project: Project) -> list[AssetsDefinition]:
    """The ``backtest_<name>`` assets (one step that reads the bars once) and a
    ``report_<name>`` asset per configured strategy."""
    if not project.strategies:
        return []
    return [_backtests(project.strategies), *(_report_asset(n) for n in project.strategies)]


def report_path(project: Project, strategy: str) -> Path:
    """Where the ``report_<strategy>`` asset writes the tear sheet."""
    return project.root / "reports" / f"{strategy}.html"


def _backtests(strategies: dict[str, BaseStrategy]) -> AssetsDefinition:
    specs = [
        AssetSpec(
            f"backtest_{name}",
            deps=[signals_table(name), "bars"],
            description=f"Backtest of {name!r} over every session with signals (settings: "
            "the config's backtest section); equity, positions, fills, metrics and risk events "
            f"in lake/backtests/{name}/.",
            kinds={"parquet"},
            group_name="backtests",
        )
        for name in strategies
    ]

    @multi_asset(specs=specs, name="backtests", can_subset=True, pool="lake_writer")
    def backtests(context: AssetExecutionContext, qpipe: ProjectResource):
        proj = qpipe.get()
        settings = proj.settings.backtest
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        chosen = {n: s for n, s in strategies.items() if f"backtest_{n}" in selected}
        for name, result, path in backtest_lake(proj.lake, chosen, settings, proj.instruments):
            metrics = {k: float(result.metrics[k]) for k in HEADLINE}
            context.log.info(f"{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
            for warning in result.warnings:
                context.log.warning(f"{name}: {warning}")
            yield MaterializeResult(
                asset_key=f"backtest_{name}",
                metadata={
                    **{k: MetadataValue.float(v) for k, v in metrics.items()},
                    "sessions": len(result.equity),
                    "first_session": str(result.equity.index[0].date()),
                    "last_session": str(result.equity.index[-1].date()),
                    "fills": len(result.fills),
                    "warnings": MetadataValue.text("\n".join(result.warnings) or "none"),
                    "benchmark": settings.benchmark,
                    "path": MetadataValue.path(str(path)),
                },
            )

    return backtests


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

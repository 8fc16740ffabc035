"""``backtest_<strategy>``: the strategy's whole-history backtest from its signals and the
bars, saved under ``lake/backtests/<strategy>/`` with the headline metrics and its warnings as
metadata (the warnings logged too), and its ``point_in_time`` check (the backtest over the lake
cut :data:`CHECK_SESSIONS` sessions before its end equals it on every date up to the cut);
``report_<strategy>``: its tear sheet,
``<data>/reports/<strategy>.html``, from the saved backtest."""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    AssetSpec,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from qpipe.analytics.report import report_path, write_report
from qpipe.backtest.lookahead import lookahead_difference
from qpipe.backtest.metrics import HEADLINE
from qpipe.backtest.result import BacktestResult
from qpipe.backtest.runner import backtest_lake, lake_market
from qpipe.backtest.store import load_result
from qpipe.data.schema import MarketData
from qpipe.defs.resources import ProjectResource
from qpipe.project import Project
from qpipe.strategies.base import BaseStrategy
from qpipe.strategies.signals import signals_table

CHECK_SESSIONS = 21
"""The ``point_in_time`` check cuts the lake this many sessions before the backtest's end."""
POINT_IN_TIME = "point_in_time"


def build_backtest_assets(project: Project) -> list[AssetsDefinition]:
    """The ``backtest_<name>`` assets (one step that reads the bars once) and a
    ``report_<name>`` asset per configured strategy."""
    if not project.strategies:
        return []
    return [_backtests(project.strategies), *(_report_asset(n) for n in project.strategies)]


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

    checks = [
        AssetCheckSpec(
            POINT_IN_TIME,
            asset=f"backtest_{name}",
            description=f"The backtest over the lake cut {CHECK_SESSIONS} sessions before its "
            "end equals it on every date up to the cut (equity, daily accounts, positions, "
            "fills; exactly); a failure names the first date and the fields that differ.",
        )
        for name in strategies
    ]

    @multi_asset(
        specs=specs, check_specs=checks, name="backtests", can_subset=True, pool="lake_writer"
    )
    def backtests(context: AssetExecutionContext, qpipe: ProjectResource):
        proj = qpipe.get()
        settings = proj.settings.backtest
        selected = {key.to_user_string() for key in context.selected_asset_keys}
        chosen = {n: s for n, s in strategies.items() if f"backtest_{n}" in selected}
        checked = {key.asset_key.to_user_string() for key in context.selected_asset_check_keys}
        market = lake_market(proj.lake)
        year = proj.calendar.sessions_per_year
        runs = backtest_lake(
            proj.lake, chosen, settings, proj.instruments, market, periods_per_year=year
        )
        for name, result, path in runs:
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
            if f"backtest_{name}" in checked:
                yield _point_in_time(proj, name, strategies[name], market, result)

    return backtests


def _point_in_time(
    proj: Project, name: str, strategy: BaseStrategy, market: MarketData, result: BacktestResult
) -> AssetCheckResult:
    """The ``point_in_time`` check of ``backtest_<name>``: ``result`` against the backtest
    over the lake cut :data:`CHECK_SESSIONS` sessions before its end."""
    sessions = result.equity.index
    end = sessions[max(0, len(sessions) - 1 - CHECK_SESSIONS)]
    signals = proj.lake.read(signals_table(name), columns=["target_weight"])
    diff = lookahead_difference(strategy, market, signals, proj.settings.backtest,
                                proj.instruments, result, end)  # fmt: skip
    return AssetCheckResult(
        check_name=POINT_IN_TIME,
        asset_key=f"backtest_{name}",
        passed=diff is None,
        severity=AssetCheckSeverity.ERROR,
        description=None
        if diff is None
        else f"the backtest through {end:%Y-%m-%d} differs on {diff}",
        metadata={
            "cut_at": f"{end:%Y-%m-%d}",
            "first_difference": "none" if diff is None else str(diff),
        },
    )


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
        path = write_report(report_path(proj.root, name), name, result, bench)
        context.log.info(f"{name}: tear sheet {path}")
        return MaterializeResult(
            metadata={
                "path": MetadataValue.path(str(path)),
                "bytes": path.stat().st_size,
            }
        )

    return report

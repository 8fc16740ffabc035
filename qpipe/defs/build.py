"""Assemble the Dagster ``Definitions`` for a project."""

from __future__ import annotations

from dagster import Definitions, define_asset_job

from qpipe.defs.backtests.assets import build_backtest_assets
from qpipe.defs.factors.assets import build_factor_assets
from qpipe.defs.factors.report import build_factor_report_asset
from qpipe.defs.factors.sensors import build_factors_after_sync, build_factors_job
from qpipe.defs.io_managers import LakeIOManager
from qpipe.defs.live.jobs import build_rebalance_job
from qpipe.defs.live.schedules import build_market_close
from qpipe.defs.market.assets import build_market_assets
from qpipe.defs.market.schedules import build_nightly_sync, build_sync_job
from qpipe.defs.resources import ProjectResource
from qpipe.defs.signals.assets import build_signal_assets
from qpipe.defs.signals.sensors import build_signals_after_factors, build_signals_job
from qpipe.project import Project


def build_definitions(project: Project, config_path: str | None = None) -> Definitions:
    """Every asset, check, job and schedule of ``project``; resources point at its data
    directory so runs, schedules and the UI all read and write the same lake."""
    market = build_market_assets(project)
    factors = build_factor_assets(project)
    signals = build_signal_assets(project)
    backtests = build_backtest_assets(project)
    factor_report = build_factor_report_asset()
    sync_job = build_sync_job(market)
    factors_job = build_factors_job(factors)
    jobs = [
        sync_job,
        factors_job,
        define_asset_job(
            "factor_eda",
            selection=[factor_report.key],
            description="The factor report (EDA of every configured factor) over the lake.",
        ),
    ]
    sensors = [build_factors_after_sync(sync_job, factors_job)]
    resource = ProjectResource(config_path=config_path, data_dir=str(project.root))
    schedules = [build_nightly_sync(project, sync_job)]
    if signals:
        rebalance_job = build_rebalance_job(resource)
        jobs.append(rebalance_job)
        schedules.append(build_market_close(project, rebalance_job))
        signals_job = build_signals_job(signals)
        jobs.append(signals_job)
        sensors.append(build_signals_after_factors(factors_job, signals_job))
        jobs.append(
            define_asset_job(
                "run_backtests",
                selection=[k for a in backtests for k in a.keys],
                description="Backtest every configured strategy over its signals.",
            )
        )
    return Definitions(
        assets=[market, factors, factor_report, *signals, *backtests],
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources={
            "qpipe": resource,
            "lake_io_manager": LakeIOManager(data_dir=str(project.root)),
        },
    )

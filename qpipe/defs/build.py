"""Assemble the Dagster ``Definitions`` for a project."""

from __future__ import annotations

from dagster import Definitions

from qpipe.defs.io_managers import LakeIOManager
from qpipe.defs.market.assets import build_market_assets
from qpipe.defs.market.schedules import build_nightly_sync, build_sync_job
from qpipe.defs.resources import ProjectResource
from qpipe.project import Project


def build_definitions(project: Project, config_path: str | None = None) -> Definitions:
    """Every asset, check, job and schedule of ``project``; resources point at its data
    directory so runs, schedules and the UI all read and write the same lake."""
    market = build_market_assets(project)
    sync_job = build_sync_job(market)
    return Definitions(
        assets=[market],
        jobs=[sync_job],
        schedules=[build_nightly_sync(project, sync_job)],
        resources={
            "qpipe": ProjectResource(config_path=config_path, data_dir=str(project.root)),
            "lake_io_manager": LakeIOManager(data_dir=str(project.root)),
        },
    )

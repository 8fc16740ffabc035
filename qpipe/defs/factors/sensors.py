"""The factors job and the sensor that runs it after every successful sync, over the same
sessions."""

from typing import TYPE_CHECKING

from dagster import AssetsDefinition, SensorDefinition, define_asset_job

from qpipe.defs.follow import follow_sensor

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def build_factors_job(factor_assets: AssetsDefinition) -> "UnresolvedAssetJobDefinition":
    """Materialise ``factors`` (with its checks) for a session range."""
    return define_asset_job(
        "compute_factors",
        selection=[factor_assets.key],
        description="Compute the configured factors for a range of sessions into the lake.",
    )


def build_factors_after_sync(
    sync_job: "UnresolvedAssetJobDefinition", factors_job: "UnresolvedAssetJobDefinition"
) -> SensorDefinition:
    """When a sync run succeeds, compute the factors of the sessions it synced."""
    return follow_sensor(
        "factors_after_sync",
        sync_job,
        factors_job,
        "Compute factors for the sessions of every successful sync run.",
    )

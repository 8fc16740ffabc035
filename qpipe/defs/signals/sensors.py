"""The signals job (every strategy's signals for a session range) and the sensor that runs it
after every successful factors run, over the same sessions."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from dagster import AssetsDefinition, SensorDefinition, define_asset_job

from qpipe.defs.follow import follow_sensor

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )


def build_signals_job(signal_assets: Sequence[AssetsDefinition]) -> "UnresolvedAssetJobDefinition":
    """Materialise every ``signals_<strategy>`` asset (with its checks) for a session range."""
    return define_asset_job(
        "compute_signals",
        selection=[a.key for a in signal_assets],
        description="Compute every configured strategy's signals for a range of sessions.",
    )


def build_signals_after_factors(
    factors_job: "UnresolvedAssetJobDefinition", signals_job: "UnresolvedAssetJobDefinition"
) -> SensorDefinition:
    """When a factors run succeeds, compute the signals of the same sessions."""
    return follow_sensor(
        "signals_after_factors",
        factors_job,
        signals_job,
        "Compute every strategy's signals for the sessions of every successful factors run.",
    )

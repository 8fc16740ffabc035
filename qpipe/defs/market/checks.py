"""Asset check specs for ``bars`` and their translation from the core's quality outcomes."""

from __future__ import annotations

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from qpipe.data.quality import CheckOutcome

BARS_CHECKS: dict[str, str] = {
    "ohlc_sanity": "Prices positive and low <= open, close <= high.",
    "unique_keys": "No duplicate (date, symbol) rows.",
    "universe_coverage": "Every universe symbol listed on a session has a bar (halts warn).",
    "stale_bars": "No zero-volume bars and no flat bars repeating the previous close.",
    "extreme_returns": "No close-to-close move beyond 50% unexplained by a corporate action.",
}


def bars_check_specs() -> list[AssetCheckSpec]:
    return [
        AssetCheckSpec(name=name, asset="bars", description=text)
        for name, text in BARS_CHECKS.items()
    ]


def to_check_result(outcome: CheckOutcome) -> AssetCheckResult:
    """A Dagster check result carrying the outcome's counts, first examples and, where the
    check gives them, the details of every offending row (a JSON list of lines)."""
    severity = AssetCheckSeverity.ERROR if outcome.severity == "error" else AssetCheckSeverity.WARN
    metadata = {
        "summary": outcome.description,
        "failures": outcome.failures,
        **outcome.metadata,
    }
    if outcome.examples:
        metadata["examples"] = MetadataValue.text(", ".join(outcome.examples))
    if outcome.details:
        metadata["details"] = MetadataValue.json(outcome.details)
    return AssetCheckResult(
        asset_key="bars",
        check_name=outcome.name,
        passed=outcome.passed,
        severity=severity,
        metadata=metadata,
    )

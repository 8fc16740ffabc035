"""``factor_report``: the EDA of every configured factor over the whole lake (IC and rank IC
per horizon, quantile returns, turnover, decay, coverage, the correlation matrix), saved under
``lake/factor_report/`` for the viewer, with the best factors by rank IC as metadata."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    MetadataValue,
    asset,
)

from qpipe.analytics.factor_store import lake_factor_report, save_report
from qpipe.backtest.inputs import delisting_dates
from qpipe.defs.resources import ProjectResource


def build_factor_report_asset() -> AssetsDefinition:
    """The unpartitioned ``factor_report`` asset (whole-history, rewritten as one piece)."""

    @asset(
        name="factor_report",
        deps=[AssetDep("factors"), AssetDep("bars")],
        description="EDA of the configured factors against forward total returns over 1, 5 "
        "and 20 sessions: IC and rank IC, quantile returns, turnover, decay, coverage and "
        "the factors' rank correlation, in lake/factor_report/.",
        kinds={"parquet"},
        group_name="factors",
        pool="lake_writer",
    )
    def factor_report(context: AssetExecutionContext, qpipe: ProjectResource) -> MaterializeResult:
        proj = qpipe.get()
        delistings = delisting_dates(proj.instruments)
        tables = lake_factor_report(proj.lake, proj.factor_names, delistings)
        path = save_report(proj.lake.root, tables)
        summary = tables["summary"].set_index("factor")
        best = summary["rank_ic_mean_20"].abs().sort_values(ascending=False).head(10).index
        context.log.info(f"factor report of {len(summary)} factors: {path}")
        return MaterializeResult(
            metadata={
                "factors": len(summary),
                "top_rank_ic_20d": MetadataValue.md(
                    summary.loc[best, ["rank_ic_mean_20", "rank_ic_t_20", "turnover_top"]]
                    .round(4)
                    .to_markdown()
                ),
                "path": MetadataValue.path(str(path)),
            }
        )

    return factor_report

"""``market_close_rebalance``: the live rebalance of the configured strategies at the close,
in process with an in-memory IO manager; its op calls the core step of ``qpipe live
rebalance`` (which runs the same factor and strategy code as the signals assets)."""

from dagster import (
    Config,
    JobDefinition,
    OpExecutionContext,
    in_process_executor,
    job,
    mem_io_manager,
    op,
)

from qpipe.calendars import to_date
from qpipe.defs.resources import ProjectResource
from qpipe.live.rebalance import rebalance, session_plan, trader_for


class RebalanceConfig(Config):
    """``mode``: dry_run (default), paper or execute; ``strategies``: none = every one;
    ``session``: YYYY-MM-DD (default: today)."""

    mode: str = "dry_run"
    strategies: list[str] | None = None
    session: str | None = None


@op(description="Plan and (unless a dry run) send each strategy's orders for the session.")
def rebalance_strategies(
    context: OpExecutionContext, config: RebalanceConfig, qpipe: ProjectResource
) -> dict:
    if config.mode not in ("dry_run", "paper", "execute"):
        raise ValueError(f"mode must be dry_run, paper or execute, got {config.mode!r}")
    project = qpipe.get()
    plan = session_plan(project, to_date(config.session) if config.session else None)
    trader = trader_for(project, config.mode)  # type: ignore[arg-type]
    names = config.strategies or list(project.strategies)
    sent = {}
    trader.connect(plan.session, config.mode)
    with trader.broker:
        for name in names:
            planned, done = rebalance(project, name, plan, trader, config.mode)  # type: ignore[arg-type]
            sent[name] = 0 if done is None else len(done.sent)
            context.log.info(
                f"{name} {plan.session}: {len(planned.orders)} orders planned, {sent[name]} sent"
            )
    return sent


def build_rebalance_job(qpipe: ProjectResource) -> JobDefinition:
    """The job, bound to the project resource and an in-memory IO manager (run in process)."""

    @job(
        name="market_close_rebalance",
        description="The market-close rebalance of every configured strategy (dry run by default).",
        executor_def=in_process_executor,
        resource_defs={"io_manager": mem_io_manager, "qpipe": qpipe},
    )
    def market_close_rebalance() -> None:
        rebalance_strategies()

    return market_close_rebalance

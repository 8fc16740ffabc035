"""``market_close_rebalance``: the live rebalance of the configured strategies at the close,
in process with an in-memory IO manager. Each strategy is its own step: ``rebalance_strategies``
(the run's config: mode, session, strategies) fans out one ``rebalance_strategy`` step per
strategy (a dynamic output keyed by its name), which calls the core step of ``qpipe live
rebalance`` (the same factor and strategy code as the signals assets). A strategy refused or
failed fails its own step, naming it, after the journal has its cause; the other strategies'
steps still run and send, and the run fails, listing the failed steps."""

from collections.abc import Iterator

from dagster import (
    Config,
    DynamicOut,
    DynamicOutput,
    Failure,
    JobDefinition,
    OpExecutionContext,
    in_process_executor,
    job,
    mem_io_manager,
    op,
)

from qpipe.calendars import to_date
from qpipe.defs.resources import ProjectResource
from qpipe.live.rebalance import describe_unowned, run_strategy, session_plan, trader_for

MODES = ("dry_run", "paper", "execute")


class RebalanceConfig(Config):
    """``mode``: dry_run (default), paper or execute; ``strategies``: none = every one;
    ``session``: YYYY-MM-DD (default: today)."""

    mode: str = "dry_run"
    strategies: list[str] | None = None
    session: str | None = None


@op(
    out=DynamicOut(dict),
    description="The session and the strategies to rebalance: one step per strategy.",
)
def rebalance_strategies(
    context: OpExecutionContext, config: RebalanceConfig, qpipe: ProjectResource
) -> Iterator[DynamicOutput]:
    if config.mode not in MODES:
        raise ValueError(f"mode must be dry_run, paper or execute, got {config.mode!r}")
    project = qpipe.get()
    plan = session_plan(project, to_date(config.session) if config.session else None)
    names = config.strategies or list(project.strategies)
    unknown = [n for n in names if n not in project.strategies]
    if unknown:
        raise ValueError(
            f"unknown strategies {', '.join(unknown)}; configured: {', '.join(project.strategies)}"
        )
    context.log.info(f"{config.mode} of {', '.join(names)} for session {plan.session}")
    for name in names:
        step = {"strategy": name, "mode": config.mode, "session": plan.session.isoformat()}
        yield DynamicOutput(step, mapping_key=name)


@op(description="Plan and (unless a dry run) send one strategy's orders for the session.")
def rebalance_strategy(context: OpExecutionContext, step: dict, qpipe: ProjectResource) -> int:
    """The number of orders sent; fails (naming the strategy and the cause) when the
    strategy was refused or an order was not accepted."""
    name, mode = step["strategy"], step["mode"]
    project = qpipe.get()
    plan = session_plan(project, to_date(step["session"]))
    trader = trader_for(project, mode)
    try:
        trader.connect(plan.session, mode)  # a refused connection is journaled
    except Exception as exc:
        raise Failure(description=f"strategy {name} {plan.session}: refused: {exc}") from exc
    with trader.broker:
        outcome = run_strategy(project, name, plan, trader, mode)  # type: ignore[arg-type]
    sent = 0 if outcome.sent is None else len(outcome.sent.sent)
    if outcome.planned is not None:
        planned = len(outcome.planned.orders)
        why = f" ({outcome.note})" if outcome.note else ""
        context.log.info(f"{name} {plan.session}: {planned} orders planned{why}, {sent} sent")
    if outcome.unowned is not None and len(outcome.unowned):
        context.log.warning(f"{name} {plan.session}: {describe_unowned(outcome.unowned)}")
    if outcome.failed:
        context.log.error(f"{name} {plan.session}: {outcome.error}")
        raise Failure(description=f"strategy {name} {plan.session}: {outcome.error}")
    return sent


def build_rebalance_job(qpipe: ProjectResource) -> JobDefinition:
    """The job, bound to the project resource and an in-memory IO manager (run in process)."""

    @job(
        name="market_close_rebalance",
        description="The market-close rebalance of every configured strategy, one step each "
        "(dry run by default).",
        executor_def=in_process_executor,
        resource_defs={"io_manager": mem_io_manager, "qpipe": qpipe},
    )
    def market_close_rebalance() -> None:
        rebalance_strategies().map(rebalance_strategy)

    return market_close_rebalance

"""The ``qpipe`` command line: a thin shell over the core and the Dagster definitions."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from qpipe.errors import QpipeError

if TYPE_CHECKING:
    from dagster import DagsterInstance

INSTANCE_YAML = """\
# Written by qpipe: the Dagster instance of this data directory.
telemetry:
  enabled: false
concurrency:
  pools:
    default_limit: 1
"""


def _project(ctx: click.Context):
    from qpipe.project import Project

    if "project" not in ctx.obj:
        ctx.obj["project"] = Project.load(ctx.obj["config"])
    return ctx.obj["project"]


def _dagster_home(root: Path) -> Path:
    """Point Dagster at ``<data>/dagster`` (unless DAGSTER_HOME is set) and make sure the
    instance directory exists with its ``dagster.yaml``."""
    home = Path(os.environ.get("DAGSTER_HOME") or root / "dagster")
    home.mkdir(parents=True, exist_ok=True)
    cfg = home / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(INSTANCE_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _print_frame(frame, max_rows: int) -> None:
    from rich.console import Console
    from rich.table import Table

    frame = frame.copy()
    for col in frame.columns:  # DuckDB DATE columns arrive as midnight timestamps
        values = frame[col]
        if values.dtype.kind == "M" and (values.dropna() == values.dropna().dt.normalize()).all():
            frame[col] = values.dt.strftime("%Y-%m-%d")
    table = Table(show_edge=False, header_style="bold")
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "iuf" else "left")
    for row in frame.head(max_rows).itertuples(index=False):
        table.add_row(*("" if v is None else str(v) for v in row))
    console = Console()
    console.print(table)
    if len(frame) > max_rows:
        console.print(f"... {len(frame) - max_rows} more rows ({len(frame)} in all)")


def failure_message(result: Any) -> str:
    """The innermost error message of a failed Dagster run's first failed step (the core's own
    message, not Dagster's wrapper around it)."""
    failure = next((e for e in result.all_events if e.is_step_failure), None)
    error = failure.step_failure_data.error if failure is not None else None
    if error is None:
        return "the run failed"
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Configuration YAML (default: $QPIPE_CONFIG, else the packaged default).",
)
@click.pass_context
def cli(ctx: click.Context, config: Path | None) -> None:
    """qpipe: daily bars into a Parquet lake, factors, strategies, backtests and live trading
    at the close, orchestrated by Dagster. Data lives under $QPIPE_DATA (default ./data)."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = str(config) if config else os.environ.get("QPIPE_CONFIG")


@cli.command()
@click.option("--start", default=None, help="First session to sync (YYYY-MM-DD).")
@click.option("--end", default=None, help="Last session to sync (default: the latest closed).")
@click.option("--refresh", is_flag=True, help="Re-fetch sessions already in the lake.")
@click.option(
    "--record",
    is_flag=True,
    help="Record the run in the Dagster instance under the data directory, so the UI shows "
    "its partitions as materialised (slower: Dagster stores a few events per session).",
)
@click.pass_context
def sync(
    ctx: click.Context, start: str | None, end: str | None, refresh: bool, record: bool
) -> None:
    """Materialise bars and corporate actions through Dagster for the sessions not yet in
    the lake (all sessions in range with --refresh), in one in-process run."""
    _run_sync(ctx, start, end, refresh, record)


@contextmanager
def _instance(root: Path, record: bool) -> Iterator[DagsterInstance]:
    """The persistent instance under ``<data>/dagster`` when recording, else an in-memory
    one whose scratch files also stay under the data directory and are removed after."""
    from dagster import DagsterInstance

    if record:
        _dagster_home(root)
        with DagsterInstance.get() as instance:
            yield instance
        return
    scratch = root / "dagster" / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        with (
            tempfile.TemporaryDirectory(dir=scratch) as tmp,
            DagsterInstance.ephemeral(tempdir=tmp) as instance,
        ):
            yield instance
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _run_sync(
    ctx: click.Context, start: str | None, end: str | None, refresh: bool, record: bool
) -> None:
    from qpipe.data.sync import plan_sync

    project = _project(ctx)
    plan = plan_sync(project, start, end, refresh=refresh)
    console = _console()
    if plan:
        console.print(
            f"Syncing {len(plan.sessions)} sessions {plan.first} .. {plan.last} ({plan.missing} "
            f"missing) from the {project.source.name} source into {project.lake.root}"
        )
    for note in plan.notes():  # short and unavailable sessions by name, future rows ignored
        console.print(f"  {note}", markup=False, highlight=False)
    if not plan:
        console.print("The lake already holds every session in range; nothing to sync.")
        return
    _execute(ctx, "sync_market_data", plan, record)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _execute(
    ctx: click.Context,
    job_name: str,
    plan: Any,
    record: bool,
    run_config: dict | None = None,
    assets: list[str] | None = None,
) -> None:
    """Run Dagster job ``job_name`` in process over the sessions of ``plan`` (one run; only
    the named ``assets`` of it when given), with a progress display, then print what it
    materialised and what its checks found."""
    import dagster
    from rich.markup import escape
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from qpipe.progress import listening

    # Dagster flags single-run backfills as beta; that is for developers, not for this output.
    warnings.filterwarnings("ignore", category=dagster.BetaWarning)
    warnings.filterwarnings("ignore", category=dagster.PreviewWarning)
    from qpipe.defs.build import build_definitions
    from qpipe.defs.market.schedules import partition_range_tags
    from qpipe.defs.resources import sharing

    project = _project(ctx)
    console = _console()
    job = build_definitions(project, ctx.obj["config"]).resolve_job_def(job_name)
    config = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}, **(run_config or {})}
    with (
        Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar,
        _instance(project.root, record) as instance,
    ):
        tasks: dict[str, Any] = {}

        def on_progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        with listening(on_progress), sharing(project, ctx.obj["config"]):
            result = job.execute_in_process(
                instance=instance,
                tags=partition_range_tags(plan.first, plan.last) if plan is not None else None,
                run_config=config,
                raise_on_error=False,
                asset_selection=[dagster.AssetKey(a) for a in assets] if assets else None,
            )
    if not result.success:
        raise click.ClickException(
            f"{failure_message(result)}\n(run {result.run_id}; nothing was written)"
        )
    # One materialization is recorded per partition; the metadata covers the whole run.
    firsts = {m.asset_key: m for m in reversed(result.get_asset_materialization_events())}
    for mat in sorted(firsts.values(), key=lambda m: m.asset_key.to_user_string()):
        m = mat.materialization.metadata
        if "rows" not in m:
            continue
        extra = "".join(
            f"  {m[k].value:>5} {k}" for k in ("splits", "dividends", "factors") if k in m
        )
        console.print(
            f"  {mat.asset_key.to_user_string():<22} {m['rows'].value:>9,} rows  "
            f"{m['partitions'].value:>5} sessions  {m['symbols'].value:>5} symbols{extra}"
        )
        if "sync_notes" in m:  # sessions of the run not written, by name
            for note in m["sync_notes"].value.splitlines():
                console.print(f"  {note}", markup=False, highlight=False)
    for ev in result.get_asset_check_evaluations():
        status = (
            "[green]ok[/]"
            if ev.passed
            else ("[red]FAIL[/]" if ev.severity.value == "ERROR" else "[yellow]warn[/]")
        )
        summary = ev.metadata["summary"].value if "summary" in ev.metadata else ""
        console.print(f"  check {ev.check_name:<18} {status}  {escape(summary)}")
        if not ev.passed and "details" in ev.metadata:
            _print_details(console, ev.check_name, list(ev.metadata["details"].value), record)
    console.print(f"Run {result.run_id} succeeded.")


CLI_DETAILS = 20
"""Offending rows of a check printed below its summary line."""


def _print_details(console: Any, check: str, details: list[str], record: bool) -> None:
    """The rows a check's summary does not name, up to :data:`CLI_DETAILS`, and where the
    rest are."""
    from qpipe.data.quality import MAX_IN_SUMMARY

    rest = details[MAX_IN_SUMMARY:]
    for line in rest[:CLI_DETAILS]:
        console.print(f"      {line}", markup=False, highlight=False)
    if len(rest) > CLI_DETAILS:
        where = "" if record else "; run with --record to keep them"
        console.print(
            f"      ... {len(rest) - CLI_DETAILS} more in the Dagster UI (asset check "
            f"bars/{check}, metadata 'details'{where})",
            markup=False,
            highlight=False,
        )


@cli.group(invoke_without_command=True)
@click.option("--start", default=None, help="First session (YYYY-MM-DD).")
@click.option("--end", default=None, help="Last session (default: the last synced).")
@click.option("--only", default=None, help="Comma-separated factors to (re)compute.")
@click.option("--refresh", is_flag=True, help="Recompute sessions already in the lake.")
@click.option("--record", is_flag=True, help="Record the run in the Dagster instance.")
@click.pass_context
def factors(
    ctx: click.Context,
    start: str | None,
    end: str | None,
    only: str | None,
    refresh: bool,
    record: bool,
) -> None:
    """Compute the configured factors through Dagster for the synced sessions that have none
    yet (with --refresh or --only: every synced session in range), in one in-process run."""
    if ctx.invoked_subcommand is not None:
        return
    from qpipe.calendars import to_date
    from qpipe.data.sync import plan_missing

    project = _project(ctx)
    lo = to_date(start) if start else None
    hi = to_date(end) if end else None
    synced = [
        d for d in project.lake.dates("bars") if (lo is None or d >= lo) and (hi is None or d <= hi)
    ]
    if not synced:
        raise click.ClickException("no synced sessions in range: run `qpipe sync` first")
    names = [n.strip() for n in only.split(",") if n.strip()] if only else None
    done = project.lake.dates("factors") if "factors" in project.lake.tables() else []
    plan = plan_missing(synced, done, refresh=refresh or names is not None)
    if not plan:
        _console().print("Every synced session in range has its factors; nothing to compute.")
        return
    _console().print(
        f"Computing {'the factors ' + ', '.join(names) if names else 'factors'} for "
        f"{len(plan.sessions)} sessions {plan.first} .. {plan.last}"
    )
    run_config = {"ops": {"factors": {"config": {"only": names}}}} if names else None
    _execute(ctx, "compute_factors", plan, record, run_config)


@factors.command("report")
@click.option("--record", is_flag=True, help="Record the run in the Dagster instance.")
@click.pass_context
def factor_report_command(ctx: click.Context, record: bool) -> None:
    """The factor report (IC, rank IC, quantile returns, turnover, decay, coverage and the
    correlation matrix of every configured factor) through Dagster, saved for the viewer;
    prints the factors with the strongest 20-session rank IC."""
    from qpipe.analytics.factor_store import load_table

    project = _project(ctx)
    if "factors" not in project.lake.tables():
        raise click.ClickException("no factors in the lake: run `qpipe factors` first")
    _console().print(f"Factor report of {len(project.factor_names)} factors")
    _execute(ctx, "factor_eda", None, record)
    summary = load_table(project.lake.root, "summary")
    top = summary.reindex(summary["rank_ic_mean_20"].abs().sort_values(ascending=False).index)
    columns = ["factor", "rank_ic_mean_20", "rank_ic_t_20", "turnover_top", "coverage"]
    _print_frame(top[columns].head(10).round(4), 10)


@factors.command("list")
@click.pass_context
def list_factors(ctx: click.Context) -> None:
    """Every factor: name, look-back (sessions), inputs and description."""
    import pandas as pd

    from qpipe.factors.factory import library_for

    library = library_for(_project(ctx).settings.factors)
    frame = pd.DataFrame(
        [(f.name, f.lookback, ", ".join(f.inputs), f.description) for f in library],
        columns=["name", "lookback", "inputs", "description"],
    )
    _print_frame(frame, len(frame))


@cli.command()
@click.option("--strategy", default=None, help="One strategy (default: every configured one).")
@click.option("--start", default=None, help="First session (YYYY-MM-DD).")
@click.option("--end", default=None, help="Last session (default: the last with factors).")
@click.option("--refresh", is_flag=True, help="Recompute sessions already in the lake.")
@click.option("--record", is_flag=True, help="Record the run in the Dagster instance.")
@click.pass_context
def signals(
    ctx: click.Context,
    strategy: str | None,
    start: str | None,
    end: str | None,
    refresh: bool,
    record: bool,
) -> None:
    """Compute the configured strategies' scores and target weights through Dagster for the
    sessions with factors that have no signals yet (with --refresh: every one in range)."""
    from qpipe.calendars import to_date
    from qpipe.data.sync import plan_missing
    from qpipe.strategies.signals import signals_table

    project = _project(ctx)
    chosen = _chosen_strategies(project, strategy)
    lo = to_date(start) if start else None
    hi = to_date(end) if end else None
    lake = project.lake
    with_factors = lake.dates("factors") if "factors" in lake.tables() else []
    ready = [d for d in with_factors if (lo is None or d >= lo) and (hi is None or d <= hi)]
    if not ready:
        raise click.ClickException("no sessions with factors in range: run `qpipe factors` first")
    tables = [signals_table(n) for n in chosen]
    done_sets = [set(lake.dates(t)) if t in lake.tables() else set() for t in tables]
    done = sorted(set.intersection(*done_sets)) if done_sets else []
    plan = plan_missing(ready, done, refresh=refresh)
    if not plan:
        _console().print("Every session in range has its signals; nothing to compute.")
        return
    _console().print(
        f"Computing the signals of {', '.join(chosen)} for {len(plan.sessions)} sessions "
        f"{plan.first} .. {plan.last}"
    )
    _execute(ctx, "compute_signals", plan, record, assets=tables)


@cli.command()
@click.option("--strategy", default=None, help="One strategy (default: every configured one).")
@click.option(
    "--record",
    is_flag=True,
    help="Run the backtest assets through Dagster and record the run in its instance.",
)
@click.pass_context
def backtest(ctx: click.Context, strategy: str | None, record: bool) -> None:
    """Backtest the configured strategies over their signals, save the results to the lake
    and print their metrics side by side.

    A backtest is one whole-history step with no checks, so without --record it calls the
    same core step as the backtest assets directly (Dagster would only add a record that is
    thrown away)."""
    if record:
        chosen = _run_backtests(ctx, strategy, record, reports=False)
    else:
        from concurrent.futures import ThreadPoolExecutor

        from qpipe.backtest.runner import backtest_lake, lake_market

        project = _project(ctx)
        with ThreadPoolExecutor(1) as pool:
            # The lake is read (mostly outside the GIL) while the strategies are built.
            market = pool.submit(lake_market, project.lake)
            chosen = _with_signals(project, strategy)
            _console().print(f"Backtesting {', '.join(chosen)}")
            strategies = {n: project.strategies[n] for n in chosen}
            settings = project.settings.backtest
            runs = backtest_lake(
                project.lake, strategies, settings, project.instruments, market.result(),
                periods_per_year=project.calendar.sessions_per_year,
            )  # fmt: skip
            for name, _, path in runs:
                _console().print(f"  {name:<22} saved to {path}")
    _print_metrics(_project(ctx), chosen)
    _print_warnings(_project(ctx), chosen)


def _with_signals(project: Any, strategy: str | None) -> list[str]:
    """The chosen strategies, each with a signal table in the lake (else a clear error)."""
    chosen = _chosen_strategies(project, strategy)
    missing = [n for n in chosen if f"signals_{n}" not in project.lake.tables()]
    if missing:
        raise click.ClickException(
            f"no signals for {', '.join(missing)}: run `qpipe signals` first"
        )
    return chosen


def _run_backtests(
    ctx: click.Context, strategy: str | None, record: bool, reports: bool
) -> list[str]:
    """Materialise ``backtest_<name>`` (and ``report_<name>`` with ``reports``) of the chosen
    strategies; returns their names."""
    chosen = _with_signals(_project(ctx), strategy)
    kinds = ("backtest", "report") if reports else ("backtest",)
    also = " and writing their tear sheets" if reports else ""
    _console().print(f"Backtesting {', '.join(chosen)}{also}")
    assets = [f"{k}_{n}" for n in chosen for k in kinds]
    _execute(ctx, "run_backtests", None, record, assets=assets)
    return chosen


@cli.command()
@click.option("--strategy", default=None, help="One strategy (default: every configured one).")
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(path_type=Path),
    help="HTML file (one strategy) or directory (default: <data>/reports/).",
)
@click.option("--log", "log_scale", is_flag=True, help="Equity on a log scale.")
@click.pass_context
def report(ctx: click.Context, strategy: str | None, out: Path | None, log_scale: bool) -> None:
    """Write a tear sheet per strategy from its saved backtest: one self-contained HTML file
    (Plotly, works offline) with equity against the benchmark, drawdown, monthly returns,
    rolling Sharpe, exposure and turnover, the metrics and the largest trades."""
    from qpipe.analytics.report import report_path, write_report
    from qpipe.backtest.store import load_result

    project = _project(ctx)
    for name in _chosen_strategies(project, strategy):
        try:
            result, bench = load_result(project.lake.root, name)
        except FileNotFoundError:
            raise click.ClickException(
                f"no saved backtest of {name!r}: run `qpipe backtest` first"
            ) from None
        if out is not None and (strategy is not None or out.suffix == ".html"):
            path = out
        else:
            path = out / f"{name}.html" if out is not None else report_path(project.root, name)
        written = write_report(path, name, result, bench, log=log_scale)
        click.echo(f"{name}: {written}")


def _chosen_strategies(project: Any, strategy: str | None) -> list[str]:
    configured = project.strategies
    if not configured:
        raise click.ClickException("no strategies configured: add some under `strategies:`")
    if strategy is not None and strategy not in configured:
        raise click.ClickException(
            f"unknown strategy {strategy!r}; configured: {', '.join(configured)}"
        )
    return [strategy] if strategy else list(configured)


def _print_metrics(
    project: Any,
    names: list[str],
    only: tuple[str, ...] = (),
    extra: dict[str, dict[str, float]] | None = None,
) -> None:
    """The saved metrics of ``names`` side by side (just the ``only`` ones when given), and
    the ``extra`` columns (name -> metrics) after them."""
    import pandas as pd

    from qpipe.backtest.store import load_output

    table = pd.concat(
        [load_output(project.lake.root, n, "metrics").set_index("metric")["value"].rename(n)
         for n in names]
        + [pd.Series(m, name=n, dtype=float) for n, m in (extra or {}).items()],
        axis=1,
    )  # fmt: skip
    if only:
        table = table.loc[[m for m in only if m in table.index]]
    click.echo("")
    _print_frame(table.round(4).rename_axis("metric").reset_index(), len(table))


def _print_warnings(project: Any, names: list[str]) -> None:
    """The saved warnings of the backtests of ``names`` (on stderr), e.g. one that never
    traded."""
    from qpipe.backtest.store import load_output

    for name in names:
        for warning in load_output(project.lake.root, name, "warnings")["warning"]:
            click.echo(f"warning: backtest {name}: {warning}", err=True)


@cli.command()
@click.argument("query")
@click.option("--max-rows", default=50, show_default=True, help="Rows to print at most.")
@click.pass_context
def sql(ctx: click.Context, query: str, max_rows: int) -> None:
    """Run a DuckDB QUERY over the lake (views: bars, corporate_actions, ...) and print it."""
    import duckdb

    from qpipe.data.query import connect
    from qpipe.settings import data_dir

    con = connect(data_dir() / "lake")
    try:
        frame = con.execute(query).df()
    except duckdb.Error as exc:
        raise click.ClickException(f"query failed: {exc}") from None
    finally:
        con.close()
    _print_frame(frame, max_rows)


@cli.command()
@click.pass_context
def demo(ctx: click.Context) -> None:
    """Run the main job on the configured (default: synthetic) data: sync the lake, compute
    the factors and the strategies' signals, backtest them and write their tear sheets, then
    summarise the lake, the strategies' headline metrics and where the tear sheets are."""
    _run_sync(ctx, None, None, False, False)
    ctx.invoke(factors)
    chosen: list[str] = []
    if _project(ctx).strategies:
        ctx.invoke(signals)
        chosen = _run_backtests(ctx, None, False, reports=True)
    import pandas as pd

    from qpipe.analytics.report import report_path
    from qpipe.backtest.metrics import HEADLINE
    from qpipe.data.query import connect

    project = _project(ctx)
    con = connect(project.lake.root)
    frame = con.execute(
        "select count(*) as bars, count(distinct symbol) as symbols, "
        "min(date) as first_session, max(date) as last_session from bars"
    ).df()
    actions = con.execute(
        "select count(*) filter (where split_ratio <> 1) as splits, "
        "count(*) filter (where dividend > 0) as dividends from corporate_actions"
    ).df()
    factor_sessions = con.execute("select count(distinct date) from factors").fetchall()[0][0]
    factor_columns = len(con.execute("describe factors").fetchall()) - 2
    holdings = []
    for name in project.strategies:
        table = f"signals_{name}"
        holdings.append(
            con.execute(
                f"with last as (select max(date) as d from {table} where target_weight is "
                f"not null) select '{name}' as strategy, d as last_rebalance, "
                "count(*) filter "
                "(where target_weight > 0) as holdings, round(sum(target_weight), 6) as "
                f"invested from {table}, last where date = d group by d"
            ).df()
        )
    con.close()
    click.echo("\nThe lake now holds:")
    summary = frame.join(actions)
    summary["factors"] = factor_columns
    summary["factor_sessions"] = factor_sessions
    _print_frame(summary, 5)
    if holdings:
        click.echo("\nStrategies (target weights at the last rebalance):")
        _print_frame(pd.concat(holdings, ignore_index=True), len(holdings))
    click.echo(
        '\nNext: qpipe sql "select date, symbol, mom_12_1 from factors order by date desc '
        'limit 5", qpipe factors list, qpipe backtest, or the Dagster UI: '
        "dagster dev -w workspace.yaml"
    )
    if chosen:
        from qpipe.backtest.portfolio import portfolio_lake

        allocations = {n: s.allocation for n, s in project.settings.strategies.items()}
        portfolio = portfolio_lake(
            project.lake, project.strategies, project.settings.backtest, project.instruments,
            allocations, periods_per_year=project.calendar.sessions_per_year,
        )  # fmt: skip
        click.echo(
            "\nHeadline metrics of the backtests (portfolio: every strategy on one account, "
            + ", ".join(f"{n} {a:g}" for n, a in allocations.items())
            + "):"
        )
        _print_metrics(project, chosen, HEADLINE, {"portfolio": portfolio.metrics})
        _print_warnings(project, chosen)
        click.echo("\nTear sheets:")
        for name in chosen:
            click.echo(f"  {name}: {report_path(project.root, name)}")


@cli.command()
@click.option("--port", default=8501, show_default=True, help="Port on 127.0.0.1.")
@click.pass_context
def viewer(ctx: click.Context, port: int) -> None:
    """Start the Streamlit results viewer on http://127.0.0.1:PORT (Ctrl-C stops it)."""
    import subprocess

    from qpipe.settings import data_dir

    app = Path(__file__).resolve().parent / "viewer" / "app.py"
    env = {**os.environ, "QPIPE_DATA": str(data_dir())}
    if ctx.obj["config"]:
        env["QPIPE_CONFIG"] = str(Path(ctx.obj["config"]).resolve())
    args = [
        sys.executable, "-m", "streamlit", "run", str(app),
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    _console().print(f"qpipe viewer on http://127.0.0.1:{port} (lake: {data_dir() / 'lake'})")
    try:
        raise SystemExit(subprocess.call(args, env=env))
    except KeyboardInterrupt:
        raise SystemExit(0) from None


@cli.group()
def live() -> None:
    """Live trading at the close (the paper broker by default: no account needed)."""


@live.command("rebalance")
@click.option("--strategy", default=None, help="One strategy (default: every configured one).")
@click.option("--dry-run", "mode", flag_value="dry_run", default=True, help="Plan only (default).")
@click.option("--paper", "mode", flag_value="paper", help="Trade on the paper broker.")
@click.option("--execute", "mode", flag_value="execute", help="Trade on the configured broker.")
@click.option(
    "--session", default=None, help="Session (default: today if one, else the last synced)."
)
@click.pass_context
def live_rebalance(
    ctx: click.Context, strategy: str | None, mode: str, session: str | None
) -> None:
    """Today's target weights of each strategy (the same code as its signals) into orders:
    the order table is printed before anything is sent. A dry run plans against the
    configured broker's account and prices; --paper trades on the paper broker. Every
    strategy is attempted, each one's outcome printed (and why it has no orders); the exit
    status is 1 when any strategy was refused or failed."""
    from qpipe.calendars import to_date
    from qpipe.live.rebalance import describe_unowned, run_strategy, session_plan, trader_for

    project = _project(ctx)
    try:
        plan = session_plan(project, to_date(session) if session else None)
        trader = trader_for(project, mode)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    columns = ["symbol", "side", "quantity", "price", "notional", "reference"]
    names = _chosen_strategies(project, strategy)
    try:
        trader.connect(plan.session, mode)
    except QpipeError as exc:
        raise click.ClickException(f"refused: {exc}") from None
    failed = []
    with trader.broker:
        for name in names:
            outcome = run_strategy(project, name, plan, trader, mode)  # type: ignore[arg-type]
            planned, sent = outcome.planned, outcome.sent
            if planned is None:
                failed.append(name)
                click.echo(f"\n{name}, session {plan.session}: {outcome.error}")
                continue
            kind = f"no orders: {outcome.note}" if planned.orders.empty else "orders"
            if outcome.note and not planned.orders.empty:  # e.g. starting
                kind = f"orders ({outcome.note})"
            click.echo(f"\n{name}, session {plan.session}: {kind}")
            if not planned.orders.empty:
                _print_frame(planned.orders[columns].round(4), len(planned.orders))
            if sent is not None:
                counts = sent.orders["action"].value_counts()
                detail = ", ".join(f"{n} {a}" for a, n in counts.items() if a != "sent")
                click.echo(
                    f"  sent {len(sent.sent)} orders to the {trader.broker.name} broker"
                    + (f" ({detail})" if detail else "")
                )
            if outcome.unowned is not None and len(outcome.unowned):
                click.echo(f"  {describe_unowned(outcome.unowned)}")
            if outcome.failed:
                failed.append(name)
                click.echo(f"  {outcome.error}")
    if failed:
        raise click.ClickException(
            f"{len(failed)} of {len(names)} strategies failed: {', '.join(failed)} "
            "(the others ran; see above and the journal's events)"
        )


@live.command("drift")
@click.option("--strategy", default=None, help="One strategy (default: every one).")
@click.option("--start", default=None, help="First session (default: the first rebalance).")
@click.option("--end", default=None, help="Last session (default: the last rebalance).")
@click.option("--orders", "show_orders", is_flag=True, help="Also print the order table.")
@click.pass_context
def live_drift(
    ctx: click.Context, strategy: str | None, start: str | None, end: str | None,
    show_orders: bool,
) -> None:  # fmt: skip
    """Each paper or live rebalance in the journal against the backtest engine on the same
    session from the same positions (close fills, the configured costs and limits): the NAV
    difference at the close and its cause (fills, costs, missed orders), and the cumulative
    tracking difference. Writes the `live_drift` lake table."""
    from qpipe.calendars import to_date
    from qpipe.live.drift import project_drift

    project = _project(ctx)
    if strategy is not None:
        _chosen_strategies(project, strategy)
    report = project_drift(
        project, strategy, to_date(start) if start else None, to_date(end) if end else None
    )
    if report.sessions.empty:
        click.echo("no paper or live rebalance in the journal for this selection")
        return
    columns = ["date", "strategy", "broker", "orders", "filled", "missed", "nav_start",
               "nav_diff", "nav_diff_rel", "fills", "costs", "missed_orders",
               "corporate_actions", "cause", "tracking"]  # fmt: skip
    frame = report.sessions[columns].copy()
    for col in ("orders", "filled", "missed"):
        frame[col] = frame[col].astype(int)
    for col in ("nav_start", "nav_diff", "fills", "costs", "missed_orders", "corporate_actions"):
        frame[col] = frame[col].round(2)
    for col in ("nav_diff_rel", "tracking"):
        frame[col] = frame[col].map(lambda v: f"{v:.2e}")
    _print_frame(frame, len(frame))
    if show_orders:
        _print_frame(report.orders.round(4), len(report.orders))


_connection_options = [
    click.option("--host", default=None, help="TWS / IB Gateway host (default: live.host)."),
    click.option("--port", type=int, default=None, help="API port (default: live.port)."),
    click.option("--client-id", type=int, default=None, help="API client id (live.client_id)."),
]


def _connection(func: Callable) -> Callable:
    for option in reversed(_connection_options):
        func = option(func)
    return func


@live.command("check")
@click.option("--symbol", default=None, help="Symbol for the bars and the test order.")
@click.option(
    "--place-test-order",
    is_flag=True,
    help="Also place a 1-share buy limit far below the market and cancel it.",
)
@_connection
@click.pass_context
def live_check(
    ctx: click.Context,
    symbol: str | None,
    place_test_order: bool,
    host: str | None,
    port: int | None,
    client_id: int | None,
) -> None:
    """Health check of the configured broker: connection and server version, account and
    NAV, positions, a few daily bars of one symbol (data permissions), a what-if of a
    one-share test order. Green and red lines; exit status 1 on a red one."""
    from qpipe.live.check import run_check
    from qpipe.live.rebalance import broker_for

    project = _project(ctx)
    console = _console()
    try:
        broker = broker_for(project, host=host, port=port, client_id=client_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    symbol = symbol or str(project.instruments["symbol"].iloc[0])
    ok = True
    for good, text in run_check(broker, symbol, place_test_order):
        ok &= good
        mark = f"[{'green' if good else 'red'}]{'ok ' if good else 'FAIL'}[/]"
        console.print(f"{mark} {text}", soft_wrap=True, highlight=False)
    if not ok:
        raise SystemExit(1)


@live.command("cancel-all")
@_connection
@click.pass_context
def live_cancel_all(
    ctx: click.Context, host: str | None, port: int | None, client_id: int | None
) -> None:
    """Cancel every open order at the configured broker."""
    from qpipe.live.rebalance import broker_for

    try:
        broker = broker_for(_project(ctx), host=host, port=port, client_id=client_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    from qpipe.live.broker import BrokerError

    failed = []
    with broker:
        orders = broker.open_orders()
        for status in orders:
            try:
                broker.cancel(status.order.reference)
            except BrokerError as exc:  # e.g. another client id's order
                failed.append(f"  {status.order.reference}: {exc}")
    click.echo(f"cancelled {len(orders) - len(failed)} open orders")
    if failed:
        raise click.ClickException("not cancelled:\n" + "\n".join(failed))


@cli.command("config")
@click.pass_context
def show_config(ctx: click.Context) -> None:
    """Validate the configuration and print it in effect, defaults filled in (a strategy's unused
    parameters left out)."""
    import yaml

    project = _project(ctx)
    _ = project.strategies  # checked against the factor set and the instruments too
    click.echo(yaml.safe_dump(project.settings.model_dump(mode="json"), sort_keys=False))


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``qpipe`` console script; qpipe's own errors print without a trace."""
    try:
        cli.main(args=argv, prog_name="qpipe", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except (QpipeError, ValueError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

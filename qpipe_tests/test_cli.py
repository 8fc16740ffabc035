"""The qpipe command line, in process (CliRunner) and once as the installed console script."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from qpipe.cli import cli
from qpipe_tests.conftest import SMALL_CONFIG, write_config


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_help_lists_every_command():
    out = invoke("--help").output
    for command in ("sync", "sql", "demo", "config"):
        assert command in out


def test_sync_twice_and_sql(isolated_env, small_config):
    first = invoke(
        "--config", str(small_config), "sync", "--start", "2024-01-02", "--end", "2024-03-28"
    )
    assert first.exit_code == 0, first.output
    assert "Syncing 61 sessions 2024-01-02 .. 2024-03-28" in first.output
    count = invoke("sql", "select count(*) as n, count(distinct date) as d from bars")
    assert count.exit_code == 0
    assert " 61 " in count.output
    lake_rows = len(pd.read_parquet(isolated_env / "lake" / "bars"))
    # A second sync of the same range has nothing to do; --refresh rewrites, counts unchanged.
    again = invoke(
        "--config", str(small_config), "sync", "--start", "2024-01-02", "--end", "2024-03-28"
    )
    assert "nothing to sync" in again.output
    refresh = invoke(
        "--config",
        str(small_config),
        "sync",
        "--refresh",
        "--start",
        "2024-03-01",
        "--end",
        "2024-03-28",
    )
    assert refresh.exit_code == 0, refresh.output
    assert len(pd.read_parquet(isolated_env / "lake" / "bars")) == lake_rows
    # The in-memory instance left nothing behind but the lake (and the instruments cache).
    assert sorted(p.name for p in isolated_env.iterdir()) == ["cache", "dagster", "lake"]
    assert [p.name[:22] for p in (isolated_env / "cache").iterdir()] == ["instruments-synthetic-"]
    assert list((isolated_env / "dagster").iterdir()) == []


def test_record_stores_the_run_in_the_data_directory(isolated_env, small_config):
    result = invoke(
        "--config",
        str(small_config),
        "sync",
        "--record",
        "--start",
        "2024-03-25",
        "--end",
        "2024-03-28",
    )
    assert result.exit_code == 0, result.output
    home = isolated_env / "dagster"
    assert (home / "dagster.yaml").exists()
    assert any((home / "storage").iterdir())


def test_sql_error_is_reported(isolated_env):
    result = CliRunner().invoke(cli, ["sql", "select nope from bars"])
    assert result.exit_code != 0
    assert "query failed" in result.output


def test_sql_on_an_empty_lake(isolated_env):
    result = invoke("sql", "select count(*) as n from bars")
    assert result.exit_code == 0 and " 0 " in result.output


def test_bad_config_names_the_key(isolated_env, tmp_path):
    bad = write_config(tmp_path / "bad.yaml", {"data": {"synthetic": {"n_stock": 3}}})
    proc = subprocess.run(
        [sys.executable, "-m", "qpipe.cli", "--config", str(bad), "config"],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    assert proc.returncode == 2
    assert "data.synthetic.n_stock: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_config_prints_the_effective_settings(isolated_env, small_config):
    out = invoke("--config", str(small_config), "config").output
    assert "n_stocks: 20" in out and "exchange: XNYS" in out


def test_console_script_writes_only_under_qpipe_data(tmp_path):
    """The README's promise: QPIPE_DATA=/x qpipe sync ... && qpipe sql ... writes only to /x."""
    data = tmp_path / "x"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cfg = write_config(tmp_path / "c.yaml", SMALL_CONFIG)
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME", "QPIPE_CONFIG")}
    env.update(QPIPE_DATA=str(data), QPIPE_CONFIG=str(cfg))
    qpipe = Path(sys.executable).with_name("qpipe")
    exe = [str(qpipe)] if qpipe.exists() else [sys.executable, "-m", "qpipe.cli"]
    sync = subprocess.run(
        [*exe, "sync", "--start", "2024-01-02", "--end", "2024-03-28"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert sync.returncode == 0, sync.stderr
    sql = subprocess.run(
        [*exe, "sql", "select count(distinct date) as d from bars"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    assert sql.returncode == 0 and " 61 " in sql.stdout
    assert list(cwd.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "cwd", "x"]


def test_demo_syncs_and_summarises(isolated_env, small_config, monkeypatch):
    import datetime as dt

    from qpipe.data import sync as sync_module

    # Pin "now" so the demo syncs a known span of the small market.
    monkeypatch.setattr(sync_module, "default_end", lambda project, now=None: dt.date(2024, 2, 29))
    result = invoke("--config", str(small_config), "demo")
    assert result.exit_code == 0, result.output
    assert "Syncing 41 sessions 2024-01-02 .. 2024-02-29" in result.output
    assert "The lake now holds" in result.output and "2024-02-29" in result.output
    assert "Computing factors for 41 sessions" in result.output


def test_demo_ends_with_headline_metrics_and_tear_sheets(isolated_env, tmp_path, monkeypatch):
    import datetime as dt

    from qpipe.data import sync as sync_module

    monkeypatch.setattr(sync_module, "default_end", lambda project, now=None: dt.date(2024, 3, 28))
    strategies = {
        "rot": {"kind": "rotation", "params": {"symbols": ["EMKT", "ETECH"], "lookback": 10,
                                               "top_k": 1, "min_return": -0.5}},
    }  # fmt: skip
    # (min_return -0.5: a falling market still trades, so the demo's numbers come from fills)
    cfg = write_config(
        tmp_path / "d.yaml",
        {**SMALL_CONFIG, "factors": {"names": ["reversal_1m"]}, "strategies": strategies},
    )
    result = invoke("--config", str(cfg), "demo")
    assert result.exit_code == 0, result.output
    tail = result.output[result.output.index("Headline metrics of the backtests") :]
    for metric in ("total_return", "cagr", "sharpe", "max_drawdown"):
        assert metric in tail
    # the portfolio backtest beside the strategy's own: one strategy with all the capital
    assert "(portfolio: every strategy on one account, rot 1):" in tail
    assert any("rot" in line and "portfolio" in line for line in tail.splitlines())
    row = next(line for line in tail.splitlines() if line.strip().startswith("total_return"))
    own, combined = [float(x) for x in row.replace("│", " ").split()[1:3]]
    assert combined == own  # all the capital on the one strategy: the same backtest
    sheet = isolated_env / "reports" / "rot.html"
    assert f"rot: {sheet}" in tail
    assert "qpipe backtest: rot" in sheet.read_text()
    assert "no fills" not in result.output


def test_backtests_that_never_trade_say_so_on_every_path(isolated_env, tmp_path, monkeypatch):
    import datetime as dt

    from qpipe.data import sync as sync_module

    monkeypatch.setattr(sync_module, "default_end", lambda project, now=None: dt.date(2024, 3, 28))
    strategies = {
        "rev": {"kind": "linear", "params": {"factors": {"reversal_1m": 1.0}, "top_k": 5,
                                             "rebalance": "weekly"}},
    }  # fmt: skip
    # A minimum fee above the whole capital: every trade is worth less than its fee.
    cfg = write_config(
        tmp_path / "w.yaml",
        {
            **SMALL_CONFIG,
            "factors": {"names": ["reversal_1m"]},
            "strategies": strategies,
            "backtest": {"min_commission": 2e6},
        },
    )
    warning = (
        "warning: backtest rev: no fills: trades worth {} were skipped, each one's fee above its "
        "value (backtest.min_commission too high for the capital?)"
    )
    demo = invoke("--config", str(cfg), "demo")
    assert demo.exit_code == 0, demo.output
    assert "Headline metrics of the backtests" in demo.output
    [line] = [x for x in demo.stderr.splitlines() if x.startswith("warning:")]
    worth = line.split("trades worth ")[1].split()[0]
    assert line == warning.format(worth) and float(worth.replace(",", "")) > 0
    for extra in ([], ["--record"]):
        again = invoke("--config", str(cfg), "backtest", *extra)
        assert again.exit_code == 0, again.output
        assert [x for x in again.stderr.splitlines() if x.startswith("warning:")] == [line]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--start", "03/01/2024"], "not a date (expected YYYY-MM-DD): '03/01/2024'"),
        (["--start", "2024-03-01", "--end", "2024-02-01"], "start 2024-03-01 is after end"),
    ],
)
def test_bad_sync_dates_are_clear_errors(isolated_env, small_config, args, message):
    proc = subprocess.run(
        [sys.executable, "-m", "qpipe.cli", "--config", str(small_config), "sync", *args],
        capture_output=True, text=True, env=os.environ.copy(),
    )  # fmt: skip
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_factors_list(isolated_env, small_config):
    out = invoke("--config", str(small_config), "factors", "list").output
    assert "mom_12_1" in out and "alpha001" in out and "lookback" in out


def test_factors_need_synced_sessions(isolated_env, small_config):
    result = CliRunner().invoke(cli, ["--config", str(small_config), "factors"])
    assert result.exit_code != 0 and "run `qpipe sync` first" in result.output


def test_sync_then_factors_then_only(isolated_env, tmp_path):
    cfg = write_config(
        tmp_path / "f.yaml",
        {**SMALL_CONFIG, "factors": {"names": ["mom_12_1", "vol_20", "reversal_1m"]}},
    )
    args = ["--config", str(cfg)]
    assert invoke(*args, "sync", "--start", "2024-01-02", "--end", "2024-03-28").exit_code == 0
    first = invoke(*args, "factors")
    assert first.exit_code == 0, first.output
    assert "Computing factors for 61 sessions 2024-01-02 .. 2024-03-28" in first.output
    assert "no_lookahead" in first.output
    lake = isolated_env / "lake" / "factors"
    frame = pd.read_parquet(lake)
    assert {"mom_12_1", "vol_20", "reversal_1m"} <= set(frame.columns)
    assert "nothing to compute" in invoke(*args, "factors").output
    only = invoke(*args, "factors", "--only", "vol_20", "--start", "2024-03-01")
    assert only.exit_code == 0, only.output
    assert len(pd.read_parquet(lake)) == len(frame)


def test_signals_after_factors_one_strategy_and_errors(isolated_env, tmp_path):
    strategies = {
        "rev": {"kind": "linear", "params": {"factors": {"reversal_1m": 1.0}, "top_k": 5,
                                             "rebalance": "weekly"}},
        "rot": {"kind": "rotation", "params": {"symbols": ["EMKT", "ETECH"], "lookback": 10,
                                               "top_k": 1}},
    }  # fmt: skip
    cfg = write_config(
        tmp_path / "s.yaml",
        {**SMALL_CONFIG, "factors": {"names": ["reversal_1m"]}, "strategies": strategies},
    )
    args = ["--config", str(cfg)]
    early = CliRunner().invoke(cli, [*args, "signals"])
    assert early.exit_code != 0 and "run `qpipe factors` first" in early.output
    assert invoke(*args, "sync", "--start", "2024-01-02", "--end", "2024-03-28").exit_code == 0
    assert invoke(*args, "factors").exit_code == 0
    unknown = CliRunner().invoke(cli, [*args, "signals", "--strategy", "nope"])
    assert unknown.exit_code != 0
    assert "unknown strategy 'nope'; configured: rev, rot" in unknown.output
    one = invoke(*args, "signals", "--strategy", "rot")
    assert one.exit_code == 0, one.output
    assert "Computing the signals of rot for 61 sessions 2024-01-02 .. 2024-03-28" in one.output
    assert not (isolated_env / "lake" / "signals_rev").exists()
    both = invoke(*args, "signals")
    assert both.exit_code == 0, both.output
    assert "signals_rev" in both.output and "no_lookahead" in both.output
    frame = pd.read_parquet(isolated_env / "lake" / "signals_rev")
    assert set(frame.columns) >= {"symbol", "strategy", "score", "target_weight"}
    assert "nothing to compute" in invoke(*args, "signals").output


def test_backtest_needs_signals_then_prints_metrics(isolated_env, tmp_path):
    strategies = {
        "rot": {"kind": "rotation", "params": {"symbols": ["EMKT", "ETECH"], "lookback": 10,
                                               "top_k": 1}},
    }  # fmt: skip
    cfg = write_config(
        tmp_path / "b.yaml",
        {**SMALL_CONFIG, "factors": {"names": ["reversal_1m"]}, "strategies": strategies},
    )
    args = ["--config", str(cfg)]
    early = CliRunner().invoke(cli, [*args, "backtest"])
    assert early.exit_code != 0 and "run `qpipe signals` first" in early.output
    assert invoke(*args, "sync", "--start", "2024-01-02", "--end", "2024-03-28").exit_code == 0
    assert invoke(*args, "factors").exit_code == 0
    assert invoke(*args, "signals").exit_code == 0
    unsaved = CliRunner().invoke(cli, [*args, "report"])
    assert unsaved.exit_code != 0 and "run `qpipe backtest` first" in unsaved.output
    out = invoke(*args, "backtest")
    assert out.exit_code == 0, out.output
    assert "sharpe" in out.output and "max_drawdown" in out.output and "rot" in out.output
    page = tmp_path / "rot.html"
    made = invoke(*args, "report", "--strategy", "rot", "--out", str(page))
    assert made.exit_code == 0, made.output
    assert f"rot: {page}" in made.output
    text = page.read_text()
    assert "qpipe backtest: rot" in text and text.count('class="plotly-graph-div"') == 5


def test_config_checks_strategies_against_factors(isolated_env, tmp_path):
    strategies = {"s": {"kind": "linear", "params": {"factors": {"momentum": 1.0}}}}
    cfg = write_config(tmp_path / "bad.yaml", {**SMALL_CONFIG, "strategies": strategies})
    result = CliRunner().invoke(cli, ["--config", str(cfg), "config"])
    assert result.exit_code != 0  # main() prints qpipe's errors without a trace
    assert "strategies.s.params.factors.momentum: unknown factor" in str(result.exception)


def test_sync_retries_a_gap_and_ignores_future_rows(isolated_env, tmp_path):
    """A files source: a session missing from the file is named and not written, the complete
    file fills it; rows dated after the latest closed session are counted and never written.
    Dates are relative to the clock: the future rows are two and three sessions ahead."""
    import datetime as dt

    from qpipe.calendars import TradingCalendar

    cal = TradingCalendar("XNYS", "2020-01-02")
    now = pd.Timestamp.now(tz="UTC")
    last = cal.latest_closed_session(now, dt.timedelta(hours=3))  # closed, past the sync delay
    past = cal.sessions(end=last)[-4:]
    ahead = cal.next_session(cal.next_session(cal.latest_closed_session(now)))
    future = [ahead, cal.next_session(ahead)]
    gap = past[1]

    def rows(days):
        return [(d.isoformat(), s, 10.0, 10.5, 9.5, 10.2, 1000) for d in days for s in ("A", "B")]

    columns = ["date", "symbol", "open", "high", "low", "close", "volume"]
    prices = tmp_path / "prices.csv"
    gappy = [d for d in past if d != gap]
    pd.DataFrame(rows(gappy + future), columns=columns).to_csv(prices, index=False)
    cfg = write_config(
        tmp_path / "files.yaml",
        {
            "calendar": {"start": past[0].isoformat()},
            "data": {"source": "files", "files": {"path": str(prices)}},
        },
    )

    def synced():
        return sorted(
            dt.date.fromisoformat(p.name[5:]) for p in (isolated_env / "lake" / "bars").iterdir()
        )

    first = invoke("--config", str(cfg), "sync")
    assert first.exit_code == 0, first.output
    text = " ".join(first.output.split())
    assert f"4 rows dated after {cal.latest_closed_session(now)}" in text
    assert "no bars from the files source for 1 session, not written" in text
    assert str(gap) in text
    assert synced() == gappy
    again = " ".join(invoke("--config", str(cfg), "sync").output.split())
    assert "nothing to sync" in again and str(gap) in again

    pd.DataFrame(rows(past + future), columns=columns).to_csv(prices, index=False)
    filled = invoke("--config", str(cfg), "sync")
    assert filled.exit_code == 0, filled.output
    assert f"Syncing 1 sessions {gap} .. {gap}" in filled.output
    assert synced() == past


def test_sync_names_the_unexplained_moves(isolated_env, tmp_path, monkeypatch):
    import qpipe.cli as cli_module

    monkeypatch.setenv("COLUMNS", "300")  # no wrapping of the lines checked below
    days = pd.bdate_range("2024-01-02", "2024-01-12")  # 9 XNYS sessions
    # RRC: an unadjusted 3-for-1 split on the third day. XYZ: four swings beyond 50%.
    closes = {
        "RRC": [30.2, 30.01, 10.0, 10.1, 10.2, 10.0, 10.1, 10.3, 10.2],
        "XYZ": [5.0, 5.1, 5.0, 11.0, 5.2, 5.3, 12.0, 5.5, 5.6],
    }
    rows = [
        f"{day:%Y-%m-%d},{symbol},{c},{c},{c},{c},1000"
        for symbol, values in closes.items()
        for day, c in zip(days, values, strict=True)
    ]
    csv = tmp_path / "bars.csv"
    csv.write_text("date,symbol,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    config = write_config(
        tmp_path / "files.yaml",
        {
            "calendar": {"start": "2024-01-02"},
            "data": {"source": "files", "files": {"path": str(csv)}},
        },
    )
    args = ("--config", str(config), "sync", "--start", "2024-01-02", "--end", "2024-01-12")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    split = (
        "2024-01-04 RRC -66.7% (close 30.01 -> 10; before/after 3.0010, like an unadjusted "
        "3-for-1 split)"
    )
    assert (
        f"5 unexplained moves beyond 50%: {split}; 2024-01-05 XYZ +120.0% (close 5 -> 11); "
        "2024-01-08 XYZ -52.7% (close 11 -> 5.2); and 2 more (the check's details list them all)"
    ) in result.output
    assert "      2024-01-10 XYZ +126.4% (close 5.3 -> 12)\n" in result.output
    assert "      2024-01-11 XYZ -54.2% (close 12 -> 5.5)\n" in result.output

    monkeypatch.setattr(cli_module, "CLI_DETAILS", 1)
    result = invoke(*args, "--refresh")
    assert "      2024-01-10 XYZ +126.4% (close 5.3 -> 12)\n" in result.output
    assert "2024-01-11 XYZ" not in result.output.split("and 2 more")[1]
    assert (
        "      ... 1 more in the Dagster UI (asset check bars/extreme_returns, metadata "
        "'details'; run with --record to keep them)"
    ) in result.output

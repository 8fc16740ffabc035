"""Every page of the viewer through Streamlit's AppTest: empty states, then a lake with two
saved backtests and a factor report, with the widgets exercised."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from streamlit.testing.v1 import AppTest

import qpipe.viewer
from qpipe.analytics.factor_eda import report_tables
from qpipe.analytics.factor_store import save_report
from qpipe.backtest.config import BacktestConfig
from qpipe.backtest.engine import BacktestEngine
from qpipe.backtest.store import save_result
from qpipe_tests.conftest import two_day_lake

APP = str(Path(qpipe.viewer.__file__).parent / "app.py")


def app(data: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("QPIPE_DATA", str(data))
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def page(at: AppTest, name: str) -> AppTest:
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, at.exception
    return at


def infos(at: AppTest) -> str:
    return " ".join(i.value for i in at.info)


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory with two saved backtests and a factor report."""
    data = tmp_path_factory.mktemp("data")
    root = data / "lake"
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2023-01-02", periods=260, name="date")
    symbols = [f"S{i}" for i in range(8)]
    close = 30 * np.exp(np.cumsum(rng.normal(0.0003, 0.02, (260, 8)), axis=0))
    dims = ("date", "symbol")
    bars = xr.Dataset(
        {
            "open": (dims, close),
            "close": (dims, close),
            "volume": (dims, np.full(close.shape, 1e6)),
        },
        coords={"date": dates, "symbol": symbols},
    )
    bench = pd.Series(close.mean(axis=1), index=dates, name="equal_weight")
    for name, seed in (("alpha", 1), ("beta", 2)):
        w = np.random.default_rng(seed).random((260, 8))
        w = w / w.sum(axis=1, keepdims=True)
        w[np.arange(260) % 21 != 0] = np.nan  # monthly-ish rebalances
        weights = xr.DataArray(w, coords=bars.coords, dims=dims)
        result = BacktestEngine(BacktestConfig(commission_bps=10)).run(bars, weights)
        save_result(root, name, result, bench)
    factors = {
        "mom": np.log(close / np.roll(close, 20, axis=0)),
        "noise": rng.normal(size=close.shape),
    }
    factors["mom"][:20] = np.nan
    save_report(root, report_tables(factors, close, dates))
    return data


def test_no_lake_says_what_to_run(tmp_path, monkeypatch):
    at = app(tmp_path / "nothing", monkeypatch)
    assert "qpipe demo" in infos(at)


def test_empty_lake_pages_show_what_to_run(tmp_path, monkeypatch):
    (tmp_path / "lake").mkdir()
    at = app(tmp_path, monkeypatch)
    assert "No saved backtests yet" in infos(at)
    assert "qpipe factors report" in infos(page(at, "Factor lab"))
    assert "No live trading yet" in infos(page(at, "Live"))


def test_backtests_page(lake, monkeypatch):
    at = app(lake, monkeypatch)
    assert at.multiselect(key="bt_strategies").value == ["alpha", "beta"]
    metrics = at.dataframe[0].value
    assert list(metrics.columns) == ["alpha", "beta"] and "sharpe" in metrics.index
    charts = at.get("plotly_chart")
    assert len(charts) == 5  # comparison, equity, drawdown, exposure, monthly
    assert len(at.get("download_button")) == 2
    at.selectbox(key="bt_detail").set_value("beta").run()
    at.toggle(key="bt_log").set_value(True).run()
    at.multiselect(key="bt_symbols").set_value(["S1"]).run()
    at.multiselect(key="bt_sides").set_value(["buy"]).run()
    assert not at.exception
    fills = at.dataframe[2].value
    assert set(fills["symbol"]) == {"S1"} and set(fills["side"]) == {"buy"}
    at.multiselect(key="bt_strategies").set_value(["alpha"]).run()
    assert not at.exception and len(at.get("plotly_chart")) == 4  # no comparison for one
    at.multiselect(key="bt_strategies").set_value([]).run()
    assert "Pick at least one strategy" in infos(at)


def test_factor_lab_page(lake, monkeypatch):
    at = page(app(lake, monkeypatch), "Factor lab")
    assert at.selectbox(key="fl_factor").options == ["mom", "noise"]
    assert len(at.get("plotly_chart")) == 4  # IC, quantiles, decay, correlation
    assert [m.label for m in at.metric][:2] == ["Rank IC, 20 sessions", "t-statistic"]
    at.selectbox(key="fl_factor").set_value("noise").run()
    at.slider(key="fl_window").set_value(63).run()
    assert not at.exception
    others = at.dataframe[0].value
    assert list(others.index) == ["mom"]


def test_live_page_empty_state(lake, monkeypatch):
    at = page(app(lake, monkeypatch), "Live")
    assert "No live trading yet" in infos(at)


def test_strategy_lab_page(demo, monkeypatch):
    data, cfg = demo
    monkeypatch.setenv("QPIPE_CONFIG", str(cfg))
    at = page(app(data, monkeypatch), "Strategy lab")
    assert at.selectbox(key="sl_strategy").value == "lab"
    assert at.number_input(key="sl_top_k").value == 5
    at.button(key="sl_run").click().run()
    assert not at.exception, at.exception
    compare = at.dataframe[0].value
    assert list(compare.columns) == ["variant", "saved run"]
    # The configured parameters reproduce the saved run.
    np.testing.assert_allclose(compare["variant"], compare["saved run"], rtol=1e-12)
    at.number_input(key="sl_top_k").set_value(2)
    at.number_input(key="sl_commission").set_value(0.0)
    at.selectbox(key="sl_rebalance").set_value("monthly")
    at.button(key="sl_run").click().run()
    assert not at.exception
    changed = at.dataframe[0].value
    assert changed.loc["total_costs", "variant"] < changed.loc["total_costs", "saved run"]
    at.number_input(key="sl_w_reversal_1m").set_value(0.0)
    at.number_input(key="sl_w_vol_20").set_value(0.0)
    at.button(key="sl_run").click().run()
    assert "Cannot run this variant" in " ".join(e.value for e in at.error)


def test_strategy_lab_without_strategies_says_what_to_run(lake, monkeypatch):
    at = page(app(lake, monkeypatch), "Strategy lab")
    assert "qpipe demo" in infos(at)


def test_live_page_shows_the_paper_account_and_the_journal(tmp_path, monkeypatch):
    import datetime as dt

    from qpipe.backtest.config import BacktestConfig
    from qpipe.live.journal import Journal
    from qpipe.live.paper import PaperBroker
    from qpipe.live.trader import LiveTrader

    lake = two_day_lake(tmp_path / "lake")
    broker = PaperBroker(lake, BacktestConfig(initial_cash=10_000.0))
    trader = LiveTrader(broker, Journal(lake.root))
    day = dt.date(2024, 1, 4)
    trader.rebalance("s", day, pd.Series({"A": 0.2}), day - dt.timedelta(1),
                     day - dt.timedelta(1), mode="execute")  # fmt: skip
    at = page(app(tmp_path, monkeypatch), "Live")
    assert [m.label for m in at.metric] == ["Net liquidation", "Cash"]
    assert "Paper account, now" in [c.value for c in at.caption]
    positions = at.dataframe[0].value
    assert list(positions["symbol"]) == ["A"] and positions["quantity"].item() == 166
    assert "sent" in set(at.dataframe[2].value["action"])
    assert list(at.dataframe[3].value["symbol"]) == ["A"]  # the fill


def test_live_page_shows_another_brokers_account_from_the_journal(tmp_path, monkeypatch):
    import datetime as dt

    from qpipe.live.broker import Account, Position
    from qpipe.live.journal import Journal
    from qpipe.live.paper import PaperBroker
    from qpipe.live.trader import LiveTrader

    class Remote(PaperBroker):  # a broker the page cannot reach: only the journal tells
        name = "ib"

        def account(self) -> Account:
            return Account("DU1", 50_000.0, 30_000.0)

        def positions(self) -> dict[str, Position]:
            return {"B": Position("B", 800.0, 20.0)}

    lake = two_day_lake(tmp_path / "lake")
    day = dt.date(2024, 1, 4)
    LiveTrader(Remote(lake), Journal(lake.root)).rebalance(
        "s", day, pd.Series({"B": 0.2}), day - dt.timedelta(1), day - dt.timedelta(1)
    )
    at = page(app(tmp_path, monkeypatch), "Live")
    assert [m.value for m in at.metric] == ["50,000", "30,000"]
    assert "ib account DU1 at the last rebalance (s, session 2024-01-04)" in [
        c.value for c in at.caption
    ]
    positions = at.dataframe[0].value
    assert positions.loc[0, "pnl"] == 800 * (25.0 - 20.0)


def test_live_page_plots_the_cumulative_tracking_difference(tmp_path, monkeypatch):
    import datetime as dt

    from qpipe.calendars import TradingCalendar
    from qpipe.live.drift import compute_drift, replay_config, write_drift
    from qpipe.live.journal import Journal
    from qpipe.live.paper import PaperBroker
    from qpipe.live.trader import Limits, LiveTrader

    lake = two_day_lake(tmp_path / "lake")
    at = page(app(tmp_path, monkeypatch), "Live")
    assert not at.get("plotly_chart")  # a journal-less lake: the empty state
    costs = BacktestConfig(initial_cash=10_000.0, commission_bps=10.0)
    day = dt.date(2024, 1, 3)
    LiveTrader(PaperBroker(lake, costs), Journal(lake.root), costs=costs.costs).rebalance(
        "s", day, pd.Series({"A": 0.2}), day, dt.date(2024, 1, 2), mode="execute"
    )
    at = page(app(tmp_path, monkeypatch), "Live")
    assert "No drift report yet" in " ".join(c.value for c in at.caption)
    report = compute_drift(Journal(lake.root), lake, TradingCalendar(start="2023-01-03"),
                           replay_config(costs, Limits()))  # fmt: skip
    write_drift(lake, report.sessions)
    at = page(app(tmp_path, monkeypatch), "Live")
    charts = at.get("plotly_chart")
    assert len(charts) == 1
    assert '"name":"s"' in charts[0].proto.spec.replace(" ", "")
    table = at.dataframe[-1].value
    assert list(table["strategy"]) == ["s"] and table["cause"].item() == "none"
    assert abs(table["nav_diff"].item()) < 1e-9

"""`qpipe sync` from Interactive Brokers, against the loopback fake gateway: the configured
symbols' daily bars land in the lake, a later sync asks only for what is missing, and error
162 is retried."""

from __future__ import annotations

import datetime as dt

import exchange_calendars as xcals
import pytest
from click.testing import CliRunner

from qpipe.cli import cli
from qpipe.data.ib_source import ib_duration
from qpipe.errors import ConfigError
from qpipe.project import Project
from qpipe.settings import load_settings
from qpipe_tests.conftest import write_config
from qpipe_tests.live.fake_tws import FakeTWS

SESSIONS = xcals.get_calendar("XNYS").sessions_in_range("2024-04-01", "2024-06-28")
SYMBOLS = {"AAA": 10.0, "BBB": 40.0, "ETF1": 100.0}
HISTORY_REQUEST = 20


def bars(base: float) -> list[tuple]:
    return [(d.date(), base + i, base + i + 1, base + i - 1, base + i + 0.5, 1e5 + i)
            for i, d in enumerate(SESSIONS)]  # fmt: skip


@pytest.fixture
def gateway():
    fake = FakeTWS(
        contracts={s: 500 + i for i, s in enumerate(SYMBOLS)},
        bars={s: bars(p) for s, p in SYMBOLS.items()},
        prices=dict(SYMBOLS),
    )
    with fake:
        yield fake
    assert fake.failures == []


def config(tmp_path, gateway: FakeTWS) -> str:
    cfg = {
        "data": {
            "source": "ib",
            "ib": {"stocks": ["AAA", "BBB"], "etfs": ["ETF1"], "sectors": {"AAA": "Tech"},
                   "start": "2024-05-01", "client_id": 31},
        },
        "live": {"port": gateway.port},
    }  # fmt: skip
    return str(write_config(tmp_path / "ib.yaml", cfg))


def sync(cfg: str, tmp_path, *dates: str) -> None:
    env = {"QPIPE_DATA": str(tmp_path / "data")}
    out = CliRunner().invoke(cli, ["--config", cfg, "sync", "--start", dates[0], "--end", dates[1]],
                             env=env)  # fmt: skip
    assert out.exit_code == 0, out.output


def history_requests(gateway: FakeTWS) -> int:
    return sum(1 for _, msg, _ in gateway.requests if msg == HISTORY_REQUEST)


def test_sync_fills_the_lake_then_extends_it(tmp_path, gateway):
    cfg = config(tmp_path, gateway)
    sync(cfg, tmp_path, "2024-05-01", "2024-05-31")
    project = Project.load(cfg, tmp_path / "data")
    lake = project.lake.read("bars")
    may = [d for d in SESSIONS if d.month == 5]
    assert sorted(lake["date"].unique()) == list(may)
    assert set(lake["symbol"]) == set(SYMBOLS)
    first = lake.loc[(lake["symbol"] == "BBB") & (lake["date"] == may[0])].iloc[0]
    i = list(SESSIONS).index(may[0])
    assert (first["open"], first["close"], first["volume"]) == (40.0 + i, 40.5 + i, 1e5 + i)
    instruments = project.instruments.set_index("symbol")
    assert instruments.loc["ETF1", "kind"] == "etf" and instruments.loc["AAA", "sector"] == "Tech"
    assert history_requests(gateway) == 3  # one request per symbol for the whole range
    sync(cfg, tmp_path, "2024-05-01", "2024-06-14")  # only June's first two weeks are missing
    assert history_requests(gateway) == 6
    dates = Project.load(cfg, tmp_path / "data").lake.dates("bars")
    assert dates[-1] == dt.date(2024, 6, 14) and len(dates) == len(may) + 10


def test_error_162_is_retried_during_a_sync(tmp_path, gateway, monkeypatch):
    gateway.history_errors = {"AAA": 1}
    cfg = config(tmp_path, gateway)
    monkeypatch.setattr("time.sleep", lambda s: None)  # the retry's back-off
    sync(cfg, tmp_path, "2024-05-01", "2024-05-10")
    assert history_requests(gateway) == 4
    lake = Project.load(cfg, tmp_path / "data").lake.read("bars")
    assert set(lake["symbol"]) == set(SYMBOLS)


def test_ib_duration():
    day = dt.date(2024, 5, 31)
    assert ib_duration(day, day) == "1 D"
    assert ib_duration(dt.date(2024, 5, 1), day) == "31 D"
    assert ib_duration(dt.date(2023, 6, 2), day) == "365 D"
    assert ib_duration(dt.date(2023, 6, 1), day) == "2 Y"  # IB takes at most 365 days
    assert ib_duration(dt.date(2020, 1, 2), day) == "5 Y"


def test_the_ib_source_needs_symbols_and_a_start(tmp_path):
    for ib, message in [({"start": "2024-05-01"}, "the ib source needs symbols"),
                        ({"stocks": ["A"], "etfs": ["A"], "start": "2024-05-01"},
                         "both stock and etf: A"),
                        (None, "source 'ib' needs an 'ib' section")]:  # fmt: skip
        data = {"source": "ib"} if ib is None else {"source": "ib", "ib": ib}
        path = write_config(tmp_path / "bad.yaml", {"data": data})
        with pytest.raises(ConfigError, match=message):
            load_settings(path)

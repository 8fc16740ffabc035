"""Optional checks against a real IB paper account: run only with ``QPIPE_IB_PAPER=1`` and TWS
or IB Gateway logged in to a paper account (``QPIPE_IB_HOST``, ``QPIPE_IB_PORT``, default
127.0.0.1:7497; ``QPIPE_IB_SYMBOL``, default SPY). The only order is one share far below the
market, cancelled at once."""

from __future__ import annotations

import os

import pytest

from qpipe.live.check import run_check
from qpipe.live.ib import IBBroker
from qpipe.live.safety import PAPER_PORTS
from qpipe.settings import LiveConfig

pytestmark = pytest.mark.skipif(
    os.environ.get("QPIPE_IB_PAPER") != "1",
    reason="set QPIPE_IB_PAPER=1 with TWS / IB Gateway on a paper account to run",
)


@pytest.fixture
def config() -> LiveConfig:
    port = int(os.environ.get("QPIPE_IB_PORT", "7497"))
    assert port in PAPER_PORTS, f"port {port} is not a paper port ({sorted(PAPER_PORTS)})"
    host = os.environ.get("QPIPE_IB_HOST", "127.0.0.1")
    return LiveConfig(broker="ib", host=host, port=port, client_id=77, market_data_type=3)


def test_health_check_with_a_test_order(config):
    symbol = os.environ.get("QPIPE_IB_SYMBOL", "SPY")
    lines = list(run_check(IBBroker(config, timeout=20.0), symbol, place_test_order=True))
    failed = [text for good, text in lines if not good]
    assert not failed, "\n".join(text for _, text in lines)


def test_account_is_a_paper_account(config):
    with IBBroker(config, timeout=20.0) as broker:
        assert broker.account_id.startswith("D"), broker.account_id  # paper ids start with D
        assert broker.account().net_liquidation > 0

"""Live ports need an explicit flag and an account allow-list; accounts outside the list are
refused whatever the port."""

from __future__ import annotations

import pytest

from qpipe.ib.safety import SafetyRefusal, check_account, check_port
from qpipe.settings import LiveConfig


def test_paper_ports_pass_and_say_what_they_are():
    assert check_port(LiveConfig(port=7497)) == "TWS paper"
    assert check_port(LiveConfig(port=4002)) == "IB Gateway paper"
    assert check_port(LiveConfig(port=5000)) == "port 5000"


@pytest.mark.parametrize("port", [7496, 4001])
def test_live_ports_need_the_flag_and_the_allow_list(port):
    with pytest.raises(SafetyRefusal, match=r"set live\.allow_live_ports"):
        check_port(LiveConfig(port=port))
    with pytest.raises(SafetyRefusal, match=r"needs the live\.accounts allow-list"):
        check_port(LiveConfig(port=port, allow_live_ports=True))
    ok = LiveConfig(port=port, allow_live_ports=True, accounts=["U123"])
    assert check_port(ok).endswith("live")


def test_accounts_outside_the_allow_list_are_refused():
    check_account(LiveConfig(), "DU999")  # no list: any paper account
    config = LiveConfig(accounts=["DU1", "DU2"])
    check_account(config, "DU2")
    with pytest.raises(SafetyRefusal, match=r"account DU3 is not in the live\.accounts allow-list"):
        check_account(config, "DU3")

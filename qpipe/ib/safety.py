"""Which broker connections and accounts the live trader may use.

TWS and IB Gateway listen on fixed ports: 7497 (TWS) and 4002 (Gateway) for paper accounts,
7496 and 4001 for live ones. A live port needs ``live.allow_live_ports`` and a non-empty
``live.accounts`` allow-list; an account outside a non-empty allow-list is refused whatever
the port. Refusals raise :class:`SafetyRefusal` naming the cause.
"""

from __future__ import annotations

from qpipe.errors import QpipeError
from qpipe.settings import LiveConfig

PAPER_PORTS = {7497: "TWS paper", 4002: "IB Gateway paper"}
LIVE_PORTS = {7496: "TWS live", 4001: "IB Gateway live"}


class SafetyRefusal(QpipeError):
    """A connection or account the configuration does not allow; nothing is sent."""


def check_port(config: LiveConfig) -> str:
    """The kind of the configured port (e.g. ``TWS paper``), or a refusal for a live port
    that the configuration does not allow."""
    port = config.port
    if port in LIVE_PORTS:
        if not config.allow_live_ports:
            raise SafetyRefusal(
                f"port {port} is the {LIVE_PORTS[port]} port: set live.allow_live_ports to "
                "trade a live account"
            )
        if not config.accounts:
            raise SafetyRefusal(
                f"port {port} is the {LIVE_PORTS[port]} port: live trading needs the "
                "live.accounts allow-list"
            )
        return LIVE_PORTS[port]
    return PAPER_PORTS.get(port, f"port {port}")


def check_account(config: LiveConfig, account_id: str) -> None:
    """Refuse ``account_id`` when the allow-list is set and does not hold it."""
    if config.accounts and account_id not in config.accounts:
        raise SafetyRefusal(
            f"account {account_id} is not in the live.accounts allow-list "
            f"({', '.join(config.accounts)})"
        )

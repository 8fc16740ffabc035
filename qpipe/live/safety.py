"""Which IB ports and accounts may be used: defined in :mod:`qpipe.ib.safety` (the IB adapter,
under both the data source and the broker); this name is kept for existing imports."""

from qpipe.ib.safety import (
    LIVE_PORTS,
    PAPER_PORTS,
    SafetyRefusal,
    check_account,
    check_port,
)

__all__ = ["LIVE_PORTS", "PAPER_PORTS", "SafetyRefusal", "check_account", "check_port"]

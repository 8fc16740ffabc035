"""Exceptions raised by the core for bad input; each message names what is wrong (and
:func:`name_some`, how a message names a long list)."""

from collections.abc import Sequence


def name_some(items: Sequence[str], limit: int) -> str:
    """The first ``limit`` of ``items`` joined by commas, and how many more there are."""
    text = ", ".join(items[:limit])
    return text + (f" and {len(items) - limit} more" if len(items) > limit else "")


class QpipeError(Exception):
    """Base class of every error qpipe raises on purpose."""


class ConfigError(QpipeError):
    """The configuration file has a wrong key or value."""


class DataValidationError(QpipeError):
    """Input market data is malformed: the message names the file, the row and the problem."""


class LakeError(QpipeError):
    """The lake cannot be read or written as asked."""


class BrokerError(QpipeError):
    """A broker or its gateway refused or failed a request; the message names what and why.
    Raised by the live brokers and by the Interactive Brokers connection under both the IB
    broker and the IB data source."""

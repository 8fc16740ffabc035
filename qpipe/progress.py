"""Progress reporting from long core steps to whoever listens (the CLI's bar, Dagster's log).

The core calls :func:`report`; a shell registers a listener for the duration of a call with
:func:`listening`. With no listener, reporting costs one list lookup.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

Listener = Callable[[str, int, int], None]
"""Called as ``listener(stage, done, total)``; ``done == total`` marks the stage finished."""

_listeners: list[Listener] = []


def report(stage: str, done: int, total: int) -> None:
    """Tell every listener that ``done`` of ``total`` units of ``stage`` are finished."""
    for listener in tuple(_listeners):
        listener(stage, done, total)


@contextmanager
def listening(listener: Listener) -> Iterator[None]:
    """Register ``listener`` while the ``with`` block runs."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)

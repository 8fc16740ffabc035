"""User-defined Python factors: ``@factor(...)`` registers a function in :data:`USER`.

Put such functions in a module and list it under ``factors.modules`` in the configuration;
importing the module registers them.
"""

from __future__ import annotations

from qpipe.factors.registry import FactorLibrary

USER = FactorLibrary()
"""Factors registered by user code (``qpipe.factors.user.factor``)."""

factor = USER.register
"""Decorator: ``@factor("name", lookback=20, inputs=("close",))`` on ``fn(inputs) -> panel``."""

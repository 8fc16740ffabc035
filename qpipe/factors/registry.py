"""Factor declarations and the registry that holds them.

A factor is declared once: name, description, look-back, the input fields it reads, and a
function of :class:`~qpipe.factors.inputs.FactorInputs` returning a ``(date, symbol)``
DataArray. The look-back is the number of sessions *before* a date that its value may depend
on, so computing sessions ``[a, b]`` needs the inputs of ``[a - lookback, b]`` only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import xarray as xr

if TYPE_CHECKING:
    from qpipe.factors.inputs import FactorInputs

FactorFn = Callable[["FactorInputs"], xr.DataArray]

INPUT_FIELDS: tuple[str, ...] = (
    "open", "high", "low", "close", "volume", "vwap", "returns", "dollar_volume",
)  # fmt: skip
"""Fields a factor may declare as inputs (see :class:`~qpipe.factors.inputs.FactorInputs`)."""


class FactorError(ValueError):
    """A factor declaration is invalid (duplicate name, unknown input, bad look-back)."""


@dataclass(frozen=True)
class Factor:
    """One factor: ``fn(inputs)`` gives its ``(date, symbol)`` panel."""

    name: str
    description: str
    lookback: int
    inputs: tuple[str, ...]
    fn: FactorFn = field(repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise FactorError(f"factor name {self.name!r} is not an identifier")
        if self.lookback < 0:
            raise FactorError(f"factor {self.name}: lookback must be >= 0, got {self.lookback}")
        unknown = sorted(set(self.inputs) - set(INPUT_FIELDS))
        if unknown:
            raise FactorError(f"factor {self.name}: unknown inputs {', '.join(unknown)}")


class FactorLibrary:
    """Factors by name; a second factor with a taken name is an error."""

    def __init__(self) -> None:
        self._factors: dict[str, Factor] = {}

    def add(self, factor: Factor) -> Factor:
        if factor.name in self._factors:
            raise FactorError(f"two factors are named {factor.name!r}")
        self._factors[factor.name] = factor
        return factor

    def register(
        self, name: str, *, lookback: int, inputs: tuple[str, ...], description: str = ""
    ) -> Callable[[FactorFn], FactorFn]:
        """Decorator: declare ``fn`` as factor ``name`` (the docstring is the default
        description)."""

        def wrap(fn: FactorFn) -> FactorFn:
            text = description or (fn.__doc__ or "").strip().split("\n")[0]
            self.add(Factor(name, text, lookback, tuple(inputs), fn))
            return fn

        return wrap

    def __getitem__(self, name: str) -> Factor:
        try:
            return self._factors[name]
        except KeyError:
            raise KeyError(f"unknown factor {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._factors

    def __iter__(self) -> Iterator[Factor]:
        return iter(self._factors.values())

    def __len__(self) -> int:
        return len(self._factors)

    def names(self) -> list[str]:
        return list(self._factors)

    def merged(self, other: FactorLibrary) -> FactorLibrary:
        """A new library with the factors of both (a shared name is an error)."""
        out = FactorLibrary()
        for f in (*self, *other):
            out.add(f)
        return out

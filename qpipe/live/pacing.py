"""IB's historical-data pacing: defined in :mod:`qpipe.ib.pacing` (the IB adapter, under both
the data source and the broker); this name is kept for existing imports."""

from qpipe.ib.pacing import Pacer

__all__ = ["Pacer"]

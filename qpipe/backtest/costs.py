"""The cost model, kept in :mod:`qpipe.rulebook.costs` (shared by the backtest and live);
re-exported here for the code that imports it from the backtest."""

from qpipe.rulebook.costs import commission, fill_price, worth_its_fee

__all__ = ["commission", "fill_price", "worth_its_fee"]

"""The rules both the backtest engine and the live trader follow: the cost model
(:mod:`~qpipe.rulebook.costs`) and the sizing of orders from target weights
(:mod:`~qpipe.rulebook.sizing`). Nothing here imports the backtest or live packages."""

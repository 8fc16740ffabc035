"""The Interactive Brokers adapter: one connection to TWS or IB Gateway
(:class:`~qpipe.ib.connection.IBConnection`: the event loop, connect and reconnect, contracts,
paced historical bars), its request pacing (:mod:`qpipe.ib.pacing`) and the allowed ports and
accounts (:mod:`qpipe.ib.safety`).

It sits below both of its users, the IB data source (:mod:`qpipe.data.ib_source`) and the IB
broker (:mod:`qpipe.live.ib`), so the data layer never imports the live layer. It imports only
the settings and the errors; ``ib_async`` (the ``live`` extra) is imported when a connection
opens.
"""

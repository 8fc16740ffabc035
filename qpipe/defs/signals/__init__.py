"""Signals domain: one partitioned ``signals_<strategy>`` asset per configured strategy, the
signals job and the sensor that runs it after the factors."""

"""qpipe: a research-to-live pipeline for multi-factor stock selection and ETF rotation."""

__version__ = "0.1.0"

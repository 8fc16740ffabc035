"""Market-data domain: the bars and corporate-action assets, their checks, the nightly sync."""

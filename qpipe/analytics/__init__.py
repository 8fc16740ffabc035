"""Analytics: performance metrics, factor EDA, charts and reports."""

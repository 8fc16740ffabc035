"""Market data: sources, the Parquet lake, corporate-action adjustments and quality checks."""

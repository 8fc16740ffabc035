"""Dagster shell over the core: partitions, resources, IO managers, and one folder per domain."""

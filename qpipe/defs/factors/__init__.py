"""Factors domain: the partitioned ``factors`` asset, its checks, the job after the sync."""

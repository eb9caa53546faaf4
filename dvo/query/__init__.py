"""Queries: regions -> partitions -> parallel scans -> merged tables."""

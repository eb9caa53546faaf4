"""Partition hosts: spread a database over machines and fan work out over SSH."""

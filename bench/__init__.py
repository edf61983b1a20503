"""Benchmarks for the gateway: ``python -m bench`` (see docs/benchmarks.md)."""

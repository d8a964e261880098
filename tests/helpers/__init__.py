"""Helpers shared by the tests and the benchmarks; fixtures live in tests/conftest.py."""

"""Helpers shared by the tests and the benchmarks (not installed as part of `tests`, which is no package:
pytest finds the tests from the root conftest.py); fixtures live in the tests' conftest.py files."""

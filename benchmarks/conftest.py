"""Benchmarks run with pytest (`scripts/bench`): they print measurements, never assert times."""

# Our custom_components before the HA test plugin mounts its own (see tests/conftest.py).
import custom_components  # noqa: F401

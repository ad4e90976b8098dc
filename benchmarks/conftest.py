"""Benchmarks run with pytest (`scripts/bench`): they measure, never assert times.

Each benchmark adds its figures to a table through the `bench` fixture; the tables are printed
together at the end of the run (pytest's terminal summary), so the results are not buried in
Home Assistant's log output, which pytest captures (shown only for a failing benchmark).
"""

from __future__ import annotations

import pytest

from benchmarks.report import BenchResults

# Our custom_components before the HA test plugin mounts its own (see tests/conftest.py).
import custom_components  # noqa: F401

_RESULTS = pytest.StashKey[BenchResults]()


def pytest_configure(config: pytest.Config) -> None:
    """Collect the results of this run."""
    config.stash[_RESULTS] = BenchResults()


@pytest.fixture
def bench(request: pytest.FixtureRequest) -> BenchResults:
    """Where a benchmark reports its figures."""
    return request.config.stash[_RESULTS]


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    """Print the result tables after pytest's own summary lines."""
    lines = config.stash[_RESULTS].render()
    if not lines:
        return
    terminalreporter.write_sep("=", "benchmark results", bold=True)
    for text in lines:
        terminalreporter.write_line(text)

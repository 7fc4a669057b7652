"""The performance tests: the optimised paths' equivalence and the smoke benchmark."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "performance: a benchmark against the baselines (deselect: -m 'not performance')"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The benchmarks run after everything else: they start servers of their own and
    take most of a minute, which should not stretch the time between the other tests'
    set-up and their checks."""
    items.sort(key=lambda item: item.get_closest_marker("performance") is not None)

"""The performance tests: the optimised paths' equivalence and the smoke benchmark."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "performance: a benchmark against the baselines (deselect: -m 'not performance')"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The benchmarks run first, one after another on one worker (their modules'
    `xdist_group`): no two of them measure at once, and the other workers run the rest
    meanwhile instead of the suite ending with a minute of benchmarks."""
    items.sort(key=lambda item: item.get_closest_marker("performance") is None)

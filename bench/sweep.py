"""Throughput against concurrency, service and baseline, for the chart.

For each concurrency level, both sides of session creation and of session reads run one
short stretch each (alternating which goes first), in one load-generator process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.harness import SIDES, Phase, check_statuses, run_plan
from bench.stack import Stack

LEVELS = (1, 4, 16, 32, 64)


def measure(
    stack: Stack,
    requests: dict[str, dict[str, Path]],
    expected: dict[str, set[int]],
    *,
    levels: tuple[int, ...] = LEVELS,
    seconds: float = 3.0,
) -> dict[str, Any]:
    """`requests[benchmark][side]` at each level; {benchmark: {side: [stats...]}}."""
    phases: list[Phase] = []
    order: list[tuple[str, str]] = []
    for number, level in enumerate(levels):
        for benchmark, files in requests.items():
            for side in SIDES if number % 2 == 0 else tuple(reversed(SIDES)):
                order.append((benchmark, side))
                phases.append(
                    Phase(
                        f"{benchmark} {side} x{level}",
                        stack.base(side),
                        files[side],
                        seconds,
                        level,
                        watch=stack.server(side).worker_pids(),
                    )
                )
    results = run_plan(phases, stack.work)
    sweep: dict[str, Any] = {name: {side: [] for side in SIDES} for name in requests}
    for (benchmark, side), stats in zip(order, results, strict=True):
        check_statuses(stats, expected[benchmark], f"sweep {benchmark} {side}")
        sweep[benchmark][side].append(stats)
    return {"levels": list(levels), "seconds": seconds, "results": sweep}

"""A fast benchmark in the test command: a regression in speed fails it like a bug.

Session creation, reading a session and webhook ingestion each run against their
baselines on the same servers `bench/run` uses (bench/stack.py: `onramp serve` and the
baselines on uvicorn with one worker, PostgreSQL, the Stripe stand-in), in short
alternating rounds. A comparison fails when the median of its rounds' throughput
ratios is below 80% of its goal (bench/README.md).

Throughput on a 2-core machine moves by a third from one second to the next when
anything else runs, so a single look is not a verdict: the sides alternate, the median
of the paired ratios is taken, and a comparison below the line is measured once more,
longer, before it fails. A real regression stays below the line both times.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from bench import reads, sessions, webhooks
from bench.harness import Comparison
from bench.stack import Stack, running_stack

SHARE_OF_GOAL = 0.8
GOALS = {
    "session creation": sessions.GOAL["throughput_ratio_at_least"],
    "session read": reads.GOAL["throughput_ratio_at_least"],
    "webhook ingestion": webhooks.GOAL["throughput_ratio_at_least"],
}
CONCURRENCY = 32


@dataclass(frozen=True)
class Look:
    rounds: int
    seconds: float


FIRST_LOOK = Look(rounds=5, seconds=1.0)
SECOND_LOOK = Look(rounds=7, seconds=1.5)

pytestmark = [
    pytest.mark.performance,
    pytest.mark.xdist_group("benchmarks"),
    pytest.mark.timeout(300),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The servers, once for the module. Their logs stay in the run's temporary folder,
    where the suite's end-of-run scan for secrets reads every log."""
    with running_stack(tmp_path_factory.mktemp("bench"), workers=1) as running:
        yield running


def measure(stack: Stack, name: str, look: Look) -> Comparison:
    rounds, seconds = look.rounds, look.seconds
    if name == "session creation":
        created = sessions.measure(
            stack, rounds=rounds, seconds=seconds, concurrency=CONCURRENCY, bare=False
        )
        return created[0]
    if name == "session read":
        read = reads.measure(
            stack, rounds=rounds, seconds=seconds, concurrency=CONCURRENCY, which=(name,)
        )
        return read[0]
    return webhooks.measure(stack, rounds=rounds, seconds=seconds, concurrency=CONCURRENCY)


@pytest.mark.parametrize("name", list(GOALS))
def test_no_ratio_falls_below_80_percent_of_its_goal(stack: Stack, name: str) -> None:
    line = SHARE_OF_GOAL * GOALS[name]
    looks = [measure(stack, name, FIRST_LOOK)]
    if looks[0].throughput_ratio < line:
        looks.append(measure(stack, name, SECOND_LOOK))
    assert looks[-1].throughput_ratio >= line, (
        f"{name}: throughput ratio below {line:.2f} ({SHARE_OF_GOAL:.0%} of the goal "
        f"{GOALS[name]}) in every look: " + "; ".join(look.describe() for look in looks)
    )

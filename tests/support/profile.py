"""How big the reliability and security suites run, and where their figures go.

The test command runs the short profile; `bench/soak` runs the same tests with
`ONRAMP_RELIABILITY_PROFILE=long` and collects the figures each test records (the
`record_figures` fixture) into the JSON file named by `ONRAMP_RELIABILITY_REPORT`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    storm_sessions: int
    storm_kills: int
    outage_seconds: float
    outage_rounds: int
    creates: int
    deliveries: int
    fuzz_examples: int  # schemathesis cases per operation, each way


PROFILES = {
    "short": Profile(
        "short",
        storm_sessions=300,
        storm_kills=1,
        outage_seconds=4,
        outage_rounds=1,
        creates=50,
        deliveries=20,
        fuzz_examples=50,
    ),
    "long": Profile(
        "long",
        storm_sessions=3000,
        storm_kills=6,
        outage_seconds=8,
        outage_rounds=3,
        creates=400,
        deliveries=200,
        fuzz_examples=500,
    ),
}


def current_profile() -> Profile:
    name = os.environ.get("ONRAMP_RELIABILITY_PROFILE", "short")
    if name not in PROFILES:
        raise ValueError(f"ONRAMP_RELIABILITY_PROFILE must be one of {sorted(PROFILES)}")
    return PROFILES[name]

"""The live status tests' servers: settings with a quick heartbeat, and two replicas."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from service.settings import Settings
from tests.live.streams import Replicas, replicas_in_threads
from tests.onramp.conftest import new_wallet
from tests.support.processes import service_env
from tests.support.stripe import RunningStripe


@pytest.fixture
def live_settings(
    make_settings: Callable[..., Settings], stripe: RunningStripe, database_url: str
) -> Callable[..., Settings]:
    def build(**env: str) -> Settings:
        return make_settings(
            **service_env(database_url, stripe, LIVE_HEARTBEAT_SECONDS="0.3", **env)
        )

    return build


@pytest.fixture
def replicas(live_settings: Callable[..., Settings]) -> Iterator[Replicas]:
    with replicas_in_threads(live_settings()) as urls:
        yield Replicas(urls, new_wallet())

"""How a capability's routes get their collaborators: each capability declares its own
`Provider` (a frozen dataclass in its `provider.py`), `create_app` builds one of each
and keeps it in the app's state, and a route asks for its own with `Kind.of(state)`.

No module knows every capability's collaborators but the app that builds them. Not
Litestar's dependency injection: it resolves two dependencies of the same depth in an
anyio task group, which cost 50 µs a request on the hot routes (bench/README.md); a
lookup in the state costs a dictionary read.
"""

from __future__ import annotations

from typing import Self

from litestar.datastructures import State


class Provider:
    """A capability's collaborators, kept in the app's state under the class's name."""

    __slots__ = ()

    @classmethod
    def of(cls, state: State) -> Self:
        found: Self = state[cls.__name__]
        return found


def state_of(*providers: Provider) -> State:
    return State({type(provider).__name__: provider for provider in providers})

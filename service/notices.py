"""What a committed transaction tells the rest of its own process.

A lower part (a table's owner) names what it changed; a higher part listens, without
the lower one knowing who (docs/architecture.md, "Where a lower part needs a higher
one's work"). Each `Database` holds one `Notices`, so two apps in one process (replicas
in tests) hear only their own writes, and a transaction tells its listeners only once
it has committed (`SqlTransaction.tell`), never when it rolled back.

Other processes learn of changes their own way (PostgreSQL's NOTIFY, polling SQLite):
this is the in-process half, with no round trip to the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger("onramp.notices")


@dataclass(frozen=True, slots=True)
class Topic(Generic[T]):
    """What is told (declared once, by the owner of what changed) and the type of its item."""

    name: str


class Notices:
    """The listeners of this process, by topic. A listener is called synchronously in
    the order of commits, and must not block: it hands the item on (to its event loop's
    queue, say)."""

    def __init__(self) -> None:
        self._listeners: dict[str, list[Callable[[Any], None]]] = {}

    def listen(self, topic: Topic[T], listener: Callable[[T], None]) -> Callable[[], None]:
        """Call `listener` with every item told on `topic`; what stops it."""
        listeners = self._listeners.setdefault(topic.name, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener) if listener in listeners else None

    def listened(self, topic: Topic[Any]) -> bool:
        """Whether anyone listens: a teller may skip the work of preparing its item."""
        return bool(self._listeners.get(topic.name))

    def tell(self, topic: Topic[T], item: T) -> None:
        for listener in tuple(self._listeners.get(topic.name, ())):
            try:
                listener(item)
            except Exception as error:  # one listener's failure is not the writer's
                log.warning("notice_listener_failed", topic=topic.name, error=type(error).__name__)

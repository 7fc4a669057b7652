"""What an audit row says, worded once: the actions, the outcomes, and how commands
name their actor and their target (pure)."""

from __future__ import annotations

import getpass
import os
from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from service.columns import rfc3339


class Action(StrEnum):
    """Every operator action that changes something: a route or a command."""

    SESSIONS_SYNC = "sessions.sync"
    SESSIONS_REPLAY = "sessions.replay"
    SESSIONS_IMPORT = "sessions.import"
    WEBHOOKS_REPLAY = "webhooks.replay"
    WEBHOOKS_PRUNE = "webhooks.prune"
    DELIVERY_RECHECK = "delivery.recheck"
    RETENTION_RUN = "retention.run"
    ENDPOINTS_ADD = "endpoints.add"
    ENDPOINTS_REMOVE = "endpoints.remove"
    ENDPOINTS_ROTATE = "endpoints.rotate"
    ENDPOINTS_ENABLE = "endpoints.enable"
    ENDPOINTS_REPLAY = "endpoints.replay"


class Outcome(StrEnum):
    OK = "ok"
    # A read-only key on a route that changes things: nothing was done.
    REFUSED = "refused"
    # Nothing of the action's own transaction was kept; the detail says why.
    FAILED = "failed"
    DRY_RUN = "dry_run"


# The route option (`opt=`) naming the action an operator route that changes things
# performs, for its row and for the row of a read-only key refused it.
AUDITED_AS = "audited_as"


def cli_actor() -> str:
    """`cli:<the operating system's user>`, who ran a command."""
    try:
        user = getpass.getuser()
    except Exception:  # no user name anywhere (a container's bare uid): the uid, then
        user = f"uid-{os.getuid()}"
    return f"cli:{user}"


def selection(*choices: str | None, everything: str = "all") -> str:
    """The target of a command over chosen items: its choices (ids, a range, a status),
    or `everything` when it was given none."""
    return " ".join(choice for choice in choices if choice) or everything


def time_range(start: datetime | None, end: datetime | None = None) -> str:
    """A range of times as a target, `2026-12-01T00:00:00Z..2026-12-02T00:00:00Z`; an open
    side is left empty."""
    return f"{rfc3339(start) if start else ''}..{rfc3339(end) if end else ''}"


def summary(outcomes: Iterable[str], *, dry_run: bool = False) -> tuple[Outcome, str]:
    """The row of work spread over many items, each with its own outcome: `failed` if
    any failed, counts by outcome as the detail (`3 changed, 1 unchanged`)."""
    counts = Counter(outcomes)
    detail = ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
    if dry_run:
        return Outcome.DRY_RUN, detail or "nothing to do"
    return (Outcome.FAILED if counts["failed"] else Outcome.OK), detail or "nothing to do"

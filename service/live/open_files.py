"""Whether a serving process may open as many files as `LIVE_MAX_STREAMS` needs.

Each open stream is a socket, a file descriptor of its process. The rule, stated once
here: a process needs one descriptor per stream (`LIVE_MAX_STREAMS`), one per database
connection it may open (`DATABASE_POOL_SIZE` + `DATABASE_MAX_OVERFLOW`, an upper
bound, for the primary and any read replica), and `RESERVE` for everything else (its
listening socket, requests other than streams, the live `LISTEN` connection, Redis,
Stripe and the RPC nodes, logs and the interpreter's own files). `onramp serve` raises
its soft open-file limit to that when the hard limit allows, as Go's runtime and nginx
do (a soft limit of 1024 is only kept for programs that still use select()), and
refuses to start when it cannot.
"""

from __future__ import annotations

import resource

from service.settings import Settings

RESERVE = 256
_UNLIMITED = resource.RLIM_INFINITY


def needed(settings: Settings) -> int:
    database = settings.database
    pools = 1 if database.read_url is None else 2
    connections = pools * (database.pool_size + database.max_overflow)
    return settings.live.max_streams + connections + RESERVE


def raised_limit(need: int, soft: int, hard: int) -> int:
    """The soft limit to run with: `soft` if it holds `need`, else as close to `need` as
    the hard limit lets an unprivileged process go."""
    if soft == _UNLIMITED or soft >= need:
        return soft
    return need if hard == _UNLIMITED else min(need, hard)


def problem(settings: Settings, limit: int) -> str | None:
    """One line naming the variable when `limit` (the soft open-file limit) cannot hold
    `LIVE_MAX_STREAMS`; None when it can."""
    need = needed(settings)
    if limit == _UNLIMITED or need <= limit:
        return None
    fits = limit - (need - settings.live.max_streams)
    advice = f"lower it to {fits} or" if fits >= 1 else "lower the database pool and"
    return (
        f"LIVE_MAX_STREAMS: {settings.live.max_streams} streams need {need} open files"
        f" (with the database pool and {RESERVE} for other sockets) but this process may"
        f" open only {limit}; {advice} raise the open-file limit (ulimit -n, LimitNOFILE)"
    )


def hold(settings: Settings) -> str | None:
    """Raise this process's soft open-file limit to what its streams need when the hard
    limit allows (children, such as uvicorn's workers, inherit it); the problem if it
    still cannot hold them."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = raised_limit(needed(settings), soft, hard)
    if limit != soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, hard))
    return problem(settings, limit)

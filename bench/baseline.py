"""The baselines' app: every minimal handler the benchmarks compare the service with.

One Litestar app (so one server per run, started like the service: uvicorn, the same
worker count) holding the baselines of bench/baseline_sessions.py,
bench/baseline_webhooks.py and bench/baseline_sign_in.py on the service's own paths,
plus `/health`, a handler that does nothing, against which the load generator's own
ceiling is measured.
"""

from __future__ import annotations

from litestar import Litestar, get

from bench import baseline_sessions, baseline_sign_in, baseline_webhooks
from bench.baseline_pool import pool


@get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def close_pool() -> None:
    """Closed without arguments: Litestar hands a hook that takes any the app, which
    psycopg's `close` would take for its timeout."""
    await pool.close()


app = Litestar(
    [health, *baseline_sessions.routes, *baseline_webhooks.routes, *baseline_sign_in.routes],
    on_startup=[pool.open, baseline_sessions.StripeConnection.open],
    on_shutdown=[baseline_sessions.StripeConnection.close, close_pool],
)

"""The servers a benchmark run measures: the service, its baselines, the Stripe stand-in.

All three run as real processes on one fresh PostgreSQL database: the service as
production runs it (`onramp serve`, uvicorn, production's settings but for
`ENVIRONMENT`, see `service_env`), the baselines
(bench/baseline.py) on the same uvicorn with the same worker count, and the Stripe
stand-in (`onramp stripe-sim`, zero latency) that both create routes call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.harness import BIN, ROOT, Server, Side, fresh_database, server
from service.auth.tokens import TokenIssuer
from service.columns import utcnow
from service.stripe_sim.app import DEFAULT_SECRET_KEY

WEBHOOK_SECRET = "whsec_bench_" + "b" * 24
JWT_SECRET = "bench-jwt-secret-" + "j" * 32
# Production refuses a local sign-in audience.
AUTH_DOMAIN = "onramp.bench.example"
AUTH_URI = "https://onramp.bench.example"
# Every request of a run comes from one address and a few wallets; the limits would
# otherwise be what is measured.
RATE_LIMIT_PER_MINUTE = "100000000"


# Production wants operator secrets of 32 characters or more.
ADMIN_KEY = "bench-operator-key-of-32-characters"


def wallet_token(wallet: str) -> str:
    """A Bearer token for `wallet`, exactly as the service's sign-in issues it."""
    issuer = TokenIssuer(JWT_SECRET, AUTH_URI, timedelta(hours=2))
    return issuer.issue(wallet, utcnow()).encoded


def service_env(database_url: str, stripe_url: str) -> dict[str, str]:
    return {
        # Production and staging refuse the stand-in (its API base, its test-mode key, a
        # plain-http node); at run time they differ from development only in the HSTS
        # header and in serving /metrics on a port of its own, neither on a measured path.
        "ENVIRONMENT": "development",
        "HOST": "127.0.0.1",
        "DATABASE_URL": database_url,
        "JWT_SECRET": JWT_SECRET,
        "AUTH_DOMAIN": AUTH_DOMAIN,
        "AUTH_URI": AUTH_URI,
        "ADMIN_API_KEYS": f"bench:{ADMIN_KEY}",
        "STRIPE_SECRET_KEY": DEFAULT_SECRET_KEY,
        "STRIPE_API_BASE": stripe_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "RATE_LIMIT_PER_MINUTE": RATE_LIMIT_PER_MINUTE,
        # No chain is needed; nothing may reach a public node.
        "MEZO_RPC_URLS": "http://127.0.0.1:9",
        "LOG_FORMAT": "json",
        "LOG_LEVEL": "info",
    }


def baseline_env(database_url: str, stripe_url: str) -> dict[str, str]:
    return {
        "BASELINE_DATABASE_URL": database_url,
        "BASELINE_STRIPE_URL": stripe_url,
        "BASELINE_STRIPE_KEY": DEFAULT_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "JWT_SECRET": JWT_SECRET,
    }


STRIPE_COMMAND = [str(BIN / "onramp"), "stripe-sim", "--port", "{port}"]


def service_command(workers: int) -> list[str]:
    return [str(BIN / "onramp"), "serve", "--workers", str(workers)]


def baseline_command(workers: int, app: str = "bench.baseline:app") -> list[str]:
    return [
        str(BIN / "uvicorn"),
        app,
        "--app-dir",
        str(ROOT),
        "--host",
        "127.0.0.1",
        "--port",
        "{port}",
        "--workers",
        str(workers),
        "--no-access-log",
        "--log-level",
        "warning",
    ]


@dataclass
class Stack:
    database_url: str
    stripe: Server | None
    service: Server
    baseline: Server
    workers: int
    work: Path

    def server(self, side: str) -> Server:
        return self.service if side == "service" else self.baseline

    def base(self, side: str) -> str:
        return self.server(side).url

    def side(self, side: str, requests: Callable[[int], Path]) -> Side:
        """`side` of a comparison, its workers' CPU time watched."""
        running = self.server(side)
        return Side(running.url, requests, running.worker_pids())


@contextmanager
def running_stack(work: Path, workers: int, with_stripe: bool = True) -> Iterator[Stack]:
    """A fresh database, the stand-in (unless no create route is measured), the service
    and the baselines, until the end of the block."""
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database())
        stripe = None
        stripe_url = "http://127.0.0.1:9"  # nothing listens: no create route is measured
        if with_stripe:
            stripe = stack.enter_context(server(STRIPE_COMMAND, {}, work / "stripe-sim.log"))
            stripe_url = stripe.url
        service = stack.enter_context(
            server(service_command(workers), service_env(url, stripe_url), work / "service.log")
        )
        baseline = stack.enter_context(
            server(baseline_command(workers), baseline_env(url, stripe_url), work / "baseline.log")
        )
        yield Stack(url, stripe, service, baseline, workers, work)

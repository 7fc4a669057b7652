"""Session creation: `POST /api/v1/onramp/sessions` against a minimal create handler.

The service's side sends what a dApp sends: a wallet's Bearer token, a fresh
`Idempotency-Key` on every request and the JSON body; the service checks the token, the
rate limits and the request, claims the key, stores the session, creates it at the
Stripe stand-in through stripe-python and stores Stripe's answer. The baseline
(bench/baseline_sessions.py) makes the same call to the same stand-in, through the same
SDK, and one INSERT; a second comparison uses a baseline that calls the stand-in with a
bare aiohttp request, to show the SDK's own share.

The stand-in itself is measured alone as well: it must be several times faster than
the service's create route, or the benchmark would measure the stand-in.

    .venv/bin/python bench/sessions.py [--rounds 3] [--seconds 8] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from eth_account import Account

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    P99_GOAL,
    Comparison,
    Phase,
    check_statuses,
    compare,
    run_plan,
    same_file,
    write_requests,
)
from bench.stack import Stack, running_stack, wallet_token
from service.stripe_sim.app import DEFAULT_SECRET_KEY

# Raised to 0.8 once it holds on slower machines too: the smoke test's floor would be
# 0.64, and a create ran at 0.69-0.70 on a machine three times slower, within the ±0.1
# a ratio moves between runs (bench/README.md).
GOAL = {"throughput_ratio_at_least": 0.6, **P99_GOAL}
WALLETS = 64
PATH = "/api/v1/onramp/sessions"
BARE_PATH = "/raw/api/v1/onramp/sessions"


@cache
def wallets() -> list[str]:
    """The signed-in wallets of the benchmark, one token each."""
    return [str(Account.create().address) for _ in range(WALLETS)]


def create_requests(work: Path, side: str, path: str = PATH) -> Path:
    """One create request per wallet, each with an `Idempotency-Key` never used before."""
    requests: list[dict[str, Any]] = []
    for wallet in wallets():
        headers = {"Content-Type": "application/json", "Idempotency-Key": "bench-{seq}"}
        if side == "service":
            headers["Authorization"] = f"Bearer {wallet_token(wallet)}"
        body = json.dumps({"walletAddress": wallet, "sourceAmount": "100.00"})
        requests.append(
            {"method": "POST", "path": path, "headers": headers, "body": body, "sequence": True}
        )
    name = "bare" if path != PATH else side
    return write_requests(work / f"create-{name}.jsonl", requests)


def measure(
    stack: Stack, *, rounds: int, seconds: float, concurrency: int, bare: bool = True
) -> list[Comparison]:
    """The service against the baseline that calls the stand-in through Stripe's SDK
    (the goal's comparison), then, with `bare`, against the one that calls it with a
    bare aiohttp request (what the SDK costs)."""
    service = create_requests(stack.work, "service")
    baselines = {"session creation": create_requests(stack.work, "baseline")}
    if bare:
        baselines["session creation, baseline without Stripe's SDK"] = create_requests(
            stack.work, "baseline", BARE_PATH
        )
    return [
        compare(
            name,
            {
                "service": stack.side("service", same_file(service)),
                "baseline": stack.side("baseline", same_file(baseline)),
            },
            work=stack.work,
            rounds=rounds,
            seconds=seconds,
            concurrency=concurrency,
            expected={201},
            unit="sessions/s",
            goal=GOAL if name == "session creation" else {},
            note="POST /api/v1/onramp/sessions with a Bearer token and a fresh Idempotency-Key",
        )
        for name, baseline in baselines.items()
    ]


def stand_in_requests(work: Path) -> Path:
    """A create call as stripe-python sends it to the stand-in."""
    form = urlencode(
        {
            "wallet_addresses[mezo]": wallets()[0],
            "lock_wallet_address": "true",
            "destination_currency": "musd",
            "destination_network": "mezo",
            "destination_currencies[0]": "musd",
            "destination_networks[0]": "mezo",
            "source_currency": "usd",
            "source_amount": "100.00",
            "customer_ip_address": "127.0.0.1",
            "metadata[onramp_session_id]": "ors_{seq}",
        }
    )
    headers = {
        "Authorization": f"Bearer {DEFAULT_SECRET_KEY}",
        "Idempotency-Key": "stand-in-{seq}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
    request = {
        "method": "POST",
        "path": "/v1/crypto/onramp_sessions",
        "headers": headers,
        "body": form,
        "sequence": True,
    }
    return write_requests(work / "stand-in.jsonl", [request])


def measure_stand_in(stack: Stack, *, seconds: float, concurrency: int) -> dict[str, Any]:
    """The stand-in's own create throughput, with nothing in front of it."""
    assert stack.stripe is not None
    phase = Phase(
        "stripe stand-in", stack.stripe.url, stand_in_requests(stack.work), seconds, concurrency
    )
    stats = run_plan([phase], stack.work)[0]
    check_statuses(stats, {200}, "stripe stand-in")
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    with running_stack(work, args.workers) as stack:
        stand_in = measure_stand_in(stack, seconds=args.seconds, concurrency=args.concurrency)
        results = measure(
            stack, rounds=args.rounds, seconds=args.seconds, concurrency=args.concurrency
        )
    print(f"stripe stand-in alone: {stand_in['throughput']:.0f} creates/s")
    for result in results:
        print(result.describe())


if __name__ == "__main__":
    main()

"""Sign-in (nonce, then verify) per second, against a bare nonce INSERT plus an EOA
recovery and a nonce UPDATE (bench/baseline_sign_in.py).

A sign-in needs the wallet's signature over the message the nonce call returns, and
signing costs the client 4 ms of pure-Python elliptic curve work, more than the load
generator can spend per request without becoming what is measured. So each round runs
in three steps: N nonce calls (timed; the load generator keeps the answers), N
signatures made here (not timed), N verify calls (timed). Sign-ins per second are N
over the two timed phases together; the latencies shown are the verify call's.

    .venv/bin/python bench/sign_in.py [--rounds 3] [--sign-ins 400] [--workers 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    P99_GOAL,
    SIDES,
    Comparison,
    Phase,
    Stats,
    check_statuses,
    run_plan,
    write_requests,
)
from bench.stack import Stack, running_stack

GOAL = {"throughput_ratio_at_least": 0.8, **P99_GOAL}
# A wallet keeps only its newest five unused nonces, so a round's nonce calls go to
# at least as many wallets as the round has sign-ins.
WALLETS = 512


@cache
def keys() -> dict[str, str]:
    """wallet address -> private key, for the benchmark's signing wallets."""
    accounts = [Account.create() for _ in range(WALLETS)]
    return {str(account.address): account.key.hex() for account in accounts}


def nonce_requests(work: Path, side: str) -> Path:
    requests: list[dict[str, Any]] = [
        {
            "method": "POST",
            "path": "/api/v1/auth/nonce",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"walletAddress": wallet}),
        }
        for wallet in keys()
    ]
    return write_requests(work / f"nonce-{side}.jsonl", requests)


def _sign(job: tuple[str, str]) -> str:
    message, key = job
    signed = Account.sign_message(encode_defunct(text=message), private_key=key)
    return "0x" + bytes(signed.signature).hex()


def verify_requests(work: Path, side: str, number: int, answers: Path, pool: Any) -> Path:
    """The verify call for every nonce answer, signed by the wallet it names."""
    messages = [json.loads(line)["message"] for line in answers.read_text().splitlines()]
    wallets = [message.split("\n", 2)[1] for message in messages]
    signatures = list(
        pool.map(_sign, [(m, keys()[w]) for m, w in zip(messages, wallets, strict=True)])
    )
    requests: list[dict[str, Any]] = [
        {
            "method": "POST",
            "path": "/api/v1/auth/verify",
            "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"message": message, "signature": signature}),
        }
        for message, signature in zip(messages, signatures, strict=True)
    ]
    return write_requests(work / f"verify-{side}-{number}.jsonl", requests)


def sign_ins(
    stack: Stack, side: str, number: int, count: int, concurrency: int, pool: Any
) -> Stats:
    """One side's round: `count` nonces, their signatures, `count` verifications."""
    base, work, pids = stack.base(side), stack.work, stack.server(side).worker_pids()
    answers = work / f"nonces-{side}-{number}.jsonl"
    issue = Phase(
        f"nonce {side}",
        base,
        nonce_requests(work, side),
        600,
        concurrency,
        count,
        answers,
        watch=pids,
    )
    nonces = run_plan([issue], work)[0]
    check_statuses(nonces, {200}, f"sign-in nonce, {side}")
    verify_file = verify_requests(work, side, number, answers, pool)
    check = Phase(f"verify {side}", base, verify_file, 600, concurrency, count, watch=pids)
    verified = run_plan([check], work)[0]
    check_statuses(verified, {200}, f"sign-in verify, {side}")
    return {
        "throughput": count / (nonces["seconds"] + verified["seconds"]),
        "p50_ms": verified["p50_ms"],
        "p99_ms": verified["p99_ms"],
        # Server CPU per sign-in: its nonce call and its verify call.
        "server_cpu_ms": nonces["server_cpu_ms"] + verified["server_cpu_ms"],
        "nonce": nonces,
        "verify": verified,
    }


def measure(stack: Stack, *, rounds: int, count: int, concurrency: int) -> Comparison:
    by_round: list[dict[str, Stats]] = []
    with ProcessPoolExecutor(2) as pool:
        for side in SIDES:  # warm-up: imports, pools, caches
            sign_ins(stack, side, -1, 32, 8, pool)
        for number in range(rounds):
            order = SIDES if number % 2 == 0 else tuple(reversed(SIDES))
            by_round.append(
                {side: sign_ins(stack, side, number, count, concurrency, pool) for side in order}
            )
    return Comparison(
        "sign-in",
        "sign-ins/s",
        concurrency,
        0.0,
        by_round,
        GOAL,
        note="POST /api/v1/auth/nonce then /api/v1/auth/verify; latencies of verify",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sign-ins", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-bench-"))
    with running_stack(work, args.workers, with_stripe=False) as stack:
        result = measure(
            stack, rounds=args.rounds, count=args.sign_ins, concurrency=args.concurrency
        )
    print(result.describe())


if __name__ == "__main__":
    main()

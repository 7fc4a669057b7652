"""CPU a sign-in costs the server, measured in-process: the real app (or the baseline's)
called through ASGI with no network, N sign-ins of a nonce call and a verify call each,
on PostgreSQL. `.venv/bin/python bench/sign_in_cost.py [--count 1500] [--callgrind]`.

The wallets' signatures are made in the loop (coincurve, as the benchmark's clients);
their cost is measured on its own and taken out. Without `--callgrind` the figure is
CPU seconds (`time.process_time`) per sign-in, medians of a few alternating runs of
each side; with it, instructions per sign-in under callgrind, `(I(60) - I(10)) / 50`,
which repeat closely whatever else runs on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uvloop
from eth_account import Account
from eth_account.messages import encode_defunct

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import in_process
from bench.harness import fresh_database
from bench.stack import baseline_env, service_env

SIDES = ("service", "baseline")
CALLGRIND_COUNTS = (10, 60)
ACCOUNTS = [Account.from_key(bytes([index + 1]) * 32) for index in range(64)]


async def call(app: Any, path: str, body: dict[str, str]) -> dict[str, Any]:
    """One POST through the app's ASGI interface; its JSON answer (200 expected)."""
    raw = json.dumps(body).encode()
    headers = {"host": "127.0.0.1:8000", "content-type": "application/json"}
    request = in_process.scope("POST", path, headers | {"content-length": str(len(raw))})
    status, answered = await in_process.call(app, request, raw)
    answer: dict[str, Any] = json.loads(answered)
    assert status == 200, (status, answer)
    return answer


def sign(message: str, account: Any) -> str:
    return "0x" + bytes(account.sign_message(encode_defunct(text=message)).signature).hex()


async def sign_ins(app: Any, count: int, *, signing_only: bool = False) -> None:
    for number in range(count):
        account = ACCOUNTS[number % len(ACCOUNTS)]
        if signing_only:
            sign(f"{number:0>300}", account)
            continue
        issued = await call(app, "/api/v1/auth/nonce", {"walletAddress": account.address})
        signature = sign(issued["message"], account)
        await call(
            app, "/api/v1/auth/verify", {"message": issued["message"], "signature": signature}
        )


def build_app(side: str, url: str) -> Any:
    os.environ.update(service_env(url, "http://127.0.0.1:9"))
    # The delivery worker polls by the clock, not per request: under callgrind, which
    # slows the process fifty-fold, its rounds would be counted as the sign-ins' cost.
    os.environ["DELIVERY_WORKER"] = "false"
    if side == "baseline":
        os.environ.update(baseline_env(url, "http://127.0.0.1:9"))
        from bench.baseline import app

        return app
    from service.app import create_app
    from service.settings import Settings

    return create_app(Settings.from_env())


async def run(side: str, url: str, count: int, warm: int) -> None:
    """Print the CPU seconds `count` sign-ins took, after `warm` that are not counted."""
    app = build_app("service" if side == "signing" else side, url)
    async with app.lifespan():
        await sign_ins(app, warm, signing_only=side == "signing")
        started = time.process_time()
        await sign_ins(app, count, signing_only=side == "signing")
        print(time.process_time() - started, flush=True)
        # The baseline's shutdown hook hands the app to `pool.close` as its time-out.
        os._exit(0)


def inner(side: str, url: str, count: int, warm: int) -> None:
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - the service's logs, as a file
    uvloop.run(run(side, url, count, warm))


def inner_command(side: str, url: str, count: int, warm: int) -> list[str]:
    command = [sys.executable, __file__, "--inner", side, "--url", url]
    return [*command, "--count", str(count), "--warm", str(warm)]


def child(side: str, url: str, count: int, warm: int) -> str:
    command = inner_command(side, url, count, warm)
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def instructions(side: str, url: str, count: int) -> int:
    return in_process.callgrind_instructions(inner_command(side, url, count, 5))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--inner", choices=[*SIDES, "signing"])
    parser.add_argument("--url")
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--warm", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--callgrind", action="store_true")
    parser.add_argument("--sides", default=",".join(SIDES))
    parser.add_argument(
        "--signing", type=float, help="instructions a signature costs, from an earlier run"
    )
    args = parser.parse_args()
    if args.inner:
        inner(args.inner, args.url, args.count, args.warm)
        return
    sides = args.sides.split(",")
    with fresh_database() as url:
        if args.callgrind:
            few, many = CALLGRIND_COUNTS
            signing = args.signing
            if signing is None:
                spent = instructions("signing", url, many) - instructions("signing", url, few)
                signing = spent / (many - few)
                print(f"signing: {signing:,.0f} instructions a signature", flush=True)
            for side in sides:
                spent = instructions(side, url, many) - instructions(side, url, few)
                each = spent / (many - few) - signing
                print(f"{side}: {each:,.0f} instructions a sign-in", flush=True)
            return
        signing = float(child("signing", url, args.count, 20))
        cpu: dict[str, list[float]] = {side: [] for side in sides}
        for _ in range(args.runs):
            for side in sides:
                cpu[side].append(float(child(side, url, args.count, args.warm)))
    for side in sides:
        each = [(seconds - signing) / args.count * 1000 for seconds in cpu[side]]
        runs = ", ".join(f"{ms:.3f}" for ms in each)
        print(f"{side}: {statistics.median(each):.3f} ms CPU a sign-in ({runs})")


if __name__ == "__main__":
    main()

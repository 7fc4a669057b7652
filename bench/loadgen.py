"""A load generator that is not the bottleneck: aiohttp on uvloop, one process.

It runs in a process of its own, beside the servers under test, so that its CPU is
never the servers' CPU. Two ways to call it:

    python bench/loadgen.py BASE REQUESTS.jsonl [--seconds S] [--concurrency C]
    python bench/loadgen.py --plan PLAN.json

The first sends the requests of one JSON-lines file (method, path, headers, body) in a
loop for S seconds with C concurrent senders and prints one result. The second runs the
phases of a plan one after the other and prints the list of their results: the
benchmarks alternate the service and its baseline over several rounds inside one plan,
so that starting this process (half a second of imports) is paid once, not per round.

A phase may name the server's processes (`watch`): their CPU time during the phase is
reported per request, a figure that other load on the machine disturbs far less than
throughput.

A request with `"sequence": true` has every `{seq}` in its header values and body
replaced by a number unique to this process and request (idempotency keys that never
repeat, however long the run). A phase with `total` stops after that many requests; with
`save`, every response body is written, in request order, as one JSON line each.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp

Request = dict[str, Any]
SEQUENCE = "{seq}"


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time used so far by `pids` (from /proc), in seconds."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _prepared(request: Request, sequence: str) -> tuple[str, str, bytes, dict[str, str]]:
    body: str = request.get("body", "")
    headers: dict[str, str] = request.get("headers", {})
    if request.get("sequence"):
        body = body.replace(SEQUENCE, sequence)
        headers = {name: value.replace(SEQUENCE, sequence) for name, value in headers.items()}
    return request["method"], request["path"], body.encode(), headers


async def run_phase(
    base: str,
    requests: list[Request],
    concurrency: int,
    seconds: float,
    total: int | None = None,
    save: Path | None = None,
    watch: list[int] | None = None,
) -> dict[str, Any]:
    """Send `requests` round-robin until `seconds` pass or `total` were sent."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    bodies: dict[int, str] = {}
    cursor = 0
    limit = total if total is not None else float("inf")
    run_tag = secrets.token_hex(4)
    fixed = [None if r.get("sequence") else _prepared(r, "") for r in requests]
    deadline = time.perf_counter() + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as http:

        async def sender() -> None:
            nonlocal cursor
            while cursor < limit and time.perf_counter() < deadline:
                number = cursor
                cursor += 1
                index = number % len(requests)
                prepared = fixed[index] or _prepared(requests[index], f"{run_tag}-{number}")
                method, path, body, headers = prepared
                started = time.perf_counter()
                try:
                    async with http.request(method, path, data=body, headers=headers) as answer:
                        content = await answer.read()
                        status = answer.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    status, content = 0, b""
                    if len(errors) < 5:
                        errors.append(f"{type(error).__name__}: {error}")
                latencies.append(time.perf_counter() - started)
                statuses[status] = statuses.get(status, 0) + 1
                if save is not None:
                    bodies[number] = content.decode()

        cpu_before = cpu_seconds(watch or [])
        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        server_cpu = cpu_seconds(watch or []) - cpu_before
    if save is not None:
        _write_lines(save, [bodies[n] for n in sorted(bodies)])
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": elapsed,
        "throughput": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000 if latencies else None,
        "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)] * 1000 if latencies else None,
        "statuses": statuses,
        "errors": errors,
        "concurrency": concurrency,
        "server_cpu_ms": server_cpu * 1000 / len(latencies) if watch and latencies else None,
    }


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines))


def read_requests(path: Path) -> list[Request]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


async def run_plan(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Each phase of the plan in order; a phase names its own target and requests."""
    loaded: dict[str, list[Request]] = {}
    results = []
    for phase in plan["phases"]:
        if phase["requests"] not in loaded:
            loaded[phase["requests"]] = read_requests(Path(phase["requests"]))
        result = await run_phase(
            phase["base"],
            loaded[phase["requests"]],
            phase["concurrency"],
            phase["seconds"],
            phase.get("total"),
            Path(phase["save"]) if phase.get("save") else None,
            phase.get("watch"),
        )
        results.append({"label": phase.get("label", ""), **result})
    return results


def _run(coroutine: Any) -> Any:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        return asyncio.run(coroutine)
    return uvloop.run(coroutine)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("base", nargs="?")
    parser.add_argument("requests", nargs="?", type=Path)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--plan", type=Path, help="run the phases of this JSON plan")
    args = parser.parse_args()
    if args.plan is not None:
        print(json.dumps(_run(run_plan(json.loads(args.plan.read_text())))))
        return
    if args.base is None or args.requests is None:
        parser.error("give BASE and REQUESTS, or --plan")
    requests = read_requests(args.requests)
    print(json.dumps(_run(run_phase(args.base, requests, args.concurrency, args.seconds))))


if __name__ == "__main__":
    main()

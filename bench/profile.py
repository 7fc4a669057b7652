"""Where a route's time goes: the service in this process under pyinstrument, loaded by
the load generator in its own.

    .venv/bin/python -m bench.profile create|read|list|webhooks|sign-in [--seconds 10]
        [--baseline] [--all] [--flat]

Starts the Stripe stand-in and a fresh database like `bench/run`, serves the real app
(`create_app`, uvicorn on uvloop, one worker, production's settings) in this process with
pyinstrument sampling the event loop's thread, drives one route with 32 concurrent
clients, prints the profile as text and writes it as HTML to
bench/results/profile-<route>.html.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
import uvloop
from pyinstrument import Profiler

from bench import reads, sessions, sign_in, webhooks
from bench.harness import LOADGEN, ROOT, free_port, fresh_database, server
from bench.stack import STRIPE_COMMAND, baseline_env, service_env
from service.app import create_app
from service.settings import Settings


def requests_for(route: str, url: str, work: Path, seconds: float, side: str) -> Path:
    if route == "create":
        return sessions.create_requests(work, side)
    if route == "webhooks":
        prefix = "cos_bench_profile_"
        count = int((seconds + 3) * webhooks.EVENTS_PER_SECOND_CEILING)
        webhooks.seed_sessions(url, prefix, count)
        return webhooks.signed_events(prefix, 0, count, work / "events.jsonl")
    if route == "sign-in":
        return sign_in.nonce_requests(work, side)
    owned = reads.seed(url)
    build = reads.read_one_requests if route == "read" else reads.list_requests
    return build(work, owned, side)


async def profile(
    app_server: uvicorn.Server, base: str, requests: Path, seconds: float, concurrency: int
) -> Profiler:
    """Serve, warm up, then sample the loop's thread while the load runs."""
    serving = asyncio.create_task(app_server.serve())
    while not app_server.started:  # noqa: ASYNC110 - uvicorn offers a flag, not an event
        await asyncio.sleep(0.05)
    command = [sys.executable, str(LOADGEN), base, str(requests)]
    warm_up = await asyncio.create_subprocess_exec(
        *command, "--seconds", "2", "--concurrency", "8", stdout=asyncio.subprocess.DEVNULL
    )
    await warm_up.wait()
    profiler = Profiler(interval=0.0005, async_mode="disabled")
    profiler.start()
    load = await asyncio.create_subprocess_exec(
        *command,
        "--seconds",
        str(seconds),
        "--concurrency",
        str(concurrency),
        stdout=asyncio.subprocess.PIPE,
    )
    output, _ = await load.communicate()
    profiler.stop()
    print(output.decode())
    app_server.should_exit = True
    await serving
    return profiler


def _flat(profiler: Profiler, top: int = 30) -> str:
    """Where the time goes by package (self time, library code included), then the
    functions that spend the most themselves."""
    functions: dict[str, float] = {}
    packages: dict[str, float] = {}
    session = profiler.last_session
    assert session is not None
    root = session.root_frame()
    stack = [root] if root is not None else []
    while stack:
        frame = stack.pop()
        stack.extend(frame.children)
        path = frame.file_path_short or "?"
        key = f"{frame.function}  {path}:{frame.line_no}"
        functions[key] = functions.get(key, 0.0) + frame.total_self_time
        package = path.split("/")[0] if "/" in path else path
        packages[package] = packages.get(package, 0.0) + frame.total_self_time
    total = sum(packages.values()) or 1.0
    lines = [f"{seconds / total:6.1%}  {name}" for name, seconds in _top(packages, 15)]
    lines += [""] + [f"{seconds:8.3f}  {name}" for name, seconds in _top(functions, top)]
    return "\n".join(lines)


def _top(totals: dict[str, float], count: int) -> list[tuple[str, float]]:
    return sorted(totals.items(), key=lambda item: -item[1])[:count]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("route", choices=["create", "read", "list", "webhooks", "sign-in"])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--all", action="store_true", help="show library frames too")
    parser.add_argument("--flat", action="store_true", help="also list the top self times")
    parser.add_argument("--baseline", action="store_true", help="profile the baseline instead")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="onramp-profile-"))
    with (
        fresh_database() as url,
        server(STRIPE_COMMAND, {}, work / "stripe-sim.log") as stripe,
    ):
        os.environ.update({**service_env(url, stripe.url), "PORT": str(free_port())})
        # The service logs to whatever sys.stderr is; a file, as a platform collects it.
        sys.stderr = (work / "service.log").open("w")
        settings = Settings.from_env()
        app: Any = create_app(settings)
        if args.baseline:
            os.environ.update(baseline_env(url, stripe.url))
            app = importlib.import_module("bench.baseline").app
        config = uvicorn.Config(
            app, host="127.0.0.1", port=settings.server.port, log_config=None, access_log=False
        )
        side = "baseline" if args.baseline else "service"
        requests = requests_for(args.route, url, work, args.seconds, side)
        base = f"http://127.0.0.1:{settings.server.port}"
        profiler = uvloop.run(
            profile(uvicorn.Server(config), base, requests, args.seconds, args.concurrency)
        )
    out = ROOT / "bench" / "results" / f"profile-{args.route}{'-baseline' * args.baseline}.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(profiler.output_html())
    print(profiler.output_text(unicode=False, color=False, show_all=args.all))
    if args.flat:
        print(_flat(profiler))


if __name__ == "__main__":
    main()

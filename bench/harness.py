"""What every benchmark shares: databases, server processes, load plans, paired rounds.

The rules the numbers rest on (see bench/README.md): the service and its baseline run on
the same server, database and machine in one run; the load generator runs in its own
process; the sides alternate over several rounds, each side warmed up first; and a
comparison reports the median of the ratios of each round's pair, because on a 2-core
machine anything else running moves absolute figures by a third between minutes.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import signal
import socket
import statistics
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from service import migrations
from service.demo.local_servers import wait_until_healthy
from service.settings import DatabaseSettings

# The PostgreSQL server whose databases the benchmarks create and drop (as the tests do).
ADMIN_URL = os.environ.get(
    "ONRAMP_BENCH_POSTGRES",
    os.environ.get("ONRAMP_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"),
)
BIN = Path(sys.executable).parent
LOADGEN = ROOT / "bench" / "loadgen.py"
SIDES = ("service", "baseline")

Stats = dict[str, Any]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new PostgreSQL database at the schema's head, dropped afterwards."""
    name = f"onramp_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    try:
        migrations.upgrade(DatabaseSettings(DATABASE_URL=url))
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Server:
    """A server process under test: where it answers and which process it is."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def worker_pids(self) -> list[int]:
        """The processes that serve requests: uvicorn's spawned workers when it has a
        supervisor, else the process itself."""
        workers = [
            pid
            for pid in _children(self.process.pid)
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]
        return workers or [self.process.pid]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found += [int(child) for child in children]
    return found


def rss_mib(pid: int) -> float:
    """Resident memory of one process, from /proc (VmRSS), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def server(
    command: list[str],
    env: dict[str, str],
    log: Path,
    port_variable: str = "PORT",
    startup_seconds: float = 60,
) -> Iterator[Server]:
    """`command` on a free port (given as `port_variable`, PORT by default, and in place
    of `{port}`), until the end of the block; SIGTERM then, as a platform stops a replica."""
    port = free_port()
    command = [part.replace("{port}", str(port)) for part in command]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env={**os.environ, **env, port_variable: str(port)},
            cwd=ROOT,
            stdout=output,
            stderr=output,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            if not wait_until_healthy(url, process, seconds=startup_seconds):
                raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-3000:]}")
            yield Server(url, process, log)
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def read_requests(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line]


def write_requests(path: Path, requests: list[dict[str, Any]]) -> Path:
    """A JSON-lines request file for the load generator."""
    with path.open("w") as out:
        for request in requests:
            out.write(json.dumps(request) + "\n")
    return path


@dataclass
class Phase:
    """One stretch of load in a plan: a target, its requests, how long and how wide."""

    label: str
    base: str
    requests: Path
    seconds: float
    concurrency: int
    total: int | None = None
    save: Path | None = None
    watch: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "base": self.base,
            "requests": str(self.requests),
            "seconds": self.seconds,
            "concurrency": self.concurrency,
            "total": self.total,
            "save": str(self.save) if self.save else None,
            "watch": self.watch,
        }


def start_plan(phases: list[Phase], work: Path) -> subprocess.Popen[str]:
    """Start the load generator on `phases`; `finish_plan` collects the results."""
    plan = work / f"plan-{secrets.token_hex(4)}.json"
    plan.write_text(json.dumps({"phases": [phase.as_json() for phase in phases]}))
    return subprocess.Popen(
        [sys.executable, str(LOADGEN), "--plan", str(plan)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_plan(process: subprocess.Popen[str], timeout: float) -> list[Stats]:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed:\n{stderr[-3000:]}")
    results: list[Stats] = json.loads(stdout)
    return results


def run_plan(phases: list[Phase], work: Path) -> list[Stats]:
    """Run `phases` in one load-generator process; their results in order."""
    timeout = sum(phase.seconds for phase in phases) + 60 + 5 * len(phases)
    return finish_plan(start_plan(phases, work), timeout)


def check_statuses(stats: Stats, expected: set[int], what: str) -> None:
    """Every answer must be one the benchmark expects, or the figures mean nothing."""
    bad = {
        status: count for status, count in stats["statuses"].items() if int(status) not in expected
    }
    if bad:
        raise RuntimeError(f"{what}: unexpected answers {bad} {stats.get('errors', [])}")


def same_file(path: Path) -> Callable[[int], Path]:
    """Requests for a side whose every round sends the same file."""
    return lambda _round: path


@dataclass
class Side:
    """One side of a comparison: where it runs and the request file of each round."""

    base: str
    requests: Callable[[int], Path]
    pids: list[int] = field(default_factory=list)


# Every hot path's tail: the service's p99 within this multiple of its baseline's.
P99_GOAL = {"p99_ratio_at_most": 1.5}


@dataclass
class Comparison:
    """The service against its baseline under the same load, round by round."""

    name: str
    unit: str
    concurrency: int
    seconds: float
    rounds: list[dict[str, Stats]]
    goal: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def median(self, side: str, key: str) -> float:
        return float(statistics.median(r[side][key] for r in self.rounds))

    def side_medians(self, side: str) -> dict[str, float | None]:
        medians: dict[str, float | None] = {
            key: self.median(side, key) for key in ("throughput", "p50_ms", "p99_ms")
        }
        cpu = [r[side].get("server_cpu_ms") for r in self.rounds]
        medians["server_cpu_ms"] = (
            float(statistics.median(c for c in cpu if c is not None)) if None not in cpu else None
        )
        return medians

    def ratio(self, key: str) -> float:
        """The median over rounds of service/baseline for `key`."""
        return float(statistics.median(r["service"][key] / r["baseline"][key] for r in self.rounds))

    @property
    def throughput_ratio(self) -> float:
        return self.ratio("throughput")

    @property
    def p99_ratio(self) -> float:
        return self.ratio("p99_ms")

    @property
    def cpu_ratio(self) -> float | None:
        """The median over rounds of the service's server CPU per request over the
        baseline's: how much more work a request is, whatever else the machine runs."""
        if any(r[side].get("server_cpu_ms") is None for r in self.rounds for side in SIDES):
            return None
        return self.ratio("server_cpu_ms")

    def verdicts(self) -> dict[str, bool]:
        """Each goal this comparison has, and whether it was met."""
        verdicts = {}
        if "throughput_ratio_at_least" in self.goal:
            verdicts["throughput"] = self.throughput_ratio >= self.goal["throughput_ratio_at_least"]
        if "p99_ratio_at_most" in self.goal:
            verdicts["p99"] = self.p99_ratio <= self.goal["p99_ratio_at_most"]
        return verdicts

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "concurrency": self.concurrency,
            "seconds_per_side": self.seconds,
            "note": self.note,
            "sides": {side: self.side_medians(side) for side in SIDES},
            "throughput_ratio": self.throughput_ratio,
            "p99_ratio": self.p99_ratio,
            "server_cpu_ratio": self.cpu_ratio,
            "goal": self.goal,
            "met": self.verdicts(),
            "rounds": self.rounds,
        }

    def describe(self) -> str:
        """One line for the console: both sides and the ratios."""
        service, baseline = self.side_medians("service"), self.side_medians("baseline")
        cpu = self.cpu_ratio
        return (
            f"{self.name}: service {service['throughput']:.0f}/s "
            f"baseline {baseline['throughput']:.0f}/s ratio {self.throughput_ratio:.2f}, "
            f"p99 {service['p99_ms']:.1f} vs {baseline['p99_ms']:.1f} ms "
            f"ratio {self.p99_ratio:.2f}"
            + (
                f", server CPU {service['server_cpu_ms']:.2f} vs "
                f"{baseline['server_cpu_ms']:.2f} ms/request ratio {cpu:.2f}"
                if cpu is not None
                else ""
            )
        )


def compare(
    name: str,
    sides: dict[str, Side],
    *,
    work: Path,
    rounds: int,
    seconds: float,
    concurrency: int,
    expected: set[int],
    unit: str = "requests/s",
    warm_up_seconds: float = 1.0,
    goal: dict[str, float] | None = None,
    note: str = "",
) -> Comparison:
    """Warm both sides up, then measure them alternately (service first in even rounds,
    baseline first in odd ones) for `rounds` rounds, all in one load-generator process."""
    phases = [
        Phase(f"warm-up {side}", sides[side].base, sides[side].requests(-1), warm_up_seconds, 8)
        for side in SIDES
        if warm_up_seconds > 0
    ]
    order: list[tuple[int, str]] = []
    for number in range(rounds):
        for side in SIDES if number % 2 == 0 else tuple(reversed(SIDES)):
            order.append((number, side))
            phases.append(
                Phase(
                    f"{name} round {number + 1} {side}",
                    sides[side].base,
                    sides[side].requests(number),
                    seconds,
                    concurrency,
                    watch=sides[side].pids,
                )
            )
    results = run_plan(phases, work)
    measured = results[len(phases) - len(order) :]
    by_round: list[dict[str, Stats]] = [{} for _ in range(rounds)]
    for (number, side), stats in zip(order, measured, strict=True):
        check_statuses(stats, expected, f"{name}, {side}")
        by_round[number][side] = stats
    return Comparison(name, unit, concurrency, seconds, by_round, goal or {}, note)


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    with psycopg.connect(ADMIN_URL) as connection:
        row = connection.execute("SHOW server_version").fetchone()
    return {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(int(memory) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "postgresql": row[0] if row else "?",
        "load_average_at_start": os.getloadavg(),
    }

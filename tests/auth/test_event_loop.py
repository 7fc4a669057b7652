"""Sign-in messages crafted to be slow to parse do not stall the process: a real
`onramp serve` keeps answering /health while it is fed them concurrently."""

from __future__ import annotations

import asyncio
import contextlib
import json
import statistics
import sys
import time
from pathlib import Path

import httpx

from tests.onramp.conftest import JWT_SECRET
from tests.support.processes import serving

BASE = (
    "localhost:8000 wants you to sign in with your Ethereum account:\n"
    "0x52908400098527886E0F7030069857D2E4169EE7\n\n\n"
    "URI: http://localhost:8000\nVersion: 1\nChain ID: 31611\nNonce: abcdefgh12345678\n"
    "Issued At: 2026-12-02T05:00:00Z"
)
# Each cost a general ABNF parser 0.4-1 s; all are under the 1,536-character cap.
HOSTILE = [
    BASE.replace("URI: http://localhost:8000", "URI: http://" + "a" * 1300),
    BASE.replace("URI: http://localhost:8000", "URI: " + "a:" * 600),
    BASE.replace("localhost:8000 wants", "a." * 600 + " wants"),
    BASE.replace("\n\n\nURI", "\n\n" + "a " * 600 + "\n\nURI"),
]


# The attackers run in a process of their own, so that the probe's latencies are the
# server's and not this process's event loop, busy with twenty clients.
ATTACK = """
import asyncio, json, sys
import httpx

async def main(url, messages):
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        async def attacker(n):
            statuses = []
            for round_ in range(15):
                message = messages[(n + round_) % len(messages)]
                answer = await client.post(
                    "/api/v1/auth/verify", json={"message": message, "signature": "0x00"}
                )
                statuses.append(answer.status_code)
            return statuses
        results = await asyncio.gather(*(attacker(n) for n in range(20)))
    print(json.dumps(sorted({s for statuses in results for s in statuses})))

asyncio.run(main(sys.argv[1], json.loads(sys.argv[2])))
"""


async def test_hostile_verify_calls_leave_health_answering_fast(
    tmp_path: Path, migrated: dict[str, str]
) -> None:
    env = {
        "DATABASE_URL": migrated["postgresql"],
        "JWT_SECRET": JWT_SECRET,
        "RATE_LIMIT_PER_MINUTE": "100000",
        "MEZO_RPC_URLS": "http://127.0.0.1:9",
        "DELIVERY_WORKER": "false",
    }
    with serving(tmp_path, **env) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            await client.get("/health")
            attack = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                ATTACK,
                url,
                json.dumps(HOSTILE),
                stdout=asyncio.subprocess.PIPE,
            )
            latencies: list[float] = []
            while attack.returncode is None:
                started = time.perf_counter()
                assert (await client.get("/health")).status_code == 200
                latencies.append(time.perf_counter() - started)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(attack.wait(), 0.01)
            output, _ = await attack.communicate()
    assert json.loads(output) == [401]
    assert len(latencies) >= 3
    assert statistics.median(latencies) < 0.05, latencies
    assert max(latencies) < 0.3, latencies

"""What the in-process cost scripts share: the real app called as an ASGI application
inside the measuring process (no server, no load generator), and callgrind's count of
the instructions a child process ran.

Written here rather than taken from a test client: httpx's and Litestar's clients add
their own work per request, which would be counted as the route's.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any


def scope(method: str, path: str, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    """An HTTP request's ASGI scope, from a loopback client as uvicorn builds it."""
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app: Any, request: dict[str, Any], body: bytes = b"") -> tuple[int, bytes]:
    """One request through `app`: its status and its body."""
    received = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal received
        if received:  # the request is whole: wait as a client that stays connected
            await asyncio.Event().wait()
        received = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(request, receive, send)
    return status, b"".join(chunks)


def callgrind_instructions(command: list[str], *valgrind_options: str) -> int:
    """The instructions `command` ran under valgrind's callgrind (its summary line)."""
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "callgrind.out"
        valgrind = ["valgrind", "--tool=callgrind", *valgrind_options]
        subprocess.run(
            [*valgrind, f"--callgrind-out-file={out}", *command], check=True, capture_output=True
        )
        summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
        assert summary is not None
        return int(summary.group(1))


def callgrind_control(pid: int, *options: str, host: str | None = None) -> None:
    """Switch the counting of the callgrind-run process `pid` (`--instr=on`, a dump).
    callgrind_control finds it by the host name valgrind started under: `host`, the
    `HOST` of the process's environment where it had one (the service's setting), else
    none, whatever this process's own environment says."""
    env = {k: v for k, v in os.environ.items() if k != "HOST"}
    if host is not None:
        env["HOST"] = host
    subprocess.run(
        ["callgrind_control", *options, str(pid)], check=True, capture_output=True, env=env
    )

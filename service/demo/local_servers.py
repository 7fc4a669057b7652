"""ASGI apps served on loopback by uvicorn in daemon threads, for the demo and tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
from typing import Any

import httpx
import uvicorn

from service.demo.local_chain import free_port


def serve_in_thread(app: Any) -> tuple[str, uvicorn.Server, threading.Thread]:
    """`app` on a free loopback port until `server.should_exit` is set."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="auto",
        proxy_headers=False,  # the app believes X-Forwarded-For from TRUSTED_PROXIES only
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve()), daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the server did not start")
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}", server, thread


def patient(seconds: float) -> float:
    """A start-up's deadline, stretched by the machine's load: on a machine with more to
    run than cores, a process starts that many times slower, and a fixed wait fails
    there first."""
    return seconds * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def wait_until_healthy(base: str, process: subprocess.Popen[Any], seconds: float = 30) -> bool:
    """True once `base/health` answers; False if the process died or `seconds` (more on
    a busy machine) ran out."""
    deadline = time.monotonic() + patient(seconds)
    while True:
        try:
            httpx.get(f"{base}/health", timeout=1)
            return True
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                return False
            time.sleep(0.1)

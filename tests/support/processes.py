"""The `onramp` command run as a real process, as an operator or a deploy would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from service.demo.local_servers import wait_until_healthy
from tests.support.anvil import free_port

ONRAMP = str(Path(sys.executable).parent / "onramp")


def bare_env(**extra: str) -> dict[str, str]:
    """No ONRAMP-relevant variable at all, as on a fresh machine."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **extra}


def run_onramp(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ONRAMP, *args],
        env=bare_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )


@contextmanager
def serving(cwd: Path, *args: str, **env: str) -> Iterator[str]:
    """`onramp serve` on a free port until the block ends; yields its base URL."""
    port = free_port()
    # A file, not a pipe: a busy server logs more than a pipe buffer holds.
    log_path = Path(cwd) / f"serve-{port}.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [ONRAMP, "serve", *args],
        env=bare_env(PORT=str(port), **env),
        cwd=cwd,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_healthy(base, process):
            process.kill()
            process.wait()
            raise AssertionError(log_path.read_text())
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log_file.close()
        output = log_path.read_text()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert process.returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output

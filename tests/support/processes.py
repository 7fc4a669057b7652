"""The `onramp` command run as a real process, as an operator or a deploy would run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from service.demo.local_servers import wait_until_healthy
from tests.onramp.conftest import JWT_SECRET
from tests.support.anvil import free_port
from tests.support.environment import BASE_ENV
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET

ONRAMP = str(Path(sys.executable).parent / "onramp")
# Where `run_onramp` keeps each command's output for the run's secret scan
# (tests/support/log_scan.py); set by the test session.
OUTPUT_ARCHIVE: list[Path] = []


def bare_env(**extra: str) -> dict[str, str]:
    """No ONRAMP-relevant variable at all, as on a fresh machine."""
    return {"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", "/root"), **extra}


def run_onramp(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [ONRAMP, *args],
        env=bare_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    if OUTPUT_ARCHIVE:
        archive = OUTPUT_ARCHIVE[0] / f"onramp-run-{len(list(OUTPUT_ARCHIVE[0].iterdir()))}.log"
        archive.write_text(f"$ onramp {' '.join(args)}\n{completed.stdout}{completed.stderr}")
    return completed


class OnrampProcess:
    """One `onramp …` process on a fixed port that a test can kill and start again, as a
    platform restarts a crashed replica. Its output goes to a file, not a pipe: a busy
    server logs more than a pipe buffer holds."""

    def __init__(self, cwd: Path, *args: str, **env: str) -> None:
        self.cwd = Path(cwd)
        self.args = args
        self.port = free_port()
        self.env = bare_env(PORT=str(self.port), **env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.cwd / f"onramp-{self.port}.log"
        self.process: subprocess.Popen[str] | None = None
        self._log: IO[str] | None = None

    def start(self, wait: bool = True) -> None:
        self._log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [ONRAMP, *self.args],
            env=self.env,
            cwd=self.cwd,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if wait and not wait_until_healthy(self.url, self.process):
            self.kill()
            raise AssertionError(self.output())

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash or an out-of-memory kill."""
        self._end(signal.SIGKILL)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, as a platform stops a replica; the exit status."""
        return self._end(signal.SIGTERM, timeout)

    def _end(self, signum: int, timeout: float = 30) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signum)
        returncode = self.process.wait(timeout=timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        return returncode

    def output(self) -> str:
        return self.log_path.read_text()


@contextmanager
def serving(cwd: Path, *args: str, **env: str) -> Iterator[str]:
    """`onramp serve` on a free port until the block ends; yields its base URL."""
    server = OnrampProcess(cwd, "serve", *args, **env)
    server.start()
    try:
        yield server.url
    finally:
        returncode = server.stop()
        output = server.output()
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert returncode in (0, -signal.SIGTERM), output
        assert "Application shutdown complete" in output


def service_env(
    database_url: str, stripe: RunningStripe | None = None, **extra: str
) -> dict[str, str]:
    """What a test's `onramp serve` runs with: the suite's secrets, generous rate limits
    (wrong operator keys included: the security tests send hundreds on purpose)."""
    env = {
        **BASE_ENV,
        "DATABASE_URL": database_url,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "JWT_SECRET": JWT_SECRET,
        "RATE_LIMIT_PER_MINUTE": "100000",
        "RATE_LIMIT_CHAIN_CHECKS_PER_MINUTE": "100000",
        "ADMIN_AUTH_FAILURES_PER_MINUTE": "100000",
    }
    if stripe is not None:
        env |= {"STRIPE_SECRET_KEY": stripe.secret_key, "STRIPE_API_BASE": stripe.url}
    return env | extra

"""A Redis server of a test's own, which it may stop, pause or restrict without harming
the suite's shared Redis on 6379: `redis-server` on a free port, no persistence."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.anvil import free_port


class RedisServer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None
        self.admin = redis.Redis(port=self.port, socket_timeout=5, socket_connect_timeout=5)

    def start(self) -> None:
        """Start it, unless it runs, and return once it answers PING."""
        if self.process is not None and self.process.poll() is None:
            return
        binary = shutil.which("redis-server")
        assert binary is not None, "redis-server is missing: apt-get install redis-server"
        command = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.folder)]  # nothing kept
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not self._answers():
            assert self.process.poll() is None, "redis-server exited"
            assert time.monotonic() < deadline, "redis-server did not answer PING"
            time.sleep(0.02)

    def _answers(self) -> bool:
        try:
            return bool(self.admin.ping())
        except redis.ConnectionError:
            return False

    def stop(self) -> None:
        """SIGTERM, as a platform stops it; connections are refused from then on."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            self.process.wait(timeout=30)
        self.admin.connection_pool.disconnect()

    @contextmanager
    def paused(self) -> Iterator[None]:
        """SIGSTOP: connections are accepted by the kernel and never answered, as from a
        Redis stalled by a fork, a swap storm or a long command."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(self.process.pid, signal.SIGCONT)

    @contextmanager
    def refusing(self, *commands: str) -> Iterator[None]:
        """The default user may not run `commands` (NOPERM) until the block ends."""
        self.admin.acl_setuser("default", enabled=True, commands=[f"-{c}" for c in commands])
        try:
            yield
        finally:
            self.admin.acl_setuser("default", enabled=True, commands=["+@all"])

    def clients(self) -> int:
        """Connections open to it now, from this machine's side: /proc/net/tcp's
        ESTABLISHED sockets whose far end is its port. Readable while it is paused, when
        it cannot answer CLIENT LIST."""
        port = f"{self.port:04X}"
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
        fields = [line.split() for line in lines]
        return sum(1 for f in fields if f[2].endswith(f":{port}") and f[3] == "01")

    def count_keys(self, pattern: str) -> int:
        return len(self.admin.keys(pattern))

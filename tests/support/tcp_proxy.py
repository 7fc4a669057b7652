"""A TCP forwarder in a process of its own, put in front of a database: SIGSTOP freezes
it the way a stalled host looks to its clients (connections stay open, the kernel takes
their bytes, nothing answers), SIGCONT thaws it.

Hand-written: a few lines of asyncio, run as a process that a test can stop, which no
test library offers. Run as a script, it prints the port it listens on.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit


class FreezableProxy:
    """`url` is the target's URL with this proxy's address in it."""

    def __init__(self, target_url: str) -> None:
        target = urlsplit(target_url)
        assert target.hostname is not None
        assert target.port is not None
        self.process = subprocess.Popen(
            [sys.executable, __file__, target.hostname, str(target.port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        port = int(self.process.stdout.readline())
        user = f"{target.username}@" if target.username else ""
        self.url = urlunsplit(target._replace(netloc=f"{user}127.0.0.1:{port}"))

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        self.thaw()
        self.process.terminate()
        self.process.wait(timeout=10)


@contextmanager
def proxy_before(url: str) -> Iterator[FreezableProxy]:
    proxy = FreezableProxy(url)
    try:
        yield proxy
    finally:
        proxy.stop()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _serve(host: str, port: int) -> None:
    async def forward(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(host, port)
        except OSError:
            writer.close()
            return
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))

    server = await asyncio.start_server(forward, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2])))

"""`/health` and `/metrics` on a port of their own: `onramp worker`'s on
WORKER_METRICS_PORT, and the API's on METRICS_PORT (in production and staging the API's
only `/metrics`, kept off the public port).

A two-route Litestar app served by uvicorn inside the event loop of the process it
reports on, so `/health` is answered by that loop: a worker loop that stopped going
round, or is blocked, is not reported alive. `/metrics` is the API's own endpoint (the
same registry and exposition, merged across `serve --workers N`), so one scrape
configuration fits every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Iterator

import uvicorn
from litestar import Litestar, Response, get

from service.operations.routes import Metrics


class EndpointUnavailable(Exception):
    """The port could not be served (taken, or not ours to bind)."""


class _Server(uvicorn.Server):
    """uvicorn, leaving SIGTERM and SIGINT to the process it runs in, which stops
    gracefully on them (uvicorn would otherwise take the signals for itself)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def probe_app(is_alive: Callable[[], bool]) -> Litestar:
    @get("/health", include_in_schema=False)
    async def health() -> Response[dict[str, str]]:
        """200 while the process goes round its loop; 503 once it has stalled."""
        alive = is_alive()
        return Response({"status": "ok" if alive else "stalled"}, status_code=200 if alive else 503)

    return Litestar(route_handlers=[health, Metrics], openapi_config=None, logging_config=None)


@contextlib.asynccontextmanager
async def serving(
    is_alive: Callable[[], bool], host: str, port: int, *, shared: bool = False
) -> AsyncIterator[None]:
    """The endpoint, listening before the block starts and closed after it ends.

    `shared`: the worker processes of one `onramp serve --workers N` each serve the
    port (SO_REUSEPORT); any of them answers with every process's metrics.
    """
    config = uvicorn.Config(
        probe_app(is_alive),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        lifespan="off",
    )
    listening = listen(host, port, shared=shared)
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        yield
    finally:
        server.should_exit = True
        await task
        listening.close()


def listen(host: str, port: int, *, shared: bool = False) -> socket.socket:
    """The endpoint's listening socket; EndpointUnavailable with the reason if not."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        return socket.create_server((host, port), family=family, reuse_port=shared)
    except OSError as error:
        raise EndpointUnavailable(f"{host}:{port} cannot be served: {error.strerror}") from error

"""`onramp worker`'s own `/health` and `/metrics`, on WORKER_METRICS_PORT.

A two-route Litestar app served by uvicorn inside the worker's event loop, so `/health`
is answered by the loop that checks deliveries: a loop that stopped going round, or is
blocked, is not reported alive. `/metrics` is the API's own endpoint (the same registry
and exposition), so one scrape configuration fits both processes.
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
    """uvicorn, leaving SIGTERM and SIGINT to the worker, which stops gracefully on them
    (uvicorn would otherwise take the signals for itself while it serves)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def worker_app(is_alive: Callable[[], bool]) -> Litestar:
    @get("/health", include_in_schema=False)
    async def health() -> Response[dict[str, str]]:
        """200 while the worker goes round its loop; 503 once it has stalled."""
        alive = is_alive()
        return Response({"status": "ok" if alive else "stalled"}, status_code=200 if alive else 503)

    return Litestar(route_handlers=[health, Metrics], openapi_config=None, logging_config=None)


@contextlib.asynccontextmanager
async def serving(is_alive: Callable[[], bool], host: str, port: int) -> AsyncIterator[None]:
    """The endpoint, listening before the block starts and closed after it ends."""
    config = uvicorn.Config(
        worker_app(is_alive),
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        server_header=False,
        lifespan="off",
    )
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.create_server((host, port), family=family)
    except OSError as error:
        raise EndpointUnavailable(f"{host}:{port} cannot be served: {error.strerror}") from error
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[listening]))
    try:
        yield
    finally:
        server.should_exit = True
        await task
        listening.close()

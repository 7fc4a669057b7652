"""Traces over OTLP/HTTP, switched on by `OTEL_EXPORTER_OTLP_ENDPOINT`.

With the variable unset this module imports nothing of OpenTelemetry and sets nothing
up: `span` yields a span that does nothing and `traceparent` answers None, each at the
cost of one global read, so the service runs as if it were not there (docs/operations.md,
"Traces"). With it set, `start`
sets the SDK up once per process (`otel.py`): the instrumentations where they exist
(requests through Litestar's plugin, psycopg's statements, aiohttp's calls: Stripe's
through stripe-python's aiohttp transport and the chain's through web3's), spans of our
own only where none exists (the delivery worker's rounds, its JSON-RPC batches), and the
standard `OTEL_*` variables read by the SDK itself.

A fulfilling webhook and the round that proves its delivery run in different requests,
often in different processes: the check row keeps the webhook's `traceparent`, and the
round's span links to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from service.settings import Settings
    from service.tracing.otel import Tracing

AttributeValue = str | int | float | bool


class Span(Protocol):
    """What our own spans are told: attributes, and links to other traces."""

    def set(self, name: str, value: AttributeValue) -> None: ...

    def link(self, traceparent: str | None, **attributes: AttributeValue) -> None: ...


class _Off:
    """The span of a process that does not trace."""

    def set(self, name: str, value: AttributeValue) -> None:
        return None

    def link(self, traceparent: str | None, **attributes: AttributeValue) -> None:
        return None


_OFF = _Off()
_tracing: Tracing | None = None


def start(settings: Settings, process: str) -> bool:
    """Trace this process when OTEL_EXPORTER_OTLP_ENDPOINT is set; whether it traces.
    Once per process: later calls change nothing. `process` names the kind (`api`,
    `worker`) in the resource."""
    global _tracing
    endpoint = settings.server.otlp_endpoint
    if endpoint is None:
        return False
    if _tracing is None:
        from service.tracing.otel import Tracing

        # Hosted RPC URLs carry keys in their paths: calls to them show the origin only.
        rpc_urls = [url for rpc in settings.chain.networks.values() for url in rpc.rpc_urls]
        _tracing = Tracing(endpoint, process, rpc_urls)
    return True


def is_on() -> bool:
    return _tracing is not None


def litestar_plugins() -> list[Any]:
    """Litestar's OpenTelemetry plugin for the app, when this process traces."""
    return [] if _tracing is None else [_tracing.litestar_plugin()]


@contextmanager
def span(name: str, **attributes: AttributeValue) -> Iterator[Span]:
    """A span of our own around the block, the current one inside it."""
    if _tracing is None:
        yield _OFF
        return
    with _tracing.span(name, attributes) as opened:
        yield opened


def traceparent() -> str | None:
    """The W3C `traceparent` of the span running now (None without one), for a row that
    a later span links to."""
    return None if _tracing is None else _tracing.traceparent()


def flush() -> None:
    """Send the spans still held (on shutdown: the SDK sends the rest at exit too)."""
    if _tracing is not None:
        _tracing.flush()

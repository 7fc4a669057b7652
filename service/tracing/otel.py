"""The OpenTelemetry SDK as this process uses it; imported only once tracing is on.

The SDK reads the standard variables itself (`OTEL_SERVICE_NAME`,
`OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_BSP_*`,
`OTEL_TRACES_SAMPLER`, …). What is ours:
- no secret leaves the process: every attribute, event and status is passed through the
  logs' redaction at export (`logs.scrub`, and a key named as a secret loses its value),
  psycopg's spans hold the statement with its placeholders, never its parameters, and
  an RPC URL, whose path or query may hold a key, is shown as its origin only;
- no trace starts from a statement or a call made outside any request or round (the
  workers' polls while nothing is due, every second or so), nor from a probe.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import yarl
from litestar.config.app import AppConfig
from litestar.plugins import InitPlugin
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryPlugin
from litestar.types import ASGIApp, Receive, Scope, Send
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
from opentelemetry.sdk.resources import OTELResourceDetector, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, Status
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

from service.logs import REDACTED, is_secret_key, scrub

# Given, it is the whole URL of the traces (the SDK's own rule); otherwise they go to
# OTEL_EXPORTER_OTLP_ENDPOINT's `/v1/traces`.
TRACES_ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
SERVICE_NAME = "onramp"
# Asked every few seconds by probes and Prometheus: no trace of their own.
PROBES = frozenset({"/health", "/ready", "/metrics"})
_W3C = TraceContextTextMapPropagator()


class Tracing:
    """The tracer provider of this process, its exporter and its instrumentations."""

    def __init__(self, endpoint: str, process: str, hidden_urls: Sequence[str]) -> None:
        given = OTELResourceDetector().detect().attributes
        defaults = {"service.name": SERVICE_NAME, "onramp.process": process}
        resource = Resource.create({k: v for k, v in defaults.items() if k not in given})
        self.provider = TracerProvider(resource=resource)
        # Read from OTEL_TRACES_SAMPLER by the SDK; wrapped before any tracer is made.
        self.provider.sampler = WithinWork(self.provider.sampler)
        traces_url = (
            None if TRACES_ENDPOINT_VARIABLE in os.environ else f"{endpoint.rstrip('/')}/v1/traces"
        )
        exporter = Scrubbed(OTLPSpanExporter(endpoint=traces_url))
        self.provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(self.provider)
        PsycopgInstrumentor().instrument(tracer_provider=self.provider)
        AioHttpClientInstrumentor().instrument(
            tracer_provider=self.provider, url_filter=origin_only(hidden_urls)
        )
        self.tracer = self.provider.get_tracer("onramp")

    def litestar_plugin(self) -> InitPlugin:
        config = OpenTelemetryConfig(
            tracer_provider=self.provider,
            # A span per ASGI message would be one per event of a live stream.
            exclude_spans=["receive", "send"],
        )
        return _Requests(OpenTelemetryPlugin(config))

    @contextmanager
    def span(self, name: str, attributes: Mapping[str, Any]) -> Iterator[Opened]:
        with self.tracer.start_as_current_span(name, attributes=dict(attributes)) as opened:
            yield Opened(opened)

    def traceparent(self) -> str | None:
        carrier: dict[str, str] = {}
        _W3C.inject(carrier)
        return carrier.get("traceparent")

    def flush(self) -> None:
        self.provider.force_flush(timeout_millis=5_000)


class Opened:
    """One of our own spans while it runs."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def set(self, name: str, value: str | int | float | bool) -> None:
        self._span.set_attribute(name, value)

    def link(self, traceparent: str | None, **attributes: str | int | float | bool) -> None:
        if traceparent is None:
            return
        linked = trace.get_current_span(_W3C.extract({"traceparent": traceparent}))
        if linked.get_span_context().is_valid:
            self._span.add_link(linked.get_span_context(), attributes)


class _Requests(InitPlugin):
    """Litestar's OpenTelemetry plugin (the ASGI instrumentation around the whole app),
    with each request's span named after its route once it is known: the plugin names it
    by the raw path, which holds session ids."""

    def __init__(self, plugin: OpenTelemetryPlugin) -> None:
        self.plugin = plugin

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        app_config.plugins.append(self.plugin)
        app_config.middleware.append(_named_by_route)
        return app_config


def _named_by_route(app: ASGIApp) -> ASGIApp:
    async def named(scope: Scope, receive: Receive, send: Send) -> None:
        template = scope.get("path_template")
        span = trace.get_current_span()
        if template and span.is_recording():
            method = scope.get("method")
            span.update_name(f"{method} {template}" if method else template)
            span.set_attribute("http.route", template)
        await app(scope, receive, send)

    return named


class WithinWork(Sampler):
    """No trace starts from a statement or an outgoing call made outside any request or
    round, nor from a probe; everything else as the configured sampler decides."""

    def __init__(self, configured: Sampler) -> None:
        self.configured = configured

    def should_sample(
        self,
        parent_context: context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        is_root = not trace.get_current_span(parent_context).get_span_context().is_valid
        if is_root and (kind == SpanKind.CLIENT or _is_probe(attributes)):
            return SamplingResult(Decision.DROP)
        return self.configured.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WithinWork{{{self.configured.get_description()}}}"


def _is_probe(attributes: Attributes) -> bool:
    if not attributes:
        return False
    target = attributes.get("url.path") or attributes.get("http.target")
    return isinstance(target, str) and target.split("?", 1)[0] in PROBES


def origin_only(urls: Sequence[str]) -> Callable[[yarl.URL], str]:
    """Calls to these URLs' origins are shown as the origin alone."""
    hidden = {yarl.URL(url).origin() for url in urls}

    def shown(url: yarl.URL) -> str:
        origin = url.origin() if url.absolute else url
        return str(origin) if origin in hidden else str(url)

    return shown


class Scrubbed(SpanExporter):
    """Spans as `exporter` sends them, with the logs' redaction applied."""

    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.exporter.export([scrubbed(span) for span in spans])

    def shutdown(self) -> None:
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.exporter.force_flush(timeout_millis)


def scrubbed(span: ReadableSpan) -> ReadableSpan:
    status = span.status
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_clean(span.attributes),
        events=[Event(e.name, _clean(e.attributes), e.timestamp) for e in span.events],
        links=[Link(link.context, _clean(link.attributes)) for link in span.links],
        kind=span.kind,
        status=Status(status.status_code, scrub(status.description)),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def _clean(attributes: Attributes) -> dict[str, Any]:
    """`http.request.header.authorization` is named as a secret by its last part."""
    return {
        key: REDACTED if is_secret_key(key.rsplit(".", 1)[-1]) else scrub(value)
        for key, value in (attributes or {}).items()
    }

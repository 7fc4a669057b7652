"""Traces over OTLP/HTTP: a purchase followed from its requests to the worker's round
that proves it, across the API's and the worker's processes, with no secret in any span;
and nothing of OpenTelemetry in a process without OTEL_EXPORTER_OTLP_ENDPOINT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct

from service.delivery.worker import ROUND_SPAN
from service.settings import ConfigurationError, Settings
from tests.delivery.conftest import send
from tests.delivery.test_worker import UNIT
from tests.onramp.conftest import JWT_SECRET
from tests.support.anvil import Anvil
from tests.support.environment import BASE_ENV
from tests.support.otlp import ReceivedSpan, collecting
from tests.support.processes import OnrampProcess, service_env
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET, encode, onramp_event, sign

CREATE = "POST /api/v1/onramp/sessions"
WEBHOOK = "POST /api/v1/webhooks/stripe"
STREAM = "GET /api/v1/onramp/sessions/{session_id}/events"


def _children(spans: list[ReceivedSpan], parent: ReceivedSpan) -> list[ReceivedSpan]:
    return [
        s
        for s in spans
        if s.span.trace_id == parent.span.trace_id and s.span.parent_span_id == parent.span.span_id
    ]


def _one(spans: list[ReceivedSpan], name: str) -> ReceivedSpan:
    named = [s for s in spans if s.name == name]
    assert len(named) == 1, [s.name for s in spans]
    return named[0]


def _round_linked_to(webhook: ReceivedSpan, spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    return [
        s
        for s in spans
        if s.name == ROUND_SPAN
        and any((link.trace_id, link.span_id) == webhook.ids for link in s.span.links)
    ]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_purchase_is_traced_from_its_requests_to_the_round_that_proves_it(
    database_url: str, anvil: Anvil, stripe: RunningStripe, tmp_path: Path
) -> None:
    musd = anvil.deploy_token(100 * UNIT)
    account = Account.create()
    with collecting() as collector:
        env = service_env(
            database_url,
            stripe,
            MEZO_RPC_URLS=anvil.url,
            MUSD_TOKEN_ADDRESS=musd,
            DELIVERY_WORKER="false",
            OTEL_EXPORTER_OTLP_ENDPOINT=collector.url,
            OTEL_BSP_SCHEDULE_DELAY="50",
        )
        api = OnrampProcess(tmp_path, "serve", **env)
        worker = OnrampProcess(tmp_path, "worker", **env)
        api.start()
        worker.start(wait=False)
        try:
            with httpx.Client(base_url=api.url, timeout=20) as client:
                issued = client.post(
                    "/api/v1/auth/nonce", json={"walletAddress": account.address}
                ).json()
                signed = account.sign_message(encode_defunct(text=issued["message"]))
                token = client.post(
                    "/api/v1/auth/verify",
                    json={
                        "message": issued["message"],
                        "signature": "0x" + bytes(signed.signature).hex(),
                    },
                ).json()["token"]
                bearer = {"Authorization": f"Bearer {token}"}
                created = client.post(
                    "/api/v1/onramp/sessions",
                    json={"walletAddress": account.address, "sourceAmount": "100.00"},
                    headers=bearer,
                )
                assert created.status_code == 201, created.text
                session = created.json()
                tx = send(anvil, musd, account.address, 98_49 * UNIT // 100)
                body = encode(
                    onramp_event(
                        session["stripeSessionId"],
                        "fulfillment_complete",
                        transaction_id=tx,
                        destination_amount="98.49",
                    )
                )
                signature = sign(body)
                applied = client.post(
                    "/api/v1/webhooks/stripe",
                    content=body,
                    headers={"Stripe-Signature": signature},
                )
                assert applied.json()["outcome"] == "applied"

                spans = collector.wait_for(
                    lambda spans: any(
                        _round_linked_to(w, spans) for w in spans if w.name == WEBHOOK
                    )
                )
                # A settled session's stream, opened with a ticket in its query.
                path = f"/api/v1/onramp/sessions/{session['id']}/events"
                ticket = client.post(f"{path}/ticket", headers=bearer).json()["ticket"]
                assert client.get(path, params={"ticket": ticket}).status_code == 204
                client.get("/health")
                spans = collector.wait_for(lambda spans: any(s.name == STREAM for s in spans))
        finally:
            assert worker.stop() == 0, worker.output()
            api.stop()
        sent = collector.everything_sent()

    # The create route: its statements and its call to Stripe are its children.
    create = _one(spans, CREATE)
    assert create.span.kind == create.span.SPAN_KIND_SERVER
    assert create.resource["service.name"] == "onramp"
    assert create.resource["onramp.process"] == "api"
    children = _children(spans, create)
    statements = [s for s in children if s.attributes.get("db.system") == "postgresql"]
    assert statements
    assert all("%(" in str(s.attributes["db.statement"]) for s in statements if "INSERT" in s.name)
    to_stripe = [
        s for s in children if str(s.attributes.get("http.url", "")).startswith(stripe.url)
    ]
    assert [s.attributes["http.method"] for s in to_stripe] == ["POST"]
    assert to_stripe[0].span.kind == create.span.SPAN_KIND_CLIENT

    # The webhook that fulfils the session, and the worker's round linked to it.
    webhook = _one(spans, WEBHOOK)
    assert any(s.attributes.get("db.system") == "postgresql" for s in _children(spans, webhook))
    (round_,) = _round_linked_to(webhook, spans)
    assert round_.resource["onramp.process"] == "worker"
    assert round_.span.trace_id != webhook.span.trace_id  # its own trace, linked
    link = next(k for k in round_.span.links if k.span_id == webhook.span.span_id)
    assert {a.key: a.value.string_value for a in link.attributes} == {
        "onramp.session_id": session["id"]
    }
    in_round = _children(spans, round_)
    assert any(s.attributes.get("db.system") == "postgresql" for s in in_round)
    batch = _one(in_round, "rpc batch")
    assert batch.attributes == {"chain.network": "mezo", "chain.transactions": 1}
    # JSON-RPC over HTTP, shown by the node's origin only.
    assert {s.attributes.get("http.url") for s in _children(spans, batch)} == {anvil.url}

    # No probe starts a trace; no idle poll of the worker either.
    assert not [s for s in spans if "/health" in s.name]
    assert all(s.span.parent_span_id or s.span.kind != s.span.SPAN_KIND_CLIENT for s in spans)

    # Nothing secret in anything sent.
    for secret in (
        token,
        session["clientSecret"],
        ticket,
        signature,
        WEBHOOK_SECRET,
        JWT_SECRET,
        stripe.secret_key,
        account.address.lower()[2:],  # parameters of statements: the wallet's
    ):
        assert secret.encode() not in sent, secret


def _opentelemetry_modules(program: str, *args: str) -> set[str]:
    """The OpenTelemetry modules loaded once `program` has run, in a fresh interpreter."""
    report = "print(json.dumps([m for m in sys.modules if m.startswith('opentelemetry')]))"
    result = subprocess.run(
        [sys.executable, "-c", f"import json, sys\n{program}\n{report}", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def test_nothing_of_opentelemetry_without_the_endpoint() -> None:
    """The app built, a worker round's span and a traceparent asked for, the CLI loaded:
    no SDK tracer, exporter or instrumentation is imported, and the app has no
    OpenTelemetry plugin. Two libraries import OpenTelemetry modules by themselves
    whenever they are installed, and start nothing with them: Litestar its plugin's
    module on building any app (litestar/app.py, `_patch_opentelemetry_middleware`),
    redis-py (8), where REDIS_URL is set, the SDK's metrics module. Those, and only
    those, are allowed."""
    program = """
from service.app import create_app
from service.settings import Settings
from service import cli, tracing
from service.delivery import worker
app = create_app(Settings.from_env(json.loads(sys.argv[1])))
with tracing.span("delivery round") as span:
    span.link(tracing.traceparent(), session="x")
assert not tracing.is_on()
assert not [p for p in app.plugins if "OpenTelemetry" in type(p).__name__]
assert "service.tracing.otel" not in sys.modules
"""
    env = {k: v for k, v in BASE_ENV.items() if not k.startswith("OTEL_")}
    loaded = _opentelemetry_modules(program, json.dumps(env))
    by_libraries = _opentelemetry_modules("import redis, litestar.plugins.opentelemetry")
    assert loaded <= by_libraries, sorted(loaded - by_libraries)
    # What tracing would load: the SDK's tracer, the exporter, the instrumentations.
    ours = (
        "opentelemetry.sdk.trace",
        "opentelemetry.exporter",
        "opentelemetry.instrumentation.psycopg",
        "opentelemetry.instrumentation.aiohttp_client",
    )
    assert not {m for m in loaded if m.startswith(ours)}


def test_an_endpoint_that_is_not_an_http_url_is_refused() -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({**BASE_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})
    assert raised.value.problems == [
        "OTEL_EXPORTER_OTLP_ENDPOINT: must be the collector's http:// or https:// URL"
    ]
    given = {**BASE_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": " http://collector:4318 "}
    assert Settings.from_env(given).server.otlp_endpoint == "http://collector:4318"


def test_what_is_exported_is_redacted_as_the_logs_are() -> None:
    """Whatever an instrumentation records (an operator may ask it to capture headers),
    no secret is exported: by shape in any value, by name for a secret's key."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from service.tracing.otel import Scrubbed

    exported = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Scrubbed(exported)))
    ticket = "est_" + "t" * 32
    with provider.get_tracer("test").start_as_current_span(
        "GET /api/v1/onramp/sessions/{session_id}/events",
        attributes={
            "http.url": f"http://api/api/v1/onramp/sessions/x/events?ticket={ticket}",
            "http.request.header.authorization": ("Bearer abc",),
            "http.request.header.stripe_signature": ("t=1,v1=" + "a" * 64,),
            "db.statement": "SELECT 1 WHERE a = %(wallet)s",
        },
    ) as span:
        span.record_exception(ValueError("Stripe refused sk_test_abcdef123456"))
    (sent,) = exported.get_finished_spans()
    assert sent.attributes == {
        "http.url": "http://api/api/v1/onramp/sessions/x/events?ticket=[redacted]",
        "http.request.header.authorization": "[redacted]",
        "http.request.header.stripe_signature": "[redacted]",
        "db.statement": "SELECT 1 WHERE a = %(wallet)s",
    }
    (event,) = sent.events
    assert event.attributes is not None
    assert "sk_test_" not in str(event.attributes["exception.message"])
    assert "sk_test_" not in str(event.attributes["exception.stacktrace"])


def test_rpc_calls_are_shown_by_their_origin_and_idle_polls_start_no_trace() -> None:
    import yarl
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision

    from service.tracing.otel import WithinWork, origin_only

    shown = origin_only(["https://mezo.example/v3/key123", "http://127.0.0.1:8545"])
    assert shown(yarl.URL("https://mezo.example/v3/key123?x=1")) == "https://mezo.example"
    assert shown(yarl.URL("http://127.0.0.1:8545/")) == "http://127.0.0.1:8545"
    assert shown(yarl.URL("http://127.0.0.1:12111/v1/x")) == "http://127.0.0.1:12111/v1/x"

    sampler = WithinWork(ALWAYS_ON)
    client, server = trace.SpanKind.CLIENT, trace.SpanKind.SERVER
    assert sampler.should_sample(None, 1, "UPDATE", client).decision == Decision.DROP
    probe = {"http.target": "/health"}
    assert sampler.should_sample(None, 1, "GET", server, probe).decision == Decision.DROP
    request = {"http.target": "/api/v1/config?x=1"}
    assert (
        sampler.should_sample(None, 1, "GET", server, request).decision
        == Decision.RECORD_AND_SAMPLE
    )
    with TracerProvider().get_tracer("test").start_as_current_span("delivery round"):
        assert (
            sampler.should_sample(None, 1, "UPDATE", client).decision == Decision.RECORD_AND_SAMPLE
        )

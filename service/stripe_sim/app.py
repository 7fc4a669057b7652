"""The stand-in's HTTP side: Stripe's onramp routes, and the `/_sim/` controls (controls.py).

A plain ASGI app rather than a framework app, for two reasons: it must be able to drop
a connection after doing the work (the failure idempotency keys exist for), and it must
stay several times faster than the service it stands in front of in benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from service.stripe_sim import DEFAULT_SECRET_KEY as DEFAULT_SECRET_KEY
from service.stripe_sim.controls import Faults, Stats, control
from service.stripe_sim.forms import FormError, decode_form
from service.stripe_sim.hosted_page import PAGE_PREFIX, Deliver, hosted_page, page_url
from service.stripe_sim.listing import SessionOrder, list_sessions
from service.stripe_sim.params import StripeError, random_token
from service.stripe_sim.quotes import new_quote
from service.stripe_sim.sessions import advance, new_session, retrieved
from service.stripe_sim.webhooks import WebhookSender, session_event
from service.stripe_sim.widget import WIDGET_PREFIX, serve_widget

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

SESSIONS_PATH = "/v1/crypto/onramp_sessions"
# The API reference's path, and the one a guide spells; Stripe's docs disagree.
QUOTE_PATHS = frozenset({"/v1/crypto/onramp/quotes", "/v1/crypto/onramp_quotes"})
_SESSION_PATH = re.compile(r"^/v1/crypto/onramp_sessions/(?P<id>[A-Za-z0-9_]+)$")


class DropConnection(Exception):
    """Raised after the response has started, so the server cuts the connection."""


@dataclass
class _Saved:
    fingerprint: str
    status: int
    body: dict[str, Any] | None = None  # None while the first request is executing


@dataclass
class StripeSimulator:
    secret_key: str = DEFAULT_SECRET_KEY
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    order: SessionOrder = field(default_factory=SessionOrder)
    faults: Faults = field(default_factory=Faults)
    stats: Stats = field(default_factory=Stats)
    # What each session was created with, for tests (Stripe keeps e.g. the customer IP
    # but does not return it on the object).
    create_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    webhooks: WebhookSender = field(default_factory=WebhookSender)
    deliver: Deliver | None = None
    _idempotency: dict[str, _Saved] = field(default_factory=dict)
    _pages: dict[str, str] = field(default_factory=dict)  # hosted page → session id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if path.startswith(PAGE_PREFIX):
            status, page, extra = hosted_page(self, method, path, body)
            await _respond(send, status, page, extra)
            return
        if path.startswith(WIDGET_PREFIX):
            await serve_widget(self, method, path, scope.get("query_string", b""), send)
            return
        if path.startswith("/_sim/"):
            status, payload = control(self, method, path, body)
            await _respond(send, status, payload)
            return
        try:
            status, payload, extra = await self.api(method, path, scope, headers, body, send)
        except StripeError as error:
            status, payload, extra = error.status, error.body(), {}
        await _respond(send, status, payload, extra)

    async def api(
        self,
        method: str,
        path: str,
        scope: Scope,
        headers: dict[str, str],
        body: bytes,
        send: Send,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        creating = method == "POST" and path == SESSIONS_PATH
        if creating:
            self.stats.create_requests += 1
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        self._authenticate(headers)
        drop = self.faults.draw_drop() if creating else None
        if creating and (self.faults.take("drop_before") or drop == "before"):
            await _drop(send)
        failing = creating and self.faults.chance.random() < self.faults.fail_rate
        if self.faults.take("fail") or failing:
            raise StripeError(
                self.faults.fail_status, "An error occurred with our API.", type_="api_error"
            )
        if creating:
            status, payload, extra = self._create(headers, body)
            if self.faults.take("drop_after") or drop == "after":
                await _drop(send)
            return status, payload, extra
        if method == "GET" and path == SESSIONS_PATH:
            return 200, list_sessions(self.sessions, self.order, _query(scope)), {}
        if method == "GET" and path in QUOTE_PATHS:
            self.stats.quote_requests += 1
            return 200, new_quote(_query(scope)), {}
        if method == "GET" and (match := _SESSION_PATH.match(path)):
            return 200, retrieved(self._get(match["id"]), _query(scope)), {}
        raise StripeError(404, f"Unrecognized request URL ({method}: {path}).")

    def _authenticate(self, headers: dict[str, str]) -> None:
        scheme, _, key = headers.get("authorization", "").partition(" ")
        if not key or scheme.lower() != "bearer":
            raise StripeError(401, "You did not provide an API key.")
        if key != self.secret_key:
            raise StripeError(401, f"Invalid API Key provided: {key[:8]}****{key[-4:]}")

    def _create(
        self, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        host = headers.get("host", "localhost")  # where the hosted page is served
        try:
            params = decode_form(body)
        except (FormError, UnicodeDecodeError) as error:
            raise StripeError(400, str(error)) from error
        key = headers.get("idempotency-key")
        if key is None:
            return 200, self._new_session(params, host), {}
        fingerprint = hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
        saved = self._idempotency.get(key)
        if saved is not None:
            if saved.fingerprint != fingerprint:
                raise StripeError(
                    400,
                    "Keys for idempotent requests can only be used with the same parameters "
                    "they were first used with.",
                    type_="idempotency_error",
                )
            if saved.body is None:
                raise StripeError(
                    409,
                    "There is currently another in-progress request using this Idempotency Key.",
                    type_="idempotency_error",
                    code="idempotency_key_in_use",
                )
            return saved.status, saved.body, {"idempotent-replayed": "true"}
        saved = self._idempotency[key] = _Saved(fingerprint, 0)
        try:
            session = self._new_session(params, host)
        except StripeError as error:
            saved.status, saved.body = error.status, error.body()
            raise
        saved.status, saved.body = 200, session
        return 200, session, {}

    def _new_session(self, params: dict[str, Any], host: str = "localhost") -> dict[str, Any]:
        session = new_session(params)
        page = random_token(32)
        session["redirect_url"] = page_url(host, page)
        self._pages[page] = session["id"]
        self.sessions[session["id"]] = session
        self.order.changed()
        self.create_params[session["id"]] = params
        self.stats.sessions_created += 1
        return session

    def _get(self, session_id: str) -> dict[str, Any]:
        if session_id not in self.sessions:
            raise StripeError(
                404,
                f"No such crypto.onramp_session: '{session_id}'",
                code="resource_missing",
                param="id",
            )
        return self.sessions[session_id]

    def advance(
        self,
        session_id: str,
        status: str,
        *,
        transaction_id: str | None = None,
        destination_amount: str | None = None,
    ) -> dict[str, Any]:
        """Move a session as Stripe would, and tell the webhook endpoints if it changed."""
        session = self._get(session_id)
        before = session["status"]
        previous = advance(
            session, status, transaction_id=transaction_id, destination_amount=destination_amount
        )
        if session["status"] != before:
            self.webhooks.emit(session_event(session, previous))
        return session

    def load(self, sessions: list[dict[str, Any]]) -> None:
        """Sessions as they already stand at Stripe (made earlier, elsewhere, or on
        another day): what an import or a reconciliation finds there."""
        for session in sessions:
            self.sessions[session["id"]] = session
        self.order.changed()

    def session_by_hash(self, page: str) -> dict[str, Any] | None:
        session_id = self._pages.get(page)
        return None if session_id is None else self.sessions.get(session_id)

    def reset(self) -> None:
        self.sessions.clear()
        self.order.changed()
        self.create_params.clear()
        self.webhooks.reset()
        self._idempotency.clear()
        self._pages.clear()
        self.faults, self.stats = Faults(), Stats()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _query(scope: Scope) -> dict[str, Any]:
    try:
        return decode_form(scope.get("query_string", b""))
    except (FormError, UnicodeDecodeError) as error:
        raise StripeError(400, str(error)) from error


async def _respond(
    send: Send, status: int, payload: dict[str, Any] | str, extra: dict[str, str] | None = None
) -> None:
    page = isinstance(payload, str)
    body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8" if page else b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"request-id", f"req_{int(time.time() * 1000)}".encode()),
    ]
    headers += [(k.encode(), v.encode()) for k, v in (extra or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _drop(send: Send) -> None:
    """Start a response that never completes: the server closes the connection."""
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]}
    )
    raise DropConnection("connection dropped by fault injection")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return

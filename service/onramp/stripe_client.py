"""Stripe's onramp API through the real stripe-python client.

stripe-python has no typed onramp resource, so calls go through `raw_request_async`;
its own retries (bounded, with back-off) reuse the idempotency key given here. Stripe's
answers become the domain's errors: a refusal is final (`stripe_error`), anything that
may succeed on a retry is `stripe_unavailable`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote_plus

import aiohttp
import stripe
import stripe._api_requestor
import stripe._util
import structlog

from service.errors import NotConfigured, Unprocessable, UpstreamUnavailable
from service.onramp import metrics
from service.settings import StripeSettings

log = structlog.get_logger("onramp.stripe")
SESSIONS_PATH = "/v1/crypto/onramp_sessions"
QUOTES_PATH = "/v1/crypto/onramp/quotes"
# The Stripe API version every call names (`Stripe-Version`), so that Stripe's answers
# keep the shape this code reads whatever the account's default; the stripe-python
# release in use is generated from it. The Stripe stand-in's events carry it too, as a
# webhook endpoint made for this version receives it.
API_VERSION = "2026-10-28.endive"
# Idle connections are closed before a server is likely to close them (uvicorn: 5 s),
# so that a request never goes out on a connection the other side is shutting.
KEEPALIVE_SECONDS = 4.0


def _only_when_heard(write: Callable[..., None], level: int) -> Callable[..., None]:
    """stripe-python's `write` (log_info or log_debug), called only when its line would
    be printed (`STRIPE_LOG`, `stripe.log`) or its logger takes `level`.

    The SDK formats every line before asking: five logfmt lines per call, one of them
    Stripe's whole answer searched by regular expressions and repr'd, about a tenth of
    a create's CPU while its logger is at WARNING, as the service sets it
    (service/logs.py). What is written when someone listens is unchanged."""

    def log(message: str, **params: Any) -> None:
        if _STRIPE_UTIL._console_log_level() is not None or _STRIPE_UTIL.logger.isEnabledFor(level):
            write(message, **params)

    return log


# What `quote_plus` leaves as it is (urllib's always-safe characters).
_UNQUOTED = re.compile(r"[A-Za-z0-9_.~-]*")


@lru_cache(maxsize=1024)
def _quoted_name(name: str) -> str:
    return quote_plus(name)


def _quoted(value: object) -> str:
    if isinstance(value, bytes):
        return quote_plus(value)
    text = str(value)
    return text if _UNQUOTED.fullmatch(text) else quote_plus(text)


def _form_encoded(pairs: list[tuple[Any, Any]]) -> str:
    """What `urllib.parse.urlencode(pairs)` answers for the SDK's list of form pairs,
    character for character: each name and value through `quote_plus`, skipped for
    the values it would leave unchanged, and the names (the same few on every call:
    `metadata[onramp_session_id]`, …) quoted once each. urlencode's calls per pair were
    a tenth of a create's CPU in the SDK (bench/README.md)."""
    return "&".join(
        f"{_quoted_name(name) if type(name) is str else _quoted(name)}={_quoted(value)}"
        for name, value in pairs
    )


# The SDK's private modules, untyped. The requestor's per-call lines are replaced (the
# HTTP client's, written on retries only, stay as they are), and its form encoding.
_STRIPE_UTIL: Any = stripe._util
_REQUESTOR: Any = stripe._api_requestor
_REQUESTOR.log_info = _only_when_heard(_STRIPE_UTIL.log_info, logging.INFO)
_REQUESTOR.log_debug = _only_when_heard(_STRIPE_UTIL.log_debug, logging.DEBUG)
_REQUESTOR.urlencode = _form_encoded


class StripeRefused(Unprocessable):
    """Stripe answered and said no; retrying the same request cannot help."""

    code = "stripe_error"


class StripeUnavailable(UpstreamUnavailable):
    """Stripe could not be reached or failed; the same request may succeed later."""

    code = "stripe_unavailable"


class StripeHttp(stripe.AIOHTTPClient):
    """stripe-python's aiohttp transport, made as safe to retry as its httpx one.

    aiohttp costs a fifth of httpx's CPU per call (0.3 ms against 1.2-1.7 ms, measured
    against the Stripe stand-in; bench/README.md), which was the largest single cost of
    the create route. stripe-python's own aiohttp client reads the body outside its
    error handling, so a connection dropped mid-response would escape as a raw aiohttp
    error instead of an APIConnectionError that its retries (same idempotency key)
    handle; `request_async` reads it inside.
    """

    def __init__(self, timeout_seconds: float) -> None:
        super().__init__(timeout=aiohttp.ClientTimeout(total=timeout_seconds))

    @property
    def _session(self) -> aiohttp.ClientSession:
        # Made on first use, inside the event loop that will run it.
        session: aiohttp.ClientSession | None = self._cached_session
        if session is None:
            connector = aiohttp.TCPConnector(keepalive_timeout=KEEPALIVE_SECONDS)
            session = aiohttp.ClientSession(connector=connector)
            self._cached_session = session  # type: ignore[assignment]
        return session

    async def request_async(
        self, method: str, url: str, headers: Any, post_data: Any = None
    ) -> tuple[bytes, int, Any]:
        content, status, response_headers = await self.request_stream_async(
            method, url, headers, post_data=post_data
        )
        try:
            body = await content.read()
        except Exception as error:  # a dropped connection, a time-out: retry-safe
            self._handle_request_error(error)
        return body, status, response_headers

    async def close_async(self) -> None:
        session: aiohttp.ClientSession | None = self._cached_session
        if session is not None:
            await session.close()


class StripeOnramp:
    def __init__(self, settings: StripeSettings) -> None:
        self.client: stripe.StripeClient | None = None
        # A live key makes live sessions; a session's mode is known before Stripe answers.
        key = settings.secret_key.get_secret_value() if settings.secret_key else ""
        self.livemode = key.startswith(("sk_live_", "rk_live_"))
        self.http = StripeHttp(settings.timeout_seconds)
        if settings.secret_key is not None:
            self.client = stripe.StripeClient(
                settings.secret_key.get_secret_value(),
                base_addresses={"api": settings.api_base},
                stripe_version=API_VERSION,
                max_network_retries=settings.max_network_retries,
                http_client=self.http,
            )

    def require_configured(self) -> stripe.StripeClient:
        if self.client is None:
            raise NotConfigured(
                "Stripe is not configured on this service (STRIPE_SECRET_KEY).",
                code="stripe_not_configured",
            )
        return self.client

    async def close(self) -> None:
        await self.http.close_async()

    async def create_session(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        return await self._call("post", SESSIONS_PATH, idempotency_key=idempotency_key, **params)

    async def retrieve_session(self, stripe_session_id: str) -> dict[str, Any]:
        return await self._call("get", f"{SESSIONS_PATH}/{stripe_session_id}")

    async def quote(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._call("get", QUOTES_PATH, **params)

    async def sessions_created(
        self, since: datetime, until: datetime | None = None, page_size: int = 100
    ) -> AsyncIterator[list[Any]]:
        """Stripe's sessions created in [since, until), newest first, a page at a time
        (Stripe's list endpoint, its `starting_after` cursor). Each page's items come as
        Stripe sent them, for the caller to check one by one (`stripe_shape.py`): one
        malformed session is that session's problem, not the list's. A page that is no
        list, or one the cursor cannot go on from, is Stripe failing."""
        created = {"gte": int(since.timestamp())}
        if until is not None:
            created["lt"] = int(until.timestamp())
        params: dict[str, Any] = {"created": created, "limit": page_size}
        while True:
            page: Any = await self._call("get", SESSIONS_PATH, **params)
            sessions = page.get("data") if isinstance(page, dict) else None
            if not isinstance(sessions, list):
                raise StripeUnavailable("Stripe's list of sessions was not a list.")
            if sessions:
                yield sessions
            if not page.get("has_more") or not sessions:
                return
            after = _last_id(sessions)
            if after is None or after == params.get("starting_after"):
                raise StripeUnavailable("Stripe's list of sessions gave no session to go on from.")
            params["starting_after"] = after

    async def _call(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        """Every call, whatever adds it, is counted by operation and outcome."""
        operation, started = _operation(method, path), time.perf_counter()
        try:
            data = await self._request(method, path, **params)
        except (StripeRefused, StripeUnavailable) as error:
            metrics.stripe_call(operation, _outcome(error), time.perf_counter() - started)
            raise
        metrics.stripe_call(operation, "ok", time.perf_counter() - started)
        return data

    async def _request(self, method: str, path: str, **params: Any) -> dict[str, Any]:
        client = self.require_configured()
        try:
            response = await client.raw_request_async(method, path, **params)
        except (stripe.AuthenticationError, stripe.PermissionError) as error:
            log.error("stripe_refused_our_key", status=error.http_status)
            raise StripeUnavailable("Stripe refused this service's credentials.") from error
        except stripe.IdempotencyError as error:
            # Our keys are derived from the local session, so this means the same
            # session was asked for with other parameters: not final, never abandon it.
            log.error("stripe_idempotency_conflict", path=path)
            raise StripeUnavailable("Stripe refused the request's idempotency key.") from error
        except stripe.RateLimitError as error:
            raise StripeUnavailable("Stripe is rate limiting this service.") from error
        except (stripe.InvalidRequestError, stripe.CardError) as error:
            raise StripeRefused(
                error.user_message or "Stripe refused the request.",
                stripeCode=error.code or "invalid_request",
            ) from error
        except stripe.StripeError as error:
            log.warning("stripe_unavailable", error=type(error).__name__, status=error.http_status)
            raise StripeUnavailable("Stripe could not be reached; retry shortly.") from error
        data: dict[str, Any] = response.data
        return data


def _last_id(sessions: list[Any]) -> str | None:
    """The cursor after a page: its last session with an id."""
    ids = [s.get("id") for s in sessions if isinstance(s, dict)]
    return next((i for i in reversed(ids) if isinstance(i, str) and i), None)


def _operation(method: str, path: str) -> str:
    """The metrics' name for a call: create, retrieve, list or quote."""
    if path.startswith(QUOTES_PATH):
        return "quote"
    if path == SESSIONS_PATH:
        return "create" if method.lower() == "post" else "list"
    return "retrieve"


def _outcome(error: StripeRefused | StripeUnavailable) -> str:
    """Why a call failed, as an operator acts on it: a refusal of the request, or
    Stripe unreachable, rate limiting, refusing our key or our idempotency key."""
    if isinstance(error, StripeRefused):
        return "stripe_error"
    cause = error.__cause__
    if isinstance(cause, stripe.RateLimitError):
        return "rate_limited"
    if isinstance(cause, stripe.AuthenticationError | stripe.PermissionError):
        return "unauthorized"
    if isinstance(cause, stripe.IdempotencyError):
        return "idempotency_error"
    return "unavailable"

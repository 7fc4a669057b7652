"""The Litestar application factory.

`create_app(settings)` is the only place where the service is assembled: routes,
plugins, dependencies, error handling and the request middleware. Nothing is created
at import time, so tests build as many apps, with as many settings, as they need.
"""

from __future__ import annotations

import gc
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from litestar import Litestar, Response
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.enums import MediaType
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.plugins.prometheus import PrometheusConfig
from litestar.routes import HTTPRoute
from litestar.status_codes import HTTP_204_NO_CONTENT
from litestar.types import Scope

from service import error_tracking, tracing
from service.audit.provider import AuditServices
from service.audit.routes import routes as audit_routes
from service.audit.trail import refusals
from service.auth import passport, rules
from service.auth.guards import KEY_FAILURES, operator_guard, wallet_provider
from service.auth.provider import SignInServices
from service.auth.routes import routes as auth_routes
from service.auth.service import CHAIN_CHECK, ChainChecks, SignIn
from service.auth.tickets import StreamTickets
from service.auth.tokens import TokenIssuer
from service.bodies import OnrampRequest
from service.chain.destinations import accepted_destinations
from service.chain.rpc import Chains
from service.dapp import static_files
from service.dapp.demo_page import routes as demo_routes
from service.dapp.provider import DappServices
from service.dapp.routes import routes as dapp_routes
from service.database import Database
from service.delivery.in_process import InProcessWorker
from service.delivery.worker import DeliveryWorker
from service.errors import exception_handlers, problem_details_plugin
from service.forwarded import ForwardedClient
from service.live.changes import SessionChanges
from service.live.provider import LiveServices
from service.live.routes import routes as live_routes
from service.live.slots import StreamCaps, StreamSlots
from service.logs import configure_logging
from service.merchant_webhooks.addresses import resolve
from service.merchant_webhooks.dispatcher import Dispatcher
from service.merchant_webhooks.provider import MerchantWebhookServices
from service.merchant_webhooks.routes import routes as merchant_webhook_routes
from service.middleware import RequestContextMiddleware, RequestMetrics
from service.onramp.creation import SessionCreation
from service.onramp.provider import OnrampServices
from service.onramp.quotes import Quotes
from service.onramp.routes import routes as onramp_routes
from service.onramp.stripe_client import StripeOnramp
from service.operations import metrics_endpoint
from service.operations.fingerprints import checked_in
from service.operations.provider import OperationsServices
from service.operations.routes import Metrics, health, ready, ready_in_detail
from service.providers import state_of
from service.ratelimit import RateLimiter
from service.reconciliation.provider import ReconciliationServices
from service.reconciliation.routes import routes as reconciliation_routes
from service.release import VERSION
from service.replica import ReplicaReads
from service.retention.schedule import RetentionSchedule
from service.settings import AuthSettings, Settings
from service.webhooks.provider import WebhookServices
from service.webhooks.routes import routes as webhook_routes
from service.webhooks.service import WebhookIngestion

DEFAULT_BODY_LIMIT = 64 * 1024


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the service; without `settings` it reads them from the environment."""
    settings = settings or Settings.from_env()
    configure_logging(settings.server.log_level, settings.server.log_format)
    error_tracking.start(settings, "api")
    traced = tracing.start(settings, "api")
    database = Database(settings.database)
    # Listings and reports read the replica of DATABASE_READ_URL, when it can answer them.
    replica = ReplicaReads.of(settings.database, database)
    reads = replica or database
    chains = Chains(settings.chain)
    destinations = accepted_destinations(settings.chain)
    tokens = _token_issuer(settings.auth)
    redis_url = settings.auth.redis_url
    rate_limiter = RateLimiter(
        settings.auth.rate_limit_per_minute,
        redis_url.get_secret_value() if redis_url else None,
        budgets={
            CHAIN_CHECK: settings.auth.rate_limit_chain_checks_per_minute,
            KEY_FAILURES: settings.auth.admin_auth_failures_per_minute,
        },
        store_timeout_ms=settings.auth.rate_limit_store_timeout_ms,
        max_connections=settings.auth.redis_max_connections,
    )
    sign_in = SignIn(
        rules.Audience(
            settings.auth.domain,
            settings.auth.uri,
            settings.chain.chain_id,
            passport=passport.deployments().get(settings.chain.chain_id),
        ),
        tokens,
        ChainChecks(chains.mezo, settings.auth.sign_in_gas_cap, rate_limiter),
        database,
    )
    stripe = StripeOnramp(settings.stripe)
    creation = SessionCreation(database, stripe, destinations)
    changes = SessionChanges(database)
    request_metrics = RequestMetrics(_prometheus())
    webhooks = WebhookIngestion(database, settings.stripe)
    worker = InProcessWorker(
        DeliveryWorker(
            database,
            chains,
            settings.chain,
            beside=[
                RetentionSchedule(database, settings.retention).run,
                Dispatcher(database, settings.outgoing_webhooks, settings.server.is_deployed).run,
            ],
        )
    )

    app = Litestar(
        route_handlers=[
            health,
            ready,
            ready_in_detail,
            # Deployed, /metrics is served on METRICS_PORT only: what it counts (volumes,
            # outcomes, node hosts) is for the operators' Prometheus, not the public.
            *([] if settings.server.is_deployed else [Metrics]),
            *auth_routes,
            *onramp_routes,
            *live_routes,
            *dapp_routes,
            *webhook_routes,
            *reconciliation_routes,
            *audit_routes,
            *merchant_webhook_routes,
            *(demo_routes if settings.server.demo_mode else []),
            *_example_dapp(settings),
        ],
        # Who is calling; the capabilities' collaborators are in the state (providers.py).
        dependencies={
            "wallet_token": Provide(wallet_provider(tokens), sync_to_thread=False),
            "operator": Provide(
                operator_guard(
                    settings.auth.operator_keys,
                    rate_limiter,
                    refusals(database),
                )
            ),
        },
        plugins=[problem_details_plugin(), *tracing.litestar_plugins()],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        before_request=request_metrics.started,
        cors_config=_cors(settings),
        openapi_config=OpenAPIConfig(
            title="onramp",
            version=VERSION,
            description="Buy MUSD on Mezo with a card through Stripe's Crypto Onramp.",
            path="/schema",
            components=Components(
                security_schemes={
                    "BearerToken": SecurityScheme(
                        type="http", scheme="bearer", bearer_format="JWT"
                    ),
                    "ApiKey": SecurityScheme(
                        type="apiKey", name="X-API-Key", security_scheme_in="header"
                    ),
                }
            ),
        ),
        request_max_body_size=DEFAULT_BODY_LIMIT,
        request_class=OnrampRequest,
        # Each capability's routes take their own collaborators from here (providers.py).
        state=state_of(
            SignInServices(sign_in, rate_limiter),
            OnrampServices(
                settings.onramp,
                database,
                reads,
                destinations,
                creation,
                Quotes(stripe, destinations),
                rate_limiter,
            ),
            LiveServices(
                database,
                changes,
                rate_limiter,
                settings.live,
                StreamSlots(StreamCaps.of(settings.live)),
                StreamTickets(database),
                wallet_provider(tokens),
            ),
            DappServices(settings, destinations, database),
            WebhookServices(webhooks),
            OperationsServices(database, chains, rate_limiter, replica),
            ReconciliationServices(database, stripe),
            AuditServices(reads),
            MerchantWebhookServices(database, reads, settings.server.is_deployed, resolve),
        ),
        # Warns when another replica's shared settings differ (operations/fingerprints.py).
        lifespan=[*_metrics_listener(settings), lambda _: checked_in(database, settings, "api")],
        on_startup=[database.open, *([replica.open] if replica else []), _freeze_startup_objects]
        + ([worker.start] if settings.chain.delivery_worker else []),
        on_shutdown=[
            worker.stop,
            changes.stop,
            database.dispose,
            *([replica.dispose] if replica else []),
            chains.close,
            stripe.close,
            rate_limiter.close,
            *([tracing.flush] if traced else []),
        ],
        logging_config=None,
        debug=False,
    )
    _answer_options_with_every_method(app)
    handler: Any = app.asgi_handler
    if settings.server.trusted_proxies:
        handler = ForwardedClient(handler, settings.server.trusted_proxies)
    app.asgi_handler = RequestContextMiddleware(
        handler,
        hsts=settings.server.is_deployed,
        stand_in=settings.stripe.stand_in,
        replica=settings.server.replica_name,
        metrics=request_metrics,
    )
    return app


def _metrics_listener(settings: Settings) -> list[Callable[[Litestar], Any]]:
    """/health and /metrics on METRICS_PORT while the app runs, when it is set (in each
    process of `serve --workers N`, sharing the port)."""
    port = settings.server.metrics_port
    if port is None:
        return []
    host = settings.server.host
    return [lambda _: metrics_endpoint.serving(lambda: True, host, port, shared=True)]


def _example_dapp(settings: Settings) -> list[Any]:
    """examples/dapp, built, at /app/ when DAPP_DIR names it."""
    folder = settings.server.dapp_dir
    return [] if folder is None else [static_files.example_dapp(folder)]


def _answer_options_with_every_method(app: Litestar) -> None:
    """OPTIONS answers `Allow` with every method of its path.

    Written here because Litestar 2.25 builds a path's automatic OPTIONS handler when
    it registers the path's first handler and keeps it when more come, so
    `/api/v1/onramp/sessions` answered `Allow: OPTIONS, POST` without its GET.
    """
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        allowed = ", ".join(sorted(route.methods))
        for route_handler in route.route_handlers:
            if route_handler.handler_name == "options_handler":
                route_handler._fn = _options_answer(allowed)  # type: ignore[assignment]


def _options_answer(allowed: str) -> Callable[[Scope], Response[None]]:
    def options_handler(scope: Scope) -> Response[None]:
        return Response(
            content=None,
            status_code=HTTP_204_NO_CONTENT,
            headers={"Allow": allowed},
            media_type=MediaType.TEXT,
        )

    return options_handler


def _freeze_startup_objects() -> None:
    """Move everything loaded so far (web3, SQLAlchemy, eth libraries: hundreds of
    thousands of objects) out of the garbage collector's reach. Full collections then
    scan only what requests allocate, instead of pausing the event loop for tens of
    milliseconds (seen as the webhook benchmark's p99; bench/README.md).
    """
    gc.collect()
    gc.freeze()


def _constant(value: object) -> Provide:
    return Provide(lambda: value, use_cache=True, sync_to_thread=False)


def _token_issuer(settings: AuthSettings) -> TokenIssuer:
    # Without JWT_SECRET (development only; production refuses to start) each app makes
    # its own; `onramp serve` sets one for all of its workers.
    signing, *previous = [secret.get_secret_value() for secret in settings.jwt_secrets] or [
        secrets.token_urlsafe(48)
    ]
    ttl = timedelta(seconds=settings.jwt_ttl_seconds)
    leeway = timedelta(seconds=settings.jwt_leeway_seconds)
    return TokenIssuer(signing, settings.uri, ttl, tuple(previous), leeway)


def _prometheus() -> PrometheusConfig:
    return PrometheusConfig(
        app_name="onramp",
        prefix="onramp",
        group_path=True,
        exclude=["/metrics"],
    )


def _cors(settings: Settings) -> CORSConfig | None:
    origins = settings.server.allowed_origins
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "Last-Event-ID",
            "X-Request-ID",
        ],
        expose_headers=["X-Request-ID", "Idempotent-Replayed", "Retry-After"],
        allow_credentials=False,
        max_age=600,
    )

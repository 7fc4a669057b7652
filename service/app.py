"""The Litestar application factory.

`create_app(settings)` is the only place where the service is assembled: routes,
plugins, dependencies, error handling and the request middleware. Nothing is created
at import time, so tests build as many apps, with as many settings, as they need.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.plugins.prometheus import PrometheusConfig, PrometheusController

from service.database import Database
from service.errors import exception_handlers, problem_details_plugin
from service.logging import configure_logging
from service.middleware import RequestContextMiddleware
from service.operations.routes import health, ready
from service.settings import Settings

DEFAULT_BODY_LIMIT = 64 * 1024

try:
    __version__ = version("onramp")
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    __version__ = "0.0.0"


def create_app(settings: Settings | None = None) -> Litestar:
    """Build the service; without `settings` it reads them from the environment."""
    settings = settings or Settings.from_env()
    configure_logging(settings.server.log_level, settings.server.log_format)
    database = Database(settings.database)

    app = Litestar(
        route_handlers=[health, ready, PrometheusController],
        dependencies={
            "settings": Provide(lambda: settings, sync_to_thread=False),
            "db_session": Provide(database.session),
        },
        plugins=[problem_details_plugin()],
        exception_handlers=exception_handlers,  # type: ignore[arg-type]
        middleware=[_prometheus().middleware],
        cors_config=_cors(settings),
        openapi_config=OpenAPIConfig(
            title="onramp",
            version=__version__,
            description="Buy MUSD on Mezo with a card through Stripe's Crypto Onramp.",
            path="/schema",
        ),
        request_max_body_size=DEFAULT_BODY_LIMIT,
        state=State({"settings": settings, "database": database}),
        on_shutdown=[database.dispose],
        logging_config=None,
        debug=False,
    )
    app.asgi_handler = RequestContextMiddleware(
        app.asgi_handler, hsts=settings.server.is_production
    )
    return app


def _prometheus() -> PrometheusConfig:
    return PrometheusConfig(
        app_name="onramp", prefix="onramp", group_path=True, exclude=["/metrics"]
    )


def _cors(settings: Settings) -> CORSConfig | None:
    origins = settings.server.allowed_origins
    if not origins:
        return None
    return CORSConfig(
        allow_origins=origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key", "X-Request-ID"],
        expose_headers=["X-Request-ID", "Idempotent-Replayed", "Retry-After"],
        allow_credentials=False,
        max_age=600,
    )

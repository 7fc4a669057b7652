"""The settings groups: every environment variable of the contract, in the group of
what it configures, each parsed and checked by pydantic (`Settings` gathers them)."""

from __future__ import annotations

import hashlib
import ipaddress
import re
import socket
import sys
from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    DirectoryPath,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.fields import FieldInfo

from service import registry

MEZO_TESTNET_CHAIN_ID = 31611
MEZO_TESTNET_RPC_URL = "https://rpc.test.mezo.org"
STRIPE_API_BASE = "https://api.stripe.com"


def _split_commas(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _blank_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


CommaList = Annotated[list[str], BeforeValidator(_split_commas)]
SecretList = Annotated[list[SecretStr], BeforeValidator(_split_commas)]
OptionalSecret = Annotated[SecretStr | None, BeforeValidator(_blank_to_none)]
OptionalStr = Annotated[str | None, BeforeValidator(_blank_to_none)]
OptionalInt = Annotated[int | None, BeforeValidator(_blank_to_none)]

# Beside a field's default and description, read by the configuration reference
# (reference.py) and, for the first, by the deployed checks (Settings.production_problems).
_REQUIRED_KEY, _SHOWN_DEFAULT_KEY, _VARIABLES_KEY = (
    "requiredWhenDeployed",
    "shownDefault",
    "variables",
)
# Production and staging refuse to start while the variable is unset (or, where its
# development default is refused, left at that default).
REQUIRED_WHEN_DEPLOYED: dict[str, Any] = {_REQUIRED_KEY: True}


def required_when_deployed(field: FieldInfo) -> bool:
    return _extra(field).get(_REQUIRED_KEY) is True


def shown_default(field: FieldInfo) -> str | None:
    """The default as the reference states it, where computing it would depend on the
    machine that writes the reference."""
    shown = _extra(field).get(_SHOWN_DEFAULT_KEY)
    return shown if isinstance(shown, str) else None


def read_variables(field: FieldInfo) -> dict[str, str]:
    """The variables, with what each does, that a field not named after one of its own
    (its alias starts with `_`) is read from."""
    variables = _extra(field).get(_VARIABLES_KEY)
    return (
        {str(name): str(text) for name, text in variables.items()}
        if isinstance(variables, dict)
        else {}
    )


def _extra(field: FieldInfo) -> dict[str, Any]:
    extra = field.json_schema_extra
    return extra if isinstance(extra, dict) else {}


class _Group(BaseModel):
    """Fields are named after their environment variables through aliases."""

    model_config = ConfigDict(
        extra="ignore", frozen=True, populate_by_name=True, validate_default=True
    )


class DatabaseSettings(_Group):
    """The database, its pools and its time limits (docs/operations.md, "Scaling")."""

    url: str = Field(
        "sqlite:///./onramp.db",
        alias="DATABASE_URL",
        description=(
            "The database: a `postgresql://` (or `postgres://`) URL, or `sqlite:///…` in"
            " development."
        ),
        json_schema_extra=REQUIRED_WHEN_DEPLOYED,
    )
    read_url: OptionalStr = Field(
        None,
        alias="DATABASE_READ_URL",
        description="A PostgreSQL replica that serves listings and reports; unset, the primary.",
    )
    pool_size: int = Field(
        10,
        alias="DATABASE_POOL_SIZE",
        ge=1,
        le=200,
        description="Connections each process keeps in its pool (as many again to the replica).",
    )
    max_overflow: int = Field(
        10,
        alias="DATABASE_MAX_OVERFLOW",
        ge=0,
        le=200,
        description="Connections beyond the pool; migrations only.",
    )
    pool_timeout_seconds: float = Field(
        10.0,
        alias="DATABASE_POOL_TIMEOUT_SECONDS",
        gt=0,
        description="How long a request waits for a free connection before it answers 503.",
    )
    connect_timeout_seconds: int = Field(
        5,
        alias="DATABASE_CONNECT_TIMEOUT_SECONDS",
        ge=1,
        description="How long connecting to the database may take.",
    )
    statement_timeout_ms: int = Field(
        30_000,
        alias="DATABASE_STATEMENT_TIMEOUT_MS",
        ge=0,
        le=3_600_000,
        description=(
            "The longest a statement may run (PostgreSQL's `statement_timeout`); 0 for none."
            " Migrations and `onramp reconcile` run without."
        ),
    )
    read_timeout_ms: int = Field(
        2_000,
        alias="DATABASE_READ_TIMEOUT_MS",
        ge=100,
        le=60_000,
        description=(
            "How long a listing may take with `DATABASE_READ_URL`: the replica gets half, the"
            " primary the rest should the replica fail."
        ),
    )
    migration_lock_timeout_seconds: float = Field(
        3.0,
        alias="MIGRATION_LOCK_TIMEOUT_SECONDS",
        gt=0,
        le=600,
        description=(
            "How long a migration waits for a table's lock before it gives up, is rolled back and"
            " can be run again (PostgreSQL); requests queue behind a waiting migration."
        ),
    )

    @field_validator("url", "read_url")
    @classmethod
    def _known_scheme(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.strip()
        scheme = url.split("://", 1)[0].split("+", 1)[0].lower() if "://" in url else ""
        if scheme not in {"sqlite", "postgresql", "postgres"}:
            raise ValueError("must be a postgresql://… or sqlite:///… URL")
        return url

    @model_validator(mode="after")
    def _replica_of_postgresql(self) -> DatabaseSettings:
        # SQLite has no replicas, and its readers already work beside the writer (WAL).
        if self.read_url is not None and (self.is_sqlite or _is_sqlite(self.read_url)):
            raise ValueError(
                "DATABASE_READ_URL: a read replica needs PostgreSQL for both DATABASE_URL"
                " and DATABASE_READ_URL; leave it unset with SQLite"
            )
        return self

    @property
    def is_sqlite(self) -> bool:
        return _is_sqlite(self.url)

    @property
    def replica(self) -> DatabaseSettings | None:
        """These settings for the read replica, or None without DATABASE_READ_URL."""
        if self.read_url is None:
            return None
        return self.model_copy(update={"url": self.read_url, "read_url": None})

    @property
    def async_url(self) -> str:
        """The URL with the async driver this service uses for that database."""
        return _with_driver(self.url, "aiosqlite" if self.is_sqlite else "psycopg")

    @property
    def libpq_url(self) -> str:
        """The URL as libpq (and so psycopg itself) reads it."""
        scheme, rest = self.url.split("://", 1)
        return (
            f"postgresql://{rest}"
            if scheme.split("+", 1)[0] in {"postgres", "postgresql"}
            else self.url
        )

    @property
    def sync_url(self) -> str:
        """The URL Alembic migrates through (psycopg 3 serves both sync and async)."""
        return _with_driver(self.url, "pysqlite" if self.is_sqlite else "psycopg")


def _is_sqlite(url: str) -> bool:
    return url.lower().startswith("sqlite")


def _with_driver(url: str, driver: str) -> str:
    scheme, rest = url.split("://", 1)
    family = scheme.split("+", 1)[0].lower()
    if family == "postgres":  # Railway and Heroku hand out postgres://
        family = "postgresql"
    return f"{family}+{driver}://{rest}"


class ServerSettings(_Group):
    """Where the API listens, what it admits and how it logs."""

    environment: Literal["development", "staging", "production"] = Field(
        "development",
        alias="ENVIRONMENT",
        description=(
            "`development`, `staging` or `production`. Staging and production refuse unsafe"
            " settings; staging takes Stripe's test mode."
        ),
    )
    host: str = Field(
        "127.0.0.1",
        alias="HOST",
        description="The address the API and its metrics listeners bind to.",
    )
    port: int = Field(8000, alias="PORT", ge=1, le=65535, description="The API's port.")
    allowed_origins: CommaList = Field(
        default_factory=list,
        alias="ALLOWED_ORIGINS",
        description=(
            "Comma-separated origins that CORS admits (`https://` only, in production and staging)."
        ),
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        alias="TRUSTED_PROXIES",
        description=(
            "Comma-separated addresses or CIDRs of proxies whose `X-Forwarded-For` is believed;"
            " `*` on Railway only, where it is required in production and staging."
        ),
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", alias="LOG_LEVEL", description="`debug`, `info`, `warning` or `error`."
    )
    demo_mode: bool = Field(
        False,
        alias="DEMO_MODE",
        description="Serves `/demo`, every session without authentication: local demos only.",
    )
    dapp_dir: DirectoryPath | None = Field(
        None,
        alias="DAPP_DIR",
        description=(
            "A built example dApp (`examples/dapp/dist`) to serve at `/app/`, as `onramp demo`"
            " does."
        ),
    )
    log_format: Literal["console", "json"] = Field(
        default_factory=lambda: "console" if sys.stderr.isatty() else "json",
        alias="LOG_FORMAT",
        description="`console` or `json`.",
        json_schema_extra={_SHOWN_DEFAULT_KEY: "console on a terminal, json otherwise"},
    )
    # A platform whose own proxy is the only way in (read from its variables), so that
    # without TRUSTED_PROXIES every customer would look like that proxy.
    platform_proxy: str | None = Field(None, alias="_PLATFORM_PROXY")
    worker_metrics_port: OptionalInt = Field(
        None,
        alias="WORKER_METRICS_PORT",
        description="Where `onramp worker` serves `/health` and `/metrics`; unset, nowhere.",
    )
    metrics_port: OptionalInt = Field(
        None,
        alias="METRICS_PORT",
        description=(
            "A listener of its own for `/health` and `/metrics`: the only `/metrics` of a"
            " production or staging API, which keeps it off `PORT`."
        ),
    )
    # service/operations/fingerprints.py keys its row by it.
    replica_name: str = Field(
        default_factory=socket.gethostname,
        alias="REPLICA_NAME",
        min_length=1,
        max_length=100,
        description="Which replica this process is, in its access lines and in the"
        " settings fingerprints that replicas compare at start-up.",
        json_schema_extra={_SHOWN_DEFAULT_KEY: "the host's name"},
    )
    otlp_endpoint: OptionalStr = Field(
        None,
        alias="OTEL_EXPORTER_OTLP_ENDPOINT",
        description=(
            "OpenTelemetry traces over OTLP/HTTP to this collector (`http://collector:4318`);"
            " the SDK reads the other `OTEL_*` variables itself. Unset, none is set up."
        ),
    )

    @model_validator(mode="before")
    @classmethod
    def _read_platform(cls, env: Any) -> Any:
        if not isinstance(env, Mapping):
            return env
        railway = any(name in env for name in _RAILWAY_VARIABLES)
        return {**env, "_PLATFORM_PROXY": "Railway" if railway else None}

    @field_validator("worker_metrics_port", "metrics_port")
    @classmethod
    def _a_port(cls, port: int | None) -> int | None:
        if port is not None and not 1 <= port <= 65535:
            raise ValueError("must be a TCP port number from 1 to 65535")
        return port

    @field_validator("otlp_endpoint")
    @classmethod
    def _an_http_url(cls, url: str | None) -> str | None:
        if url is not None and urlsplit(url.strip()).scheme not in {"http", "https"}:
            raise ValueError("must be the collector's http:// or https:// URL")
        return None if url is None else url.strip()

    @field_validator("trusted_proxies")
    @classmethod
    def _addresses_or_networks(cls, entries: list[str]) -> list[str]:
        for entry in entries:
            if entry == "*":
                continue
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or network (CIDR), nor '*'"
                ) from None
        return entries

    @model_validator(mode="after")
    def _metrics_beside_the_api(self) -> ServerSettings:
        if self.metrics_port is not None and self.metrics_port == self.port:
            raise ValueError("METRICS_PORT: must differ from PORT (its own listener)")
        return self

    @field_validator("replica_name", mode="before")
    @classmethod
    def _hostname_when_blank(cls, value: Any) -> Any:
        return value.strip() or socket.gethostname() if isinstance(value, str) else value

    @field_validator("log_level", "log_format", "environment", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def is_deployed(self) -> bool:
        """Production or staging: reachable by others, so held to production's checks
        and answering as production does (HSTS, /metrics off the API port)."""
        return self.environment != "development"


_STRIPE_KEY_SHAPES: dict[str, tuple[tuple[str, ...], str]] = {
    "secret_key": (("sk_", "rk_"), "must be a Stripe secret key (sk_test_…, sk_live_… or rk_…)"),
    "publishable_key": (("pk_",), "must be a Stripe publishable key (pk_test_… or pk_live_…)"),
    "webhook_secrets": (("whsec_",), "every secret must be a Stripe signing secret (whsec_…)"),
}


class StripeSettings(_Group):
    """Stripe's API and its webhooks."""

    secret_key: OptionalSecret = Field(
        None,
        alias="STRIPE_SECRET_KEY",
        description="Stripe's secret or restricted key (`sk_…`, `rk_…`).",
        json_schema_extra=REQUIRED_WHEN_DEPLOYED,
    )
    # Public by design (it goes to browsers through /api/v1/config); typed as a secret
    # only so that a live key is never printed with the settings.
    publishable_key: OptionalSecret = Field(
        None,
        alias="STRIPE_PUBLISHABLE_KEY",
        description="Stripe's publishable key, handed to dApps by `GET /api/v1/config`.",
    )
    api_base: str = Field(
        STRIPE_API_BASE,
        alias="STRIPE_API_BASE",
        description="Stripe's API; the stand-in's (`onramp stripe-sim`) in development.",
    )
    webhook_secrets: SecretList = Field(
        default_factory=list,
        alias="STRIPE_WEBHOOK_SECRET",
        description=(
            "Comma-separated `whsec_…` secrets of Stripe's webhooks; every one verifies (rotation)."
        ),
        json_schema_extra=REQUIRED_WHEN_DEPLOYED,
    )
    webhook_tolerance_seconds: int = Field(
        300,
        alias="STRIPE_WEBHOOK_TOLERANCE_SECONDS",
        ge=1,
        description="How far a webhook's signed timestamp may be from now, either way.",
    )
    timeout_seconds: float = Field(
        10.0,
        alias="STRIPE_TIMEOUT_SECONDS",
        gt=0,
        le=120,
        description="How long one call to Stripe may take.",
    )
    max_network_retries: int = Field(
        2,
        alias="STRIPE_MAX_NETWORK_RETRIES",
        ge=0,
        le=5,
        description=(
            "Retries of a Stripe call that failed on the network; every attempt must end within 45"
            " s."
        ),
    )

    @field_validator(*_STRIPE_KEY_SHAPES)
    @classmethod
    def _shaped_like_stripe_keys(cls, value: Any, info: ValidationInfo) -> Any:
        prefixes, message = _STRIPE_KEY_SHAPES[str(info.field_name)]
        keys = value if isinstance(value, list) else [] if value is None else [value]
        if any(not key.get_secret_value().startswith(prefixes) for key in keys):
            raise ValueError(message)
        return value

    @model_validator(mode="after")
    def _attempts_fit_the_claim(self) -> StripeSettings:
        # A create call holds its Idempotency-Key for 60 s before a retry may take it
        # over; every attempt at Stripe must be over well before that.
        if self.timeout_seconds * (self.max_network_retries + 1) > 45:
            raise ValueError(
                "STRIPE_TIMEOUT_SECONDS * (STRIPE_MAX_NETWORK_RETRIES + 1) must not exceed 45 s"
            )
        return self

    @property
    def stand_in(self) -> str | None:
        """The origin of the Stripe stand-in in use (its API, hosted pages and embedded
        onramp script share it), or None with Stripe itself."""
        if self.api_base == STRIPE_API_BASE:
            return None
        parts = urlsplit(self.api_base)
        return f"{parts.scheme}://{parts.netloc}"

    @field_validator("api_base")
    @classmethod
    def _http_url(cls, url: str) -> str:
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return url.rstrip("/")


class NetworkRpc(BaseModel):
    """Where to read one network's chain: `<NETWORK>_RPC_URLS` and `<NETWORK>_CHAIN_ID`."""

    model_config = ConfigDict(frozen=True)

    network: str
    rpc_urls: tuple[str, ...]
    chain_id: int


class ChainSettings(_Group):
    """The chains deliveries are proven on, and how."""

    rpc_urls: CommaList = Field(
        default_factory=lambda: [MEZO_TESTNET_RPC_URL],
        alias="MEZO_RPC_URLS",
        min_length=1,
        description=(
            "Comma-separated Mezo JSON-RPC URLs, tried in order (`https://` in production and"
            " staging)."
        ),
    )
    chain_id: int = Field(
        MEZO_TESTNET_CHAIN_ID,
        alias="MEZO_CHAIN_ID",
        ge=1,
        description="The Mezo chain: 31611 testnet, 31612 mainnet.",
    )
    musd_token_address: OptionalStr = Field(
        None,
        alias="MUSD_TOKEN_ADDRESS",
        description="Overrides the token registry's MUSD contract.",
    )
    explorer_url: str | None = Field(
        None,
        alias="MEZO_EXPLORER_URL",
        description=(
            "Where dApps link Mezo transactions: unset, the registry's explorer for the chain;"
            " empty, none (a local chain)."
        ),
    )
    delivery_confirmations: int = Field(
        1,
        alias="DELIVERY_CONFIRMATIONS",
        ge=1,
        le=1000,
        description=(
            "The fewest confirmations any delivery needs (a token's own count in the registry when"
            " higher)."
        ),
    )
    delivery_timeout_seconds: int = Field(
        3600,
        alias="DELIVERY_TIMEOUT_SECONDS",
        ge=1,
        description=(
            "How long a fulfilled session's transfer may stay unseen on chain before its delivery"
            " is `failed`."
        ),
    )
    delivery_amount_tolerance: Decimal = Field(
        Decimal(0),
        alias="DELIVERY_AMOUNT_TOLERANCE",
        ge=0,
        description=(
            "How far a delivered amount may differ from the session's and still be `confirmed`, in"
            " tokens."
        ),
    )
    rpc_timeout_seconds: float = Field(
        10.0,
        alias="RPC_TIMEOUT_SECONDS",
        gt=0,
        le=120,
        description="How long one JSON-RPC call may take before the next URL is tried.",
    )
    delivery_worker: bool = Field(
        True,
        alias="DELIVERY_WORKER",
        description="Whether `onramp serve` runs the delivery worker in its own processes too.",
    )
    # Networks besides Mezo, each configured by its `<NETWORK>_RPC_URLS`.
    other_networks: tuple[NetworkRpc, ...] = Field(
        (),
        alias="_OTHER_NETWORKS",
        json_schema_extra={
            _VARIABLES_KEY: {
                "<NETWORK>_RPC_URLS": "Comma-separated JSON-RPC URLs of another network of the"
                " token registry (`BASE_RPC_URLS`, `ETHEREUM_RPC_URLS`, …): set, the network"
                " is served.",
                "<NETWORK>_CHAIN_ID": "That network's chain id; unset, the registry's mainnet"
                " for it.",
            }
        },
    )

    @model_validator(mode="before")
    @classmethod
    def _read_other_networks(cls, env: Any) -> Any:
        if not isinstance(env, Mapping):
            return env
        return {**env, "_OTHER_NETWORKS": _other_networks(env)}

    @field_validator("rpc_urls")
    @classmethod
    def _http_urls(cls, urls: list[str]) -> list[str]:
        if any(not url.startswith(("http://", "https://")) for url in urls):
            raise ValueError("every URL must be http(s)")
        return urls

    @field_validator("explorer_url")
    @classmethod
    def _explorer(cls, url: str | None) -> str | None:
        if url is None or not url.strip():
            return None if url is None else ""
        if not url.strip().startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL, or empty for none")
        return url.strip().rstrip("/")

    @property
    def networks(self) -> dict[str, NetworkRpc]:
        """Every network whose chain this deployment can read, Mezo first."""
        mezo = NetworkRpc(network="mezo", rpc_urls=tuple(self.rpc_urls), chain_id=self.chain_id)
        return {"mezo": mezo, **{n.network: n for n in self.other_networks}}


def _other_networks(env: Mapping[str, Any]) -> tuple[NetworkRpc, ...]:
    """`BASE_RPC_URLS`, `ETHEREUM_RPC_URLS`, …: one entry per network of the token
    registry; its chain is `<NETWORK>_CHAIN_ID`, else the registry's mainnet for it."""
    found = []
    for name in sorted(env):
        if not name.endswith("_RPC_URLS") or name == "MEZO_RPC_URLS":
            continue
        network = name.removesuffix("_RPC_URLS").lower()
        urls = tuple(_split_commas(str(env[name])))
        if not urls:
            continue
        if network not in registry.networks():
            known = ", ".join(sorted(registry.networks() - {"mezo"}))
            raise ValueError(f"{name}: {network} is not in the token registry (known: {known})")
        if any(not url.startswith(("http://", "https://")) for url in urls):
            raise ValueError(f"{name}: every URL must be http(s)")
        chain_name = f"{network.upper()}_CHAIN_ID"
        chain_text = str(env.get(chain_name) or "").strip()
        chain_id = int(chain_text) if chain_text.isdigit() else registry.default_chain_id(network)
        if chain_text and not chain_text.isdigit():
            raise ValueError(f"{chain_name}: must be a chain id (got {chain_text!r})")
        if chain_id is None:
            raise ValueError(
                f"{chain_name}: required, {network} has several chains in the registry"
            )
        found.append(NetworkRpc(network=network, rpc_urls=urls, chain_id=chain_id))
    return tuple(found)


class OnrampSettings(_Group):
    """What a session buys by default, and its card amount's limits."""

    default_source_currency: str = Field(
        "usd",
        alias="DEFAULT_SOURCE_CURRENCY",
        description="The card currency dApps are told to offer.",
    )
    destination_currency: str = Field(
        "musd",
        alias="DESTINATION_CURRENCY",
        description="The token a session buys when it names none.",
    )
    destination_network: str = Field(
        "mezo",
        alias="DESTINATION_NETWORK",
        description="The network a session delivers to when it names none.",
    )
    min_source_amount: Decimal = Field(
        Decimal("1.00"),
        alias="MIN_SOURCE_AMOUNT",
        gt=0,
        description="The smallest card amount of a session.",
    )
    max_source_amount: Decimal = Field(
        Decimal("10000.00"),
        alias="MAX_SOURCE_AMOUNT",
        gt=0,
        description="The largest card amount of a session.",
    )

    @field_validator("default_source_currency", "destination_currency", "destination_network")
    @classmethod
    def _lower(cls, value: str) -> str:
        return value.strip().lower()

    @model_validator(mode="after")
    def _ordered_bounds(self) -> OnrampSettings:
        if self.min_source_amount > self.max_source_amount:
            raise ValueError("MIN_SOURCE_AMOUNT must not exceed MAX_SOURCE_AMOUNT")
        return self


class LiveSettings(_Group):
    """The live status streams (service/live/). Each open stream holds a socket and a
    watch in its process, so open streams are capped, not only openings (the rate limit
    counts those), and each stream ends after a while so that its client reconnects,
    possibly to another replica."""

    heartbeat_seconds: float = Field(
        15.0,
        alias="LIVE_HEARTBEAT_SECONDS",
        gt=0,
        le=15,
        description="How often an idle event stream sends a comment, so proxies keep it open.",
    )
    max_streams_per_wallet: int = Field(
        5,
        alias="LIVE_MAX_STREAMS_PER_WALLET",
        ge=1,
        description="Open live streams per wallet in one process; beyond, 429.",
    )
    max_streams_per_client: int = Field(
        50,
        alias="LIVE_MAX_STREAMS_PER_CLIENT",
        ge=1,
        description=(
            "Open live streams per client network (an IPv4 address or an IPv6 /64) in one process;"
            " beyond, 429."
        ),
    )
    max_streams: int = Field(
        2000,
        alias="LIVE_MAX_STREAMS",
        ge=1,
        le=1_000_000,
        description=(
            "Open live streams in one process; beyond, 503. `onramp serve` refuses a value its"
            " open-file limit cannot hold."
        ),
    )
    max_stream_seconds: float = Field(
        900.0,
        alias="LIVE_MAX_STREAM_SECONDS",
        gt=0,
        le=86_400,
        description=(
            "How long a stream stays open before it ends with a `retry:` hint and its client"
            " reconnects."
        ),
    )

    @model_validator(mode="after")
    def _nested_caps(self) -> LiveSettings:
        # A wallet's streams come from its clients, and a client's from this process.
        if self.max_streams_per_wallet > self.max_streams_per_client:
            raise ValueError(
                "LIVE_MAX_STREAMS_PER_WALLET must not exceed LIVE_MAX_STREAMS_PER_CLIENT"
            )
        if self.max_streams_per_client > self.max_streams:
            raise ValueError("LIVE_MAX_STREAMS_PER_CLIENT must not exceed LIVE_MAX_STREAMS")
        return self


class RetentionSettings(_Group):
    """What the retention job deletes and how often the delivery worker runs it
    (docs/operations.md, "Retention policy"). Idempotency keys (24 h) and nonces (1 h
    past expiry) are kept as long as the API contract says, not configured here."""

    interval_seconds: float = Field(
        3600.0,
        alias="RETENTION_INTERVAL_SECONDS",
        ge=0,
        description=(
            "How often the delivery worker runs the retention job; 0 for never (`onramp retention"
            " run` from a scheduler instead)."
        ),
    )
    batch_size: int = Field(
        1000,
        alias="RETENTION_BATCH_SIZE",
        ge=1,
        le=100_000,
        description="Rows the retention job and `onramp webhooks prune` delete per batch.",
    )
    webhook_days: int = Field(
        90,
        alias="WEBHOOK_RETENTION_DAYS",
        ge=1,
        description="Days Stripe's events are kept, and longer while a session needs them.",
    )
    delivery_check_days: int = Field(
        30,
        alias="DELIVERY_CHECK_RETENTION_DAYS",
        ge=1,
        description="Days a finished delivery check is kept.",
    )
    outgoing_webhook_days: int = Field(
        30,
        alias="OUTGOING_WEBHOOK_RETENTION_DAYS",
        ge=4,
        description=(
            "Days merchant-webhook attempts, finished deliveries and the events none still needs"
            " are kept."
        ),
    )


class OutgoingWebhookSettings(_Group):
    """Webhooks to the merchant's own backend (service/merchant_webhooks/)."""

    retry_seconds: Annotated[tuple[int, ...], BeforeValidator(_split_commas)] = Field(
        (5, 300, 1800, 7200, 18000, *(36000,) * 7),
        alias="OUTGOING_WEBHOOK_RETRY_SECONDS",
        description=(
            "Comma-separated waits, in seconds, after each failed attempt to a merchant's"
            " endpoint; once spent, the delivery is given up. The default tries for 3 days and 5"
            " hours, 13 attempts in all."
        ),
    )

    @field_validator("retry_seconds")
    @classmethod
    def _waits(cls, waits: tuple[int, ...]) -> tuple[int, ...]:
        if not waits or any(wait < 0 for wait in waits):
            raise ValueError("must list one or more waits in seconds, none negative")
        return waits


# A key's name as audit rows carry it: no ':' (it ends the name) and no ',' (it ends the
# entry); the secret after the first ':' may hold anything but a ','.
_KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")


class OperatorKey(BaseModel):
    """One operator key: the name its calls are audited under, its secret (X-API-Key),
    and whether it may change things (`ADMIN_API_KEYS`) or only read
    (`ADMIN_READONLY_API_KEYS`)."""

    model_config = ConfigDict(frozen=True)

    name: str
    secret: SecretStr
    may_write: bool


def _operator_keys(value: Any, may_write: bool) -> Any:
    """`name:secret` or a bare secret per comma-separated entry.

    An entry holding a ':' is always `name:secret`, split at its first ':' (so a secret
    may hold ':' only when named); a bare secret is named `key-` and the first eight hex
    digits of its SHA-256, which names it in the audit trail without revealing it.
    Messages give an entry's position, never its text: a bare secret holding a ':'
    would otherwise be partly echoed as a name.
    """
    if not isinstance(value, str):
        return value
    keys = []
    for position, entry in enumerate(_split_commas(value), start=1):
        name, colon, secret = entry.partition(":")
        if not colon:
            name, secret = f"key-{hashlib.sha256(entry.encode()).hexdigest()[:8]}", entry
        name, secret = name.strip(), secret.strip()
        if not _KEY_NAME.fullmatch(name):
            raise ValueError(
                f"entry {position}: the name before ':' must be 1 to 64 letters, digits,"
                " '.', '_', '@' or '-'"
            )
        if not secret:
            raise ValueError(f"entry {position}: no secret after the name")
        keys.append(OperatorKey(name=name, secret=SecretStr(secret), may_write=may_write))
    return keys


class AuthSettings(_Group):
    """Sign-in, tokens, operator keys and rate limits."""

    domain: str = Field(
        "localhost:8000",
        alias="AUTH_DOMAIN",
        description="The dApp's domain, which sign-in messages name.",
        json_schema_extra=REQUIRED_WHEN_DEPLOYED,
    )
    uri: str = Field(
        "http://localhost:8000",
        alias="AUTH_URI",
        description="The dApp's URI, which sign-in messages name (`https://` when deployed).",
        json_schema_extra=REQUIRED_WHEN_DEPLOYED,
    )
    jwt_secrets: SecretList = Field(
        default_factory=list,
        alias="JWT_SECRET",
        description=(
            "Comma-separated secrets of 32 characters or more: the first signs tokens, every one"
            " verifies (rotation). Unset in development, each process makes its own."
        ),
        json_schema_extra=REQUIRED_WHEN_DEPLOYED,
    )
    jwt_ttl_seconds: int = Field(
        3600,
        alias="JWT_TTL_SECONDS",
        ge=60,
        le=7 * 24 * 3600,
        description="How long a sign-in token lasts.",
    )
    jwt_leeway_seconds: int = Field(
        30,
        alias="JWT_LEEWAY_SECONDS",
        ge=0,
        le=300,
        description=(
            "How far ahead of a replica's clock a token's `iat`/`nbf` may be (the replica that"
            " issued it may run ahead); never applied to the expiry."
        ),
    )
    admin_api_keys: list[OperatorKey] = Field(
        default_factory=list,
        alias="ADMIN_API_KEYS",
        description=(
            "Comma-separated operator keys, `name:secret` or a bare secret, that may call every"
            " operator route."
        ),
        json_schema_extra=REQUIRED_WHEN_DEPLOYED,
    )
    admin_readonly_api_keys: list[OperatorKey] = Field(
        default_factory=list,
        alias="ADMIN_READONLY_API_KEYS",
        description="Comma-separated operator keys that may only read (the operator routes' GETs).",
    )
    admin_auth_failures_per_minute: int = Field(
        10,
        alias="ADMIN_AUTH_FAILURES_PER_MINUTE",
        ge=1,
        description=(
            "Wrong or missing operator keys per client network and minute, before every key from"
            " that network is refused until the minute ends."
        ),
    )
    redis_url: OptionalSecret = Field(
        None,
        alias="REDIS_URL",
        description="Redis, for rate limits all replicas share; unset, each process counts alone.",
    )
    rate_limit_store_timeout_ms: int = Field(
        50,
        alias="RATE_LIMIT_STORE_TIMEOUT_MS",
        ge=1,
        le=5000,
        description=(
            "The longest a rate-limit check waits on `REDIS_URL` before this process's memory"
            " answers it."
        ),
    )
    redis_max_connections: int = Field(
        20,
        alias="REDIS_MAX_CONNECTIONS",
        ge=1,
        le=10_000,
        description="Connections to Redis each process may hold.",
    )
    rate_limit_per_minute: int = Field(
        30,
        alias="RATE_LIMIT_PER_MINUTE",
        ge=1,
        description=(
            "Sign-in requests per client network and minute; session creations per client network"
            " and per wallet."
        ),
    )
    # Verifies that ask the chain, per client network: each runs a contract's code on a
    # node, which the one who signs in chooses.
    rate_limit_chain_checks_per_minute: int = Field(
        10,
        alias="RATE_LIMIT_CHAIN_CHECKS_PER_MINUTE",
        ge=1,
        description=(
            "Sign-in verifies that ask the chain (contract wallets), per client network and minute."
        ),
    )
    # The gas of every eth_call a sign-in makes (EIP-1271, ERC-6492): enough to deploy a
    # smart account and ask it once, while code that loops stops there, not at the
    # node's own cap; above a block's gas limit some nodes refuse the call.
    sign_in_gas_cap: int = Field(
        5_000_000,
        alias="SIGN_IN_GAS_CAP",
        ge=100_000,
        le=30_000_000,
        description="The gas of every `eth_call` a sign-in makes (EIP-1271, ERC-6492).",
    )

    @field_validator("admin_api_keys", "admin_readonly_api_keys", mode="before")
    @classmethod
    def _named_keys(cls, value: Any, info: ValidationInfo) -> Any:
        return _operator_keys(value, may_write=info.field_name == "admin_api_keys")

    @model_validator(mode="after")
    def _one_key_per_name(self) -> AuthSettings:
        """A name stands for one key, and a secret for one operator, across both lists:
        otherwise the trail could not say who acted, nor the guard with which scope."""
        keys = self.operator_keys
        names = [key.name for key in keys]
        twice = sorted({name for name in names if names.count(name) > 1})
        lists = "ADMIN_API_KEYS, ADMIN_READONLY_API_KEYS"
        if twice:
            raise ValueError(f"{lists}: more than one key is named {', '.join(twice)}")
        secrets = [key.secret.get_secret_value() for key in keys]
        if len(set(secrets)) < len(secrets):
            raise ValueError(f"{lists}: a secret is given to more than one key")
        return self

    @property
    def operator_keys(self) -> list[OperatorKey]:
        return [*self.admin_api_keys, *self.admin_readonly_api_keys]

    @field_validator("jwt_secrets")
    @classmethod
    def _long_enough(cls, secrets: list[SecretStr]) -> list[SecretStr]:
        if any(len(secret.get_secret_value()) < 32 for secret in secrets):
            raise ValueError("every secret must be at least 32 characters")
        return list(dict.fromkeys(secrets))


class ErrorTrackingSettings(_Group):
    """Unhandled errors of routes, the worker and commands reported to Sentry
    (service/error_tracking.py); nothing is sent, nor sentry-sdk started, while unset."""

    sentry_dsn: OptionalSecret = Field(
        None,
        alias="SENTRY_DSN",
        description="Where unhandled errors are reported (a Sentry DSN); unset, none is sent.",
    )

    @field_validator("sentry_dsn")
    @classmethod
    def _a_dsn(cls, dsn: SecretStr | None) -> SecretStr | None:
        if dsn is None:
            return None
        parts = urlsplit(dsn.get_secret_value())
        if parts.scheme not in ("http", "https") or not parts.username or not parts.hostname:
            raise ValueError("must be a Sentry DSN: https://<public key>@<host>/<project id>")
        if not parts.path.strip("/"):
            raise ValueError("must end with the project id: https://<public key>@<host>/<id>")
        return dsn


_RAILWAY_VARIABLES = ("RAILWAY_PROJECT_ID", "RAILWAY_ENVIRONMENT_NAME", "RAILWAY_SERVICE_ID")


# The settings every process of a deployment (each API replica, each `onramp worker`) must
# hold alike, and why. Their table in docs/operations.md is held to this by a test, and
# each process's start-up compares their fingerprint with the other replicas'
# (service/operations/fingerprints.py). Per-process capacity (pools, stream caps, ports)
# and where a process reaches its dependencies (RPC URLs, TRUSTED_PROXIES) may differ.
SHARED_SETTINGS: dict[str, str] = {
    "ENVIRONMENT": "one deployment is production or staging throughout: the checks and"
    " the answers (HSTS, /metrics) differ",
    "JWT_SECRET": "a token one replica signs is verified by whichever replica the next"
    " request reaches",
    "AUTH_DOMAIN": "the sign-in message one replica issues is verified by another",
    "AUTH_URI": "named in sign-in messages and in tokens (issuer and audience)",
    "ADMIN_API_KEYS": "an operator's key must work on every replica",
    "ADMIN_READONLY_API_KEYS": "an operator's key must work on every replica",
    "ALLOWED_ORIGINS": "a browser's request would pass CORS on some replicas only",
    "REDIS_URL": "the rate limits are one budget only through one Redis",
    "RATE_LIMIT_PER_MINUTE": "one shared budget, one limit",
    "RATE_LIMIT_CHAIN_CHECKS_PER_MINUTE": "one shared budget, one limit",
    "ADMIN_AUTH_FAILURES_PER_MINUTE": "one shared budget, one limit",
    "STRIPE_SECRET_KEY": "a session created through one Stripe account is read and"
    " reconciled through the same one",
    "STRIPE_PUBLISHABLE_KEY": "the dApp's key must belong to the account that created its session",
    "STRIPE_API_BASE": "every replica talks to the same Stripe",
    "STRIPE_WEBHOOK_SECRET": "Stripe's events reach any replica; one that lacks the secret"
    " answers 400 and Stripe retries",
    "MEZO_CHAIN_ID": "named in sign-in messages, and the chain every worker verifies on",
    "MUSD_TOKEN_ADDRESS": "the token a session is sold for is the one a worker looks for",
    "DESTINATION_NETWORK": "what a session is sold for, whichever replica creates it",
    "DESTINATION_CURRENCY": "what a session is sold for, whichever replica creates it",
    "MIN_SOURCE_AMOUNT": "a purchase refused by one replica would pass on another",
    "MAX_SOURCE_AMOUNT": "a purchase refused by one replica would pass on another",
    "DELIVERY_CONFIRMATIONS": "any worker may decide any delivery: one rule for all",
    "DELIVERY_TIMEOUT_SECONDS": "any worker may decide any delivery: one rule for all",
    "DELIVERY_AMOUNT_TOLERANCE": "any worker may decide any delivery: one rule for all",
    "OUTGOING_WEBHOOK_RETRY_SECONDS": "any worker may send any merchant webhook attempt",
    "WEBHOOK_RETENTION_DAYS": "every worker runs the retention job: the shortest wins",
    "DELIVERY_CHECK_RETENTION_DAYS": "every worker runs the retention job: the shortest wins",
    "OUTGOING_WEBHOOK_RETENTION_DAYS": "every worker runs the retention job: the shortest wins",
}

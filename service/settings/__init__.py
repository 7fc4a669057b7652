"""Typed settings read once from the environment.

Every variable of the contract lives in one small group (groups.py); `Settings.from_env`
builds them all, collects every problem (not just the first) and refuses unsafe
production set-ups, so a bad deploy fails at start-up with one readable line per problem.
"""

from __future__ import annotations

import contextlib
import os
import pwd
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.settings import hosts
from service.settings.groups import (
    STRIPE_API_BASE,
    AuthSettings,
    ChainSettings,
    DatabaseSettings,
    ErrorTrackingSettings,
    LiveSettings,
    NetworkRpc,
    OnrampSettings,
    OperatorKey,
    OutgoingWebhookSettings,
    RetentionSettings,
    ServerSettings,
    StripeSettings,
    _Group,
    required_when_deployed,
)

__all__ = [
    "AuthSettings",
    "ChainSettings",
    "ConfigurationError",
    "DatabaseSettings",
    "ErrorTrackingSettings",
    "LiveSettings",
    "NetworkRpc",
    "OnrampSettings",
    "OperatorKey",
    "OutgoingWebhookSettings",
    "RetentionSettings",
    "ServerSettings",
    "Settings",
    "StripeSettings",
]


# Names whose values must never be echoed back in an error message.
_SECRET_NAMES = frozenset(
    {
        "DATABASE_URL",
        "DATABASE_READ_URL",
        "REDIS_URL",
        "JWT_SECRET",
        "STRIPE_PUBLISHABLE_KEY",  # public, but a secret key set here by mistake is not
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "ADMIN_API_KEYS",
        "ADMIN_READONLY_API_KEYS",
        "OTEL_EXPORTER_OTLP_ENDPOINT",  # a collector's URL may carry its key
        "SENTRY_DSN",
    }
)
# Operator keys are guessed over the network: production wants as many characters as a
# JWT secret (`secrets.token_urlsafe(32)` gives 43).
OPERATOR_SECRET_LENGTH = 32
# A merchant's webhook is tried for at least this long (the API contract).
LEAST_RETRY_SECONDS = 3 * 24 * 3600
# Hosted RPC URLs carry API keys in their paths: no `<NETWORK>_RPC_URLS` is ever echoed.
_SECRET_SUFFIXES = ("_RPC_URLS",)


class ConfigurationError(Exception):
    """The environment does not describe a service that can start."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class Settings(BaseModel):
    """Everything the service reads from its environment, grouped by what it configures."""

    model_config = ConfigDict(frozen=True)

    server: ServerSettings = Field(default_factory=ServerSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    stripe: StripeSettings = Field(default_factory=StripeSettings)
    chain: ChainSettings = Field(default_factory=ChainSettings)
    onramp: OnrampSettings = Field(default_factory=OnrampSettings)
    live: LiveSettings = Field(default_factory=LiveSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    outgoing_webhooks: OutgoingWebhookSettings = Field(default_factory=OutgoingWebhookSettings)
    error_tracking: ErrorTrackingSettings = Field(default_factory=ErrorTrackingSettings)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every group, reporting all problems at once."""
        env = dict(os.environ if environ is None else environ)
        groups: dict[str, BaseModel] = {}
        problems: list[str] = []
        for name, field in cls.model_fields.items():
            group_type = field.annotation
            assert isinstance(group_type, type)
            assert issubclass(group_type, _Group)
            try:
                groups[name] = group_type.model_validate(env)
            except ValidationError as error:
                problems.extend(_describe(error, env))
        if problems:
            raise ConfigurationError(problems)
        settings = cls.model_validate(groups)
        problems = settings.production_problems()
        if problems:
            raise ConfigurationError(problems)
        return settings

    def production_problems(self) -> list[str]:
        """Settings that are fine on a laptop and unsafe with real money, or on a
        staging deployment that others reach (production's checks, Stripe's test mode)."""
        if not self.server.is_deployed:
            return []
        when = f"when ENVIRONMENT={self.server.environment}"
        problems = [f"{name}: required {when}" for name in self._unset_requirements()]
        problems += self._stripe_problems(when)
        if self.database.is_sqlite:
            problems.append(f"DATABASE_URL: must be a PostgreSQL URL {when}")
        problems += [
            f"{name}: sslmode=disable (or allow) sends the database's traffic unencrypted"
            f" to a host outside a private network; use sslmode=require or verify-full {when}"
            for name, url in (
                ("DATABASE_URL", self.database.url),
                ("DATABASE_READ_URL", self.database.read_url),
            )
            if url is not None and _plaintext_to_a_public_host(url)
        ]
        problems += [
            f"{network.upper()}_RPC_URLS: every URL must be https:// {when}"
            for network, rpc in self.chain.networks.items()
            if any(not url.lower().startswith(("https://", "wss://")) for url in rpc.rpc_urls)
        ]
        problems += self._origin_problems(when)
        if self.server.demo_mode:
            problems.append(f"DEMO_MODE: refused {when}")
        if hosts.is_local_host(_hostname(f"//{self.auth.domain}")):
            problems.append(
                f"AUTH_DOMAIN: set it to the dApp's own domain (sign-in messages name it) {when}"
            )
        if hosts.is_local_host(_hostname(self.auth.uri)) or not self.auth.uri.startswith(
            "https://"
        ):
            problems.append(f"AUTH_URI: set it to the dApp's own https URI {when}")
        for variable, keys in (
            ("ADMIN_API_KEYS", self.auth.admin_api_keys),
            ("ADMIN_READONLY_API_KEYS", self.auth.admin_readonly_api_keys),
        ):
            if any(len(key.secret.get_secret_value()) < OPERATOR_SECRET_LENGTH for key in keys):
                problems.append(
                    f"{variable}: every secret must be at least {OPERATOR_SECRET_LENGTH}"
                    f" characters {when}"
                )
        problems += self._proxy_problems(when)
        if sum(self.outgoing_webhooks.retry_seconds) < LEAST_RETRY_SECONDS:
            problems.append(
                "OUTGOING_WEBHOOK_RETRY_SECONDS: the waits must add up to at least 3 days"
                f" ({LEAST_RETRY_SECONDS} seconds) {when}"
            )
        if self.server.dapp_dir is not None:
            problems += [
                f"DAPP_DIR: {why} {when}" for why in _unsafe_dapp_dir(self.server.dapp_dir)
            ]
        return problems

    def _unset_requirements(self) -> list[str]:
        """The variables marked required when deployed (groups.REQUIRED_WHEN_DEPLOYED,
        which the configuration reference also reads) that are unset. A marked variable
        with a development default is held to more than being set by a check below."""
        unset = []
        for name in type(self).model_fields:
            group = getattr(self, name)
            for field_name, field in type(group).model_fields.items():
                if required_when_deployed(field) and getattr(group, field_name) in (None, []):
                    unset.append(str(field.alias))
        return unset

    def _stripe_problems(self, when: str) -> list[str]:
        """Stripe itself, with live-mode keys in production (a test-mode key is the
        stand-in's, `sk_test_onramp_simulator`, or a mistake) and test-mode keys only in
        staging."""
        problems = []
        if self.stripe.api_base != STRIPE_API_BASE:
            problems.append(f"STRIPE_API_BASE: must be {STRIPE_API_BASE} {when}")
        mode = "live" if self.server.is_production else "test"
        for name, key, kinds in (
            ("STRIPE_SECRET_KEY", self.stripe.secret_key, ("sk", "rk")),
            ("STRIPE_PUBLISHABLE_KEY", self.stripe.publishable_key, ("pk",)),
        ):
            prefixes = tuple(f"{kind}_{mode}_" for kind in kinds)
            if key is not None and not key.get_secret_value().startswith(prefixes):
                shapes = " or ".join(f"{prefix}…" for prefix in prefixes)
                problems.append(f"{name}: must be a {mode}-mode key ({shapes}) {when}")
        return problems

    def _origin_problems(self, when: str) -> list[str]:
        origins = self.server.allowed_origins
        problems = []
        if "*" in origins:
            problems.append(f"ALLOWED_ORIGINS: '*' is refused {when}")
        plain = [o for o in origins if o != "*" and not o.lower().startswith("https://")]
        if plain:
            listed = ", ".join(repr(origin) for origin in plain)
            problems.append(
                f"ALLOWED_ORIGINS: only https:// origins are accepted {when} (got {listed};"
                " 'null' is the origin of every sandboxed page and local file)"
            )
        return problems

    def _proxy_problems(self, when: str) -> list[str]:
        proxy, trusted = self.server.platform_proxy, self.server.trusted_proxies
        if proxy and not trusted:
            return [
                f"TRUSTED_PROXIES: required behind {proxy}'s proxy, or"
                " every customer looks like the proxy (on Railway: TRUSTED_PROXIES=*)"
            ]
        if "*" in trusted and not proxy:
            return [
                "TRUSTED_PROXIES: '*' believes X-Forwarded-For from whoever reaches the port;"
                f" name the proxies' addresses or networks {when} ('*' is for Railway, whose"
                " proxy is the only way in)"
            ]
        return []


def _hostname(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # not a URL at all: as good as unset
        return ""


def _plaintext_to_a_public_host(url: str) -> bool:
    """A libpq URL with sslmode=disable or allow (plaintext first) naming a host that is
    neither this machine nor on a private network. Its hosts are in the authority
    (comma-separated for failover) or in `host` parameters."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False  # not a URL: refused as one by DatabaseSettings
    query = parse_qs(parts.query)
    if not {mode.strip().lower() for mode in query.get("sslmode", [])} & {"disable", "allow"}:
        return False
    named = query.get("host") or [parts.netloc.rpartition("@")[2]]
    return any(
        not hosts.is_private_host(_without_port(host))
        for entry in named
        for host in entry.split(",")
    )


def _without_port(host: str) -> str:
    host = host.strip()
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _unsafe_dapp_dir(folder: Path) -> list[str]:
    """What serves to everyone at /app/ must be a built dApp, not a folder whose other
    files (keys, shell histories, configuration) would be served with it."""
    resolved = folder.resolve()
    problems = []
    if any(home.is_relative_to(resolved) for home in {Path(resolved.anchor), *_homes()}):
        problems.append("must not be a filesystem root, a home directory or a folder holding one")
    if not (resolved / "index.html").is_file():
        problems.append("must hold a built dApp (it has no index.html)")
    return problems


def _homes() -> set[Path]:
    """Every account's home directory, as the password database and HOME name them."""
    found = {Path(user.pw_dir).resolve() for user in pwd.getpwall() if user.pw_dir}
    with contextlib.suppress(RuntimeError):  # neither HOME nor an entry for this user
        found.add(Path.home().resolve())
    return found


def _describe(error: ValidationError, env: Mapping[str, str]) -> list[str]:
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else ""
        message = problem["msg"].removeprefix("Value error, ")
        secret = name in _SECRET_NAMES or name.endswith(_SECRET_SUFFIXES)
        if name in env and not secret:
            message += f" (got {env[name]!r})"
        lines.append(f"{name}: {message}" if name else message)
    return lines

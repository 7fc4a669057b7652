"""Typed settings read once from the environment.

Every variable of the contract lives in one small group (groups.py); `Settings.from_env`
builds them all, collects every problem (not just the first) and refuses unsafe
production set-ups, so a bad deploy fails at start-up with one readable line per problem.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service.settings.groups import (
    AuthSettings,
    ChainSettings,
    DatabaseSettings,
    NetworkRpc,
    OnrampSettings,
    OperatorKey,
    RetentionSettings,
    ServerSettings,
    StripeSettings,
    _Group,
)

__all__ = [
    "AuthSettings",
    "ChainSettings",
    "ConfigurationError",
    "DatabaseSettings",
    "NetworkRpc",
    "OnrampSettings",
    "OperatorKey",
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
    }
)
# Operator keys are guessed over the network: production wants as many characters as a
# JWT secret (`secrets.token_urlsafe(32)` gives 43).
OPERATOR_SECRET_LENGTH = 32
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
    auth: AuthSettings = Field(default_factory=AuthSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)

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
        """Settings that are fine on a laptop and unsafe with real money."""
        if not self.server.is_production:
            return []
        problems = []
        if not self.auth.jwt_secrets:
            problems.append("JWT_SECRET: required when ENVIRONMENT=production")
        if self.stripe.secret_key is None:
            problems.append("STRIPE_SECRET_KEY: required when ENVIRONMENT=production")
        if not self.stripe.webhook_secrets:
            problems.append("STRIPE_WEBHOOK_SECRET: required when ENVIRONMENT=production")
        if self.database.is_sqlite:
            problems.append("DATABASE_URL: must be a PostgreSQL URL when ENVIRONMENT=production")
        if "*" in self.server.allowed_origins:
            problems.append("ALLOWED_ORIGINS: '*' is refused when ENVIRONMENT=production")
        if self.server.demo_mode:
            problems.append("DEMO_MODE: refused when ENVIRONMENT=production")
        if _is_local_host(_hostname(f"//{self.auth.domain}")):
            problems.append(
                "AUTH_DOMAIN: set it to the dApp's own domain (sign-in messages name it)"
                " when ENVIRONMENT=production"
            )
        if _is_local_host(_hostname(self.auth.uri)) or not self.auth.uri.startswith("https://"):
            problems.append(
                "AUTH_URI: set it to the dApp's own https URI when ENVIRONMENT=production"
            )
        if not self.auth.admin_api_keys:
            problems.append(
                "ADMIN_API_KEYS: required when ENVIRONMENT=production (operators' routes)"
            )
        for variable, keys in (
            ("ADMIN_API_KEYS", self.auth.admin_api_keys),
            ("ADMIN_READONLY_API_KEYS", self.auth.admin_readonly_api_keys),
        ):
            if any(len(key.secret.get_secret_value()) < OPERATOR_SECRET_LENGTH for key in keys):
                problems.append(
                    f"{variable}: every secret must be at least {OPERATOR_SECRET_LENGTH}"
                    " characters when ENVIRONMENT=production"
                )
        if self.server.platform_proxy and not self.server.trusted_proxies:
            problems.append(
                f"TRUSTED_PROXIES: required behind {self.server.platform_proxy}'s proxy, or"
                " every customer looks like the proxy (on Railway: TRUSTED_PROXIES=*)"
            )
        return problems


def _hostname(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:  # not a URL at all: as good as unset
        return ""


def _is_local_host(host: str) -> bool:
    """Unset, or a name or address that only reaches this machine."""
    host = host.strip().strip("[]").lower()
    if host in ("", "localhost") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


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

"""`ENVIRONMENT=production` refuses unsafe settings, and turns on what only production needs.

tests/test_settings.py refuses each missing secret, SQLite, `ALLOWED_ORIGINS=*` and the
demo mode one by one, and tests/test_cli.py shows `onramp serve` printing them all and
exiting. Here: the ways an unsafe setting slips past a check that only looks for the
obvious spelling, and HSTS, which only production sends, on every response.
"""

from __future__ import annotations

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import ConfigurationError, Settings
from tests.support.environment import BASE_ENV
from tests.support.webhooks import WEBHOOK_SECRET

SAFE = {
    "ENVIRONMENT": "production",
    "JWT_SECRET": "p" * 40,
    "STRIPE_SECRET_KEY": "sk_live_onramp",
    "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
    "ALLOWED_ORIGINS": "https://app.example",
    "AUTH_DOMAIN": "app.example",
    "AUTH_URI": "https://app.example",
    "ADMIN_API_KEYS": "ops:ops-key-in-production-of-32-characters",
    # Nothing in the suite reaches a public node; production refuses plain http.
    "MEZO_RPC_URLS": "https://127.0.0.1:9",
}


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({**BASE_ENV, "DATABASE_URL": "postgresql://db/onramp", **env})
    return refused.value.problems


@pytest.mark.parametrize("typo", ["prod", "live", "production!"])
def test_a_misspelt_environment_is_refused(typo: str) -> None:
    """Not quietly taken for development, which would skip every production check."""
    [problem] = problems({**SAFE, "ENVIRONMENT": typo})
    assert problem.startswith("ENVIRONMENT: ")


@pytest.mark.parametrize("spelling", ["PRODUCTION", " Production "])
def test_production_in_any_case_is_production(spelling: str) -> None:
    # Shown by a missing secret being refused, which only production does.
    assert problems({**SAFE, "ENVIRONMENT": spelling, "JWT_SECRET": ""}) == [
        "JWT_SECRET: required when ENVIRONMENT=production"
    ]


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"JWT_SECRET": "   "}, "JWT_SECRET"),
        ({"STRIPE_SECRET_KEY": " "}, "STRIPE_SECRET_KEY"),
        ({"STRIPE_WEBHOOK_SECRET": " , ,"}, "STRIPE_WEBHOOK_SECRET"),
        ({"ALLOWED_ORIGINS": "https://app.example, *"}, "ALLOWED_ORIGINS"),
        ({"DATABASE_URL": "SQLITE:///./onramp.db"}, "DATABASE_URL"),
        ({"DEMO_MODE": "1"}, "DEMO_MODE"),
    ],
)
def test_unsafe_settings_in_other_spellings_are_refused(
    change: dict[str, str], variable: str
) -> None:
    assert [problem.split(":")[0] for problem in problems({**SAFE, **change})] == [variable]


@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"AUTH_DOMAIN": ""}, "AUTH_DOMAIN"),
        ({"AUTH_DOMAIN": "localhost:8000"}, "AUTH_DOMAIN"),
        ({"AUTH_DOMAIN": "127.0.0.1:8000"}, "AUTH_DOMAIN"),
        ({"AUTH_URI": ""}, "AUTH_URI"),
        ({"AUTH_URI": "http://localhost:8000"}, "AUTH_URI"),
        ({"AUTH_URI": "http://[::1]:8000"}, "AUTH_URI"),
        ({"AUTH_URI": "http://app.example"}, "AUTH_URI"),
        ({"AUTH_URI": "https://[::1"}, "AUTH_URI"),
        ({"ADMIN_API_KEYS": " "}, "ADMIN_API_KEYS"),
        ({"ADMIN_API_KEYS": "ops:" + "o" * 31}, "ADMIN_API_KEYS"),
        ({"ADMIN_API_KEYS": f"ops:{'o' * 40},{'b' * 31}"}, "ADMIN_API_KEYS"),
        ({"ADMIN_READONLY_API_KEYS": "finance:" + "r" * 31}, "ADMIN_READONLY_API_KEYS"),
        ({"RAILWAY_PROJECT_ID": "0b5e"}, "TRUSTED_PROXIES"),
    ],
)
def test_production_refuses_local_sign_in_no_or_short_operator_keys_and_an_unseen_proxy(
    change: dict[str, str], variable: str
) -> None:
    [problem] = problems({**SAFE, **change})
    assert problem.startswith(f"{variable}: ")


def test_unset_sign_in_audience_is_refused_not_defaulted_to_localhost() -> None:
    unset = {k: v for k, v in SAFE.items() if k not in {"AUTH_DOMAIN", "AUTH_URI"}}
    assert [p.split(":")[0] for p in problems(unset)] == ["AUTH_DOMAIN", "AUTH_URI"]


def test_railway_with_its_proxy_trusted_is_accepted() -> None:
    env = {**BASE_ENV, **SAFE, "DATABASE_URL": "postgresql://db/onramp"}
    settings = Settings.from_env({**env, "RAILWAY_PROJECT_ID": "0b5e", "TRUSTED_PROXIES": "*"})
    assert settings.server.trusted_proxies == ["*"]


@pytest.fixture
def production_app(migrated: dict[str, str]) -> Litestar:
    return create_app(
        Settings.from_env({**BASE_ENV, **SAFE, "DATABASE_URL": migrated["postgresql"]})
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/health"),
        ("GET", "/nowhere"),
        ("DELETE", "/health"),
        ("GET", "/api/v1/auth/me"),
        ("POST", "/api/v1/webhooks/stripe"),
        ("GET", "/schema"),
    ],
)
async def test_production_answers_carry_hsts_whatever_they_are(
    production_app: Litestar, method: str, path: str
) -> None:
    async with AsyncTestClient(app=production_app) as client:
        response = await client.request(method, path)
    assert response.headers["strict-transport-security"] == "max-age=63072000; includeSubDomains"
    assert response.headers["x-content-type-options"] == "nosniff"

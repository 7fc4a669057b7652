"""Settings are read from the environment and refuse what cannot work or is unsafe."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from service import registry
from service.chain.addresses import checksum_wallet
from service.chain.destinations import accepted_destinations
from service.settings import ConfigurationError, Settings

PRODUCTION = {
    "ENVIRONMENT": "production",
    "JWT_SECRET": "x" * 40,
    "STRIPE_SECRET_KEY": "sk_live_abc123",
    "STRIPE_WEBHOOK_SECRET": "whsec_abc",
    "DATABASE_URL": "postgres://u:p@db:5432/onramp",
    "ALLOWED_ORIGINS": "https://app.example",
    "AUTH_DOMAIN": "app.example",
    "AUTH_URI": "https://app.example",
    "ADMIN_API_KEYS": "ops-key-" + "k" * 32,
}


# The same deployment as PRODUCTION, on Stripe's test mode: staging.
STAGING = {
    **PRODUCTION,
    "ENVIRONMENT": "staging",
    "STRIPE_SECRET_KEY": "sk_test_abc123",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_abc123",
}
DEPLOYED = {"production": PRODUCTION, "staging": STAGING}


def problems_for(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env)
    return raised.value.problems


def test_an_empty_environment_gives_the_documented_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.database.url == "sqlite:///./onramp.db"
    assert settings.database.async_url == "sqlite+aiosqlite:///./onramp.db"
    assert (settings.server.host, settings.server.port) == ("127.0.0.1", 8000)
    assert settings.server.environment == "development"
    assert settings.stripe.secret_key is None
    assert settings.stripe.webhook_tolerance_seconds == 300
    assert settings.stripe.timeout_seconds == 10
    assert settings.chain.chain_id == 31611
    assert settings.chain.rpc_urls == ["https://rpc.test.mezo.org"]
    assert settings.onramp.default_source_currency == "usd"
    assert (settings.onramp.destination_currency, settings.onramp.destination_network) == (
        "musd",
        "mezo",
    )
    assert settings.onramp.min_source_amount == Decimal("1.00")
    assert settings.onramp.max_source_amount == Decimal("10000.00")
    assert (settings.auth.domain, settings.auth.uri) == ("localhost:8000", "http://localhost:8000")
    assert settings.auth.sign_in_gas_cap == 5_000_000
    assert settings.auth.rate_limit_chain_checks_per_minute == 10
    assert settings.auth.rate_limit_store_timeout_ms == 50
    assert settings.auth.redis_max_connections == 20
    assert settings.retention.interval_seconds == 3600
    assert settings.retention.batch_size == 1000
    assert settings.retention.webhook_days == 90
    assert settings.retention.delivery_check_days == 30
    live = settings.live
    assert (live.max_streams_per_wallet, live.max_streams_per_client, live.max_streams) == (
        5,
        50,
        2000,
    )
    assert (live.max_stream_seconds, live.heartbeat_seconds) == (900, 15)


@pytest.mark.parametrize(
    ("given", "async_url", "sync_url"),
    [
        (
            "postgres://u:p@h:5432/d",
            "postgresql+psycopg://u:p@h:5432/d",
            "postgresql+psycopg://u:p@h:5432/d",
        ),
        ("postgresql://u@h/d", "postgresql+psycopg://u@h/d", "postgresql+psycopg://u@h/d"),
        ("sqlite:////tmp/x.db", "sqlite+aiosqlite:////tmp/x.db", "sqlite+pysqlite:////tmp/x.db"),
    ],
)
def test_database_urls_get_this_services_drivers(given: str, async_url: str, sync_url: str) -> None:
    database = Settings.from_env({"DATABASE_URL": given}).database
    assert (database.async_url, database.sync_url) == (async_url, sync_url)


def test_comma_separated_lists_are_split_and_trimmed() -> None:
    settings = Settings.from_env(
        {
            "MEZO_RPC_URLS": "http://a:1, http://b:2 ,",
            "STRIPE_WEBHOOK_SECRET": "whsec_old,whsec_new",
            "ADMIN_API_KEYS": "k1,k2",
            "ALLOWED_ORIGINS": "https://a.example,https://b.example",
        }
    )
    assert settings.chain.rpc_urls == ["http://a:1", "http://b:2"]
    assert [s.get_secret_value() for s in settings.stripe.webhook_secrets] == [
        "whsec_old",
        "whsec_new",
    ]
    assert len(settings.auth.admin_api_keys) == 2
    assert settings.server.allowed_origins == ["https://a.example", "https://b.example"]


def test_every_problem_is_reported_once_with_its_variable() -> None:
    problems = problems_for(
        {"PORT": "eighty", "DATABASE_URL": "mysql://x", "MIN_SOURCE_AMOUNT": "-1"}
    )
    assert len(problems) == 3
    assert any(p.startswith("PORT: ") and "'eighty'" in p for p in problems)
    assert any(p.startswith("DATABASE_URL: ") for p in problems)
    assert any(p.startswith("MIN_SOURCE_AMOUNT: ") for p in problems)


def test_secret_values_are_never_echoed_in_problems() -> None:
    problems = problems_for(
        {"STRIPE_SECRET_KEY": "pk_live_notsecretbutwrong", "DATABASE_URL": "mysql://u:hunter2@h"}
    )
    assert problems
    assert not any("pk_live_notsecretbutwrong" in p or "hunter2" in p for p in problems)


def test_amount_bounds_must_be_ordered() -> None:
    problems = problems_for({"MIN_SOURCE_AMOUNT": "500", "MAX_SOURCE_AMOUNT": "100"})
    assert problems == ["MIN_SOURCE_AMOUNT must not exceed MAX_SOURCE_AMOUNT"]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"LIVE_MAX_STREAMS_PER_WALLET": "60"},
            ["LIVE_MAX_STREAMS_PER_WALLET must not exceed LIVE_MAX_STREAMS_PER_CLIENT"],
        ),
        (
            {"LIVE_MAX_STREAMS": "10"},
            ["LIVE_MAX_STREAMS_PER_CLIENT must not exceed LIVE_MAX_STREAMS"],
        ),
    ],
)
def test_stream_caps_nest_wallet_within_client_within_process(
    env: dict[str, str], expected: list[str]
) -> None:
    assert problems_for(env) == expected


def test_stream_caps_and_time_must_be_positive() -> None:
    problems = problems_for(
        {
            "LIVE_MAX_STREAMS_PER_WALLET": "0",
            "LIVE_MAX_STREAMS_PER_CLIENT": "-1",
            "LIVE_MAX_STREAMS": "many",
            "LIVE_MAX_STREAM_SECONDS": "0",
        }
    )
    assert sorted(p.split(":")[0] for p in problems) == [
        "LIVE_MAX_STREAMS",
        "LIVE_MAX_STREAMS_PER_CLIENT",
        "LIVE_MAX_STREAMS_PER_WALLET",
        "LIVE_MAX_STREAM_SECONDS",
    ]


def test_a_safe_production_environment_is_accepted() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.server.is_production
    assert settings.database.async_url == "postgresql+psycopg://u:p@db:5432/onramp"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"JWT_SECRET": ""}, "JWT_SECRET: required when ENVIRONMENT=production"),
        ({"STRIPE_SECRET_KEY": ""}, "STRIPE_SECRET_KEY: required when ENVIRONMENT=production"),
        (
            {"STRIPE_WEBHOOK_SECRET": ""},
            "STRIPE_WEBHOOK_SECRET: required when ENVIRONMENT=production",
        ),
        (
            {"DATABASE_URL": "sqlite:///./onramp.db"},
            "DATABASE_URL: must be a PostgreSQL URL when ENVIRONMENT=production",
        ),
        ({"ALLOWED_ORIGINS": "*"}, "ALLOWED_ORIGINS: '*' is refused when ENVIRONMENT=production"),
        ({"DEMO_MODE": "true"}, "DEMO_MODE: refused when ENVIRONMENT=production"),
    ],
)
def test_production_refuses_unsafe_settings(change: dict[str, str], expected: str) -> None:
    assert problems_for({**PRODUCTION, **change}) == [expected]


def test_production_reports_all_missing_secrets_together() -> None:
    assert len(problems_for({"ENVIRONMENT": "production"})) == 7


def test_placeholder_secrets_are_refused() -> None:
    problems = problems_for(
        {"JWT_SECRET": "changeme", "STRIPE_SECRET_KEY": "changeme", "STRIPE_WEBHOOK_SECRET": "x"}
    )
    assert [p.split(":")[0] for p in problems] == [
        "STRIPE_SECRET_KEY",
        "STRIPE_WEBHOOK_SECRET",
        "JWT_SECRET",
    ]


def test_stripe_attempts_must_end_before_an_idempotency_claim_expires() -> None:
    problems = problems_for({"STRIPE_TIMEOUT_SECONDS": "30", "STRIPE_MAX_NETWORK_RETRIES": "2"})
    assert len(problems) == 1
    assert "must not exceed 45 s" in problems[0]


def test_each_networks_rpc_urls_configure_it_on_the_registrys_chain() -> None:
    chain = Settings.from_env(
        {
            "BASE_RPC_URLS": "http://base-a:1, http://base-b:2",
            "ETHEREUM_RPC_URLS": "http://sepolia:1",
            "ETHEREUM_CHAIN_ID": "11155111",
        }
    ).chain
    networks = chain.networks
    assert list(networks) == ["mezo", "base", "ethereum"]
    assert networks["base"].rpc_urls == ("http://base-a:1", "http://base-b:2")
    assert networks["base"].chain_id == 8453  # the registry's mainnet for Base
    assert networks["ethereum"].chain_id == 11155111
    destinations = accepted_destinations(chain)
    assert destinations[("base", "usdc")].stripe_wallet_key == "base_network"
    assert destinations[("ethereum", "usdc")].token_address == (
        "0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238"
    )
    assert ("polygon", "usdc") not in destinations  # no POLYGON_RPC_URLS


def test_a_network_outside_the_registry_is_refused_without_echoing_its_urls() -> None:
    problems = problems_for({"TRON_RPC_URLS": "https://tron.example/key-in-path"})
    assert len(problems) == 1
    assert problems[0].startswith("TRON_RPC_URLS: tron is not in the token registry")
    assert "key-in-path" not in problems[0]
    [bad_url] = problems_for({"BASE_RPC_URLS": "ws://base.example/secret-key"})
    assert bad_url == "BASE_RPC_URLS: every URL must be http(s)"


def test_every_registry_address_carries_a_valid_checksum() -> None:
    for token in registry.tokens():
        assert checksum_wallet(token.address) == token.address, token
        assert token.finality_depth >= token.confirmations >= 1


def test_a_read_replica_is_optional_and_takes_the_primarys_pool_settings() -> None:
    assert Settings.from_env({}).database.replica is None
    database = Settings.from_env(
        {
            **PRODUCTION,
            "DATABASE_POOL_SIZE": "4",
            "DATABASE_READ_URL": "postgres://reader:p@replica:5432/onramp",
        }
    ).database
    assert database.replica is not None
    assert database.replica.async_url == "postgresql+psycopg://reader:p@replica:5432/onramp"
    assert (database.replica.pool_size, database.replica.replica) == (4, None)
    assert database.async_url == "postgresql+psycopg://u:p@db:5432/onramp"


def test_a_read_replica_of_sqlite_is_refused_without_echoing_the_url() -> None:
    [problem] = problems_for({"DATABASE_READ_URL": "sqlite:///./secret-name.db"})
    assert problem.startswith("DATABASE_READ_URL: a read replica needs PostgreSQL")
    [problem] = problems_for({**PRODUCTION, "DATABASE_READ_URL": "redis://r:hunter2@x"})
    assert problem.startswith("DATABASE_READ_URL: must be a postgresql://")
    assert "hunter2" not in problem


def test_retention_settings_are_checked() -> None:
    problems = problems_for(
        {
            "RETENTION_BATCH_SIZE": "0",
            "WEBHOOK_RETENTION_DAYS": "0",
            "DELIVERY_CHECK_RETENTION_DAYS": "x",
            "RETENTION_INTERVAL_SECONDS": "-1",
        }
    )
    named = {problem.split(":")[0] for problem in problems}
    assert named == {
        "RETENTION_BATCH_SIZE",
        "WEBHOOK_RETENTION_DAYS",
        "DELIVERY_CHECK_RETENTION_DAYS",
        "RETENTION_INTERVAL_SECONDS",
    }


def test_a_safe_staging_environment_is_accepted_and_deployed() -> None:
    server = Settings.from_env(STAGING).server
    assert (server.environment, server.is_deployed, server.is_production) == (
        "staging",
        True,
        False,
    )
    assert not Settings.from_env({}).server.is_deployed


@pytest.mark.parametrize(
    ("environment", "change", "variable"),
    [
        ("production", {"STRIPE_SECRET_KEY": "sk_test_abc123"}, "STRIPE_SECRET_KEY"),
        ("production", {"STRIPE_SECRET_KEY": "rk_test_abc123"}, "STRIPE_SECRET_KEY"),
        # The stand-in's own key (service/stripe_sim): a test-mode key.
        ("production", {"STRIPE_SECRET_KEY": "sk_test_onramp_simulator"}, "STRIPE_SECRET_KEY"),
        ("production", {"STRIPE_SECRET_KEY": "sk_onramp"}, "STRIPE_SECRET_KEY"),
        ("production", {"STRIPE_PUBLISHABLE_KEY": "pk_test_abc123"}, "STRIPE_PUBLISHABLE_KEY"),
        ("staging", {"STRIPE_SECRET_KEY": "sk_live_abc123"}, "STRIPE_SECRET_KEY"),
        ("staging", {"STRIPE_SECRET_KEY": "rk_live_abc123"}, "STRIPE_SECRET_KEY"),
        ("staging", {"STRIPE_PUBLISHABLE_KEY": "pk_live_abc123"}, "STRIPE_PUBLISHABLE_KEY"),
    ],
)
def test_production_takes_live_keys_and_staging_test_keys(
    environment: str, change: dict[str, str], variable: str
) -> None:
    [problem] = problems_for({**DEPLOYED[environment], **change})
    mode = "live" if environment == "production" else "test"
    assert problem.startswith(f"{variable}: must be a {mode}-mode key")
    assert problem.endswith(f"when ENVIRONMENT={environment}")
    assert change[variable] not in problem


@pytest.mark.parametrize(
    ("environment", "key"),
    [
        ("production", {"STRIPE_SECRET_KEY": "rk_live_abc123"}),
        ("staging", {"STRIPE_SECRET_KEY": "rk_test_abc123"}),
    ],
)
def test_restricted_keys_of_the_right_mode_are_accepted(
    environment: str, key: dict[str, str]
) -> None:
    Settings.from_env({**DEPLOYED[environment], **key})


LOCAL_HOSTS = [
    "localhost.",
    "LocalHost",
    "app.localhost",
    "127.0.0.1.",
    "127.1",
    "2130706433",
    "0x7f000001",
    "0177.0.0.1",
    "0x7f.1",
    "0.0.0.0",  # noqa: S104 - a spelling to refuse, not an address bound
    "0",
    "[::1]",
    "[0:0:0:0:0:0:0:1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::]",
]


@pytest.mark.parametrize("environment", DEPLOYED)
@pytest.mark.parametrize(
    ("change", "variable"),
    [
        ({"STRIPE_API_BASE": "http://127.0.0.1:12111"}, "STRIPE_API_BASE"),
        ({"STRIPE_API_BASE": "https://api.stripe.com.example"}, "STRIPE_API_BASE"),
        ({"MEZO_RPC_URLS": "https://a.example,http://rpc.example/k3y"}, "MEZO_RPC_URLS"),
        ({"BASE_RPC_URLS": "http://base.example/k3y"}, "BASE_RPC_URLS"),
        *[({"AUTH_DOMAIN": f"{host}:8000"}, "AUTH_DOMAIN") for host in LOCAL_HOSTS],
        *[({"AUTH_DOMAIN": host}, "AUTH_DOMAIN") for host in LOCAL_HOSTS],
        *[({"AUTH_URI": f"https://{host}"}, "AUTH_URI") for host in LOCAL_HOSTS],
        ({"ALLOWED_ORIGINS": "null"}, "ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": "https://app.example,null"}, "ALLOWED_ORIGINS"),
        ({"ALLOWED_ORIGINS": "http://app.example"}, "ALLOWED_ORIGINS"),
        ({"TRUSTED_PROXIES": "*"}, "TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "10.0.0.0/8, *"}, "TRUSTED_PROXIES"),
        (
            {"DATABASE_URL": "postgresql://u:hunter2@db.example.com/onramp?sslmode=disable"},
            "DATABASE_URL",
        ),
        (
            {"DATABASE_URL": "postgres://u:hunter2@8.8.8.8/onramp?sslmode=disable"},
            "DATABASE_URL",
        ),
        (
            {"DATABASE_URL": "postgres://u:hunter2@db.example.com/onramp?sslmode=allow"},
            "DATABASE_URL",
        ),
        (
            {"DATABASE_URL": "postgresql://u:hunter2@10.0.0.5,db.example.com/x?sslmode=disable"},
            "DATABASE_URL",
        ),
        (
            {"DATABASE_URL": "postgresql://u:hunter2@/onramp?host=db.example.com&sslmode=disable"},
            "DATABASE_URL",
        ),
        (
            {"DATABASE_READ_URL": "postgresql://u:hunter2@replica.example.com/x?sslmode=disable"},
            "DATABASE_READ_URL",
        ),
        ({"DEMO_MODE": "true"}, "DEMO_MODE"),
    ],
)
def test_deployments_refuse_each_unsafe_setting_on_a_line_of_its_own(
    environment: str, change: dict[str, str], variable: str
) -> None:
    [problem] = problems_for({**DEPLOYED[environment], **change})
    assert problem.startswith(f"{variable}: ")
    assert f"ENVIRONMENT={environment}" in problem
    assert "k3y" not in problem
    assert "hunter2" not in problem


@pytest.mark.parametrize(
    "url",
    [
        "postgres://u:p@postgres:5432/onramp?sslmode=disable",
        "postgres://u:p@postgres.railway.internal:5432/onramp?sslmode=disable",
        "postgres://u:p@db.internal/onramp?sslmode=disable",
        "postgres://u:p@db.local/onramp?sslmode=disable",
        "postgres://u:p@10.1.2.3/onramp?sslmode=disable",
        "postgres://u:p@192.168.1.9:5432,172.16.0.4:5432/onramp?sslmode=disable",
        "postgres://u:p@[fd12:3456::1]:5432/onramp?sslmode=disable",
        "postgres://u:p@127.0.0.1/onramp?sslmode=disable",
        "postgres://u:p@localhost./onramp?sslmode=disable",
        "postgresql://u:p@/onramp?host=/var/run/postgresql&sslmode=disable",
        "postgres://u:p@db.example.com/onramp?sslmode=require",
        "postgres://u:p@db.example.com/onramp",
    ],
)
def test_plaintext_to_a_database_on_a_private_network_is_accepted(url: str) -> None:
    Settings.from_env({**PRODUCTION, "DATABASE_URL": url})


def a_dapp(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "index.html").write_text("<!doctype html>")
    return folder


@pytest.mark.parametrize("environment", DEPLOYED)
def test_deployments_serve_only_a_built_dapp_folder(
    environment: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each folder below holds an index.html: a built dApp's file does not make it safe.
    home = a_dapp(tmp_path / "home" / "ops")
    monkeypatch.setenv("HOME", str(home))
    a_dapp(home.parent)
    (tmp_path / "link").symlink_to(home)
    deployed = DEPLOYED[environment]
    Settings.from_env({**deployed, "DAPP_DIR": str(a_dapp(home / "site" / "dist"))})
    for folder in (home, home.parent, tmp_path / "link"):
        [problem] = problems_for({**deployed, "DAPP_DIR": str(folder)})
        assert problem.startswith("DAPP_DIR: must not be a filesystem root, a home directory")
    (tmp_path / "empty").mkdir()
    [problem] = problems_for({**deployed, "DAPP_DIR": str(tmp_path / "empty")})
    assert problem.startswith("DAPP_DIR: must hold a built dApp (it has no index.html)")
    root = problems_for({**deployed, "DAPP_DIR": "/"})
    assert root[0].startswith("DAPP_DIR: must not be a filesystem root")
    assert {problem.split(":")[0] for problem in root} == {"DAPP_DIR"}


def test_trusted_proxies_are_addresses_or_networks() -> None:
    assert Settings.from_env({"TRUSTED_PROXIES": "10.0.0.1, 10.1.0.0/16, ::1"})
    [problem] = problems_for({"TRUSTED_PROXIES": "10.0.0.1, proxy.example"})
    assert problem.startswith("TRUSTED_PROXIES: 'proxy.example' is not an IP address")

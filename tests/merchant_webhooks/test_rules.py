"""The merchant webhooks' pure rules: retries, disabling, secrets, signatures, addresses."""

from __future__ import annotations

import base64
import ipaddress
from datetime import timedelta

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from service.columns import utcnow
from service.merchant_webhooks import rules
from service.merchant_webhooks.addresses import EndpointRefused, classify, target_of
from service.settings import Settings


def test_the_default_schedule_tries_for_at_least_three_days_then_gives_up() -> None:
    schedule = Settings.from_env({}).outgoing_webhooks.retry_seconds
    assert schedule[:5] == (5, 300, 1800, 7200, 18000)
    assert sum(schedule) >= 3 * 24 * 3600
    start = utcnow()
    assert rules.next_attempt(1, start, schedule) == start + timedelta(seconds=5)
    assert rules.next_attempt(2, start, schedule) == start + timedelta(seconds=300)
    assert rules.next_attempt(len(schedule), start, schedule) is not None
    assert rules.next_attempt(len(schedule) + 1, start, schedule) is None


def test_a_short_schedule_in_production_is_refused() -> None:
    from tests.support.environment import STAGING_ENV

    with pytest.raises(Exception, match="OUTGOING_WEBHOOK_RETRY_SECONDS"):
        Settings.from_env(
            {
                **STAGING_ENV,
                "DATABASE_URL": "postgresql://db/x",
                "OUTGOING_WEBHOOK_RETRY_SECONDS": "5,5",
            }
        )


def test_only_a_2xx_is_a_success() -> None:
    assert rules.is_success(200)
    assert rules.is_success(204)
    assert not any(rules.is_success(code) for code in (None, 301, 302, 404, 500))


def test_an_endpoint_failing_for_five_days_only_is_disabled() -> None:
    now = utcnow()
    since = rules.failing_since(None, now - timedelta(days=5), succeeded=False)
    assert since == now - timedelta(days=5)
    assert rules.failing_since(since, now, succeeded=False) == since
    assert rules.should_disable(since, now)
    assert not rules.should_disable(since + timedelta(minutes=1), now)
    assert rules.failing_since(since, now, succeeded=True) is None
    assert not rules.should_disable(None, now)


def test_a_secret_is_whsec_and_the_base64_of_at_least_24_random_bytes() -> None:
    secret = rules.new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) >= 24
    assert secret != rules.new_secret()


def test_signature_headers_verify_with_the_reference_library() -> None:
    secret, other = rules.new_secret(), rules.new_secret()
    body = '{"type":"onramp_session.updated"}'
    headers = rules.signature_headers("msg_1", body, utcnow(), [secret])
    assert headers["webhook-id"] == "msg_1"
    assert headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(body, headers) == {"type": "onramp_session.updated"}
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + " ", headers)


def test_both_secrets_sign_while_a_rotation_overlaps_and_only_the_new_one_after() -> None:
    old, new = rules.new_secret(), rules.new_secret()
    rotated = utcnow()
    until = rotated + rules.ROTATION_OVERLAP
    during = rules.signing_secrets(new, old, until, rotated + timedelta(hours=23))
    assert during == [new, old]
    headers = rules.signature_headers("msg_2", "{}", utcnow(), during)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify("{}", headers) == {}
    assert Webhook(new).verify("{}", headers) == {}
    assert rules.signing_secrets(new, old, until, until) == [new]


def test_the_event_types_follow_the_lifecycle() -> None:
    assert rules.EVENT_TYPES == (
        "onramp_session.updated",
        "delivery.confirmed",
        "delivery.failed",
        "delivery.mismatch",
    )
    assert rules.subscribed(None, "delivery.failed")
    assert rules.subscribed("delivery.confirmed,delivery.failed", "delivery.failed")
    assert not rules.subscribed("delivery.confirmed", "onramp_session.updated")


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.10", "private"),
        ("172.16.5.4", "private"),
        ("fd00::1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.10.1", "link_local"),
        ("fe80::1", "link_local"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address to classify
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "not_global"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "metadata"),
        ("2002:7f00:1::", "loopback"),  # 6to4 around 127.0.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_addresses_are_classified(address: str, reason: str | None) -> None:
    assert classify(ipaddress.ip_address(address)) == reason


@pytest.mark.parametrize(
    ("url", "deployed", "why"),
    [
        ("http://hooks.example/x", True, "https://"),
        ("ftp://hooks.example/x", False, "https:// or http://"),
        ("https://user:pw@hooks.example/x", False, "credentials"),
        ("https:///x", False, "no host"),
        ("https://hooks.example:99999/", False, "not a URL"),
    ],
)
def test_urls_an_endpoint_may_not_have(url: str, deployed: bool, why: str) -> None:
    with pytest.raises(EndpointRefused, match=why):
        target_of(url, deployed)


def test_a_url_is_taken_apart_with_its_default_port() -> None:
    assert target_of("https://hooks.example/x", True).port == 443
    assert target_of("http://127.0.0.1:8080/x", False).port == 8080

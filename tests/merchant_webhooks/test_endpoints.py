"""Operators register, list, read, rotate, enable and remove endpoints, through the real
app; every change is in the audit trail, and a secret is shown only when it is made."""

from __future__ import annotations

import base64
from collections.abc import Callable

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.app import create_app
from service.settings import Settings
from tests.merchant_webhooks.conftest import BASE, KEYS, reader, register, writer
from tests.support.environment import STAGING_ENV


async def test_an_endpoint_is_registered_with_a_secret_shown_once(
    operators: AsyncTestClient[Litestar],
) -> None:
    created = await register(
        operators, "http://127.0.0.1:9/hooks", events=["delivery.confirmed"], description="shop"
    )
    assert created["id"].startswith("we_")
    assert created["status"] == "enabled"
    assert created["events"] == ["delivery.confirmed"]
    assert created["description"] == "shop"
    assert created["secret"].startswith("whsec_")
    assert len(base64.b64decode(created["secret"].removeprefix("whsec_"))) >= 24

    listed = (await operators.get(BASE, headers=reader())).json()["items"]
    assert [e["id"] for e in listed] == [created["id"]]
    one = (await operators.get(f"{BASE}/{created['id']}", headers=reader())).json()
    assert "secret" not in listed[0]
    assert "secret" not in one
    assert created["secret"] not in str(listed) + str(one)

    every = await register(operators, "http://127.0.0.1:9/all")
    assert every["events"] == [
        "onramp_session.updated",
        "delivery.confirmed",
        "delivery.failed",
        "delivery.mismatch",
    ]


async def test_rotate_enable_and_remove_are_audited(operators: AsyncTestClient[Litestar]) -> None:
    created = await register(operators, "http://127.0.0.1:9/hooks")
    one = f"{BASE}/{created['id']}"
    rotated = await operators.post(f"{one}/rotate-secret", headers=writer())
    assert rotated.status_code == 200
    assert rotated.json()["secret"].startswith("whsec_")
    assert rotated.json()["secret"] != created["secret"]
    enabled = await operators.post(f"{one}/enable", headers=writer())
    assert enabled.json()["status"] == "enabled"
    assert (await operators.get(f"{one}/deliveries", headers=reader())).json() == {"items": []}
    assert (await operators.delete(one, headers=writer())).status_code == 204
    assert (await operators.get(one, headers=reader())).status_code == 404
    assert (await operators.delete(one, headers=writer())).status_code == 404

    trail = (await operators.get("/api/v1/admin/audit", headers=reader())).json()["items"]
    rows = [(r["action"], r["target"], r["outcome"], r["actor"]) for r in reversed(trail)]
    assert rows == [
        ("endpoints.add", created["id"], "ok", "ops"),
        ("endpoints.rotate", created["id"], "ok", "ops"),
        ("endpoints.enable", created["id"], "ok", "ops"),
        ("endpoints.remove", created["id"], "ok", "ops"),
        ("endpoints.remove", created["id"], "failed", "ops"),
    ]
    assert created["secret"] not in str(trail)
    assert rotated.json()["secret"] not in str(trail)


async def test_a_read_only_key_may_list_but_not_change(
    operators: AsyncTestClient[Litestar],
) -> None:
    assert (await operators.get(BASE, headers=reader())).status_code == 200
    refused = await operators.post(BASE, json={"url": "http://127.0.0.1:9/"}, headers=reader())
    assert refused.status_code == 403
    assert refused.json()["code"] == "insufficient_scope"


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://hooks.example/"},
        {"url": "http://127.0.0.1:9/", "events": ["session.paid"]},
        {"url": "http://127.0.0.1:9/", "events": []},
        {"url": "http://user:password@127.0.0.1:9/"},
    ],
)
async def test_a_bad_endpoint_is_400_invalid_endpoint(
    operators: AsyncTestClient[Litestar], body: dict[str, object]
) -> None:
    refused = await operators.post(BASE, json=body, headers=writer())
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "invalid_endpoint"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example/", "https://"),
        ("https://127.0.0.1/", "loopback"),
        ("https://[::1]/", "loopback"),
        ("https://10.0.0.7/", "private"),
        ("https://192.168.1.1/", "private"),
        ("https://169.254.1.1/", "link_local"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://[::ffff:169.254.169.254]/", "metadata"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://localhost/", "loopback"),  # a name resolving to loopback
        ("https://internal.shop.test/", "private"),  # a name the resolver puts at 10.x
    ],
)
async def test_deployed_an_endpoint_must_be_https_to_public_addresses(
    hooks_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
    reason: str,
) -> None:
    from service.merchant_webhooks import addresses

    real = addresses.resolve

    async def resolver(host: str, port: int) -> list[str]:
        return ["10.20.30.40"] if host == "internal.shop.test" else await real(host, port)

    monkeypatch.setattr("service.app.resolve", resolver)
    app = create_app(hooks_settings(**{**STAGING_ENV, **KEYS}))
    async with AsyncTestClient(app=app) as client:
        refused = await client.post(BASE, json={"url": url}, headers=writer())
    assert refused.status_code == 400, refused.text
    assert refused.json()["code"] == "invalid_endpoint"
    assert reason in refused.json()["detail"]

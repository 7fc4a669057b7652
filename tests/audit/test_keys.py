"""Operator keys as the environment gives them: named or bare, for changes or reads only,
one name and one secret per key (tests/security/test_production_settings.py: long
enough in production); and every operator route that changes things names the action
its audit row records."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable

import pytest
from litestar.routes import HTTPRoute

from service.app import create_app
from service.audit.actions import AUDITED_AS, Action
from service.auth.guards import READ_METHODS
from service.settings import ConfigurationError, Settings
from tests.support.environment import BASE_ENV


def problems(env: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigurationError) as refused:
        Settings.from_env({**BASE_ENV, **env})
    return refused.value.problems


def test_named_and_bare_keys_and_read_only_ones() -> None:
    bare = "a-bare-secret"
    auth = Settings.from_env(
        {
            "ADMIN_API_KEYS": f" alice : s3cret:with:colons , {bare}",
            "ADMIN_READONLY_API_KEYS": "auditor:reader-secret",
        }
    ).auth
    keys = [(k.name, k.secret.get_secret_value(), k.may_write) for k in auth.operator_keys]
    assert (
        keys
        == [
            ("alice", "s3cret:with:colons", True),  # split at the first ':' only
            (f"key-{hashlib.sha256(bare.encode()).hexdigest()[:8]}", bare, True),
            ("auditor", "reader-secret", False),
        ]
    )
    assert auth.admin_auth_failures_per_minute == 10


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        (
            {"ADMIN_API_KEYS": "ops:one-secret", "ADMIN_READONLY_API_KEYS": "ops:another"},
            "ADMIN_API_KEYS, ADMIN_READONLY_API_KEYS: more than one key is named ops",
        ),
        (
            {"ADMIN_API_KEYS": "one-secret,ops:x,one-secret"},
            "ADMIN_API_KEYS, ADMIN_READONLY_API_KEYS: more than one key is named key-",
        ),
        (
            {"ADMIN_API_KEYS": "ops:same-secret", "ADMIN_READONLY_API_KEYS": "audit:same-secret"},
            "ADMIN_API_KEYS, ADMIN_READONLY_API_KEYS: a secret is given to more than one key",
        ),
        (
            {"ADMIN_READONLY_API_KEYS": "ok:x, bad name:secret-part"},
            "ADMIN_READONLY_API_KEYS: entry 2: the name before ':' must be",
        ),
        ({"ADMIN_API_KEYS": "ops-secret-part:"}, "ADMIN_API_KEYS: entry 1: no secret after"),
        ({"ADMIN_AUTH_FAILURES_PER_MINUTE": "0"}, "ADMIN_AUTH_FAILURES_PER_MINUTE: "),
    ],
)
def test_keys_that_would_make_the_trail_or_the_scope_ambiguous_are_refused_at_start_up(
    env: dict[str, str], expected: str
) -> None:
    [problem] = problems(env)
    assert problem.startswith(expected), problem
    for secret in ("one-secret", "same-secret", "secret-part"):
        assert secret not in problem


def test_every_operator_route_that_changes_things_names_its_audited_action(
    settings_from_env: Callable[..., Settings],
) -> None:
    app = create_app(settings_from_env(ADMIN_API_KEYS="ops:secret"))
    changing = {
        (method, route.path): handler.opt.get(AUDITED_AS)
        for route in app.routes
        if isinstance(route, HTTPRoute)
        for handler in route.route_handlers
        if "operator" in inspect.signature(handler.fn).parameters
        for method in handler.http_methods - READ_METHODS
    }
    one = "/api/v1/admin/webhook-endpoints/{endpoint_id:str}"
    assert changing == {
        ("POST", "/api/v1/admin/sessions/{session_id:str}/sync"): Action.SESSIONS_SYNC,
        ("POST", "/api/v1/admin/webhook-endpoints"): Action.ENDPOINTS_ADD,
        ("DELETE", one): Action.ENDPOINTS_REMOVE,
        ("POST", one + "/rotate-secret"): Action.ENDPOINTS_ROTATE,
        ("POST", one + "/enable"): Action.ENDPOINTS_ENABLE,
    }

"""Schemathesis over the served OpenAPI document, against a running `onramp serve`.

Every operation is called with generated valid and invalid input, once with no
credentials and once signed in (a wallet token, and the operator key on operator
routes). Whatever comes back must be documented: no 5xx, a documented status and
content type, a body matching its schema, and on every response the security headers,
a request id and the CORS answer the request's Origin deserves.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import Case, CheckContext, GenerationMode, Response
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.schemas import OpenApiSchema

from tests.onramp.conftest import ADMIN_KEY, JWT_SECRET, new_wallet, token_for
from tests.security.conftest import ALLOWED_ORIGIN, FOREIGN_ORIGIN
from tests.support.processes import OnrampProcess
from tests.support.profile import current_profile
from tests.support.webhooks import WEBHOOK_SECRET, sign

WALLET = new_wallet()
BEARER = token_for(WALLET)
WEBHOOK = "POST /api/v1/webhooks/stripe"
EXAMPLES_PER_OPERATION = current_profile().fuzz_examples
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-opener-policy": "same-origin",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}

# Each request in turn comes from the allowed origin, a foreign one, or no browser at all.
# (Not drawn by Hypothesis: `@schema.given` turns off schemathesis's coverage phase.)
origins = itertools.cycle([ALLOWED_ORIGIN, FOREIGN_ORIGIN, None])
# (mode, operation label) for every case sent, to prove that every operation was reached.
exercised: Counter[tuple[str, str]] = Counter()
# That proof reads what the fuzzing tests counted in this process: one worker runs them all.
pytestmark = pytest.mark.xdist_group("openapi_fuzz")
NOT_IN_THIS_PROCESS = (
    "the fuzzing tests above ran in another process or not at all: run the module whole,"
    " with --dist loadgroup under pytest-xdist"
)


def schemathesis_config(signed_in: bool) -> SchemathesisConfig:
    """Which checks run and what credentials go where.

    `positive_data_acceptance` is off: the domain's rules (EIP-55 checksums, amount
    bounds from the settings, signatures over the exact bytes) are stricter than a JSON
    schema can say, so a schema-valid request is often rightly refused with a 400; the
    hostile-input tests cover those refusals.
    """
    data: dict[str, Any] = {
        "generation": {"max-examples": EXAMPLES_PER_OPERATION},
        "checks": {
            "positive_data_acceptance": {"enabled": False},
            # Schemathesis's refusals, plus 413: an oversized invalid body is refused
            # before it is read.
            "negative_data_rejection": {"expected-statuses": REFUSALS},
        },
    }
    if signed_in:
        data["auth"] = {
            "openapi": {
                "BearerToken": {"bearer": BEARER},
                "ApiKey": {"api_key": ADMIN_KEY},
            }
        }
    return SchemathesisConfig.from_dict(data)


def load_schema(served: str, signed_in: bool) -> OpenApiSchema:
    return schemathesis.openapi.from_url(
        f"{served}/schema/openapi.json", config=schemathesis_config(signed_in)
    )


@pytest.fixture(scope="module")
def anonymous_schema(served: str) -> OpenApiSchema:
    return load_schema(served, signed_in=False)


@pytest.fixture(scope="module")
def signed_in_schema(served: str) -> OpenApiSchema:
    return load_schema(served, signed_in=True)


@pytest.fixture(autouse=True)
def _schemathesis_on_pytest_9(request: pytest.FixtureRequest) -> None:
    """Schemathesis's fixture-loaded schemas still read `item._nodeid`, which pytest 9
    no longer has; give it the node id it expects."""
    request.node._nodeid = request.node.nodeid


def security_headers_and_cors(ctx: CheckContext, response: Response, case: Case[Any]) -> bool:
    """Every answer, refusals included, carries the security headers and a request id,
    and a CORS allowance only for the configured origin."""
    headers = {name: values[0] for name, values in response.headers.items()}
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name) == value, f"{name}: {headers.get(name)!r}, expected {value!r}"
    assert 1 <= len(headers.get("x-request-id", "")) <= 128, "no X-Request-ID"
    assert "strict-transport-security" not in headers, "HSTS outside production"
    origin = response.request.headers.get("Origin")
    allowed = headers.get("access-control-allow-origin")
    if origin == ALLOWED_ORIGIN:
        assert allowed == ALLOWED_ORIGIN, f"allowed origin got {allowed!r}"
    else:
        assert allowed is None, f"{origin!r} got Access-Control-Allow-Origin {allowed!r}"
    return True


def is_valid_input(case: Case[Any]) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


class StripeSigner(requests.auth.AuthBase):
    """Signs the exact bytes requests is about to send, as Stripe signs its deliveries."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        request.headers["Stripe-Signature"] = sign(body.encode() if isinstance(body, str) else body)
        return request


def call_and_validate(case: Case[Any], mode: str) -> None:
    exercised[(mode, case.operation.label)] += 1
    origin = next(origins)
    headers = {"Origin": origin} if origin else {}
    # Valid events get a valid signature, so that they reach the event parser and the
    # database; invalid ones keep whatever signature was generated for them.
    signed = case.operation.label == WEBHOOK and is_valid_input(case)
    response = case.call_and_validate(
        headers=headers,
        additional_checks=[security_headers_and_cors],
        auth=StripeSigner() if signed else None,
    )
    if signed:
        # The signature held, so the event reached the parser (and, if it is one, the log).
        assert response.json().get("code") != "webhook_signature_invalid", response.text


fuzz_settings = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
anonymous = schemathesis.pytest.from_fixture("anonymous_schema")
signed_in = schemathesis.pytest.from_fixture("signed_in_schema")


@anonymous.parametrize()
@fuzz_settings
def test_every_operation_without_credentials(case: Case[Any]) -> None:
    call_and_validate(case, "anonymous")


@signed_in.parametrize()
@fuzz_settings
def test_every_operation_signed_in(case: Case[Any]) -> None:
    if is_valid_input(case) and isinstance(case.body, dict) and "walletAddress" in case.body:
        # Random addresses only ever meet `invalid_wallet_address` or `wallet_mismatch`;
        # the signed-in wallet's own goes on to nonces, amount checks, idempotency, Stripe.
        case.body["walletAddress"] = WALLET
    call_and_validate(case, "signed_in")


def test_every_documented_operation_was_called_both_ways(
    served: str, record_figures: Callable[..., None]
) -> None:
    assert exercised, NOT_IN_THIS_PROCESS
    document = httpx.get(f"{served}/schema/openapi.json").json()
    documented = {
        f"{method.upper()} {path}" for path, item in document["paths"].items() for method in item
    }
    for mode in ("anonymous", "signed_in"):
        called = {label for (called_mode, label) in exercised if called_mode == mode}
        assert called == documented, mode
    record_figures(
        operations=len(documented),
        cases_without_credentials=sum(n for (m, _), n in exercised.items() if m == "anonymous"),
        cases_signed_in=sum(n for (m, _), n in exercised.items() if m == "signed_in"),
    )


def test_the_server_log_holds_none_of_the_credentials_it_was_sent(server: OnrampProcess) -> None:
    assert exercised, NOT_IN_THIS_PROCESS
    log = server.output()
    assert "request" in log
    for secret in (BEARER, ADMIN_KEY, JWT_SECRET, WEBHOOK_SECRET):
        assert secret not in log

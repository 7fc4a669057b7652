"""The dApp kit's TypeScript client (clients/typescript): its types are the service's
current OpenAPI document, it compiles under `tsc --strict`, and its vitest suite passes
against a running service and Stripe stand-in."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from coincurve import PrivateKey

from service.app import create_app
from service.demo.local_servers import serve_in_thread
from service.settings import Settings
from tests.auth.test_bitcoin import addresses_of
from tests.support.processes import service_env
from tests.support.stripe import RunningStripe
from tests.support.webhooks import WEBHOOK_SECRET

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "clients" / "typescript"
BIN = ROOT / "node_modules" / ".bin"


def run(*command: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=300, env={**os.environ, **env}
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_client_is_current_strict_and_passes_its_suite(
    make_settings: Callable[..., Settings],
    stripe: RunningStripe,
    database_url: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(**service_env(database_url, stripe))
    url, server, thread = serve_in_thread(create_app(settings))
    try:
        stripe.send_webhooks_to(f"{url}/api/v1/webhooks/stripe", WEBHOOK_SECRET)
        generated = run(
            str(BIN / "openapi-typescript"),
            f"{url}/schema/openapi.json",
            "--output",
            str(tmp_path / "schema.d.ts"),
            cwd=CLIENT,
        )
        assert generated.returncode == 0, generated.stderr
        current = (tmp_path / "schema.d.ts").read_text()
        stale = "clients/typescript/src/schema.d.ts is stale: `npm run generate` there"
        assert current == (CLIENT / "src" / "schema.d.ts").read_text(), stale

        compiled = run(str(BIN / "tsc"), "-p", "tsconfig.json", "--noEmit", cwd=CLIENT)
        assert compiled.returncode == 0, compiled.stdout + compiled.stderr

        bitcoin_key = PrivateKey()
        bitcoin = {
            "BITCOIN_KEY": bitcoin_key.secret.hex(),
            "BITCOIN_ADDRESS": addresses_of(bitcoin_key)["p2wpkh"],
        }
        tested = run(
            "npm",
            "test",
            "--",
            "--reporter=verbose",
            cwd=CLIENT,
            ONRAMP_URL=url,
            NO_COLOR="1",
            **bitcoin,
        )
        assert tested.returncode == 0, tested.stdout + tested.stderr
        # Every case of the suite ran and passed: none skipped, none left out.
        cases = len(re.findall(r"^\s*it\(", (CLIENT / "test" / "client.test.ts").read_text(), re.M))
        assert re.search(rf"Tests\s+{cases} passed \({cases}\)", tested.stdout), tested.stdout
    finally:
        server.should_exit = True
        thread.join(timeout=15)

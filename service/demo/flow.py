"""`onramp demo`: the whole purchase on embedded defaults, step by step, timed.

Everything runs on this machine: SQLite in a temporary folder, the Stripe stand-in and
the service in threads of this process, and anvil with a MUSD-like token. A generated
wallet signs in through the real SIWE routes, creates a session through the API, the
stand-in walks it to fulfilment while the demo sends the MUSD transfer on
anvil and passes its hash in the signed webhook, and the in-process worker proves the
delivery on chain. Everything started is stopped again, on Ctrl-C too.
"""

from __future__ import annotations

import json
import secrets
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from eth_account import Account
from eth_account.messages import encode_defunct

from service import migrations
from service.app import create_app
from service.delivery.rules import to_units
from service.demo.local_chain import Anvil, start_anvil
from service.demo.local_servers import serve_in_thread
from service.onramp.lifecycle import LIFECYCLE
from service.settings import Settings
from service.stripe_sim import DEFAULT_PUBLISHABLE_KEY
from service.stripe_sim.app import StripeSimulator

WEBHOOK_SECRET = "whsec_demo_" + "d" * 24
UNIT = 10**18
AMOUNT = "100.00"
EXAMPLE_DAPP = Path(__file__).resolve().parents[2] / "examples" / "dapp" / "dist"
Step = Callable[[str, float], None]


@contextmanager
def _served(app: Any) -> Iterator[str]:
    url, server, thread = serve_in_thread(app)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def _chain() -> Iterator[Anvil]:
    anvil = start_anvil()
    try:
        yield anvil
    finally:
        anvil.stop()


@dataclass(frozen=True)
class DemoStack:
    """Everything `onramp demo` runs: the service, the stand-in, the chain and its token."""

    base: str
    stripe_url: str
    simulator: StripeSimulator
    anvil: Anvil
    token: str


@contextmanager
def demo_stack(
    done: Callable[[str], None] = lambda _: None, explorer_url: str = ""
) -> Iterator[DemoStack]:
    """The service on SQLite with the stand-in and anvil, wired as in production; the
    example dApp at /app/ when it is built. All stopped on exit.

    Anvil borrows Mezo testnet's chain id (so that Bitcoin wallets have Passport
    accounts), but no explorer shows its transactions: none unless `explorer_url`."""
    with ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="onramp-demo-")))
        anvil = stack.enter_context(_chain())
        token = anvil.deploy_token(1_000_000 * UNIT)
        done(f"local chain up (anvil, chain id {anvil.chain_id}), MUSD-like token at {token}")

        simulator = StripeSimulator()
        # A card paid on the stand-in's hosted page sends real tokens on the local chain.
        simulator.deliver = lambda paid: _transfer(
            anvil,
            token,
            paid["transaction_details"]["wallet_address"],
            paid["transaction_details"]["destination_amount"],
        )
        stripe_url = stack.enter_context(_served(simulator))
        done(f"Stripe stand-in at {stripe_url}")

        dapp = {"DAPP_DIR": str(EXAMPLE_DAPP)} if (EXAMPLE_DAPP / "index.html").exists() else {}
        settings = Settings.from_env(
            {
                "DATABASE_URL": f"sqlite:///{work / 'onramp.db'}",
                "STRIPE_SECRET_KEY": simulator.secret_key,
                "STRIPE_PUBLISHABLE_KEY": DEFAULT_PUBLISHABLE_KEY,
                "STRIPE_API_BASE": stripe_url,
                "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
                "MEZO_RPC_URLS": anvil.url,
                "MUSD_TOKEN_ADDRESS": token,
                "MEZO_EXPLORER_URL": explorer_url,
                "JWT_SECRET": secrets.token_urlsafe(48),
                "LOG_LEVEL": "warning",
                "LOG_FORMAT": "console",
                "DEMO_MODE": "true",
                **dapp,
            }
        )
        migrations.upgrade(settings.database)
        base = stack.enter_context(_served(create_app(settings)))
        simulator.webhooks.config.urls = [f"{base}/api/v1/webhooks/stripe"]
        simulator.webhooks.config.secret = WEBHOOK_SECRET
        done(f"onramp service at {base} (SQLite, delivery worker in process)")
        done(f"watch it live at {base}/demo")
        if dapp:
            done(
                f"buy by hand in the example dApp at {base}/app/"
                f" (a browser wallet on chain {anvil.chain_id}, RPC {anvil.url})"
            )
        yield DemoStack(base, stripe_url, simulator, anvil, token)


def run_demo(
    step: Step, timeout_seconds: float = 90, hold: Callable[[], None] | None = None
) -> dict[str, Any]:
    """Run the flow, reporting each step through `step(text, seconds)`; the final session.

    `hold` runs once the flow is done, before anything is stopped (to keep the page up).
    """
    started = time.perf_counter()

    def done(text: str) -> None:
        step(text, time.perf_counter() - started)

    with ExitStack() as stack:
        running = stack.enter_context(demo_stack(done))
        base, stripe_url, simulator = running.base, running.stripe_url, running.simulator
        anvil, token = running.anvil, running.token
        http = stack.enter_context(httpx.Client(base_url=base, timeout=30))
        wallet = Account.create()
        issued = _ok(http.post("/api/v1/auth/nonce", json={"walletAddress": wallet.address}))
        signature = wallet.sign_message(encode_defunct(text=issued["message"])).signature
        signed_in = _ok(
            http.post(
                "/api/v1/auth/verify",
                json={"message": issued["message"], "signature": "0x" + bytes(signature).hex()},
            )
        )
        auth = {"Authorization": f"Bearer {signed_in['token']}"}
        done(f"wallet {wallet.address} signed in with SIWE")

        created = _ok(
            http.post(
                "/api/v1/onramp/sessions",
                json={"walletAddress": wallet.address, "sourceAmount": AMOUNT},
                headers={**auth, "Idempotency-Key": secrets.token_hex(8)},
            )
        )
        stripe_id = created["stripeSessionId"]
        done(f"onramp session {created['id']} created at Stripe as {stripe_id}")

        for status in LIFECYCLE.path[1:-1]:
            simulator_call(stripe_url, stripe_id, status)
            done(f"Stripe: {status}")
        details = simulator.sessions[stripe_id]["transaction_details"]
        amount = details["destination_amount"]
        tx = _transfer(anvil, token, wallet.address, amount)
        done(f"{amount} MUSD sent to the wallet on chain: {tx}")
        simulator_call(
            stripe_url,
            stripe_id,
            LIFECYCLE.fulfilled,
            transactionId=tx,
            destinationAmount=amount,
        )
        done(f"Stripe: {LIFECYCLE.fulfilled} (signed webhook with the transaction hash)")

        deadline = time.monotonic() + timeout_seconds
        while True:
            session = _ok(http.get(f"/api/v1/onramp/sessions/{created['id']}", headers=auth))
            if session["delivery"]["status"] in LIFECYCLE.decided_deliveries:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"delivery still {session['delivery']['status']}")
            time.sleep(0.25)
        done(f"delivery {session['delivery']['status']}: {session['delivery']['detail']}")
        if hold is not None:
            hold()
        return dict(session)


def simulator_call(stripe_url: str, stripe_id: str, status: str, **extra: str) -> None:
    response = httpx.post(
        f"{stripe_url}/_sim/sessions/{stripe_id}/advance",
        json={"status": status, **extra},
        timeout=10,
    )
    response.raise_for_status()


def _transfer(anvil: Anvil, token: str, wallet: str, amount: str) -> str:
    call = anvil.contract("TestMUSD", token).functions.transfer(wallet, to_units(amount, 18))
    sent = call.transact({"from": anvil.funder})
    anvil.w3.eth.wait_for_transaction_receipt(sent)
    return "0x" + bytes(sent).hex()


def _ok(response: httpx.Response) -> dict[str, Any]:
    if not response.is_success:
        raise RuntimeError(
            f"{response.request.method} {response.request.url.path}: {response.text}"
        )
    body: dict[str, Any] = response.json()
    return body


def printable(session: dict[str, Any]) -> str:
    shown = {**session, "clientSecret": "(handed to Stripe's widget; not shown)"}
    return json.dumps(shown, indent=2)

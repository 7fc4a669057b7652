"""The example dApp (examples/dapp) in Debian's Chromium, as a buyer uses it: an injected
wallet backed by a local key (EIP-1193, or a Bitcoin wallet with Unisat's provider API)
signs in, the page quotes, buys, the buyer pays in the embedded payment form (the Stripe
stand-in's, with @stripe/crypto's shape, showing its hosted page), and the page follows
the delivery to `confirmed` on the local chain, live, in words a buyer reads. The whole
stack is `onramp demo`'s."""

from __future__ import annotations

import base64
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from coincurve import PrivateKey
from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import Browser, FrameLocator, Page, expect

from service import registry
from service.auth import bitcoin, passport
from service.demo.flow import EXAMPLE_DAPP, DemoStack, demo_stack
from tests.auth.test_bitcoin import addresses_of, bip137
from tests.demo.test_page import browser  # noqa: F401 - the module's Chromium

ROOT = Path(__file__).resolve().parents[2]
# One worker runs the module and builds the dApp once: a build in another worker empties
# dist/ under the pages this one serves.
pytestmark = pytest.mark.xdist_group("example_dapp")
PAYMENT_FORM = "Pay with card (Stripe test mode)"  # the embedded form's frame title
STEPS = ["Paid", "Processing", "Sent", "Confirmed on chain"]

# A wallet as browser extensions inject it: `window.ethereum.request`, signing in Python.
INJECTED_WALLET = """
window.ethereum = {
  isLocalTestWallet: true,
  async request({ method, params }) {
    if (method === "eth_requestAccounts" || method === "eth_accounts") return [ADDRESS];
    if (method === "eth_chainId") return "0x" + (CHAIN_ID).toString(16);
    if (method === "personal_sign") return await window.signWithLocalKey(params[0]);
    throw Object.assign(new Error("unsupported: " + method), { code: 4200 });
  },
  on() {},
  removeListener() {},
};
"""

# Unisat's provider API: `requestAccounts()`, and `signMessage(message, type)` answering
# a base64 BIP-137 signature for "ecdsa" (the default), signed in Python.
INJECTED_BITCOIN_WALLET = """
window.unisat = {
  async requestAccounts() { return [ADDRESS]; },
  async getAccounts() { return [ADDRESS]; },
  async signMessage(message, type) {
    if (type !== undefined && type !== "ecdsa") throw new Error("this wallet signs ecdsa only");
    return await window.signWithBitcoinKey(message);
  },
};
"""


@pytest.fixture(scope="module")
def built_dapp() -> Path:
    built = subprocess.run(
        ["npm", "run", "build", "-w", "examples/dapp"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    return EXAMPLE_DAPP


@pytest.fixture
def stack(built_dapp: Path) -> Iterator[DemoStack]:
    with demo_stack() as running:  # a local chain: no explorer
        yield running


def with_wallet(page: Page, chain_id: int) -> str:
    account = Account.create()

    def sign(hex_message: str) -> str:
        message = encode_defunct(hexstr=hex_message)
        return "0x" + bytes(account.sign_message(message).signature).hex()

    page.expose_function("signWithLocalKey", sign)
    page.add_init_script(
        INJECTED_WALLET.replace("ADDRESS", repr(account.address)).replace("CHAIN_ID", str(chain_id))
    )
    return str(account.address)


def with_bitcoin_wallet(page: Page) -> str:
    """A testnet P2WPKH wallet that signs as Unisat does: the compressed-P2PKH header
    (31 + recovery id) whatever its address, which the client sets for the address."""
    key = PrivateKey()
    address = addresses_of(key)["p2wpkh"]
    page.expose_function(
        "signWithBitcoinKey",
        lambda message: base64.b64encode(bip137(key, message, 31)).decode(),
    )
    page.add_init_script(INJECTED_BITCOIN_WALLET.replace("ADDRESS", repr(address)))
    return address


def short(text: str) -> str:
    return f"{text[:6]}…{text[-4:]}"


def pay(page: Page, card: str) -> FrameLocator:
    """Pay in the embedded form: the stand-in's hosted page in its frame."""
    form = page.frame_locator(f"iframe[title='{PAYMENT_FORM}']")
    expect(form.get_by_text("100.00 USD").or_(form.get_by_text("20.00 USD"))).to_be_visible()
    form.get_by_label("Card number").fill(card)
    form.get_by_role("button", name="Pay").click()
    return form


def sign_in_and_quote(page: Page, stack: DemoStack, wallet_button: str) -> None:
    page.goto(f"{stack.base}/app/")
    # The page's first paint waits on its bundle and the service's configuration, both
    # from a stack started just before: longer than one step on a busy machine.
    expect(page.get_by_text("Test mode")).to_be_visible(timeout=15_000)
    page.get_by_role("button", name=wallet_button).click()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in")).to_be_visible()
    expect(page.get_by_test_id("quote")).to_contain_text("98.49 MUSD")


def expect_delivered(page: Page) -> None:
    """Paid → processing → sent → confirmed on chain, in the buyer's words."""
    purchase = page.get_by_role("region", name="Your purchase")
    expect(purchase.get_by_role("status")).to_contain_text("Tokens sent", timeout=15_000)
    expect(page.get_by_test_id("delivery")).to_have_text(
        "Confirmed on chain (1 of 1 confirmation)", timeout=30_000
    )
    progress = purchase.get_by_role("list", name="Progress")
    expect(progress.get_by_role("listitem")).to_have_text(
        [re.compile(rf"^{name}") for name in STEPS]
    )
    for step in progress.get_by_role("listitem").all():
        expect(step).to_have_attribute("data-state", "done")
    expect(page.get_by_test_id("amounts")).to_have_text(
        "You pay 100.00 USD and receive 98.49 MUSD on Mezo."
    )


def test_a_buyer_signs_in_quotes_pays_and_sees_the_delivery_confirmed(
    browser: Browser,  # noqa: F811
    stack: DemoStack,
    tmp_path: Path,
) -> None:
    context = browser.new_context(viewport={"width": 900, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    wallet = with_wallet(page, stack.anvil.chain_id)

    sign_in_and_quote(page, stack, "Ethereum wallet")
    expect(page.get_by_test_id("wallet")).to_have_text(short(wallet))
    expect(page.get_by_test_id("wallet")).to_have_attribute("title", wallet)
    expect(page.get_by_test_id("account")).to_have_text(short(wallet))
    page.get_by_role("button", name="Buy").click()

    status = page.get_by_role("region", name="Your purchase").get_by_role("status")
    expect(page.get_by_role("heading", name="Your purchase")).to_be_focused()
    expect(status).to_contain_text("Waiting for you to pay")
    expect(status).to_have_attribute("aria-live", "polite")
    step = page.get_by_role("list", name="Progress").locator("[aria-current=step]")
    expect(step).to_contain_text("Paid")
    pay(page, "4242 4242 4242 4242")

    expect_delivered(page)
    (session,) = stack.simulator.sessions.values()
    transaction = session["transaction_details"]["transaction_id"]
    # The local chain has no explorer: the hash, shortened, and no link.
    expect(page.get_by_test_id("transaction")).to_have_text(short(transaction))
    expect(page.get_by_role("link")).to_have_count(0)
    expect(page.locator(f"iframe[title='{PAYMENT_FORM}']")).to_have_count(0)  # done with
    expect(page.get_by_test_id("history")).to_contain_text("100.00 USD")
    expect(page.get_by_test_id("history")).to_contain_text("Confirmed on chain")
    page.screenshot(path=str(tmp_path / "example-dapp.png"), full_page=True)  # the README's
    assert problems == [], problems
    context.close()


def test_a_bitcoin_wallet_buys_for_its_mezo_account_with_the_explorer_linked(
    browser: Browser,  # noqa: F811
    built_dapp: Path,
) -> None:
    (mezo_testnet,) = registry.tokens_on("mezo", passport.deployments()[31611].chain_id)
    explorer = mezo_testnet.explorer_url
    assert explorer is not None
    with demo_stack(explorer_url=explorer) as stack:
        context = browser.new_context()
        page = context.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        address = with_bitcoin_wallet(page)
        account = passport.mezo_account(
            bitcoin.parse_bitcoin_address(address).payload,
            passport.deployments()[stack.anvil.chain_id],
        )

        sign_in_and_quote(page, stack, "Bitcoin wallet")
        expect(page.get_by_test_id("wallet")).to_have_text(short(address))
        expect(page.get_by_test_id("account")).to_have_text(short(account))
        expect(page.get_by_test_id("signed-in")).to_contain_text("Mezo account")
        page.get_by_role("button", name="Buy").click()
        pay(page, "4242 4242 4242 4242")

        expect_delivered(page)
        (session,) = stack.simulator.sessions.values()
        assert session["transaction_details"]["wallet_address"] == account
        transaction = session["transaction_details"]["transaction_id"]
        link = page.get_by_role("link", name=f"{short(transaction)} on the block explorer")
        expect(link).to_have_attribute("href", f"{explorer}/tx/{transaction}")
        assert problems == [], problems
        context.close()


def test_a_refused_purchase_is_explained(browser: Browser, stack: DemoStack) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []  # shown if a step fails, to tell why
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    with_wallet(page, stack.anvil.chain_id)
    sign_in_and_quote(page, stack, "Ethereum wallet")

    page.get_by_label("Spend (USD)").fill("0.50")
    expect(page.get_by_role("alert")).to_contain_text("Amount must be between")

    page.get_by_label("Spend (USD)").fill("20.00")
    expect(page.get_by_test_id("quote"), str(console)).to_contain_text("MUSD")
    page.get_by_role("button", name="Buy").click()
    pay(page, "4000 0000 0000 0002")
    expect(page.get_by_test_id("status"), str(console)).to_have_text(
        "Refused by the payment provider; you were not charged", timeout=15_000
    )
    progress = page.get_by_role("list", name="Progress")
    expect(progress.locator("[aria-current=step]")).to_have_count(0)
    context.close()


def test_without_a_wallet_the_buyer_is_told_what_to_install(
    browser: Browser,  # noqa: F811
    stack: DemoStack,
) -> None:
    page = browser.new_page()
    page.goto(f"{stack.base}/app/")
    page.get_by_role("button", name="Bitcoin wallet").click()
    expect(page.get_by_role("alert")).to_have_text(
        "No Bitcoin wallet found. Install Unisat (or OKX Wallet) to continue."
    )
    page.close()

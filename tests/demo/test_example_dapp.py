"""The example dApp (examples/dapp) in Debian's Chromium, as a buyer uses it: an injected
EIP-1193 wallet backed by a local key signs in, the page quotes, buys, the buyer pays on
the stand-in's hosted page, and the page shows the delivery `confirmed` on the local
chain, live. The whole stack is `onramp demo`'s."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from playwright.sync_api import Browser, Page, expect

from service.demo.flow import EXAMPLE_DAPP, DemoStack, demo_stack
from tests.demo.test_page import browser  # noqa: F401 - the module's Chromium

ROOT = Path(__file__).resolve().parents[2]

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
    with demo_stack() as running:
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

    page.goto(f"{stack.base}/app/")
    expect(page.get_by_text("Test mode")).to_be_visible()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("wallet")).to_have_text(wallet)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in")).to_be_visible()
    expect(page.get_by_test_id("quote")).to_contain_text("98.49 MUSD")

    with context.expect_page() as opened:
        page.get_by_role("button", name="Buy").click()
    payment = opened.value
    expect(payment.get_by_text("100.00 USD")).to_be_visible()
    expect(page.get_by_test_id("status")).to_have_text("initialized")
    payment.get_by_label("Card number").fill("4242 4242 4242 4242")
    payment.get_by_role("button", name="Pay").click()
    expect(payment.get_by_role("status")).to_contain_text("Payment received")

    expect(page.get_by_test_id("status")).to_have_text("fulfillment_complete", timeout=15_000)
    expect(page.get_by_test_id("delivery")).to_have_text("confirmed", timeout=30_000)
    expect(page.get_by_test_id("history")).to_contain_text("100.00 USD")
    page.screenshot(path=str(tmp_path / "example-dapp.png"), full_page=True)  # the README's
    assert problems == [], problems
    context.close()


def test_a_refused_purchase_is_explained(browser: Browser, stack: DemoStack) -> None:  # noqa: F811
    context = browser.new_context()
    page = context.new_page()
    console: list[str] = []  # shown if a step fails, to tell why
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    wallet = with_wallet(page, stack.anvil.chain_id)
    page.goto(f"{stack.base}/app/")
    expect(page.get_by_text("Test mode")).to_be_visible()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_test_id("wallet"), str(console)).to_have_text(wallet)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("signed-in"), str(console)).to_be_visible()

    page.get_by_label("Spend (USD)").fill("0.50")
    expect(page.get_by_role("alert")).to_contain_text("Amount must be between")

    page.get_by_label("Spend (USD)").fill("20.00")
    expect(page.get_by_test_id("quote")).to_contain_text("MUSD")
    with context.expect_page() as opened:
        page.get_by_role("button", name="Buy").click()
    payment = opened.value
    payment.get_by_label("Card number").fill("4000 0000 0000 0002")
    payment.get_by_role("button", name="Pay").click()
    expect(page.get_by_test_id("status")).to_have_text("rejected", timeout=15_000)
    context.close()

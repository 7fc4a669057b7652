"""Bitcoin wallets (Mezo Passport) sign in through the real app, PostgreSQL, the Stripe
stand-in and a local chain: signatures made by `bitcoinjs-message` and checked by Mezo's
own verifier, Mezo accounts checked against a Passport factory on the chain."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from coincurve import PrivateKey
from litestar import Litestar
from litestar.testing import AsyncTestClient

from service.auth import passport
from tests.auth.test_bitcoin import addresses_of, hash160
from tests.auth.test_sign_in import Client, assert_refused, nonce_for, verify
from tests.support.anvil import Anvil
from tests.support.node import node_json
from tests.support.stripe import RunningStripe

TESTNET = passport.deployments()[31611]


def wallet_signature(
    key: PrivateKey, message: str, kind: str, encoding: str = "base64", *, mezo_accepts: bool = True
) -> str:
    """What a Bitcoin wallet returns for `message`, once Mezo's verifier has judged it."""
    signed = node_json(
        "bitcoin_sign.mjs",
        privateKey=key.secret.hex(),
        message=message,
        kind=kind,
        encoding=encoding,
    )
    assert signed["mezoAccepts"] is mezo_accepts, signed["mezoError"]
    return str(signed["signature"])


@pytest.fixture(scope="module")
def passport_factory(anvil: Anvil) -> Any:
    """A Passport account factory at the registry's address, answering where accounts are."""
    anvil.deploy_at("PassportAccountFactory", TESTNET.factory, TESTNET.bytecode_hash)
    return anvil.contract("PassportAccountFactory", TESTNET.factory)


def account_on_chain(factory: Any, key: PrivateKey, kind: str) -> str:
    key_hash = hash160(key.public_key.format(compressed=True))
    payload = hash160(b"\x00\x14" + key_hash) if kind == "p2sh-p2wpkh" else key_hash
    return str(factory.functions.predictAddresses(payload).call())


@pytest.fixture
def bitcoin_client(
    make_client: Client, anvil: Anvil, stripe: RunningStripe
) -> Callable[..., AsyncTestClient[Litestar]]:
    def build(**env: str) -> AsyncTestClient[Litestar]:
        return make_client(
            MEZO_RPC_URLS=anvil.url,
            STRIPE_SECRET_KEY=stripe.secret_key,
            STRIPE_API_BASE=stripe.url,
            STRIPE_MAX_NETWORK_RETRIES="0",
            **env,
        )

    return build


async def sign_in(
    client: AsyncTestClient[Litestar], key: PrivateKey, kind: str, encoding: str = "base64"
) -> dict[str, Any]:
    address = addresses_of(key)[kind]
    issued = await nonce_for(client, address)
    response = await verify(
        client, issued["message"], wallet_signature(key, issued["message"], kind, encoding)
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["bitcoinAddress"] == address
    return body


@pytest.mark.parametrize(
    ("kind", "encoding"), [("p2wpkh", "hex"), ("p2pkh", "base64"), ("p2sh-p2wpkh", "base64")]
)
async def test_a_bitcoin_wallet_signs_in_and_buys_for_its_mezo_account(
    bitcoin_client: Client,
    passport_factory: Any,
    stripe: RunningStripe,
    kind: str,
    encoding: str,
) -> None:
    key = PrivateKey()
    account = account_on_chain(passport_factory, key, kind)
    async with bitcoin_client() as client:
        issued = await nonce_for(client, addresses_of(key)[kind])
        assert issued["message"].startswith(
            "localhost:8000 wants you to sign in with your Bitcoin account:\n"
            + addresses_of(key)[kind]
            + "\n"
        )
        assert "Chain ID" not in issued["message"]
        signed_in = await sign_in(client, key, kind, encoding)
        assert signed_in["walletAddress"] == account
        headers = {"Authorization": f"Bearer {signed_in['token']}"}

        me = await client.get("/api/v1/auth/me", headers=headers)
        assert me.json()["walletAddress"] == account
        assert me.json()["bitcoinAddress"] == addresses_of(key)[kind]

        created = await client.post(
            "/api/v1/onramp/sessions",
            json={"walletAddress": account, "sourceAmount": "50.00"},
            headers=headers,
        )
        assert created.status_code == 201, created.text
        at_stripe = stripe.simulator.sessions[created.json()["stripeSessionId"]]
        assert at_stripe["transaction_details"]["wallet_addresses"]["mezo"] == account

        listed = await client.get("/api/v1/onramp/sessions", headers=headers)
        assert [s["id"] for s in listed.json()["items"]] == [created.json()["id"]]

        as_bitcoin = await client.post(
            "/api/v1/onramp/sessions",
            json={"walletAddress": addresses_of(key)[kind], "sourceAmount": "50.00"},
            headers=headers,
        )
        # Stripe delivers to the Mezo account; the Bitcoin address is no EVM wallet.
        assert as_bitcoin.status_code == 400, as_bitcoin.text
        assert as_bitcoin.json()["code"] == "invalid_wallet_address"


async def test_one_keys_p2pkh_and_p2wpkh_addresses_are_one_mezo_account(
    bitcoin_client: Client, passport_factory: Any
) -> None:
    key = PrivateKey()
    async with bitcoin_client() as client:
        legacy = await sign_in(client, key, "p2pkh")
        native = await sign_in(client, key, "p2wpkh")
    assert legacy["walletAddress"] == native["walletAddress"]
    assert legacy["walletAddress"] == account_on_chain(passport_factory, key, "p2wpkh")


async def test_bitcoin_sign_ins_that_must_fail_are_refused_with_their_codes(
    bitcoin_client: Client,
) -> None:
    key, stranger = PrivateKey(), PrivateKey()
    address = addresses_of(key)["p2wpkh"]
    async with bitcoin_client() as client:
        issued = await nonce_for(client, address)
        message = issued["message"]
        assert_refused(
            await verify(
                client, message, wallet_signature(stranger, message, "p2wpkh", mezo_accepts=False)
            ),
            "signature_invalid",
        )
        signature = wallet_signature(key, message, "p2wpkh")
        assert (await verify(client, message, signature)).status_code == 200
        assert_refused(await verify(client, message, signature), "nonce_used")

        mainnet = addresses_of(key, "mainnet")["p2wpkh"]
        issued = await nonce_for(client, mainnet)
        assert_refused(
            await verify(client, issued["message"], "0x" + "27" * 65), "chain_id_mismatch"
        )

        taproot = await client.post(
            "/api/v1/auth/nonce",
            json={
                "walletAddress": "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c"
            },
        )
        assert taproot.status_code == 400
        assert taproot.json()["code"] == "unsupported_address_type"

        legacy = addresses_of(key)["p2pkh"]
        # Another last character: the checksum fails (one address in 32 ends in "q").
        broken = address[:-1] + ("p" if address.endswith("q") else "q")
        for bad_address in (broken, legacy + "\t" * 20, legacy + " \n"):
            bad = await client.post("/api/v1/auth/nonce", json={"walletAddress": bad_address})
            assert bad.status_code == 400, bad.text
            assert bad.json()["code"] == "invalid_wallet_address"


async def test_a_bitcoin_message_with_a_chain_id_line_is_refused_by_both_verifiers(
    bitcoin_client: Client,
) -> None:
    key = PrivateKey()
    async with bitcoin_client() as client:
        issued = await nonce_for(client, addresses_of(key)["p2wpkh"])
        with_chain = issued["message"].replace("Version: 1\n", "Version: 1\nChain ID: 31611\n")
        signature = wallet_signature(key, with_chain, "p2wpkh", mezo_accepts=False)
        assert_refused(await verify(client, with_chain, signature), "message_malformed")

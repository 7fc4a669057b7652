"""Smart wallets that sign before they are deployed (ERC-6492), on a local chain: the
universal validator in contracts/, the service's sign-in, and viem's own verifier."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_account import Account
from eth_account.messages import defunct_hash_message
from eth_account.signers.local import LocalAccount
from web3 import Web3

from service.auth.signatures import ERC6492_SUFFIX
from service.chain.artifacts import load_artifact
from tests.auth.test_sign_in import (
    CHAIN_ID,
    Client,
    assert_refused,
    nonce_for,
    signature_of,
    verify,
)
from tests.support.anvil import Anvil
from tests.support.node import node_json


@pytest.fixture(scope="module")
def factory(anvil: Anvil) -> Any:
    return anvil.contract("OwnerWalletFactory", anvil.deploy("OwnerWalletFactory"))


class Counterfactual:
    """An OwnerWallet that its factory will deploy by CREATE2 for `owner`."""

    def __init__(self, anvil: Anvil, factory: Any, owner: LocalAccount) -> None:
        self.anvil, self.factory, self.owner = anvil, factory, owner
        self.salt = "0x" + secrets.token_hex(32)
        self.address = str(factory.functions.walletAddress(owner.address, self.salt).call())

    @property
    def deployed(self) -> bool:
        return len(self.anvil.w3.eth.get_code(Web3.to_checksum_address(self.address))) > 0

    def deploy(self) -> None:
        tx = self.factory.functions.deploy(self.owner.address, self.salt)
        self.anvil.w3.eth.wait_for_transaction_receipt(tx.transact({"from": self.anvil.funder}))
        assert self.deployed

    def sign(self, message: str, signer: LocalAccount | None = None) -> dict[str, Any]:
        """viem's ERC-6492 signature by `signer` (the owner by default), and whether
        viem's `verifyMessage` accepts it for the wallet."""
        return node_json(
            "erc6492_sign.mjs",
            privateKey="0x" + bytes((signer or self.owner).key).hex(),
            message=message,
            factory=self.factory.address,
            salt=self.salt,
            wallet=self.address,
            rpcUrl=self.anvil.url,
            chainId=CHAIN_ID,
        )


def validator_says(anvil: Anvil, signer: str, message: str, signature: bytes) -> bytes:
    """The universal validator's answer, from one deployless eth_call."""
    creation = bytes.fromhex(load_artifact("UniversalSignatureValidator")["bytecode"][2:])
    arguments = encode(
        ["address", "bytes32", "bytes"], [signer, defunct_hash_message(text=message), signature]
    )
    return bytes(anvil.w3.eth.call({"data": creation + arguments}))


def test_the_validator_accepts_a_wallet_before_and_after_deployment_and_no_stranger(
    anvil: Anvil, factory: Any
) -> None:
    owner, stranger = Account.create(), Account.create()
    wallet = Counterfactual(anvil, factory, owner)
    message = "any message at all"
    wrapped = bytes.fromhex(wallet.sign(message)["signature"][2:])
    by_stranger = bytes.fromhex(wallet.sign(message, stranger)["signature"][2:])
    assert wrapped.endswith(ERC6492_SUFFIX)

    assert validator_says(anvil, wallet.address, message, wrapped) == b"\x01"
    assert validator_says(anvil, wallet.address, message, by_stranger) == b"\x00"
    assert not wallet.deployed  # the factory ran inside the call only

    wallet.deploy()
    plain = bytes.fromhex(signature_of(owner, message)[2:])
    assert validator_says(anvil, wallet.address, message, wrapped) == b"\x01"
    assert validator_says(anvil, wallet.address, message, plain) == b"\x01"
    assert validator_says(anvil, wallet.address, message, by_stranger) == b"\x00"
    assert validator_says(anvil, wallet.address, "another message", plain) == b"\x00"
    # An EOA's own ECDSA signature, and a stranger's for it.
    assert validator_says(anvil, owner.address, message, plain) == b"\x01"
    assert validator_says(anvil, stranger.address, message, plain) == b"\x00"


async def test_a_smart_wallet_signs_in_before_its_deployment_and_after(
    make_client: Client, anvil: Anvil, factory: Any
) -> None:
    owner = Account.create()
    wallet = Counterfactual(anvil, factory, owner)
    async with make_client(MEZO_RPC_URLS=anvil.url) as client:
        issued = await nonce_for(client, wallet.address)
        signed = wallet.sign(issued["message"])
        assert signed["viemAccepts"] is True
        response = await verify(client, issued["message"], signed["signature"])
        assert response.status_code == 200, response.text
        assert response.json()["walletAddress"] == wallet.address
        assert not wallet.deployed

        wallet.deploy()
        issued = await nonce_for(client, wallet.address)
        response = await verify(
            client, issued["message"], wallet.sign(issued["message"])["signature"]
        )
        assert response.status_code == 200, response.text
        issued = await nonce_for(client, wallet.address)
        response = await verify(client, issued["message"], signature_of(owner, issued["message"]))
        assert response.status_code == 200, response.text  # EIP-1271, now it is deployed


async def test_a_smart_wallet_signature_by_a_stranger_is_refused(
    make_client: Client, anvil: Anvil, factory: Any
) -> None:
    wallet = Counterfactual(anvil, factory, Account.create())
    async with make_client(MEZO_RPC_URLS=anvil.url) as client:
        issued = await nonce_for(client, wallet.address)
        signed = wallet.sign(issued["message"], Account.create())
        assert signed["viemAccepts"] is False
        assert_refused(
            await verify(client, issued["message"], signed["signature"]), "signature_invalid"
        )
        garbled = "0x" + "00" * 40 + ERC6492_SUFFIX.hex()
        assert_refused(await verify(client, issued["message"], garbled), "signature_invalid")
        # The nonce was not spent by the refusals: the owner still signs in with it.
        response = await verify(
            client, issued["message"], wallet.sign(issued["message"])["signature"]
        )
        assert response.status_code == 200, response.text


async def test_a_wrapper_deploying_someone_elses_wallet_proves_nothing(
    make_client: Client, anvil: Anvil, factory: Any
) -> None:
    """An attacker wraps their own signature with a factory call that deploys their own
    wallet: the wallet the message names stays undeployed, so nothing vouches for it."""
    victim = Counterfactual(anvil, factory, Account.create())
    attacker = Counterfactual(anvil, factory, Account.create())
    attacker.address = victim.address  # the message and the validator name the victim
    async with make_client(MEZO_RPC_URLS=anvil.url) as client:
        issued = await nonce_for(client, victim.address)
        signed = attacker.sign(issued["message"])
        assert signed["viemAccepts"] is False
        assert_refused(
            await verify(client, issued["message"], signed["signature"]), "signature_invalid"
        )
    assert not victim.deployed

"""Sign-in with messages that real dApp libraries build and sign: viem, and siwe with
ethers, from npm, run by Node.js against the nonce the service issued."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account

from tests.auth.test_sign_in import CHAIN_ID, DOMAIN, URI, Client, nonce_for, verify
from tests.support.node import node_json


def signed_by(library: str, **fields: Any) -> dict[str, Any]:
    return node_json("sign_in.mjs", library, **fields)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.mark.parametrize("library", ["viem", "siwe-ethers"])
@pytest.mark.parametrize("everything", [False, True], ids=["plain", "statement-resources-ids"])
async def test_a_message_built_and_signed_by_a_dapp_library_signs_in(
    make_client: Client, library: str, everything: bool
) -> None:
    account = Account.create()
    now = datetime.now(UTC)
    extras: dict[str, Any] = {}
    if everything:
        extras = {
            "statement": "Buy MUSD with a card; this request costs nothing.",
            "requestId": "checkout-7f3a",
            "resources": ["https://app.example/terms", "ipfs://bafybeigdyrzt5sfp7udm7hu76"],
            "notBefore": iso(now - timedelta(seconds=5)),
            "expirationTime": iso(now + timedelta(minutes=4)),
        }
    async with make_client() as client:
        issued = await nonce_for(client, account.address)
        signed = signed_by(
            library,
            privateKey="0x" + bytes(account.key).hex(),
            domain=DOMAIN,
            uri=URI,
            chainId=CHAIN_ID,
            nonce=issued["nonce"],
            issuedAt=iso(now),
            **extras,
        )
        if everything:
            assert "Request ID: checkout-7f3a" in signed["message"]
            assert "Not Before: " in signed["message"]
        response = await verify(client, signed["message"], signed["signature"])
    assert response.status_code == 200, response.text
    assert response.json()["walletAddress"] == account.address

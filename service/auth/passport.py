"""Mezo Passport: the Mezo account (a Safe smart account, often not deployed yet) that
belongs to a Bitcoin wallet. Its address follows from the Bitcoin address alone, by
CREATE2 with the chain's Passport factory (`contracts/passport.json`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from service.auth.bitcoin import BitcoinNetwork
from service.resources import resource_dir


@dataclass(frozen=True)
class PassportDeployment:
    chain_id: int
    bitcoin_network: BitcoinNetwork
    factory: str
    bytecode_hash: bytes


@cache
def deployments() -> dict[int, PassportDeployment]:
    raw = json.loads((resource_dir("contracts") / "passport.json").read_text())
    found = (
        PassportDeployment(
            chain_id=int(entry["chainId"]),
            bitcoin_network=entry["bitcoinNetwork"],
            factory=to_checksum_address(entry["factory"]),
            bytecode_hash=bytes.fromhex(entry["bytecodeHash"].removeprefix("0x")),
        )
        for entry in raw["chains"]
    )
    return {deployment.chain_id: deployment for deployment in found}


def mezo_account(payload: bytes, deployment: PassportDeployment) -> str:
    """The account's address for the 20 bytes a Bitcoin address commits to."""
    factory = bytes.fromhex(deployment.factory[2:])
    digest = keccak(b"\xff" + factory + keccak(payload) + deployment.bytecode_hash)
    return str(to_checksum_address(digest[12:]))

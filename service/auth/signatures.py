"""Who signed a sign-in message: eth-account for EOAs; on chain, EIP-1271 for deployed
contract wallets and ERC-6492 for those not deployed yet."""

from __future__ import annotations

from typing import Any

from eth_abi.abi import encode
from eth_account.messages import defunct_hash_message
from web3 import AsyncWeb3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from service.auth.rules import COMPACT_SIGNATURE_LENGTH, EOA_SIGNATURE_LENGTH, recover_signer
from service.chain.artifacts import load_artifact
from service.chain.rpc import ChainRpc
from service.errors import Unauthorized

EIP1271_MAGIC_VALUE = bytes.fromhex("1626ba7e")
ERC6492_SUFFIX = bytes.fromhex("6492" * 16)
# Enough to deploy a smart account and ask it once; the wrapper's factory and calldata
# come from whoever signs in, so their code runs under this cap, not the node's.
VALIDATION_GAS = 5_000_000
EIP1271_ABI = [
    {
        "name": "isValidSignature",
        "type": "function",
        "stateMutability": "view",
        "inputs": [{"name": "hash", "type": "bytes32"}, {"name": "signature", "type": "bytes"}],
        "outputs": [{"name": "magicValue", "type": "bytes4"}],
    }
]


async def verify_wallet_signature(
    message_text: str, signature: bytes, wallet: str, chain: ChainRpc
) -> None:
    """Accept the signature when `wallet` signed `message_text`, else raise Unauthorized.

    An EOA signature is checked locally; only when it does not recover to the wallet
    is the chain asked whether the wallet is a contract that accepts it (EIP-1271).
    """
    if recover_signer(message_text, signature) == wallet:
        return
    if signature.endswith(ERC6492_SUFFIX):
        await verify_counterfactual_signature(message_text, signature, wallet, chain)
        return
    code = await chain.call(lambda w3: w3.eth.get_code(AsyncWeb3.to_checksum_address(wallet)))
    if not code:
        if len(signature) not in (EOA_SIGNATURE_LENGTH, COMPACT_SIGNATURE_LENGTH):
            raise Unauthorized(
                f"An EOA signature is {EOA_SIGNATURE_LENGTH} bytes, or"
                f" {COMPACT_SIGNATURE_LENGTH} in EIP-2098's compact form.",
                code="signature_malformed",
            )
        raise Unauthorized("The signature is not the wallet's.", code="signature_invalid")
    digest = defunct_hash_message(text=message_text)

    async def is_valid_signature(w3: AsyncWeb3[Any]) -> bytes:
        contract = w3.eth.contract(address=AsyncWeb3.to_checksum_address(wallet), abi=EIP1271_ABI)
        try:
            result: bytes = await contract.functions.isValidSignature(digest, signature).call()
        except (ContractLogicError, BadFunctionCallOutput):
            return b""  # the contract answered: a revert or no such function is a refusal
        return result

    if (await chain.call(is_valid_signature))[:4] != EIP1271_MAGIC_VALUE:
        raise Unauthorized(
            "The contract wallet does not accept this signature.", code="signature_invalid"
        )


async def verify_counterfactual_signature(
    message_text: str, signature: bytes, wallet: str, chain: ChainRpc
) -> None:
    """An ERC-6492 signature, checked as viem's `verifyMessage` does: one deployless
    `eth_call` of the universal validator (contracts/src), which runs the wallet's
    factory inside the call when the wallet is not deployed and asks it through
    EIP-1271. Nothing is deployed and nothing is paid."""
    creation_code = bytes.fromhex(load_artifact("UniversalSignatureValidator")["bytecode"][2:])
    arguments = encode(
        ["address", "bytes32", "bytes"],
        [wallet, defunct_hash_message(text=message_text), signature],
    )

    async def validate(w3: AsyncWeb3[Any]) -> bytes:
        try:
            call = {"data": creation_code + arguments, "gas": VALIDATION_GAS}
            return bytes(await w3.eth.call(call))  # type: ignore[arg-type]
        except (ContractLogicError, BadFunctionCallOutput):
            return b""  # the validator reverted: a wrapper that does not decode

    if await chain.call(validate) != b"\x01":
        raise Unauthorized(
            "The smart wallet does not accept this signature (ERC-6492).",
            code="signature_invalid",
        )

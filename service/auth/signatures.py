"""Who signed a sign-in message: eth-account for EOAs, EIP-1271 on chain for contracts."""

from __future__ import annotations

from typing import Any

from eth_account.messages import defunct_hash_message
from web3 import AsyncWeb3
from web3.exceptions import BadFunctionCallOutput, ContractLogicError

from service.auth.rules import COMPACT_SIGNATURE_LENGTH, EOA_SIGNATURE_LENGTH, recover_signer
from service.chain.rpc import ChainRpc
from service.errors import Unauthorized

EIP1271_MAGIC_VALUE = bytes.fromhex("1626ba7e")
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

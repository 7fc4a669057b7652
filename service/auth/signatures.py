"""Who signed a sign-in message: eth-account for EOAs; on chain, EIP-1271 for deployed
contract wallets and ERC-6492 for those not deployed yet."""

from __future__ import annotations

from eth_abi.abi import encode
from web3 import AsyncWeb3

from service.auth.rules import (
    COMPACT_SIGNATURE_LENGTH,
    EOA_SIGNATURE_LENGTH,
    personal_message_hash,
    signed_by,
)
from service.chain.artifacts import load_artifact
from service.chain.execution import ExecutionFailed
from service.chain.rpc import ChainRpc
from service.errors import Unauthorized

EIP1271_MAGIC_VALUE = bytes.fromhex("1626ba7e")  # also isValidSignature's selector
ERC6492_SUFFIX = bytes.fromhex("6492" * 16)


async def verify_wallet_signature(
    message_text: str, signature: bytes, wallet: str, chain: ChainRpc, gas_cap: int
) -> None:
    """Accept the signature when `wallet` signed `message_text`, else raise Unauthorized.

    An EOA signature is checked locally; only when it does not recover to the wallet
    is the chain asked whether the wallet is a contract that accepts it (EIP-1271).
    Every call runs the wallet's own code, so it gets `gas_cap` and no more; code that
    reverts, runs out of it or answers in another shape refuses the signature.
    """
    if signed_by(message_text, signature, wallet):
        return
    if signature.endswith(ERC6492_SUFFIX):
        await verify_counterfactual_signature(message_text, signature, wallet, chain, gas_cap)
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
    question = EIP1271_MAGIC_VALUE + encode(
        ["bytes32", "bytes"], [personal_message_hash(message_text), signature]
    )
    answer = await _answer(chain, _capped_call(question, gas_cap, to=wallet))
    # As the universal validator reads it: a word that starts with the magic value.
    if len(answer) < 32 or answer[:4] != EIP1271_MAGIC_VALUE:
        raise Unauthorized(
            "The contract wallet does not accept this signature.", code="signature_invalid"
        )


async def verify_counterfactual_signature(
    message_text: str, signature: bytes, wallet: str, chain: ChainRpc, gas_cap: int
) -> None:
    """An ERC-6492 signature, checked as viem's `verifyMessage` does: one deployless
    `eth_call` of the universal validator (contracts/src), which runs the wallet's
    factory inside the call when the wallet is not deployed and asks it through
    EIP-1271. Nothing is deployed and nothing is paid; the wrapper's factory and
    calldata come from whoever signs in, so their code runs under `gas_cap`."""
    creation_code = bytes.fromhex(load_artifact("UniversalSignatureValidator")["bytecode"][2:])
    arguments = encode(
        ["address", "bytes32", "bytes"],
        [wallet, personal_message_hash(message_text), signature],
    )
    if await _answer(chain, _capped_call(creation_code + arguments, gas_cap)) != b"\x01":
        raise Unauthorized(
            "The smart wallet does not accept this signature (ERC-6492).",
            code="signature_invalid",
        )


def _capped_call(data: bytes, gas_cap: int, to: str | None = None) -> dict[str, str]:
    call = {"data": "0x" + data.hex(), "gas": hex(gas_cap)}
    return call if to is None else {"to": to, **call}


async def _answer(chain: ChainRpc, call: dict[str, str]) -> bytes:
    """What the call returned; nothing when the code it ran failed, which is that
    code's refusal (ChainUnavailable still means no node could be asked)."""
    try:
        return await chain.eth_call(call)
    except ExecutionFailed:
        return b""

"""Whose failure an `eth_call` answer is: the called code's, or the node's.

A call whose code reverted, ran out of the gas it was given or halted on a bad opcode
gets the same answer from every node: it says something about that code, nothing
against the node, so it is neither retried elsewhere nor counted in the node's health.
Anything else wrong (an error of the node's own, an answer of the wrong shape) is the
node's failure.

web3.py's exceptions do not draw that line: its `eth_call` turns any error answer whose
`data` is null into `ContractLogicError`, and prefixes "execution reverted" to any whose
`data` is an object, whatever the node meant. So the node's JSON-RPC error object is
read here as the node sent it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# EIP-1474 leaves error codes to nodes; geth, its forks and anvil answer a revert with 3.
EXECUTION_ERROR_CODE = 3
# Other failures of the called code, as nodes word them, compared in lower case without
# spaces or punctuation: geth and its forks ("execution reverted", "out of gas",
# "invalid opcode: INVALID", "stack underflow (0 <=> 2)", "invalid jump destination",
# "write protection", "return data out of bounds"), anvil ("EVM error OutOfGas",
# "EVM error InvalidFEOpcode"; before 1.0 "EvmError: OutOfGas"), Nethermind and Besu
# ("VM execution error.", "Execution reverted").
_EXECUTION_FAILURES = (
    "reverted",
    "outofgas",
    "evmerror",
    "vmexecutionerror",
    "invalidopcode",
    "invalidjump",
    "stackunderflow",
    "stackoverflow",
    "stacklimitreached",
    "writeprotection",
    "returndataoutofbounds",
)
_NOT_LETTERS = re.compile(r"[^a-z]+")
_HEX_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")


class ExecutionFailed(Exception):
    """The called code failed on the node (reverted, out of gas, halted): its answer."""


class NodeError(ValueError):
    """The node answered an error of its own, or an answer that is not call data."""


def is_execution_failure(error: Mapping[str, Any]) -> bool:
    """Whether a JSON-RPC error object (`{"code", "message", "data"?}`) reports the
    called code's own failure rather than the node's."""
    if error.get("code") == EXECUTION_ERROR_CODE:
        return True
    message = error.get("message")
    if not isinstance(message, str):
        return False
    squeezed = _NOT_LETTERS.sub("", message.lower())
    return any(phrase in squeezed for phrase in _EXECUTION_FAILURES)


def call_result(response: Mapping[str, Any]) -> bytes:
    """The bytes an `eth_call` returned, from the node's JSON-RPC response.

    Raises `ExecutionFailed` when the called code failed, `NodeError` when the node
    failed: an error of its own, or a result that is not 0x-prefixed hex bytes.
    """
    error = response.get("error")
    if error is not None:
        if isinstance(error, Mapping) and is_execution_failure(error):
            raise ExecutionFailed
        raise NodeError("the node answered eth_call with an error of its own")
    result = response.get("result")
    if not isinstance(result, str) or not _HEX_DATA.fullmatch(result):
        raise NodeError("the node's eth_call result is not hex data")
    return bytes.fromhex(result[2:])

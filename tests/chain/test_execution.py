"""Whose failure an `eth_call` answer is, as nodes really word it: the called code's
(a refusal, never a node's failure) or the node's (worth another node)."""

from __future__ import annotations

from typing import Any

import pytest

from service.chain.execution import (
    ExecutionFailed,
    NodeError,
    call_result,
    is_execution_failure,
)

REVERT_DATA = "0x08c379a0" + "00" * 31 + "20" + "00" * 31 + "04" + "6e6f7065" + "00" * 28

THE_CODES_OWN = [
    # anvil 1.x, as the tests' own node answers
    {"code": 3, "message": "execution reverted: HostileWallet: never", "data": REVERT_DATA},
    {"code": 3, "message": "execution reverted", "data": "0x"},
    {"code": -32603, "message": "EVM error OutOfGas"},
    {"code": -32603, "message": "EVM error InvalidFEOpcode"},
    {"code": -32603, "message": "EVM error StackUnderflow"},
    {"code": -32603, "message": "EVM error InvalidJump"},
    # anvil before 1.0
    {"code": -32000, "message": "EvmError: OutOfGas"},
    {"code": -32003, "message": "EvmError: Revert"},
    # geth and its forks (Mezo's among them)
    {"code": -32000, "message": "out of gas"},
    {"code": -32000, "message": "execution reverted"},
    {"code": -32000, "message": "invalid opcode: INVALID"},
    {"code": -32000, "message": "stack underflow (0 <=> 2)"},
    {"code": -32000, "message": "stack limit reached 1024 (1023)"},
    {"code": -32000, "message": "invalid jump destination"},
    {"code": -32000, "message": "write protection"},
    {"code": -32000, "message": "return data out of bounds"},
    # Nethermind, Besu
    {"code": -32015, "message": "VM execution error.", "data": "Reverted 0x"},
    {"code": -32000, "message": "Execution reverted"},
    # code 3 is a revert whatever the words
    {"code": 3, "message": "something else"},
]

THE_NODES_OWN = [
    {"code": -32000, "message": "header not found"},
    {"code": -32000, "message": "missing trie node 0badc0de (path )"},
    {"code": -32000, "message": "execution aborted (timeout = 5s)"},
    {"code": -32000, "message": "intrinsic gas too high -- CallGasCostMoreThanGasLimit"},
    {"code": -32005, "message": "limit exceeded"},
    {"code": -32601, "message": "the method eth_call does not exist/is not available"},
    {"code": -32602, "message": "invalid argument 0: hex string without 0x prefix"},
    {"code": -32603, "message": "Internal error"},
    {"code": 429, "message": "Too Many Requests"},
    # web3.py would call the first two ContractLogicError: data null, or an object
    {"code": -32000, "message": "header not found", "data": None},
    {"code": -32000, "message": "request timed out", "data": {"detail": "upstream"}},
    {"code": -32000},
    {"message": None},
    {},
]


@pytest.mark.parametrize("error", THE_CODES_OWN, ids=lambda e: str(e.get("message")))
def test_the_called_codes_own_failures_are_execution_failures(error: dict[str, Any]) -> None:
    assert is_execution_failure(error)
    with pytest.raises(ExecutionFailed):
        call_result({"jsonrpc": "2.0", "id": 1, "error": error})


@pytest.mark.parametrize("error", THE_NODES_OWN, ids=lambda e: str(e.get("message")))
def test_the_nodes_own_errors_are_node_failures(error: dict[str, Any]) -> None:
    assert not is_execution_failure(error)
    with pytest.raises(NodeError):
        call_result({"jsonrpc": "2.0", "id": 1, "error": error})


@pytest.mark.parametrize(
    ("result", "answer"),
    [
        ("0x", b""),
        ("0x1626ba", bytes.fromhex("1626ba")),  # the code's answer, however short
        ("0x1626BA7E" + "00" * 28, bytes.fromhex("1626ba7e") + bytes(28)),
    ],
)
def test_the_result_is_the_bytes_the_call_returned(result: str, answer: bytes) -> None:
    assert call_result({"jsonrpc": "2.0", "id": 1, "result": result}) == answer


@pytest.mark.parametrize(
    "response",
    [
        {"jsonrpc": "2.0", "id": 1, "result": 42},
        {"jsonrpc": "2.0", "id": 1, "result": None},
        {"jsonrpc": "2.0", "id": 1, "result": "1626ba7e"},
        {"jsonrpc": "2.0", "id": 1, "result": "0x1626ba7"},
        {"jsonrpc": "2.0", "id": 1, "result": "0xzz"},
        {"jsonrpc": "2.0", "id": 1, "result": {"data": "0x"}},
        {"jsonrpc": "2.0", "id": 1, "error": "execution reverted"},  # not an error object
        {"jsonrpc": "2.0", "id": 1},
    ],
    ids=repr,
)
def test_an_answer_that_is_not_call_data_is_the_nodes_failure(response: dict[str, Any]) -> None:
    with pytest.raises(NodeError):
        call_result(response)

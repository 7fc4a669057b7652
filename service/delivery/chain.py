"""What the chain says about a transaction, read through the failover RPC client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hexbytes import HexBytes
from web3 import AsyncWeb3
from web3.exceptions import BlockNotFound, TransactionNotFound

from service.chain.rpc import ChainRpc
from service.delivery.rules import TRANSFER_TOPIC, Transfer, decode_transfer, receipt_transfers
from service.tracing import AttributeValue, span

LOG_PAGE_BLOCKS = 10_000  # Mezo's nodes cap eth_getLogs ranges at 10,000 blocks


@dataclass(frozen=True)
class Observation:
    """A transaction as the chain shows it now; `found` is false while it is unknown."""

    found: bool
    reverted: bool = False
    block_number: int | None = None
    block_hash: str | None = None
    head: int = 0
    transfers: list[Transfer] = field(default_factory=list)

    @property
    def confirmations(self) -> int:
        """The block holding the transaction counts as the first."""
        if self.block_number is None:
            return 0
        return max(0, self.head - self.block_number + 1)


async def observe_transaction(rpc: ChainRpc, tx_hash: str) -> Observation:
    async def read(w3: AsyncWeb3[Any]) -> Observation:
        try:
            receipt = await w3.eth.get_transaction_receipt(HexBytes(tx_hash))
        except TransactionNotFound:
            return Observation(found=False, head=await w3.eth.block_number)
        head = await w3.eth.block_number
        number = int(receipt["blockNumber"])
        try:
            canonical = await w3.eth.get_block(number)
        except BlockNotFound:
            canonical = None
        block_hash = HexBytes(receipt["blockHash"]).hex()
        if canonical is None or HexBytes(canonical["hash"]).hex() != block_hash:
            # The receipt names a block that is no longer on the chain: not final.
            return Observation(found=False, head=head)
        transfers = receipt_transfers([dict(log) for log in receipt["logs"]])
        return Observation(
            found=True,
            reverted=int(receipt["status"]) == 0,
            block_number=number,
            block_hash=_prefixed(block_hash),
            head=head,
            transfers=transfers,
        )

    return await rpc.call(read)


async def first_block_at(rpc: ChainRpc, timestamp: int) -> int:
    """The first block at or after `timestamp` (binary search over block times)."""

    async def search(w3: AsyncWeb3[Any]) -> int:
        low, high = 0, int(await w3.eth.block_number)
        while low < high:
            middle = (low + high) // 2
            if int((await w3.eth.get_block(middle))["timestamp"]) < timestamp:
                low = middle + 1
            else:
                high = middle
        return low

    return await rpc.call(search)


async def transfers_to(
    rpc: ChainRpc, token: str, wallet: str, from_block: int
) -> list[tuple[str, Transfer]]:
    """Every transfer of `token` to `wallet` since `from_block`, with its transaction
    (the transfers' positions in their transactions are unknown here: -1)."""

    async def search(w3: AsyncWeb3[Any]) -> list[tuple[str, Transfer]]:
        head = await w3.eth.block_number
        found: list[tuple[str, Transfer]] = []
        start = from_block
        while start <= head:
            end = min(head, start + LOG_PAGE_BLOCKS - 1)
            logs = await w3.eth.get_logs(
                {
                    "address": AsyncWeb3.to_checksum_address(token),
                    "topics": [TRANSFER_TOPIC, None, "0x" + "0" * 24 + wallet[2:].lower()],
                    "fromBlock": start,
                    "toBlock": end,
                }
            )
            for log in logs:
                if (transfer := decode_transfer(dict(log))) is not None:
                    found.append((_prefixed(HexBytes(log["transactionHash"]).hex()), transfer))
            start = end + 1
        return found

    return await rpc.call(search)


def _prefixed(value: str) -> str:
    return value if value.startswith("0x") else "0x" + value


async def observe_transactions(rpc: ChainRpc, tx_hashes: list[str]) -> dict[str, Observation]:
    """`observe_transaction` for many transactions in two JSON-RPC batch requests:
    every receipt with the chain head, then every block those receipts name."""
    if not tx_hashes:
        return {}

    async def read(w3: AsyncWeb3[Any]) -> dict[str, Observation]:
        provider = w3.provider
        calls: list[tuple[Any, Any]] = [("eth_blockNumber", [])]
        calls += [("eth_getTransactionReceipt", [tx]) for tx in tx_hashes]
        answers = _results(await provider.make_batch_request(calls))
        head, receipts = int(answers[0], 16), answers[1:]
        numbers = sorted({int(r["blockNumber"], 16) for r in receipts if r})
        blocks = (
            _results(
                await provider.make_batch_request(
                    [("eth_getBlockByNumber", [hex(n), False]) for n in numbers]
                )
            )
            if numbers
            else []
        )
        canonical = {n: (b or {}).get("hash") for n, b in zip(numbers, blocks, strict=True)}
        seen: dict[str, Observation] = {}
        for tx, receipt in zip(tx_hashes, receipts, strict=True):
            if (
                not receipt
                or canonical.get(int(receipt["blockNumber"], 16)) != receipt["blockHash"]
            ):
                seen[tx] = Observation(found=False, head=head)
                continue
            seen[tx] = Observation(
                found=True,
                reverted=int(receipt["status"], 16) == 0,
                block_number=int(receipt["blockNumber"], 16),
                block_hash=receipt["blockHash"],
                head=head,
                transfers=receipt_transfers(receipt["logs"]),
            )
        return seen

    attributes: dict[str, AttributeValue] = {
        "chain.network": rpc.network,
        "chain.transactions": len(tx_hashes),
    }
    with span("rpc batch", **attributes):
        return await rpc.call(read)


def _results(responses: Any) -> list[Any]:
    """The `result` of each batched call; a node error fails the whole batch over."""
    if not isinstance(responses, list):
        raise ValueError(f"batch refused: {responses}")
    for response in responses:
        if "error" in response:
            raise ValueError(f"batch call failed: {response['error']}")
    return [response.get("result") for response in responses]

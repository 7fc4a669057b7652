"""JSON-RPC access to the chain through web3.py's async API, in failover order.

One client per network (`MEZO_RPC_URLS`, `BASE_RPC_URLS`, …). Each call goes to the
first URL of its network and moves on to the next when one times out or fails at the
transport level; only when every URL has failed does the caller see `ChainUnavailable`.
An `eth_call` whose own code fails is the code's answer, not a node's failure
(`execution.py`): the caller sees `ExecutionFailed` at once, and no node's health moves.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from aiohttp import ClientError
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3Exception
from web3.types import RPCEndpoint

from service.chain import metrics
from service.chain.execution import ExecutionFailed, call_result
from service.columns import utcnow
from service.errors import NotConfigured
from service.settings import ChainSettings, NetworkRpc

T = TypeVar("T")
RETRY_PASSES = 2
RETRY_PAUSE_SECONDS = 0.25
# A node that failed this many calls in a row is left alone for the cool-down.
BREAKER_FAILURES = 3
BREAKER_COOLDOWN_SECONDS = 30.0
log = structlog.get_logger("onramp.chain")

# Failures of a node, not of the request: worth trying the next URL. The lookup and
# type errors are answers of the wrong shape (a receipt that is a number, say), which a
# broken node or proxy sends with a 200.
_NODE_FAILURES = (
    TimeoutError,
    ClientError,
    OSError,
    Web3Exception,
    ValueError,
    KeyError,
    IndexError,
    TypeError,
)


class _WrongChain(Exception):
    """The node answers for another chain; it is never used."""


class ChainUnavailable(NotConfigured):
    """No configured RPC URL could answer; the caller may retry later."""

    code = "chain_unavailable"


@dataclass
class NodeHealth:
    """What the last call to one RPC URL showed; readiness reports it without probing."""

    host: str
    status: str = "unknown"
    chain_checked: bool = False
    failures: int = 0  # consecutive
    open_until: float = 0.0  # monotonic time until which the circuit stays open
    checked_at: datetime | None = None
    detail: str | None = None


class ChainRpc:
    def __init__(self, network: NetworkRpc, timeout_seconds: float) -> None:
        self.network = network.network
        self.urls = list(network.rpc_urls)
        self.timeout = timeout_seconds
        self.chain_id = network.chain_id
        # Hosted RPC URLs carry API keys in their paths: only the host is ever shown.
        self.health = [NodeHealth(_host(url)) for url in self.urls]
        self._nodes = [
            AsyncWeb3(
                AsyncHTTPProvider(
                    url,
                    request_kwargs={"timeout": self.timeout},
                    # Failover to the next URL replaces web3's own retry loop.
                    exception_retry_configuration=None,
                )
            )
            for url in self.urls
        ]

    async def call(self, operation: Callable[[AsyncWeb3[Any]], Awaitable[T]]) -> T:
        """`operation` on the first healthy node, failing over in order; one more pass
        after a short pause when every node failed. `ExecutionFailed` is no node's
        failure: it ends the call at once."""
        last_error: BaseException | None = None
        for attempt in range(RETRY_PASSES):
            if attempt:
                await asyncio.sleep(RETRY_PAUSE_SECONDS * attempt)
            for health, node in self._in_failover_order():
                try:
                    return await self._call_node(health, node, operation)
                except (*_NODE_FAILURES, _WrongChain) as error:
                    last_error = error
        raise ChainUnavailable(
            f"No chain RPC node answered ({type(last_error).__name__}); try again shortly."
        )

    async def eth_call(self, transaction: Mapping[str, str]) -> bytes:
        """What `transaction` (hex strings: `to`, `data`, `gas`) returns at the latest
        block, failing over like `call`; `ExecutionFailed` when its own code failed.

        Sent as the caller wrote it, past web3's request and error formatters, so that
        the node's own error object decides whose failure it is (`execution.py`).
        """

        async def run(w3: AsyncWeb3[Any]) -> bytes:
            endpoint = RPCEndpoint("eth_call")
            return call_result(await w3.provider.make_request(endpoint, [transaction, "latest"]))

        return await self.call(run)

    def _in_failover_order(self) -> list[tuple[NodeHealth, AsyncWeb3[Any]]]:
        """Nodes in configured order, skipping those on another chain and those whose
        circuit is open (failed repeatedly, cooling down) unless no other node is left."""
        usable = [
            (health, node)
            for health, node in zip(self.health, self._nodes, strict=True)
            if health.status != "wrong_chain"
        ]
        closed = [(h, n) for h, n in usable if h.open_until <= time.monotonic()]
        return closed or usable

    async def _call_node(
        self,
        health: NodeHealth,
        node: AsyncWeb3[Any],
        operation: Callable[[AsyncWeb3[Any]], Awaitable[T]],
    ) -> T:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.timeout):
                if not health.chain_checked:
                    await self._check_chain(health, node)
                if health.status == "wrong_chain":
                    raise _WrongChain(health.detail)
                result = await operation(node)
        except ExecutionFailed:
            # The node did its job: its health stays as it was, and nothing is retried.
            metrics.rpc_calls.labels(health.host, "execution_failed").inc()
            raise
        except _NODE_FAILURES as error:
            health.status, health.detail = "unavailable", type(error).__name__
            health.checked_at = utcnow()
            health.failures += 1
            if health.failures >= BREAKER_FAILURES:
                health.open_until = time.monotonic() + BREAKER_COOLDOWN_SECONDS
            metrics.rpc_calls.labels(health.host, "error").inc()
            log.warning("rpc_failed", host=health.host, error=type(error).__name__)
            raise
        finally:
            metrics.rpc_seconds.labels(health.host).observe(time.perf_counter() - started)
        health.status, health.detail, health.checked_at = "ok", None, utcnow()
        health.failures, health.open_until = 0, 0.0
        metrics.rpc_calls.labels(health.host, "ok").inc()
        return result

    async def _check_chain(self, health: NodeHealth, node: AsyncWeb3[Any]) -> None:
        """A node on another chain is refused for good: the same token address can
        exist on several chains (MUSD's does)."""
        chain_id = await node.eth.chain_id
        health.chain_checked = True
        if chain_id != self.chain_id:
            health.status = "wrong_chain"
            health.detail = f"chain id {chain_id}, expected {self.chain_id}"
            health.checked_at = utcnow()
            log.error("rpc_wrong_chain", host=health.host, chain_id=chain_id)

    def report(self) -> dict[str, Any]:
        """Reachability as last seen: ok if any node answered its last call."""
        return {"status": _overall(self.health), "nodes": self.nodes_report()}

    def nodes_report(self) -> list[dict[str, Any]]:
        return [
            {
                "network": self.network,
                "host": health.host,
                "status": health.status,
                "checkedAt": health.checked_at.isoformat() if health.checked_at else None,
                "detail": health.detail,
            }
            for health in self.health
        ]

    async def close(self) -> None:
        for node in self._nodes:
            await node.provider.disconnect()


class Chains:
    """One `ChainRpc` per configured network, made once per process."""

    def __init__(self, settings: ChainSettings) -> None:
        self.by_network = {
            name: ChainRpc(network, settings.rpc_timeout_seconds)
            for name, network in settings.networks.items()
        }

    @property
    def mezo(self) -> ChainRpc:
        """Mezo's chain: where sign-in checks contract wallets."""
        return self.by_network["mezo"]

    def report(self) -> dict[str, Any]:
        """Every network's nodes as last seen; ok when every network has a node that
        answered (so a dead Base node shows even while Mezo is fine)."""
        statuses = [_overall(rpc.health) for rpc in self.by_network.values()]
        overall = (
            "ok"
            if all(s == "ok" for s in statuses)
            else "unknown"
            if all(s == "unknown" for s in statuses)
            else "unavailable"
        )
        nodes = [node for rpc in self.by_network.values() for node in rpc.nodes_report()]
        return {"status": overall, "nodes": nodes}

    async def close(self) -> None:
        for rpc in self.by_network.values():
            await rpc.close()


def _overall(health: list[NodeHealth]) -> str:
    statuses = {h.status for h in health}
    return "ok" if "ok" in statuses else "unknown" if statuses == {"unknown"} else "unavailable"


def _host(url: str) -> str:
    """host[:port] of an RPC URL: enough to tell nodes apart, never its key or path."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else parts.hostname or "?"

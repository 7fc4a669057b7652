"""JSON-RPC access to the chain through web3.py's async API, in failover order.

Each call goes to the first URL of `MEZO_RPC_URLS` and moves on to the next when one
times out or fails at the transport level; only when every URL has failed does the
caller see `ChainUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import structlog
from aiohttp import ClientError
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3Exception

from service.columns import utcnow
from service.errors import NotConfigured
from service.settings import ChainSettings

T = TypeVar("T")
log = structlog.get_logger("onramp.chain")

# Failures of a node, not of the request: worth trying the next URL.
_NODE_FAILURES = (TimeoutError, ClientError, OSError, Web3Exception, ValueError)


class ChainUnavailable(NotConfigured):
    """No configured RPC URL could answer; the caller may retry later."""

    code = "chain_unavailable"


@dataclass
class NodeHealth:
    """What the last call to one RPC URL showed; readiness reports it without probing."""

    host: str
    status: str = "unknown"
    chain_checked: bool = False
    checked_at: datetime | None = None
    detail: str | None = None


class ChainRpc:
    def __init__(self, settings: ChainSettings) -> None:
        self.urls = list(settings.rpc_urls)
        self.timeout = settings.rpc_timeout_seconds
        self.chain_id = settings.chain_id
        # Hosted RPC URLs carry API keys in their paths: only the host is ever shown.
        self.health = [NodeHealth(urlsplit(url).hostname or "?") for url in self.urls]
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
        last_error: BaseException | None = None
        for health, node in zip(self.health, self._nodes, strict=True):
            if health.status == "wrong_chain":
                continue
            try:
                async with asyncio.timeout(self.timeout):
                    if not health.chain_checked:
                        await self._check_chain(health, node)
                        if health.status == "wrong_chain":
                            continue
                    result = await operation(node)
            except _NODE_FAILURES as error:
                last_error = error
                health.status, health.detail = "unavailable", type(error).__name__
                health.checked_at = utcnow()
                log.warning("rpc_failed", host=health.host, error=type(error).__name__)
                continue
            health.status, health.detail, health.checked_at = "ok", None, utcnow()
            return result
        raise ChainUnavailable(
            f"No chain RPC node answered ({type(last_error).__name__}); try again shortly."
        )

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
        statuses = {health.status for health in self.health}
        overall = (
            "ok" if "ok" in statuses else "unknown" if statuses == {"unknown"} else "unavailable"
        )
        return {
            "status": overall,
            "nodes": [
                {
                    "host": health.host,
                    "status": health.status,
                    "checkedAt": health.checked_at.isoformat() if health.checked_at else None,
                    "detail": health.detail,
                }
                for health in self.health
            ],
        }

    async def close(self) -> None:
        for node in self._nodes:
            await node.provider.disconnect()

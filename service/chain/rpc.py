"""JSON-RPC access to the chain through web3.py's async API, in failover order.

Each call goes to the first URL of `MEZO_RPC_URLS` and moves on to the next when one
times out or fails at the transport level; only when every URL has failed does the
caller see `ChainUnavailable`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog
from aiohttp import ClientError
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3Exception

from service.errors import NotConfigured
from service.settings import ChainSettings

T = TypeVar("T")
log = structlog.get_logger("onramp.chain")

# Failures of a node, not of the request: worth trying the next URL.
_NODE_FAILURES = (TimeoutError, ClientError, OSError, Web3Exception, ValueError)


class ChainUnavailable(NotConfigured):
    """No configured RPC URL could answer; the caller may retry later."""

    code = "chain_unavailable"


class ChainRpc:
    def __init__(self, settings: ChainSettings) -> None:
        self.urls = list(settings.rpc_urls)
        self.timeout = settings.rpc_timeout_seconds
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
        for url, node in zip(self.urls, self._nodes, strict=True):
            try:
                async with asyncio.timeout(self.timeout):
                    return await operation(node)
            except _NODE_FAILURES as error:
                last_error = error
                log.warning("rpc_failed", url=url, error=type(error).__name__)
        raise ChainUnavailable(
            f"No chain RPC node answered ({type(last_error).__name__}); try again shortly."
        )

    async def close(self) -> None:
        for node in self._nodes:
            await node.provider.disconnect()

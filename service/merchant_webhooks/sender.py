"""One attempt on the wire: to the address that was checked, 10 s at most, no redirects.

The URL's host is resolved and checked (`addresses.checked_address`), then the request
goes to that IP address with the URL's host kept in the `Host` header and, for https, as
TLS's server name (aiohttp's `server_hostname`: SNI and the certificate's check), so the
certificate is checked for the endpoint's own name. One client per endpoint: its pooled
connections were made for that endpoint's name only.

aiohttp rather than httpx: an attempt cost the worker 1.5-1.9 ms of CPU through httpx
(most of it httpcore's pool and anyio's stream attributes), 0.4 ms through aiohttp, and
the dispatcher's lanes share one process (bench/README.md, "Merchant webhooks"); the
Stripe client moved to aiohttp for the same reason.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from service.merchant_webhooks.addresses import (
    EndpointRefused,
    Resolver,
    checked_address,
    resolve,
    target_of,
)
from service.merchant_webhooks.rules import ATTEMPT_TIMEOUT_SECONDS, RESPONSE_KEPT_BYTES


@dataclass(frozen=True)
class Answer:
    status_code: int | None
    error: str | None
    duration_ms: int
    response_body: str | None


class Sender:
    def __init__(
        self,
        deployed: bool,
        resolver: Resolver = resolve,
        timeout_seconds: float = ATTEMPT_TIMEOUT_SECONDS,
        connections: int = 8,
        trust: ssl.SSLContext | None = None,
    ) -> None:
        """`trust`: the certificate authorities an endpoint's certificate must come
        from; the system's unless given."""
        self.deployed = deployed
        self.resolver = resolver
        self.timeout_seconds = timeout_seconds
        self.client = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ssl=trust if trust else True),
            timeout=aiohttp.ClientTimeout(total=timeout_seconds),
            trust_env=False,  # no proxy from the environment between us and the check
        )

    async def close(self) -> None:
        await self.client.close()

    async def send(self, url: str, headers: dict[str, str], body: str) -> Answer:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                code, kept = await self._post(url, headers, body)
        except EndpointRefused as refused:
            return _failed(started, f"refused: the URL {refused}")
        except TimeoutError:
            return _failed(started, f"no answer within {self.timeout_seconds:g} s")
        except aiohttp.ClientError as error:
            return _failed(started, f"{type(error).__name__}: {error}"[:500])
        return Answer(code, _failure(code), _since(started), kept)

    async def _post(self, url: str, headers: dict[str, str], body: str) -> tuple[int, str]:
        target = target_of(url, self.deployed)
        address = await checked_address(target, self.deployed, self.resolver)
        given = URL(url)
        pinned = given.with_host(str(address))
        async with self.client.post(
            pinned,
            data=body.encode(),
            headers={**headers, "host": given.host_port_subcomponent or ""},
            allow_redirects=False,
            server_hostname=target.host if target.scheme == "https" else None,
        ) as response:
            kept = bytearray()
            while len(kept) < RESPONSE_KEPT_BYTES:
                chunk = await response.content.read(RESPONSE_KEPT_BYTES - len(kept))
                if not chunk:
                    break
                kept += chunk
            return response.status, kept.decode("utf-8", "replace")


def _failure(code: int) -> str | None:
    if 300 <= code < 400:
        return f"redirect not followed ({code})"
    return None if 200 <= code < 300 else f"answered {code}"


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _failed(started: float, error: str) -> Answer:
    return Answer(None, error, _since(started), None)

"""A JSON-RPC node in trouble: a proxy in front of anvil that can answer like a broken
load balancer, an erroring node, a buggy node or a hung one, then heal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from service.demo.local_servers import serve_in_thread

Receive = Any
Send = Any

MODES = ("healthy", "html", "bad_gateway", "rpc_error", "malformed", "hang")


class TroubledNode:
    """ASGI app: `mode` says how the next requests are answered; with `methods` set,
    only requests for those JSON-RPC methods are in trouble. `calls` keeps each
    request's JSON-RPC calls ({"method", "params"}) as they came in."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.mode = "healthy"
        self.methods: frozenset[str] | None = None
        self.requests = 0
        self.calls: list[dict[str, Any]] = []
        self.url = ""
        self._server: Any = None
        self._thread: Any = None

    def stop(self) -> None:
        self.mode, self.methods = "healthy", None
        self._server.should_exit = True
        self._thread.join(timeout=10)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests += 1
        status, payload, content_type = await self.answer(body)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type.encode())],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    def calls_of(self, method: str) -> list[dict[str, Any]]:
        return [call for call in self.calls if call.get("method") == method]

    async def answer(self, body: bytes) -> tuple[int, bytes, str]:
        request = json.loads(body)
        calls = request if isinstance(request, list) else [request]
        self.calls += calls
        troubled = self.methods is None or any(c.get("method") in self.methods for c in calls)
        mode = self.mode if troubled else "healthy"
        if mode == "html":
            return 200, b"<html><body>502 Bad Gateway</body></html>", "text/html"
        if mode == "bad_gateway":
            return 502, b"upstream connect error", "text/plain"
        if mode == "hang":
            for _ in range(1200):  # a minute, or until the node heals
                if self.mode != "hang":
                    break
                await asyncio.sleep(0.05)
        if mode == "rpc_error":
            return 200, json.dumps(_each(request, _error)).encode(), "application/json"
        async with httpx.AsyncClient() as http:
            upstream = await http.post(
                self.upstream,
                content=body,
                headers={"content-type": "application/json"},
                timeout=10,
            )
        if mode == "malformed":
            return 200, json.dumps(_each(upstream.json(), _mangle)).encode(), "application/json"
        return upstream.status_code, upstream.content, "application/json"


def _each(message: Any, change: Any) -> Any:
    return [change(m) for m in message] if isinstance(message, list) else change(message)


def _error(request: dict[str, Any]) -> dict[str, Any]:
    error = {"code": -32000, "message": "header not found"}
    return {"jsonrpc": "2.0", "id": request.get("id"), "error": error}


def _mangle(response: dict[str, Any]) -> dict[str, Any]:
    """Structured answers turn into nonsense; plain numbers (the chain id, the head)
    stay true, as from a node whose indexer broke."""
    result = response.get("result")
    if isinstance(result, dict):
        return {**response, "result": 42}
    if isinstance(result, list):
        return {**response, "result": "0x"}
    return response


@contextmanager
def troubled_node_before(upstream: str) -> Iterator[TroubledNode]:
    """A troubled node in front of `upstream` until the block ends."""
    node = TroubledNode(upstream)
    node.url, node._server, node._thread = serve_in_thread(node)
    try:
        yield node
    finally:
        node.stop()

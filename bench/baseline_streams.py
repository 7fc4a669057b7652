"""The floor for live status: the same streams from a bare ASGI app that keeps them in
one process and fans a change out from memory (no database, no framework, no auth).

    GET /events/{id}    text/event-stream: one event at once, one per change
    POST /change/{id}   every stream of {id} gets an event
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

_watchers: defaultdict[str, set[asyncio.Queue[int]]] = defaultdict(set)
_version = 0


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    global _version
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path: str = scope["path"]
    if path == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if path.startswith("/change/"):
        _version += 1
        for watcher in _watchers[path.removeprefix("/change/")]:
            watcher.put_nowait(_version)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})
        return
    key = path.removeprefix("/events/")
    queue: asyncio.Queue[int] = asyncio.Queue()
    _watchers[key].add(queue)
    headers = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    try:
        version = _version
        while True:
            body = f'id: {version}\r\nevent: session\r\ndata: {{"id": "{key}"}}\r\n\r\n'
            await send({"type": "http.response.body", "body": body.encode(), "more_body": True})
            version = await queue.get()
    finally:
        _watchers[key].discard(queue)

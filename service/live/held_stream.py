"""An event stream response that gives its slot back however the response ends.

Written here because Litestar runs a response's background tasks only after a clean
end, and never closes a generator it did not start (a client gone before the first
event) or left at a `yield` (a client gone while an event was being sent): the slot
and the generator's watch would then wait for the garbage collector. So the release
wraps the whole ASGI response, in a `finally`.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

from litestar.response import ServerSentEvent, ServerSentEventMessage
from litestar.response.base import ASGIResponse
from litestar.types import Receive, Scope, Send

from service.live.slots import Slot

Events = AsyncGenerator[ServerSentEventMessage, None]


class HeldEventStream(ServerSentEvent):
    """Server-Sent Events from `events`, holding `slot` until the response is over."""

    __slots__ = ("_events", "_slot")

    def __init__(self, events: Events, slot: Slot, **kwargs: Any) -> None:
        super().__init__(events, **kwargs)
        self._events = events
        self._slot = slot

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        try:
            response = super().to_asgi_response(*args, **kwargs)
        except BaseException:
            self._slot.release()
            raise
        return _Releasing(response, self._events, self._slot)


class _Releasing(ASGIResponse):
    """`response`, then the slot given back and the events closed, whatever happened."""

    __slots__ = ("_events", "_response", "_slot")

    def __init__(self, response: ASGIResponse, events: Events, slot: Slot) -> None:
        # Not ASGIResponse.__init__: everything but the call is the wrapped response's.
        self._response = response
        self._events = events
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self._response(scope, receive, send)
        finally:
            self._slot.release()
            await self._events.aclose()

"""How the service reads JSON request bodies.

msgspec decodes JSON recursively and gives up with a `RecursionError`, not a decode
error, at about a thousand levels of nesting: two kilobytes of `[` are enough. Litestar
lets that escape as a 500, so every JSON route would answer a hostile body with a
server error. Reading it here turns it into the 400 any other malformed body gets.
"""

from __future__ import annotations

from typing import Any

from litestar import Request
from litestar.exceptions import ClientException


class OnrampRequest(Request[Any, Any, Any]):
    async def json(self) -> Any:
        try:
            return await super().json()
        except RecursionError as error:
            raise ClientException("The JSON body is nested too deeply.") from error

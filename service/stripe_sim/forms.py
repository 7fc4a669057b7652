"""Decoding Stripe's form-encoded request bodies into nested values.

Stripe (and stripe-python) encode nested parameters Rails-style: `metadata[key]=v`,
`destination_networks[0]=mezo` or `destination_networks[]=mezo`. No maintained Python
library decodes that form, so this does, for the shapes the onramp API uses: objects of
scalars and lists of scalars, one level deep.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

_KEY = re.compile(r"^(?P<name>[A-Za-z0-9_]+)(?:\[(?P<index>[^\[\]]*)\])?$")

FormValue = str | list[str] | dict[str, str]


class FormError(ValueError):
    """A parameter name the decoder does not understand."""


def decode_form(body: bytes | str) -> dict[str, FormValue]:
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    result: dict[str, FormValue] = {}
    indexed: dict[str, dict[int, str]] = {}
    for raw_key, value in parse_qsl(text, keep_blank_values=True, strict_parsing=False):
        match = _KEY.match(raw_key)
        if match is None:
            raise FormError(f"Invalid parameter name: {raw_key}")
        name, index = match["name"], match["index"]
        if index is None:
            result[name] = value
        elif index == "":
            current = result.setdefault(name, [])
            if not isinstance(current, list):
                raise FormError(f"Invalid array: {name}")
            current.append(value)
        elif index.isdigit():
            indexed.setdefault(name, {})[int(index)] = value
        else:
            current = result.setdefault(name, {})
            if not isinstance(current, dict):
                raise FormError(f"Invalid hash: {name}")
            current[index] = value
    for name, items in indexed.items():
        existing = result.get(name, [])
        if not isinstance(existing, list):
            raise FormError(f"Invalid array: {name}")
        result[name] = existing + [items[i] for i in sorted(items)]
    return result

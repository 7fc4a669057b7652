"""The fingerprint of the settings every process of a deployment must hold alike
(`SHARED_SETTINGS` in service/settings/groups.py), and how two fingerprints differ.

Pure: no I/O. A value enters only through a hash, and a secret's value only through its
own SHA-256 first, so neither a row nor a log line can give a setting back.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, SecretStr

from service.settings import Settings
from service.settings.groups import SHARED_SETTINGS

# Enough to tell two values apart, too short to be much help to whoever guesses one.
DIGEST_LENGTH = 16


@dataclass(frozen=True, slots=True)
class Fingerprint:
    value: str
    # Each shared setting's name and its short digest.
    digests: dict[str, str]

    def differing(self, other: dict[str, str]) -> list[str]:
        """The settings whose digests differ from `other`'s. A setting only one side
        knows (another release's list) is not compared."""
        return sorted(
            name for name, digest in self.digests.items() if name in other and other[name] != digest
        )


def shared_values(settings: Settings) -> dict[str, Any]:
    """Each shared setting's value, by its environment variable's name."""
    found: dict[str, Any] = {}
    for group_name in Settings.model_fields:
        group = getattr(settings, group_name)
        for field_name, field in type(group).model_fields.items():
            if field.alias in SHARED_SETTINGS:
                found[field.alias] = getattr(group, field_name)
    missing = SHARED_SETTINGS.keys() - found.keys()
    if missing:
        raise LookupError(f"not a setting: {', '.join(sorted(missing))}")
    return found


def fingerprint_of(settings: Settings) -> Fingerprint:
    digests = {}
    full = []
    for name, value in sorted(shared_values(settings).items()):
        text = json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))
        digest = hashlib.sha256(f"{name}\n{text}".encode()).hexdigest()
        full.append(f"{name}={digest}")
        digests[name] = digest[:DIGEST_LENGTH]
    return Fingerprint(hashlib.sha256("\n".join(full).encode()).hexdigest(), digests)


def _plain(value: Any) -> Any:
    """The value as JSON can hold it, every secret replaced by its SHA-256."""
    if isinstance(value, SecretStr):
        return "sha256:" + hashlib.sha256(value.get_secret_value().encode()).hexdigest()
    if isinstance(value, BaseModel):
        return {name: _plain(item) for name, item in value}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return str(value.normalize())
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)

"""Compiled contracts (ABI and bytecode) from `contracts/artifacts/`."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from service.resources import resource_dir


@cache
def load_artifact(name: str) -> dict[str, Any]:
    path = resource_dir("contracts") / "artifacts" / f"{name}.json"
    artifact: dict[str, Any] = json.loads(path.read_text())
    return artifact

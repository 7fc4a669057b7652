"""Running one of the JavaScript helpers in tests/support/js with Node.js."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

SCRIPTS = Path(__file__).resolve().parent / "js"


def node_json(script: str, *args: str, **payload: Any) -> dict[str, Any]:
    """What `node <script> [args] <payload as JSON>` prints, read as JSON."""
    finished = subprocess.run(
        ["node", str(SCRIPTS / script), *args, json.dumps(payload)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed: dict[str, Any] = json.loads(finished.stdout)
    return printed

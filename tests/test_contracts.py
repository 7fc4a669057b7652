"""The committed contract artifacts are what the committed sources compile to."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_artifacts_match_their_sources(tmp_path: Path) -> None:
    subprocess.run(
        ["node", str(ROOT / "contracts" / "build.mjs"), str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    committed = sorted(p.name for p in (ROOT / "contracts" / "artifacts").glob("*.json"))
    assert committed == sorted(p.name for p in tmp_path.glob("*.json"))
    assert "TestMUSD.json" in committed
    for name in committed:
        fresh = json.loads((tmp_path / name).read_text())
        kept = json.loads((ROOT / "contracts" / "artifacts" / name).read_text())
        assert fresh == kept, f"contracts/artifacts/{name} is stale: npm run build:contracts"

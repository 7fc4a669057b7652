"""A dApp's typed client, generated from the document the service serves, compiles a
call of every operation under `tsc --strict` (openapi-typescript and openapi-fetch)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from litestar import Litestar
from litestar.testing import AsyncTestClient

ROOT = Path(__file__).resolve().parent.parent
CALLS = ROOT / "tests" / "support" / "ts" / "every_operation.ts"


def run(*command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=180)


async def test_a_generated_typescript_client_compiles_every_operation_strictly(
    make_client: Callable[..., AsyncTestClient[Litestar]], tmp_path: Path
) -> None:
    async with make_client() as client:
        document = (await client.get("/schema/openapi.json")).text
    (tmp_path / "openapi.json").write_text(document)
    (tmp_path / "node_modules").symlink_to(ROOT / "node_modules")
    generated = run(
        str(ROOT / "node_modules" / ".bin" / "openapi-typescript"),
        "openapi.json",
        "--output",
        "api.d.ts",
        cwd=tmp_path,
    )
    assert generated.returncode == 0, generated.stderr
    types = (tmp_path / "api.d.ts").read_text()
    assert "sourceAmount?: string | null;" in types  # or destinationAmount, not both
    assert "destinationAmount?: string | null;" in types
    assert "string | number" not in types
    shutil.copy(CALLS, tmp_path / "every_operation.ts")
    compiled = run(
        str(ROOT / "node_modules" / ".bin" / "tsc"),
        "--strict",
        "--noEmit",
        "--target",
        "es2022",
        "--module",
        "esnext",
        "--moduleResolution",
        "bundler",
        "--skipLibCheck",
        "every_operation.ts",
        cwd=tmp_path,
    )
    assert compiled.returncode == 0, compiled.stdout + compiled.stderr

"""One version, from pyproject.toml's [project]: what `onramp --version` prints, what the
OpenAPI document and error reports name, and the newest release in CHANGELOG.md."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from service.release import RELEASE, VERSION
from tests.support.processes import run_onramp

ROOT = Path(__file__).resolve().parent.parent
DECLARED = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_onramp_version_prints_the_release(tmp_path: Path) -> None:
    result = run_onramp("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"onramp, version {DECLARED}"


def test_the_service_names_the_declared_version() -> None:
    assert VERSION == DECLARED
    assert f"onramp@{DECLARED}" == RELEASE


def test_the_changelog_has_the_release_and_an_unreleased_section() -> None:
    headings = re.findall(r"^## \[([^\]]+)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings[:2] == ["Unreleased", DECLARED]

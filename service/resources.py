"""Files the service reads at run time, found both in a checkout and in an installed wheel.

The repository keeps them at the top level (`alembic/`, `contracts/`); the wheel carries
them inside the package (see `force-include` in pyproject.toml).
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent

# top-level folder in the repository -> folder inside the installed package
_PACKAGED_AS = {"alembic": "migrations", "contracts": "contracts"}


def resource_dir(name: str) -> Path:
    for candidate in (_PACKAGE / _PACKAGED_AS[name], _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"{name}/ is missing from this installation")

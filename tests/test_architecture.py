"""The direction between the parts of service/ (docs/architecture.md), as the import
contracts in pyproject.toml hold it: they pass on the code as it is, and each import
that would make one of the cycles the service once had breaks them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest

from service.cli import LazyGroup, main

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(project)},
    )


def test_the_contracts_hold() -> None:
    linted = lint_imports(ROOT)
    assert linted.returncode == 0, linted.stdout + linted.stderr


@pytest.mark.parametrize(
    ("module", "imported"),
    [
        # onramp ⇄ delivery: Stripe's news scheduling a check by itself.
        ("onramp/updates.py", "service.delivery.checks"),
        # delivery → retention → webhooks → onramp → delivery: the worker running the job.
        ("delivery/worker.py", "service.retention.schedule"),
        # settings ⇄ chain.
        ("settings/groups.py", "service.chain.destinations"),
        # errors.py counting through operations.
        ("errors.py", "service.operations.routes"),
        # A capability's routes reaching for what the app assembles.
        ("onramp/routes.py", "service.app"),
        # A capability below another importing it back.
        ("chain/rpc.py", "service.onramp.repository"),
        # A new module outside the declared layers, gathering every capability.
        ("services.py", "service.onramp.creation, service.webhooks.service"),
    ],
)
def test_an_import_against_the_direction_breaks_a_contract(
    module: str, imported: str, tmp_path: Path
) -> None:
    shutil.copytree(
        ROOT / "service", tmp_path / "service", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "service" / module).open("a") as source:  # a new file, or an addition
        source.write(f"\nimport {imported}  # noqa\n")
    linted = lint_imports(tmp_path)
    assert linted.returncode != 0, linted.stdout
    assert "BROKEN" in linted.stdout


def _reachable(group: click.Group, ctx: click.Context) -> set[click.Command]:
    found: set[click.Command] = set()
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        found.add(command)
        if isinstance(command, click.Group):
            found |= _reachable(command, ctx)
    return found


def test_every_operator_command_of_a_capability_is_named_in_the_cli() -> None:
    """The recipe's last step (`lazy_subcommands` in service/cli.py) cannot be missed."""
    assert isinstance(main, LazyGroup)
    reachable = _reachable(main, click.Context(main))
    defined: dict[str, click.Command] = {}
    for path in sorted((ROOT / "service").glob("*/commands.py")):
        module_name = f"service.{path.parent.name}.commands"
        module = __import__(module_name, fromlist=["_"])
        for name, value in vars(module).items():
            defined_here = getattr(getattr(value, "callback", None), "__module__", None)
            if isinstance(value, click.Command) and defined_here == module_name:
                defined[f"{module_name}.{name}"] = value
    assert defined
    assert {name for name, command in defined.items() if command not in reachable} == set()

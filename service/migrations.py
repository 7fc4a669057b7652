"""Alembic, driven from code so that `onramp migrate` works from any directory.

The scripts live in the repository's top-level `alembic/`; the wheel carries them as
`service/migrations/` (see pyproject.toml), so an installed service finds them too.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from service.resources import resource_dir
from service.settings import DatabaseSettings
from service.sql import ALEMBIC_VERSION, SELECT_REVISION

if TYPE_CHECKING:
    from alembic.config import Config

# Serving reads the revisions, it never migrates: alembic (and mako, which it imports)
# would stay in every API process's memory for two strings, so only the commands that
# change the schema import it.


def script_location() -> Path:
    return resource_dir("alembic")


def alembic_config(settings: DatabaseSettings) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location()))
    # env.py reads the URL from here; '%' must be escaped for ConfigParser.
    config.set_main_option("sqlalchemy.url", settings.sync_url.replace("%", "%%"))
    config.attributes["database"] = settings
    return config


def upgrade(settings: DatabaseSettings, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: DatabaseSettings, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(settings), revision)


class RevisionsUnclear(Exception):
    """The scripts, or the database, do not name one revision (several heads)."""


def head_revision(versions: Path | None = None) -> str | None:
    """The revision no script revises, read from the scripts' `revision` and
    `down_revision` assignments without running them (alembic's `ScriptDirectory`
    imports every script; a test holds this to its answer, merges included)."""
    revises: dict[str, tuple[str, ...]] = {}
    for script in sorted((versions or script_location() / "versions").glob("*.py")):
        if script.name.startswith((".#", "__init__")):  # editors' lock files, as alembic
            continue
        assigned = _assignments(script)
        if isinstance(revision := assigned.get("revision"), str):
            revises[revision] = _named(assigned.get("down_revision"))
    heads = set(revises) - {parent for parents in revises.values() for parent in parents}
    if len(heads) > 1:
        raise RevisionsUnclear(f"the migration scripts have {len(heads)} heads: {sorted(heads)}")
    return heads.pop() if heads else None


def _named(down_revision: object) -> tuple[str, ...]:
    """A script's parents: none, one, or the several a merge names."""
    if isinstance(down_revision, str):
        return (down_revision,)
    if isinstance(down_revision, tuple | list):
        return tuple(parent for parent in down_revision if isinstance(parent, str))
    return ()


def _assignments(script: Path) -> dict[str, object]:
    found: dict[str, object] = {}
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        targets: list[ast.expr]
        if isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        elif isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        else:
            continue
        try:
            constant = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError):
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                found[target.id] = constant
    return found


def current_revision(settings: DatabaseSettings) -> str | None:
    """The database's revision, None where it was never migrated."""
    engine = create_engine(settings.sync_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(ALEMBIC_VERSION.name):
                return None
            revisions = list(connection.execute(SELECT_REVISION.expression).scalars())
    finally:
        engine.dispose()
    if len(revisions) > 1:
        raise RevisionsUnclear(f"the database is at {len(revisions)} revisions: {revisions}")
    return str(revisions[0]) if revisions else None

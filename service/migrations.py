"""Alembic, driven from code so that `onramp migrate` works from any directory.

The scripts live in the repository's top-level `alembic/`; the wheel carries them as
`service/migrations/` (see pyproject.toml), so an installed service finds them too.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from service.resources import resource_dir
from service.settings import DatabaseSettings


def script_location() -> Path:
    return resource_dir("alembic")


def alembic_config(settings: DatabaseSettings) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    # env.py reads the URL from here; '%' must be escaped for ConfigParser.
    config.set_main_option("sqlalchemy.url", settings.sync_url.replace("%", "%%"))
    config.attributes["database"] = settings
    return config


def upgrade(settings: DatabaseSettings, revision: str = "head") -> None:
    command.upgrade(alembic_config(settings), revision)


def downgrade(settings: DatabaseSettings, revision: str = "base") -> None:
    command.downgrade(alembic_config(settings), revision)


def head_revision() -> str | None:
    return ScriptDirectory(str(script_location())).get_current_head()


def current_revision(settings: DatabaseSettings) -> str | None:
    engine = create_engine(settings.sync_url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()

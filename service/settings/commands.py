"""`onramp settings`: the configuration as the service reads it."""

from __future__ import annotations

from pathlib import Path

import click

# This file's checkout: service/settings/commands.py -> the repository's root.
_ROOT = Path(__file__).resolve().parents[2]


@click.group()
def settings() -> None:
    """The environment variables the service reads."""


@click.command("reference")
@click.option(
    "--format",
    "shape",
    type=click.Choice(["markdown", "dotenv"]),
    default="markdown",
    show_default=True,
)
@click.option(
    "--write",
    is_flag=True,
    help="Write docs/configuration.md and .env.example into this checkout.",
)
def reference_command(shape: str, write: bool) -> None:
    """Every variable with its default, what it does and where it is required, written
    from the settings groups (service/settings/groups.py)."""
    from service.settings import Settings, reference  # pydantic: only when it runs

    if not write:
        text = reference.markdown(Settings) if shape == "markdown" else reference.dotenv(Settings)
        click.echo(text, nl=False)
        return
    if not (_ROOT / "pyproject.toml").is_file():
        raise click.ClickException("--write needs a checkout of the repository")
    for path, text in reference.files(Settings).items():
        (_ROOT / path).write_text(text)
        click.echo(f"wrote {path}", err=True)


settings.add_command(reference_command)

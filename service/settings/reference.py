"""The configuration reference, written from the settings groups themselves: every
variable's name, default, description and the environments that require it, as
docs/configuration.md and as .env.example. Nothing here is stated twice: a new field
in groups.py appears in both once they are regenerated (`onramp settings reference
--write`), and a test holds the committed files to what this module writes."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from service.settings.groups import (
    ServerSettings,
    read_variables,
    required_when_deployed,
    shown_default,
)

REGENERATE = "./run onramp settings reference --write"
MARKDOWN_PATH = "docs/configuration.md"
DOTENV_PATH = ".env.example"
_SOURCE = "service/settings/groups.py"


@dataclass(frozen=True)
class Variable:
    name: str
    default: str  # as the environment spells it; empty for unset
    description: str
    required_in: tuple[str, ...]
    default_in_words: bool = False  # a default that depends on where the service runs


@dataclass(frozen=True)
class Group:
    title: str
    summary: str
    variables: tuple[Variable, ...]

    @property
    def anchor(self) -> str:
        return self.title.lower().replace(" ", "-")


def deployed_environments() -> tuple[str, ...]:
    """The values of ENVIRONMENT held to the deployed checks, as ServerSettings says."""
    values = get_args(ServerSettings.model_fields["environment"].annotation)
    return tuple(value for value in values if ServerSettings(environment=value).is_deployed)


def groups(settings: type[BaseModel]) -> tuple[Group, ...]:
    """Each group of `settings` (Settings, whose fields are the groups) in its order."""
    deployed = deployed_environments()
    found = []
    for name, field in settings.model_fields.items():
        group = field.annotation
        assert isinstance(group, type)
        assert issubclass(group, BaseModel)
        variables = []
        for member in group.model_fields.values():
            variables += _variables(member, deployed)
        summary = " ".join((group.__doc__ or "").split()) if "__doc__" in vars(group) else ""
        title = name.replace("_", " ").capitalize()
        found.append(Group(title=title, summary=summary, variables=tuple(variables)))
    return tuple(found)


def undescribed(settings: type[BaseModel]) -> list[str]:
    """Variables without a description: each must say what it does."""
    return [v.name for g in groups(settings) for v in g.variables if not v.description]


def _variables(field: FieldInfo, deployed: tuple[str, ...]) -> list[Variable]:
    alias = str(field.alias)
    if alias.startswith("_"):  # read from other variables, or from none
        return [Variable(name, "", text, ()) for name, text in read_variables(field).items()]
    required = deployed if required_when_deployed(field) else ()
    description = field.description or ""
    shown = shown_default(field)
    if shown is not None:
        return [Variable(alias, shown, description, required, default_in_words=True)]
    default = field.get_default(call_default_factory=True, validated_data={})
    return [Variable(alias, _written(default), description, required)]


def _written(value: Any) -> str:
    """A value as an environment variable spells it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, list | tuple):
        return ",".join(_written(item) for item in value)
    return str(value)


def markdown(settings: type[BaseModel]) -> str:
    found = groups(settings)
    deployed = " and ".join(deployed_environments())
    lines = [
        "# Configuration",
        "",
        f"<!-- Written by `{REGENERATE}` from {_SOURCE}; edit the fields there. -->",
        "",
        "Every environment variable the service reads, by the group of what it configures.",
        "The service reads its environment only, no settings file;",
        f"[`.env.example`](../{DOTENV_PATH}) lists the same variables with their defaults, to",
        "copy into a platform's variables or a shell (`set -a; . ./.env; set +a`). A value",
        "that does not parse, or breaks a rule, stops start-up with one line per problem",
        "naming its variable. *Required in* names the values of `ENVIRONMENT` that refuse to",
        "start while the variable is unset or left at its development default;",
        f"{deployed} refuse other unsafe values too",
        "([the full list](deploying.md#production-and-staging)).",
        "",
        *(f"- [{group.title}](#{group.anchor})" for group in found),
    ]
    for group in found:
        lines += ["", f"## {group.title}", ""]
        if group.summary:
            lines += [group.summary, ""]
        lines += ["| Variable | Default | Required in | What it does |", "|---|---|---|---|"]
        lines += [
            f"| `{v.name}` | {_cell_default(v)} | {', '.join(v.required_in)} |"
            f" {_cell(v.description)} |"
            for v in group.variables
        ]
    return "\n".join(lines) + "\n"


def _cell_default(variable: Variable) -> str:
    if variable.default_in_words:
        return _cell(variable.default)
    return f"`{variable.default}`" if variable.default else "unset"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def dotenv(settings: type[BaseModel]) -> str:
    deployed = " and ".join(deployed_environments())
    lines = [
        "# Every variable onramp reads, commented out with its default; those that",
        f"# {deployed} require are marked REQUIRED. {MARKDOWN_PATH} says more.",
        f"# Written from {_SOURCE} by `{REGENERATE}`.",
    ]
    for group in groups(settings):
        lines += ["", f"# --- {group.title} ---"]
        for v in group.variables:
            mark = f"REQUIRED in {', '.join(v.required_in)}. " if v.required_in else ""
            words = f" Default: {v.default}." if v.default_in_words else ""
            text = (mark + v.description + words).replace("`", "")
            lines += ["#", *textwrap.wrap(text, 86, initial_indent="# ", subsequent_indent="# ")]
            name = v.name.replace("<NETWORK>", "BASE")
            lines.append(f"# {name}={'' if v.default_in_words else v.default}")
    return "\n".join(lines) + "\n"


def files(settings: type[BaseModel]) -> dict[str, str]:
    """Each generated file, by its path from the repository's root, with its text."""
    return {MARKDOWN_PATH: markdown(settings), DOTENV_PATH: dotenv(settings)}

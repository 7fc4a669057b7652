"""The configuration reference (docs/configuration.md, .env.example) is written from
the settings groups and must match them; the variables it marks required are the ones
a deployment is refused without; and the docs' relative links lead somewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from service.settings import ConfigurationError, Settings, reference
from tests.support.environment import BASE_ENV, STAGING_ENV

ROOT = Path(__file__).resolve().parent.parent
DEPLOYED = {**BASE_ENV, **STAGING_ENV, "DATABASE_URL": "postgresql://u:p@db:5432/onramp"}


@pytest.mark.parametrize("path", sorted(reference.files(Settings)))
def test_the_committed_reference_is_what_the_settings_write(path: str) -> None:
    committed = (ROOT / path).read_text() if (ROOT / path).is_file() else ""
    assert committed == reference.files(Settings)[path], (
        f"{path} is out of date with service/settings/groups.py: run `{reference.REGENERATE}`"
    )


def test_every_variable_says_what_it_does() -> None:
    assert reference.undescribed(Settings) == [], "add a description= to these fields"


def test_deployments_are_refused_without_exactly_the_variables_marked_required() -> None:
    """Each variable a safe staging deployment sets, taken away: refused, naming it,
    if and only if the reference marks it required."""
    Settings.from_env(DEPLOYED)
    required = {v.name for g in reference.groups(Settings) for v in g.variables if v.required_in}
    assert required <= DEPLOYED.keys()
    for name in sorted(DEPLOYED.keys() - {"ENVIRONMENT"}):
        env = {key: value for key, value in DEPLOYED.items() if key != name}
        try:
            Settings.from_env(env)
        except ConfigurationError as refused:
            named = [problem.split(":")[0] for problem in refused.problems]
            assert name in required, f"{name} is required but not marked: {named}"
            assert name in named
        else:
            assert name not in required, f"{name} is marked required but was not needed"


def test_the_defaults_in_env_example_are_the_defaults() -> None:
    """Uncommenting every line of .env.example that holds a value changes nothing."""
    example = reference.dotenv(Settings)
    env = dict(re.findall(r"^# ([A-Z][A-Z0-9_]*)=(.+)$", example, flags=re.MULTILINE))
    assert "DATABASE_URL" in env
    assert Settings.from_env({**env, "LOG_FORMAT": "json"}) == Settings.from_env(
        {"LOG_FORMAT": "json"}
    )


def test_required_is_derived_from_the_deployed_environments() -> None:
    assert reference.deployed_environments() == ("staging", "production")


# Relative links in the README and docs/: each leads to a file, and an anchor to a heading.
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for line in _FENCE.sub("", path.read_text()).splitlines():
        if line.startswith("#"):
            slug = _slug(line.lstrip("#"))
            count = sum(1 for a in found if a == slug or re.fullmatch(rf"{re.escape(slug)}-\d+", a))
            found.add(slug if count == 0 else f"{slug}-{count}")
    return found


@pytest.mark.parametrize(
    "document",
    ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))],
)
def test_relative_links_lead_to_files_and_headings(document: str) -> None:
    source = ROOT / document
    broken = []
    for target in _LINK.findall(_FENCE.sub("", source.read_text())):
        if re.match(r"^[a-z]+:", target):
            continue
        file_part, _, anchor = target.partition("#")
        linked = (source.parent / file_part).resolve() if file_part else source
        missing_heading = anchor and linked.suffix == ".md" and anchor not in _anchors(linked)
        if not linked.exists() or missing_heading:
            broken.append(target)
    assert broken == []

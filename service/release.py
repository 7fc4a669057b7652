"""The release this code is: the `version` of pyproject.toml's `[project]`, as the
installed package's metadata carries it. `onramp --version`, the OpenAPI document,
error reports (service/error_tracking.py) and the image's labels all name this one."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

PACKAGE = "onramp"

try:
    VERSION = version(PACKAGE)
except PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    VERSION = "0.0.0"

# As Sentry names releases (`package@version`): its releases are shared by every
# project of an organisation, so the package's name keeps ours apart.
RELEASE = f"{PACKAGE}@{VERSION}"

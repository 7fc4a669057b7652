"""Everything the service logged during the test run, searched for secrets.

Each test's captured output (in-process apps log to stderr) and every `onramp`
process's output are searched when the run ends; a secret found fails the run and says
where. The search is the suite's own: the secret values its tests use, and the shapes
of Stripe and JWT credentials, independent of the service's own redaction patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from service.stripe_sim.app import DEFAULT_SECRET_KEY
from tests.onramp.conftest import ADMIN_KEY, JWT_SECRET
from tests.support.webhooks import WEBHOOK_SECRET

KNOWN_SECRETS = (JWT_SECRET, WEBHOOK_SECRET, DEFAULT_SECRET_KEY, ADMIN_KEY)
SECRET_SHAPES = re.compile(
    r"sk_(?:test|live)_\w{8,}"  # Stripe secret keys
    r"|whsec_\w{8,}"  # webhook signing secrets
    r"|cos_\w+_secret_\w+"  # onramp client secrets
    r"|eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{8,}"  # JWTs
)


def find_secrets(text: str) -> list[str]:
    """The secrets in `text`, each shortened so the report does not repeat it."""
    found = [secret for secret in KNOWN_SECRETS if secret in text]
    found += [match.group(0) for match in SECRET_SHAPES.finditer(text)]
    return sorted({f"{secret[:12]}…" for secret in found})


def scan(sources: Iterable[tuple[str, str]]) -> list[str]:
    """`where: secrets` for each (where, text) that holds any."""
    return [
        f"{where}: {', '.join(secrets)}"
        for where, text in sources
        if (secrets := find_secrets(text))
    ]


def process_logs(root: Path) -> Iterable[tuple[str, str]]:
    for path in sorted(root.rglob("*.log")):
        yield str(path.relative_to(root)), path.read_text(errors="replace")

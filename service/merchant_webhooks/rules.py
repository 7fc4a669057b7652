"""The merchant webhooks' rules, pure: which events there are, when a failed delivery is
tried again, when an endpoint is disabled, what a secret is and how a delivery is signed.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from standardwebhooks.webhooks import Webhook

from service.onramp.lifecycle import LIFECYCLE

SESSION_UPDATED = "onramp_session.updated"
# One event for each verdict the chain can reach: `delivery.confirmed`, `.mismatch`, `.failed`.
DELIVERY_DECIDED = {status: f"delivery.{status}" for status in sorted(LIFECYCLE.decided_deliveries)}
EVENT_TYPES: tuple[str, ...] = (SESSION_UPDATED, *DELIVERY_DECIDED.values())

SECRET_PREFIX = "whsec_"  # noqa: S105 - what a secret starts with, not a secret
SECRET_BYTES = 32
# After a rotation the previous secret signs too, for this long.
ROTATION_OVERLAP = timedelta(hours=24)
# An endpoint that has done nothing but fail for this long is disabled.
DISABLE_AFTER = timedelta(days=5)
# A success is a 2xx within this time; anything else is a failure.
ATTEMPT_TIMEOUT_SECONDS = 10.0
RESPONSE_KEPT_BYTES = 1024

ENDPOINT_ENABLED = "enabled"
ENDPOINT_DISABLED = "disabled"
DELIVERED = "delivered"
GIVEN_UP = "given_up"


def new_secret() -> str:
    """`whsec_` and the base64 of 32 random bytes, as Standard Webhooks' secrets are."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def next_attempt(
    failed_attempts: int, failed_at: datetime, schedule: Sequence[int]
) -> datetime | None:
    """When a delivery that has failed `failed_attempts` times is tried again; None once
    the schedule is spent (the delivery is given up)."""
    if failed_attempts < 1 or failed_attempts > len(schedule):
        return None
    return failed_at + timedelta(seconds=schedule[failed_attempts - 1])


def is_success(status_code: int | None) -> bool:
    """Only a 2xx: a redirect is not followed, so it is a failure too."""
    return status_code is not None and 200 <= status_code < 300


def failing_since(
    current: datetime | None, attempt_at: datetime, succeeded: bool
) -> datetime | None:
    """The start of an endpoint's run of failures after an attempt: cleared by a success,
    started by the first failure, kept by the next."""
    if succeeded:
        return None
    return current if current is not None else attempt_at


def should_disable(since: datetime | None, now: datetime) -> bool:
    """Only failures for `DISABLE_AFTER`: nobody is there to take the events."""
    return since is not None and now - since >= DISABLE_AFTER


def signing_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The secrets a delivery at `now` is signed with: the current one, and the previous
    one while its overlap lasts."""
    overlapping = previous is not None and previous_until is not None and now < previous_until
    return [secret, previous] if overlapping and previous else [secret]


def signature_headers(
    event_id: str, body: str, at: datetime, signing: Sequence[str]
) -> dict[str, str]:
    """Standard Webhooks' headers: each signature is the reference library's own
    (`Webhook.sign`); several travel space-separated in one header, as the specification
    has it for rotation, and the library's `verify` accepts any one of them."""
    signatures = [Webhook(secret).sign(event_id, at, body) for secret in signing]
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


def subscribed(events: str | None, event_type: str) -> bool:
    """Whether an endpoint's list of types (comma-separated; null for all) takes `event_type`."""
    return events is None or event_type in events.split(",")


# A replay reaches back no further than an hour inside what retention keeps: an older
# event may be deleted by a retention run between the replay reading it and writing its
# delivery, which would leave that delivery naming an event that is gone.
REPLAY_MARGIN = timedelta(hours=1)


def replay_horizon(retention_days: int, now: datetime) -> datetime:
    """The earliest time a replay may start from."""
    return now - timedelta(days=retention_days) + REPLAY_MARGIN

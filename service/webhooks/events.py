"""What a verified Stripe event says, read without trusting its shape."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import msgspec

from service.errors import InvalidRequest
from service.onramp.lifecycle import LIFECYCLE, Lifecycle
from service.onramp.updates import OnrampUpdate, update_from_stripe


@dataclass(frozen=True)
class StripeEvent:
    id: str
    type: str
    created: datetime
    livemode: bool
    api_version: str | None
    update: OnrampUpdate | None


def parse_event(payload: bytes, lifecycle: Lifecycle = LIFECYCLE) -> StripeEvent:
    if b"\\u0000" in payload:
        # A NUL escaped in JSON decodes to a character PostgreSQL text cannot hold.
        raise InvalidRequest("The event holds NUL characters.", code="invalid_event")
    try:
        raw = msgspec.json.decode(payload)
    # msgspec gives up on deep nesting with a RecursionError, not a DecodeError.
    except (msgspec.DecodeError, RecursionError) as error:
        raise InvalidRequest("The event is not JSON.", code="invalid_event") from error
    if not isinstance(raw, dict):
        raise InvalidRequest("The event is not an object.", code="invalid_event")
    event_id, event_type, created = raw.get("id"), raw.get("type"), raw.get("created")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 255:
        raise InvalidRequest("The event has no valid id.", code="invalid_event")
    if not isinstance(event_type, str) or len(event_type) > 128:
        raise InvalidRequest("The event has no valid type.", code="invalid_event")
    if not isinstance(created, int) or isinstance(created, bool) or not 0 <= created < 2**35:
        raise InvalidRequest("The event has no valid creation time.", code="invalid_event")
    api_version = raw.get("api_version")
    livemode = raw.get("livemode") is True
    update = None
    # Only an onramp session's update moves a session, whatever object another event
    # carries; the event's own mode is the one that counts.
    if event_type in lifecycle.event_types and isinstance(data := raw.get("data"), dict):
        update = update_from_stripe(data.get("object"))
        update = replace(update, livemode=livemode) if update else None
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=datetime.fromtimestamp(created, UTC),
        livemode=livemode,
        api_version=api_version[:32] if isinstance(api_version, str) else None,
        update=update,
    )

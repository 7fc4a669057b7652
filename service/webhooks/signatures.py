"""Is this body exactly what Stripe signed, recently, with one of our secrets?

stripe-python's verifier does the HMAC over the raw bytes, the `v1` selection and the
check for stale timestamps. It does not refuse timestamps from the future; a signed
event dated more than the tolerance ahead of our clock is refused here too, so the
window is symmetric.
"""

from __future__ import annotations

import time

from stripe import SignatureVerificationError, WebhookSignature

from service.errors import InvalidRequest


class WebhookSignatureInvalid(InvalidRequest):
    code = "webhook_signature_invalid"


def verify_signature(
    payload: bytes,
    header: str | None,
    secrets: list[str],
    tolerance_seconds: int,
    now: float | None = None,
) -> None:
    if not header:
        raise WebhookSignatureInvalid("The Stripe-Signature header is missing.")
    now = time.time() if now is None else now
    for secret in secrets:
        try:
            WebhookSignature.verify_header(payload, header, secret, tolerance_seconds)
        except SignatureVerificationError:
            continue
        except (UnicodeDecodeError, ValueError) as error:
            raise WebhookSignatureInvalid("The body or the signature is malformed.") from error
        try:
            timestamp = _timestamp(header)
        except ValueError as error:
            raise WebhookSignatureInvalid("The signature header is malformed.") from error
        if timestamp > now + tolerance_seconds:
            raise WebhookSignatureInvalid("The signature's timestamp is in the future.")
        return
    raise WebhookSignatureInvalid("No valid signature for this body with a known secret.")


def _timestamp(header: str) -> int:
    """The `t` Stripe's own verifier read: the first item whose key is exactly `t`."""
    for item in header.split(","):
        key, _, value = item.partition("=")
        if key == "t":
            return int(value)
    raise ValueError("no timestamp")

"""Stripe webhooks: verified, logged once, applied in any order."""

# Events `webhooks prune` deletes per statement; here so that the command's help
# needs no database code.
DEFAULT_BATCH_SIZE = 1000

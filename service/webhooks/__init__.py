"""Stripe webhooks: verified, logged once, applied in any order."""

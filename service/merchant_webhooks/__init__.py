"""Webhooks to the merchant's own backend: endpoints, the outbox, the dispatcher."""

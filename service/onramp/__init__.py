"""Onramp sessions: the dApp's request to buy MUSD, mirrored from Stripe."""

"""The session routes' fixtures: reconciliation is checked against sessions made through
the real app."""

from tests.onramp.conftest import caller, client, make_onramp_app, onramp_app, stripe_env

__all__ = ["caller", "client", "make_onramp_app", "onramp_app", "stripe_env"]

"""A local stand-in for Stripe's Crypto Onramp API, speaking Stripe's wire format.

Used by the tests, the demo and developers (`onramp stripe-sim`) wherever the real
Stripe cannot be reached. It is a plain ASGI app so that it can inject the faults real
networks have, a connection dropped after the work was done included.
"""

DEFAULT_SECRET_KEY = "sk_test_onramp_simulator"  # noqa: S105 - the stand-in's own test key
DEFAULT_PUBLISHABLE_KEY = "pk_test_onramp_simulator"  # its embedded onramp's (widget.py)

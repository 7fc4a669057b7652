"""What the sign-in routes use, built by `create_app` (service/providers.py)."""

from __future__ import annotations

from dataclasses import dataclass

from service.auth.service import SignIn
from service.providers import Provider
from service.ratelimit import RateLimiter


@dataclass(frozen=True, slots=True)
class SignInServices(Provider):
    sign_in: SignIn
    rate_limiter: RateLimiter

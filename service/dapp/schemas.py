"""The JSON of `/api/v1/config`: camelCase, amounts as decimal strings."""

from __future__ import annotations

import msgspec

from service.onramp.lifecycle import LIFECYCLE, DeliveryStatus, Status


class _Schema(msgspec.Struct, rename="camel"):
    pass


class DestinationConfig(_Schema):
    network: str
    currency: str
    chain_id: int
    token_address: str
    decimals: int
    confirmations: int
    # The block explorer: `{explorerUrl}/tx/{hash}` shows a delivery's transaction; null
    # where the chain has none (a local chain).
    explorer_url: str | None


class SignInConfig(_Schema):
    """What an EIP-4361 message for this service must name."""

    domain: str
    uri: str
    chain_id: int


class LifecycleConfig(_Schema):
    """The session lifecycle as the service declares it, so that a client keeps no copy:
    a session is settled (nothing more will change) when its status is one of
    `settledStatuses`, or it is `fulfilledStatus` and its delivery's status is one of
    `settledDeliveryStatuses`."""

    statuses: list[Status]
    final_statuses: list[Status]
    settled_statuses: list[Status]
    fulfilled_status: Status
    delivery_statuses: list[DeliveryStatus]
    settled_delivery_statuses: list[DeliveryStatus]


def lifecycle_config() -> LifecycleConfig:
    ordered = LIFECYCLE.statuses
    return LifecycleConfig(
        statuses=[Status(s) for s in ordered],
        final_statuses=[Status(s) for s in ordered if s in LIFECYCLE.final],
        settled_statuses=[Status(s) for s in ordered if s in LIFECYCLE.settled_statuses],
        fulfilled_status=Status(LIFECYCLE.fulfilled),
        delivery_statuses=[DeliveryStatus(d) for d in LIFECYCLE.deliveries],
        settled_delivery_statuses=[DeliveryStatus(d) for d in LIFECYCLE.settling_deliveries],
    )


class ClientConfig(_Schema):
    publishable_key: str | None
    stripe_stand_in: bool  # the dApp pays on the stand-in's hosted page, not Stripe's widget
    source_currency: str
    min_source_amount: str
    max_source_amount: str
    default_network: str
    default_currency: str
    destinations: list[DestinationConfig]
    sign_in: SignInConfig
    lifecycle: LifecycleConfig

"""The pure judgement of a delivery: did the right tokens reach the right wallet?

Amounts are exact: token amounts are integers of the token's smallest unit on chain and
decimal strings in the API; conversion goes through `Decimal` with the token's
decimals, never through floats.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Context, Decimal, InvalidOperation

from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address

from service.onramp.lifecycle import DeliveryStatus
from service.resources import resource_dir

# uint256 has 78 digits; the default context would round at 28.
_EXACT = Context(prec=100)


def _transfer_topic() -> str:
    """topic0 of ERC-20 `Transfer`, from the ABI in contracts/abi/erc20.json."""
    abi = json.loads((resource_dir("contracts") / "abi" / "erc20.json").read_text())
    [event] = [item for item in abi if item["type"] == "event" and item["name"] == "Transfer"]
    return "0x" + event_abi_to_log_topic(event).hex()


TRANSFER_TOPIC = _transfer_topic()


@dataclass(frozen=True)
class Transfer:
    token: str  # the emitting contract, checksummed
    sender: str
    recipient: str
    value: int  # in the token's smallest unit
    # The log's position among its transaction's logs: unlike the block-wide index, a
    # reorganisation that puts the transaction in another block does not change it.
    log_index: int = -1


@dataclass(frozen=True)
class Verdict:
    """A delivery status (`DeliveryStatus`) with what was seen; `counted` are
    the transfers that make up the delivery when its amount is right."""

    status: str
    delivered_amount: str
    detail: str
    counted: tuple[Transfer, ...] = ()


def to_units(amount: str, decimals: int) -> int:
    """'99.12' with 18 decimals -> 99120000000000000000; more precision is refused."""
    try:
        value = Decimal(amount)
    except InvalidOperation as error:
        raise ValueError(f"not a decimal amount: {amount!r}") from error
    scaled = value.scaleb(decimals, context=_EXACT)
    if not value.is_finite() or scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} has more than {decimals} decimals")
    return int(scaled)


def from_units(units: int, decimals: int) -> str:
    """The exact decimal string of `units`, without trailing zeros ('0' for none)."""
    text = format(Decimal(units).scaleb(-decimals, context=_EXACT), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def judge(
    *,
    reverted: bool,
    transfers: list[Transfer],
    token: str,
    wallet: str,
    expected_units: int,
    tolerance_units: int,
    decimals: int,
    confirmations: int,
    required_confirmations: int,
) -> Verdict:
    """The verdict on one transaction's receipt, given how deep it is in the chain.

    Tokens the wallet sent to itself are no delivery: they count for nothing."""
    if reverted:
        return Verdict(DeliveryStatus.FAILED, "0", "the transaction reverted")
    received = tuple(delivered_to(transfers, token, wallet))
    delivered = sum(t.value for t in received)
    amount = from_units(delivered, decimals)
    if not received:
        return Verdict(DeliveryStatus.MISMATCH, "0", _why_nothing_arrived(transfers, token, wallet))
    if delivered < expected_units - tolerance_units:
        short = from_units(expected_units - delivered, decimals)
        return Verdict(
            DeliveryStatus.MISMATCH,
            amount,
            f"short by {short}: expected {from_units(expected_units, decimals)}",
        )
    if delivered > expected_units + tolerance_units:
        extra = from_units(delivered - expected_units, decimals)
        return Verdict(
            DeliveryStatus.MISMATCH,
            amount,
            f"{extra} more than the expected {from_units(expected_units, decimals)}",
        )
    if confirmations < required_confirmations:
        return Verdict(
            DeliveryStatus.PENDING,
            amount,
            f"{confirmations} of {required_confirmations} confirmations",
            received,
        )
    plural = "" if confirmations == 1 else "s"
    return Verdict(
        DeliveryStatus.CONFIRMED, amount, f"{confirmations} confirmation{plural}", received
    )


def delivered_to(transfers: list[Transfer], token: str, wallet: str) -> list[Transfer]:
    """The transfers of `token` that reached `wallet` from somebody else."""
    return [
        t for t in transfers if t.token == token and t.recipient == wallet and t.sender != wallet
    ]


def within_tolerance(delivered: int, expected: int, tolerance: int) -> bool:
    return expected - tolerance <= delivered <= expected + tolerance


def _why_nothing_arrived(transfers: list[Transfer], token: str, wallet: str) -> str:
    if any(t.token == token and t.recipient == wallet for t in transfers):
        return "the wallet sent the tokens to itself"
    if any(t.recipient == wallet for t in transfers):
        return "the wallet received a different token"
    if any(t.token == token for t in transfers):
        return "the token was sent to another address"
    return "the transaction holds no token transfer"


def decode_transfer(log: Mapping[str, object], position: int = -1) -> Transfer | None:
    """An ERC-20 `Transfer(from, to, value)` log, or None for any other log;
    `position` is the log's place among its transaction's logs."""
    topics = log.get("topics")
    if not isinstance(topics, list | tuple) or len(topics) != 3:
        return None
    if _hex(topics[0]) != TRANSFER_TOPIC:
        return None
    data = _hex(log.get("data"))
    try:
        value = int(data, 16) if data not in ("0x", "") else 0
    except ValueError:
        return None
    return Transfer(
        token=_address(log.get("address")),
        sender=_address("0x" + _hex(topics[1])[-40:]),
        recipient=_address("0x" + _hex(topics[2])[-40:]),
        value=value,
        log_index=position,
    )


def receipt_transfers(logs: list[Mapping[str, object]]) -> list[Transfer]:
    """The token transfers among a receipt's logs, each with its position."""
    return [t for i, log in enumerate(logs) if (t := decode_transfer(log, i)) is not None]


def floor_units(amount: str, decimals: int) -> int:
    """`amount` in the token's smallest unit, finer digits dropped: a tolerance set for
    an 18-decimal token still means something for a 6-decimal one."""
    value = Decimal(amount).scaleb(decimals, context=_EXACT)
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def _hex(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    return str(value).lower()


def _address(value: object) -> str:
    return str(to_checksum_address(str(value)))

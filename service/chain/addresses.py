"""Wallet addresses as the contract accepts them: any valid case, returned checksummed."""

from __future__ import annotations

import re
from functools import lru_cache

from eth_utils.address import to_checksum_address

from service.errors import InvalidRequest

_HEX_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


@lru_cache(maxsize=8192)
def checksum_wallet(value: str) -> str:
    """The EIP-55 form of `value`; a mixed-case address must already carry a valid checksum.

    All-lower and all-upper hex carry no checksum and are accepted as they are. A
    checksum is a Keccak hash (a tenth of a millisecond) and a request needs the same
    wallet's several times, so results are kept per process; refusals raise and are not.
    """
    if not isinstance(value, str) or not _HEX_ADDRESS.fullmatch(value):
        raise ValueError("must be a 0x-prefixed, 40 hex digit address")
    checksummed: str = to_checksum_address(value)
    digits = value[2:]
    if digits not in (digits.lower(), digits.upper()) and value != checksummed:
        raise ValueError("mixed-case address with a wrong EIP-55 checksum")
    return checksummed


def wallet_parameter(value: str, field: str) -> str:
    """A request's wallet address, checksummed; else 400 `invalid_wallet_address` naming
    the request's `field`."""
    try:
        return checksum_wallet(value)
    except ValueError as error:
        raise invalid_wallet(str(error), field) from error


def invalid_wallet(why: str, field: str) -> InvalidRequest:
    return InvalidRequest(
        "The wallet address is not valid.",
        code="invalid_wallet_address",
        errors=[{"field": field, "message": why}],
    )

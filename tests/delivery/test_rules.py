"""The pure judgement of a delivery and exact token amounts."""

from __future__ import annotations

import pytest
from eth_utils.address import to_checksum_address
from hypothesis import given
from hypothesis import strategies as st

from service.delivery.rules import (
    Transfer,
    decode_transfer,
    floor_units,
    from_units,
    judge,
    receipt_transfers,
    to_units,
)

TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
WALLET = "0x52908400098527886E0F7030069857D2E4169EE7"
OTHER = to_checksum_address("0x70997970c51812dc3a010c7d01b50e20d4dc79c8")
UNIT = 10**18


def verdict(
    transfers: list[Transfer], confirmations: int = 1, **kw: object
) -> tuple[str, str, str]:
    args: dict[str, object] = {
        "reverted": False,
        "transfers": transfers,
        "token": TOKEN,
        "wallet": WALLET,
        "expected_units": 98 * UNIT,
        "tolerance_units": 0,
        "decimals": 18,
        "confirmations": confirmations,
        "required_confirmations": 1,
    }
    args.update(kw)
    result = judge(**args)  # type: ignore[arg-type]
    return result.status, result.delivered_amount, result.detail


def test_the_exact_amount_with_enough_confirmations_is_confirmed() -> None:
    assert verdict([Transfer(TOKEN, OTHER, WALLET, 98 * UNIT)])[0] == "confirmed"


def test_parts_that_add_up_are_confirmed() -> None:
    parts = [Transfer(TOKEN, OTHER, WALLET, 60 * UNIT), Transfer(TOKEN, OTHER, WALLET, 38 * UNIT)]
    assert verdict(parts)[:2] == ("confirmed", "98")


def test_too_few_confirmations_is_pending() -> None:
    status, _, detail = verdict(
        [Transfer(TOKEN, OTHER, WALLET, 98 * UNIT)], confirmations=1, required_confirmations=3
    )
    assert (status, detail) == ("pending", "1 of 3 confirmations")


@pytest.mark.parametrize(
    ("transfers", "detail"),
    [
        ([Transfer(TOKEN, OTHER, WALLET, 97 * UNIT)], "short by 1"),
        ([Transfer(TOKEN, OTHER, OTHER, 98 * UNIT)], "another address"),
        ([Transfer(OTHER, OTHER, WALLET, 98 * UNIT)], "different token"),
        ([], "no token transfer"),
        ([Transfer(TOKEN, OTHER, WALLET, 99 * UNIT)], "more than"),
    ],
)
def test_wrong_transfers_are_mismatches_that_say_why(
    transfers: list[Transfer], detail: str
) -> None:
    status, _, said = verdict(transfers)
    assert status == "mismatch"
    assert detail in said


def test_a_reverted_transaction_failed() -> None:
    assert verdict([], reverted=True)[0] == "failed"


def test_the_tolerance_admits_small_differences() -> None:
    short = [Transfer(TOKEN, OTHER, WALLET, 98 * UNIT - 5)]
    assert verdict(short, tolerance_units=10)[0] == "confirmed"
    assert verdict(short, tolerance_units=4)[0] == "mismatch"


@pytest.mark.parametrize(
    ("amount", "decimals", "units"),
    [("99.12", 18, 99_120_000_000_000_000_000), ("1", 6, 1_000_000), ("0.000001", 6, 1)],
)
def test_amounts_convert_exactly(amount: str, decimals: int, units: int) -> None:
    assert to_units(amount, decimals) == units
    assert from_units(units, decimals) == amount


def test_more_precision_than_the_token_has_is_refused() -> None:
    with pytest.raises(ValueError, match="decimals"):
        to_units("0.0000001", 6)


@given(st.integers(0, 10**30), st.integers(0, 24))
def test_units_round_trip(units: int, decimals: int) -> None:
    assert to_units(from_units(units, decimals), decimals) == units


def test_transfer_logs_decode_and_others_do_not() -> None:
    log = {
        "address": TOKEN.lower(),
        "topics": [
            bytes.fromhex("ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"),
            bytes(12) + bytes.fromhex(OTHER[2:]),
            bytes(12) + bytes.fromhex(WALLET[2:]),
        ],
        "data": (5 * UNIT).to_bytes(32, "big"),
    }
    assert decode_transfer(log) == Transfer(TOKEN, OTHER, WALLET, 5 * UNIT)
    assert decode_transfer({**log, "topics": log["topics"][:2]}) is None
    assert decode_transfer({**log, "topics": [bytes(32), *log["topics"][1:]]}) is None


def test_the_transfer_topic_comes_from_the_erc20_abi() -> None:
    from service.delivery.rules import TRANSFER_TOPIC

    assert TRANSFER_TOPIC == "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"


def test_tokens_the_wallet_sent_itself_are_no_delivery() -> None:
    status, amount, detail = verdict([Transfer(TOKEN, WALLET, WALLET, 98 * UNIT)])
    assert (status, amount, detail) == ("mismatch", "0", "the wallet sent the tokens to itself")
    mixed = judge(
        reverted=False,
        transfers=[
            Transfer(TOKEN, WALLET, WALLET, 50 * UNIT, log_index=3),
            Transfer(TOKEN, OTHER, WALLET, 98 * UNIT, log_index=4),
        ],
        token=TOKEN,
        wallet=WALLET,
        expected_units=98 * UNIT,
        tolerance_units=0,
        decimals=18,
        confirmations=1,
        required_confirmations=1,
    )
    assert (mixed.status, mixed.delivered_amount) == ("confirmed", "98")
    assert [t.log_index for t in mixed.counted] == [4]


def test_transfers_keep_their_place_among_their_transactions_logs() -> None:
    transfer_log = {
        "address": TOKEN.lower(),
        "topics": [
            "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef",
            "0x" + "0" * 24 + OTHER[2:].lower(),
            "0x" + "0" * 24 + WALLET[2:].lower(),
        ],
        "data": hex(5),
        "logIndex": "0x1a",  # the block-wide index, which a reorg can change: not used
    }
    other_event = {"address": TOKEN.lower(), "topics": ["0x" + "11" * 32], "data": "0x"}
    assert receipt_transfers([other_event, transfer_log, transfer_log]) == [
        Transfer(TOKEN, OTHER, WALLET, 5, 1),
        Transfer(TOKEN, OTHER, WALLET, 5, 2),
    ]


def test_a_tolerance_finer_than_the_token_is_cut_to_its_units() -> None:
    assert floor_units("0.0000001", 6) == 0
    assert floor_units("0.01", 6) == 10_000
    assert floor_units("0.0100009", 6) == 10_000

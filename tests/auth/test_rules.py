"""The pure sign-in rules, without any server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account
from eth_account.messages import defunct_hash_message, encode_defunct
from hypothesis import given
from hypothesis import strategies as st

from service.auth import rules
from service.chain.addresses import checksum_wallet
from service.errors import Unauthorized

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
AUDIENCE = rules.Audience("app.example", "https://app.example", 31611)
SIGNER = Account.from_key("0x" + "11" * 32)


def message_text(**changes: object) -> str:
    fields: dict[str, object] = {
        "wallet": SIGNER.address,
        "nonce": "abcdefgh12345678",
        "issued_at": NOW,
        "expires_at": NOW + timedelta(minutes=5),
        "audience": AUDIENCE,
    }
    fields.update(changes)
    return rules.build_message(**fields)  # type: ignore[arg-type]


def rejection(call: object, *args: object) -> str:
    with pytest.raises(Unauthorized) as raised:
        call(*args)  # type: ignore[operator]
    return raised.value.code


def test_built_messages_parse_back_to_their_fields() -> None:
    message = rules.parse_message(message_text())
    assert message.domain == "app.example"
    assert message.address == SIGNER.address
    assert message.chain_id == 31611
    assert message.nonce == "abcdefgh12345678"
    assert message.expiration_time is not None
    rules.check_message(message, AUDIENCE, NOW)


@pytest.mark.parametrize(
    ("audience", "now", "code"),
    [
        (rules.Audience("evil.example", "https://app.example", 31611), NOW, "domain_mismatch"),
        (rules.Audience("app.example", "https://evil.example", 31611), NOW, "uri_mismatch"),
        (rules.Audience("app.example", "https://app.example", 1), NOW, "chain_id_mismatch"),
        (AUDIENCE, NOW + timedelta(minutes=5), "message_expired"),
        (AUDIENCE, NOW - timedelta(minutes=2), "message_not_yet_valid"),
    ],
)
def test_messages_for_elsewhere_or_out_of_time_are_refused(
    audience: rules.Audience, now: datetime, code: str
) -> None:
    message = rules.parse_message(message_text())
    assert rejection(rules.check_message, message, audience, now) == code


def test_small_clock_skew_is_tolerated() -> None:
    message = rules.parse_message(message_text(issued_at=NOW + timedelta(seconds=30)))
    rules.check_message(message, AUDIENCE, NOW)


def test_uri_path_does_not_matter_but_origin_does() -> None:
    on_a_page = rules.Audience("app.example", "https://app.example/sign-in", 31611)
    rules.check_message(rules.parse_message(message_text(audience=on_a_page)), AUDIENCE, NOW)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        message_text().replace("Version: 1", "Version: 2"),
        message_text().replace("Chain ID: 31611", "Chain ID: x"),
        message_text().replace(SIGNER.address, SIGNER.address[:-1]),
        message_text().replace(SIGNER.address, "0x" + SIGNER.address[2:].swapcase()),
    ],
)
def test_malformed_messages_are_refused(text: str) -> None:
    assert rejection(rules.parse_message, text) == "message_malformed"


@given(st.text(max_size=600))
def test_any_text_either_parses_or_is_message_malformed(text: str) -> None:
    code = None
    try:
        rules.parse_message(text)
    except Unauthorized as error:
        code = error.code
    assert code in (None, "message_malformed")


@given(st.text(max_size=200))
def test_any_signature_text_either_parses_or_is_signature_malformed(text: str) -> None:
    code: str | None
    try:
        signature = rules.parse_signature(text)
    except Unauthorized as error:
        code = error.code
    else:
        code = None
        assert rules.recover_signer("any message", signature) is None or len(signature) == 65
    assert code in (None, "signature_malformed")


@given(st.binary(max_size=200))
def test_recovery_of_arbitrary_bytes_never_raises(signature: bytes) -> None:
    signer = rules.recover_signer("any message", signature)
    assert signer is None or len(signature) == 65


def test_the_signer_of_a_personal_sign_signature_is_recovered() -> None:
    text = message_text()
    signed = SIGNER.sign_message(encode_defunct(text=text))
    assert rules.signed_by(text, signed.signature, SIGNER.address)
    assert rules.signed_by(text, signed.signature, SIGNER.address.lower())
    assert not rules.signed_by(text + " ", signed.signature, SIGNER.address)


def eth_account_signer(text: str, signature: bytes) -> bytes | None:
    """What eth-account's own recovery answers, as 20 bytes."""
    try:
        signer = Account.recover_message(encode_defunct(text=text), signature=signature)
    except Exception:
        return None
    return bytes.fromhex(signer[2:])


@given(st.text(max_size=300), st.sampled_from(range(256)), st.binary(min_size=64, max_size=64))
def test_recovery_answers_what_eth_account_answers(text: str, v: int, rs: bytes) -> None:
    """Any `v` byte, any r and s (most are no point's, some out of range)."""
    signature = rs + bytes([v])
    assert rules.recover_signer(text, signature) == eth_account_signer(text, signature)


@pytest.mark.parametrize("v", range(256))
def test_every_v_of_a_real_signature_recovers_as_eth_account_recovers(v: int) -> None:
    text = message_text()
    signature = bytes(SIGNER.sign_message(encode_defunct(text=text)).signature)[:64] + bytes([v])
    assert rules.recover_signer(text, signature) == eth_account_signer(text, signature)


@given(st.text(max_size=300))
def test_the_personal_message_hash_is_eip_191s(text: str) -> None:
    assert rules.personal_message_hash(text) == defunct_hash_message(text=text)


LATER = NOW + timedelta(minutes=5)


@pytest.mark.parametrize(
    ("record", "code"),
    [
        (None, "nonce_invalid"),
        (rules.NonceRecord("0x" + "ab" * 20, NOW, LATER, None), "nonce_invalid"),
        (rules.NonceRecord(SIGNER.address, NOW + timedelta(hours=1), LATER, None), "nonce_invalid"),
        (rules.NonceRecord(SIGNER.address, NOW, LATER, NOW), "nonce_used"),
        (rules.NonceRecord(SIGNER.address, NOW, NOW, None), "nonce_expired"),
    ],
)
def test_nonces_must_be_ours_unused_fresh_and_not_predated(
    record: rules.NonceRecord | None, code: str
) -> None:
    message = rules.parse_message(message_text())
    assert rejection(rules.check_nonce, record, message, NOW) == code


def test_a_nonce_checks_out_for_its_own_message() -> None:
    message = rules.parse_message(message_text())
    rules.check_nonce(rules.NonceRecord(SIGNER.address, NOW, LATER, None), message, NOW)


def test_nonces_are_long_random_alphanumerics() -> None:
    nonces = {rules.new_nonce() for _ in range(100)}
    assert len(nonces) == 100
    assert all(n.isalnum() and n.isascii() and len(n) >= 16 for n in nonces)


@pytest.mark.parametrize(
    ("given_address", "expected"),
    [
        (
            "0x52908400098527886e0f7030069857d2e4169ee7",
            "0x52908400098527886E0F7030069857D2E4169EE7",
        ),
        (
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "0x52908400098527886E0F7030069857D2E4169EE7",
        ),
        (
            "0x52908400098527886E0F7030069857D2E4169EE7".upper().replace("0X", "0x"),
            "0x52908400098527886E0F7030069857D2E4169EE7",
        ),
    ],
)
def test_addresses_in_any_valid_case_come_back_checksummed(
    given_address: str, expected: str
) -> None:
    assert checksum_wallet(given_address) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "0x52908400098527886e0F7030069857D2E4169EE7",  # mixed case, wrong checksum
        "52908400098527886E0F7030069857D2E4169EE7",
        "0x52908400098527886E0F7030069857D2E4169EE",
        "0xZZ908400098527886E0F7030069857D2E4169EE7",
        "",
    ],
)
def test_invalid_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        checksum_wallet(bad)


def test_compact_signatures_of_either_y_parity_recover_the_signer() -> None:
    seen = set()
    for n in range(64):
        text = f"message {n}"
        signed = SIGNER.sign_message(encode_defunct(text=text))
        parity = signed.v - 27
        y_parity_and_s = signed.s | (parity << 255)
        compact = signed.r.to_bytes(32, "big") + y_parity_and_s.to_bytes(32, "big")
        assert rules.signed_by(text, compact, SIGNER.address)
        seen.add(parity)
        if seen == {0, 1}:
            break
    assert seen == {0, 1}

"""Bitcoin addresses, BIP-137 signatures and Mezo account derivation, without a server."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import base58
import bech32
import pytest
from coincurve import PrivateKey
from Crypto.Hash import RIPEMD160

from service.auth import bitcoin, passport, rules
from service.errors import InvalidRequest, Unauthorized

TESTNET = passport.deployments()[31611]
AUDIENCE = rules.Audience("app.example", "https://app.example", 31611, passport=TESTNET)
NOW = datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
KEY = PrivateKey(bytes.fromhex("22" * 32))


def hash160(data: bytes) -> bytes:
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


def addresses_of(key: PrivateKey, network: str = "testnet") -> dict[str, str]:
    """The three addresses of one key, built here from the encodings' definitions."""
    key_hash = hash160(key.public_key.format(compressed=True))
    p2pkh, p2sh, hrp = (0x6F, 0xC4, "tb") if network == "testnet" else (0x00, 0x05, "bc")
    return {
        "p2pkh": base58.b58encode_check(bytes([p2pkh]) + key_hash).decode(),
        "p2sh-p2wpkh": base58.b58encode_check(
            bytes([p2sh]) + hash160(b"\x00\x14" + key_hash)
        ).decode(),
        "p2wpkh": str(bech32.encode(hrp, 0, key_hash)),
    }


def bip137(key: PrivateKey, message: str, header_base: int) -> bytes:
    """A BIP-137 signature: header (base + recovery id), r, s."""
    recoverable = key.sign_recoverable(bitcoin.message_digest(message), hasher=None)
    return bytes([header_base + recoverable[64]]) + recoverable[:64]


HEADER_BASES = {"p2pkh": 31, "p2sh-p2wpkh": 35, "p2wpkh": 39}


@pytest.mark.parametrize(
    ("payload", "account"),
    [
        ("00" * 20, "0xd84C120D84CC795F9b5649594B916A961C64f387"),
        ("ff" * 20, "0x1Ae9407f0FA2f165cC28767750bBCd0219540c62"),
        ("1234567890abcdef1234567890abcdef12345678", "0xc6Dc4b63f691de9ec6E495Fe3b1207C1CABa5370"),
    ],
)
def test_mezo_accounts_match_mezos_own_vectors(payload: str, account: str) -> None:
    assert passport.mezo_account(bytes.fromhex(payload), TESTNET) == account
    assert passport.mezo_account(bytes.fromhex(payload), passport.deployments()[31612]) == account


def test_a_testnet_p2pkh_address_maps_to_mezos_vector_account() -> None:
    address = bitcoin.parse_bitcoin_address("mv4rnyY3Su5gjcDNzbMLKBQkBicCtHUtFB")
    assert (address.kind, address.network) == ("p2pkh", "testnet")
    assert passport.mezo_account(address.payload, TESTNET) == (
        "0x6083Bde64CCBF08470a1a0dAa9a0281B4951be7C"
    )


@pytest.mark.parametrize(
    ("text", "kind", "network"),
    [
        ("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2", "p2pkh", "mainnet"),
        ("3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy", "p2sh-p2wpkh", "mainnet"),
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "p2wpkh", "mainnet"),
        ("BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4", "p2wpkh", "mainnet"),
        ("mv4rnyY3Su5gjcDNzbMLKBQkBicCtHUtFB", "p2pkh", "testnet"),
        ("2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc", "p2sh-p2wpkh", "testnet"),
        ("tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx", "p2wpkh", "testnet"),
    ],
)
def test_addresses_are_read_by_their_prefix(text: str, kind: str, network: str) -> None:
    address = bitcoin.parse_bitcoin_address(text)
    assert (address.kind, address.network, len(address.payload)) == (kind, network, 20)
    assert address.text == (text.lower() if text.lower().startswith("bc1") else text)


@pytest.mark.parametrize(
    "text",
    [
        "bc1p5d7rjq7g6rdk2yhzks9smlaqtedr4dekq08ge8ztwac72sfr9rusxg3297",  # Taproot
        "tb1pqqqqp399et2xygdj5xreqhjjvcmzhxw4aywxecjdzew6hylgvsesf3hn0c",  # Taproot, testnet
        "bc1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3qccfmv3",  # P2WSH
    ],
)
def test_addresses_passport_has_no_account_for_are_unsupported(text: str) -> None:
    with pytest.raises(bitcoin.UnsupportedBitcoinAddress):
        bitcoin.parse_bitcoin_address(text)
    with pytest.raises(InvalidRequest) as raised:
        rules.signing_wallet(text, AUDIENCE)
    assert raised.value.code == "unsupported_address_type"


@pytest.mark.parametrize(
    "text",
    [
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3",  # checksum
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",  # checksum
        "bc1pw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",  # bech32m checksum
        "ltc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "LVg2kJoFNg45Nbpy53h7Fe1wKyeXVRhMH9",  # Litecoin
        "mv4rnyY3Su5gjcDNzbMLKBQkBicCtHUtFB \n",  # the decoder alone would forgive this
        " mv4rnyY3Su5gjcDNzbMLKBQkBicCtHUtFB",
        "tb1qW508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx",  # mixed case (BIP-173)
        "hello",
        "",
    ],
)
def test_other_strings_are_invalid_addresses(text: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        rules.signing_wallet(text, AUDIENCE)
    assert raised.value.code == "invalid_wallet_address"


def test_a_chain_without_passport_takes_no_bitcoin_wallet() -> None:
    with pytest.raises(InvalidRequest) as raised:
        rules.signing_wallet(addresses_of(KEY)["p2wpkh"], rules.Audience("a", "https://a", 1))
    assert raised.value.code == "unsupported_address_type"


def signed_message(address: str) -> str:
    return rules.build_message(
        address, "abcdefgh12345678", NOW, NOW + timedelta(minutes=5), AUDIENCE
    )


def test_a_bitcoin_message_names_the_account_kind_and_has_no_chain_id() -> None:
    address = addresses_of(KEY)["p2wpkh"]
    text = signed_message(address)
    assert text.splitlines()[:2] == [
        "app.example wants you to sign in with your Bitcoin account:",
        address,
    ]
    assert "Chain ID" not in text
    message = rules.parse_message(text)
    assert (message.family, message.address, message.chain_id) == ("bitcoin", address, None)
    rules.check_message(message, AUDIENCE, NOW)


def test_a_bitcoin_message_with_a_chain_id_is_malformed() -> None:
    text = signed_message(addresses_of(KEY)["p2wpkh"]).replace(
        "Version: 1\n", "Version: 1\nChain ID: 31611\n"
    )
    with pytest.raises(Unauthorized) as raised:
        rules.parse_message(text)
    assert raised.value.code == "message_malformed"


def test_a_mainnet_address_cannot_sign_in_on_the_testnet_chain() -> None:
    message = rules.parse_message(signed_message(addresses_of(KEY, "mainnet")["p2wpkh"]))
    with pytest.raises(Unauthorized) as raised:
        rules.check_message(message, AUDIENCE, NOW)
    assert raised.value.code == "chain_id_mismatch"


@pytest.mark.parametrize("kind", ["p2pkh", "p2sh-p2wpkh", "p2wpkh"])
@pytest.mark.parametrize("encoding", ["base64", "hex"])
def test_each_kind_of_address_signs_in_to_its_mezo_account(kind: str, encoding: str) -> None:
    address = addresses_of(KEY)[kind]
    text = signed_message(address)
    raw = bip137(KEY, text, HEADER_BASES[kind])
    signature = base64.b64encode(raw).decode() if encoding == "base64" else "0x" + raw.hex()
    account = rules.bitcoin_account(rules.parse_message(text), text, signature, TESTNET)
    assert account == passport.mezo_account(bitcoin.parse_bitcoin_address(address).payload, TESTNET)


def test_one_keys_p2pkh_and_p2wpkh_addresses_share_one_account() -> None:
    accounts = set()
    for kind in ("p2pkh", "p2wpkh"):
        text = signed_message(addresses_of(KEY)[kind])
        signature = base64.b64encode(bip137(KEY, text, HEADER_BASES[kind])).decode()
        accounts.add(rules.bitcoin_account(rules.parse_message(text), text, signature, TESTNET))
    assert len(accounts) == 1


def test_an_uncompressed_p2pkh_key_signs_in() -> None:
    key_hash = hash160(KEY.public_key.format(compressed=False))
    address = base58.b58encode_check(b"\x6f" + key_hash).decode()
    text = signed_message(address)
    signature = "0x" + bip137(KEY, text, 27).hex()
    assert rules.bitcoin_account(
        rules.parse_message(text), text, signature, TESTNET
    ) == passport.mezo_account(key_hash, TESTNET)


def refusal(text: str, signature: str) -> str:
    with pytest.raises(Unauthorized) as raised:
        rules.bitcoin_account(rules.parse_message(text), text, signature, TESTNET)
    return raised.value.code


def test_signatures_by_another_key_or_of_another_kind_or_text_are_refused() -> None:
    address = addresses_of(KEY)["p2wpkh"]
    text = signed_message(address)
    other = PrivateKey(bytes.fromhex("33" * 32))
    assert refusal(text, "0x" + bip137(other, text, 39).hex()) == "signature_invalid"
    # The right key, but a header naming P2PKH: the address it rebuilds is not this one.
    assert refusal(text, "0x" + bip137(KEY, text, 31).hex()) == "signature_invalid"
    tampered = text.replace("Sign in to buy", "Sign in to sell")
    assert refusal(tampered, "0x" + bip137(KEY, text, 39).hex()) == "signature_invalid"


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "0x" + "00" * 65,  # header 0
        "0x" + "2b" + "00" * 64,  # header 43
        "0x" + "1f" * 64,  # 64 bytes
        base64.b64encode(b"\x1f" * 66).decode(),
        "not base64 !",
        "0x" + "zz" * 65,
    ],
)
def test_malformed_bitcoin_signatures_are_refused(signature: str) -> None:
    assert refusal(signed_message(addresses_of(KEY)["p2wpkh"]), signature) == "signature_malformed"


def test_a_signature_no_key_recovers_from_is_invalid_not_an_error() -> None:
    text = signed_message(addresses_of(KEY)["p2wpkh"])
    no_point = bytes([39]) + (2**256 - 1).to_bytes(32, "big") + b"\x01" * 32
    assert refusal(text, base64.b64encode(no_point).decode()) == "signature_invalid"

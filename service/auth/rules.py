"""The pure rules of sign-in (EIP-4361, and Mezo's variant for Bitcoin wallets): what
makes a message and a signature acceptable.

No I/O here: the nonce's stored record and the clock are passed in, so every rule is
tested without a server. Each rejection carries its own stable `code`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from coincurve import PublicKey
from Crypto.Hash import keccak

from service.auth import bitcoin
from service.auth.message import (
    Family,
    MalformedMessage,
    SignInMessage,
    format_sign_in_message,
    parse_sign_in_message,
)
from service.auth.passport import PassportDeployment, mezo_account
from service.chain.addresses import checksum_wallet, invalid_wallet, wallet_parameter
from service.errors import InvalidRequest, Unauthorized

NONCE_BYTES = 16  # EIP-4361 asks for at least 8 alphanumerics
STATEMENT = "Sign in to buy MUSD with onramp."
EOA_SIGNATURE_LENGTH = 65
COMPACT_SIGNATURE_LENGTH = 64  # EIP-2098: r, then yParity in the top bit of s
_HEX_SIGNATURE = re.compile(r"0x(?:[0-9a-fA-F]{2})+")
# Verifies of one nonce that may ask the chain (a contract wallet's signature, or one
# that is not the wallet's key): each runs code the signer chose on a node; after the
# last of them has failed, the nonce is spent.
CHAIN_CHECKS_PER_NONCE = 3


@dataclass(frozen=True)
class Audience:
    """What a sign-in message must name to be meant for this service."""

    domain: str
    uri: str
    chain_id: int
    clock_skew: timedelta = timedelta(seconds=60)
    # Where the chain's Bitcoin wallets have their Mezo accounts; None: no Bitcoin sign-in.
    passport: PassportDeployment | None = None


@dataclass(frozen=True)
class NonceRecord:
    wallet_address: str
    issued_at: datetime
    expires_at: datetime
    used_at: datetime | None
    chain_checks: int = 0


def new_nonce() -> str:
    """128 random bits as 32 hex digits: alphanumeric, as EIP-4361 asks."""
    return secrets.token_hex(NONCE_BYTES)


def signing_wallet(text: str, audience: Audience) -> str:
    """The wallet a nonce is asked for, as it is stored and signed: an EIP-55 address,
    or a Bitcoin address of a kind that has a Mezo account on this chain."""
    if not bitcoin.looks_like_bitcoin(text):
        return wallet_parameter(text, "walletAddress")
    try:
        address = bitcoin.parse_bitcoin_address(text)
    except bitcoin.UnsupportedBitcoinAddress as error:
        raise InvalidRequest(
            f"This kind of Bitcoin address cannot sign in: {error}.",
            code="unsupported_address_type",
        ) from error
    except bitcoin.InvalidBitcoinAddress as error:
        raise invalid_wallet(str(error), "walletAddress") from error
    if audience.passport is None:
        raise InvalidRequest(
            f"Chain {audience.chain_id} has no Mezo Passport accounts for Bitcoin wallets.",
            code="unsupported_address_type",
        )
    return address.text


def build_message(
    wallet: str, nonce: str, issued_at: datetime, expires_at: datetime, audience: Audience
) -> str:
    """A complete message a wallet can sign as it is: EIP-4361 for an Ethereum address,
    Mezo's Sign-In With Wallet (no chain id) for a Bitcoin one."""
    family: Family = "bitcoin" if bitcoin.looks_like_bitcoin(wallet) else "ethereum"
    return format_sign_in_message(
        SignInMessage(
            domain=audience.domain,
            address=wallet,
            statement=STATEMENT,
            uri=audience.uri,
            version="1",
            chain_id=audience.chain_id if family == "ethereum" else None,
            nonce=nonce,
            issued_at=issued_at,
            expiration_time=expires_at,
            family=family,
        )
    )


def parse_message(text: str) -> SignInMessage:
    """Strict EIP-4361 parsing in linear time; anything else is `message_malformed`."""
    try:
        message = parse_sign_in_message(text)
        if message.family == "ethereum":
            checksum_wallet(message.address)
        else:
            bitcoin.parse_bitcoin_address(message.address)
    except bitcoin.UnsupportedBitcoinAddress as error:
        raise InvalidRequest(
            f"This kind of Bitcoin address cannot sign in: {error}.",
            code="unsupported_address_type",
        ) from error
    except (MalformedMessage, ValueError) as error:
        raise Unauthorized(
            "The message is not a valid EIP-4361 sign-in message.", code="message_malformed"
        ) from error
    return message


def nonce_wallet(message: SignInMessage) -> str:
    """The wallet as its nonce was stored (`signing_wallet`)."""
    if message.family == "bitcoin":
        return bitcoin.parse_bitcoin_address(message.address).text
    return checksum_wallet(message.address)


def check_message(message: SignInMessage, audience: Audience, now: datetime) -> None:
    """Is this message meant for this service, on this chain, and valid now?"""
    if message.domain != audience.domain:
        raise Unauthorized("The message is for another domain.", code="domain_mismatch")
    expected = urlsplit(audience.uri)
    given = urlsplit(str(message.uri))
    if (given.scheme, given.netloc.lower()) != (expected.scheme, expected.netloc.lower()):
        raise Unauthorized("The message is for another URI.", code="uri_mismatch")
    if message.scheme is not None and message.scheme != expected.scheme:
        raise Unauthorized("The message is for another scheme.", code="uri_mismatch")
    if message.family == "ethereum" and message.chain_id != audience.chain_id:
        raise Unauthorized("The message is for another chain.", code="chain_id_mismatch")
    if message.family == "bitcoin":
        network = bitcoin.parse_bitcoin_address(message.address).network
        if audience.passport is None or audience.passport.bitcoin_network != network:
            raise Unauthorized(
                f"A Bitcoin {network} address cannot sign in on chain {audience.chain_id}.",
                code="chain_id_mismatch",
            )
    if message.issued_at > now + audience.clock_skew:
        raise Unauthorized("The message is issued in the future.", code="message_not_yet_valid")
    if message.not_before is not None and message.not_before > now + audience.clock_skew:
        raise Unauthorized("The message is not valid yet.", code="message_not_yet_valid")
    if message.expiration_time is not None and now >= message.expiration_time:
        raise Unauthorized("The message has expired.", code="message_expired")


def check_nonce(
    record: NonceRecord | None,
    message: SignInMessage,
    now: datetime,
    clock_skew: timedelta = timedelta(seconds=60),
) -> None:
    """The nonce must be ours, for this wallet, unused (with a check on chain left),
    unexpired, and not predated."""
    if record is None or record.wallet_address != nonce_wallet(message):
        raise Unauthorized("The nonce was not issued by this service.", code="nonce_invalid")
    if message.issued_at < record.issued_at - clock_skew:
        raise Unauthorized(
            "The message claims to be issued before its nonce was.", code="nonce_invalid"
        )
    if record.used_at is not None or record.chain_checks >= CHAIN_CHECKS_PER_NONCE:
        raise Unauthorized("The nonce has already been used.", code="nonce_used")
    if now >= record.expires_at:
        raise Unauthorized("The nonce has expired.", code="nonce_expired")


def parse_signature(text: str) -> bytes:
    if not _HEX_SIGNATURE.fullmatch(text):
        raise Unauthorized("The signature must be 0x-prefixed hex.", code="signature_malformed")
    return bytes.fromhex(text[2:])


def expand_compact(signature: bytes) -> bytes:
    """An EIP-2098 compact signature (r, yParity|s) as the 65 bytes r, s, v."""
    y_parity_and_s = int.from_bytes(signature[32:], "big")
    s = y_parity_and_s & ((1 << 255) - 1)
    return signature[:32] + s.to_bytes(32, "big") + bytes([27 + (y_parity_and_s >> 255)])


def personal_message_hash(message_text: str) -> bytes:
    """EIP-191's hash of `message_text` as personal_sign signs it (eth-account's
    `defunct_hash_message`)."""
    body = message_text.encode()
    return _keccak(b"\x19Ethereum Signed Message:\n%d%b" % (len(body), body))


def recover_signer(message_text: str, signature: bytes) -> bytes | None:
    """The 20-byte address of the EOA that signed `message_text` with EIP-191
    personal_sign, if any; the signature may be 65 bytes or EIP-2098's compact 64.

    What eth-account's `recover_message` recovers, straight from coincurve: its
    signature and key objects validate and convert in Python, and its checksummed
    answer costs another hash, together more than the recovery itself.
    """
    if len(signature) == COMPACT_SIGNATURE_LENGTH:
        signature = expand_compact(signature)
    if len(signature) != EOA_SIGNATURE_LENGTH:
        return None
    recovery_id = _recovery_id(signature[64])
    if recovery_id is None:
        return None
    recoverable = signature[:64] + bytes([recovery_id])
    try:
        key = PublicKey.from_signature_and_message(
            recoverable, personal_message_hash(message_text), hasher=None
        )
    except ValueError:  # r or s out of range, or no key: not an EOA signature at all
        return None
    return _keccak(key.format(compressed=False)[1:])[12:]


def signed_by(message_text: str, signature: bytes, wallet: str) -> bool:
    """Did the EOA `wallet` (0x and 40 hex digits) sign `message_text`?"""
    return recover_signer(message_text, signature) == bytes.fromhex(wallet[2:])


def _recovery_id(v: int) -> int | None:
    """The recovery id a signature's `v` carries, read as eth-account reads it: 0 or 1,
    27 or 28, or EIP-155's 35 and above (its parity)."""
    if v in (0, 1):
        return v
    if v in (27, 28):
        return v - 27
    if v >= 35:
        return (v - 35) % 2
    return None


def _keccak(data: bytes) -> bytes:
    return keccak.new(data=data, digest_bits=256).digest()


def bitcoin_account(
    message: SignInMessage, message_text: str, signature_text: str, passport: PassportDeployment
) -> str:
    """The Mezo account of the Bitcoin wallet that signed `message_text` (BIP-137); the
    signature must come from the key of the message's address, of the header's kind."""
    address = bitcoin.parse_bitcoin_address(message.address)
    try:
        signature = bitcoin.parse_signature(signature_text)
    except bitcoin.InvalidBitcoinSignature as error:
        raise Unauthorized(
            f"Not a Bitcoin message signature: {error}.", code="signature_malformed"
        ) from error
    if bitcoin.signing_address(message_text, signature, address.network) != address.text:
        raise Unauthorized("The signature is not the wallet's.", code="signature_invalid")
    return mezo_account(address.payload, passport)

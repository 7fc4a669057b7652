"""Bitcoin addresses and legacy message signatures (BIP-137), as Mezo Passport's wallets
make them. Pure: no I/O, tested against Mezo's vectors and other Bitcoin libraries.

The curve is coincurve's and the encodings are `base58` and `bech32`'s; what is written
here is only how BIP-137 puts them together, which no maintained Python library does
without pulling in a whole wallet.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from typing import Literal

import base58
import bech32
from coincurve import PublicKey
from Crypto.Hash import RIPEMD160

AddressKind = Literal["p2pkh", "p2sh-p2wpkh", "p2wpkh"]
BitcoinNetwork = Literal["mainnet", "testnet"]

SIGNATURE_LENGTH = 65
MESSAGE_PREFIX = b"\x18Bitcoin Signed Message:\n"
# bech32m's checksum constant (BIP-350): Taproot addresses use it, segwit v0 does not.
_BECH32M_CONSTANT = 0x2BC830A3
_BASE58_VERSIONS: dict[int, tuple[AddressKind, BitcoinNetwork]] = {
    0x00: ("p2pkh", "mainnet"),
    0x6F: ("p2pkh", "testnet"),
    0x05: ("p2sh-p2wpkh", "mainnet"),
    0xC4: ("p2sh-p2wpkh", "testnet"),
}
_SEGWIT_PREFIXES: dict[str, BitcoinNetwork] = {"bc": "mainnet", "tb": "testnet"}
_HEX = re.compile(r"0x[0-9a-fA-F]{130}")
# Checked before decoding: the decoder would forgive surrounding whitespace.
_BASE58_ADDRESS = re.compile(r"[1-9A-HJ-NP-Za-km-z]{25,35}")


class InvalidBitcoinAddress(ValueError):
    """Not an address of a Bitcoin network."""


class UnsupportedBitcoinAddress(ValueError):
    """A real address of a kind Passport has no Mezo account for (Taproot, P2WSH)."""


class InvalidBitcoinSignature(ValueError):
    """Not a 65-byte BIP-137 signature."""


@dataclass(frozen=True)
class BitcoinAddress:
    text: str  # bech32 addresses in lower case, as they are compared
    kind: AddressKind
    network: BitcoinNetwork
    # The 20 bytes the address commits to: the key's HASH160, or for P2SH-P2WPKH the
    # script's. Mezo derives the account from these.
    payload: bytes


def looks_like_bitcoin(text: str) -> bool:
    """Anything not `0x`-prefixed is read as a Bitcoin address."""
    return text[:2].lower() != "0x"


def parse_bitcoin_address(text: str) -> BitcoinAddress:
    lowered = text.lower()
    if lowered[:3] in ("bc1", "tb1"):
        if text not in (lowered, text.upper()):
            raise InvalidBitcoinAddress("a bech32 address is all lower or all upper case")
        return _segwit_address(lowered)
    if not _BASE58_ADDRESS.fullmatch(text):
        raise InvalidBitcoinAddress("not a valid Bitcoin address")
    try:
        raw = base58.b58decode_check(text)
    except ValueError as error:
        raise InvalidBitcoinAddress("not a valid Bitcoin address") from error
    if len(raw) != 21 or raw[0] not in _BASE58_VERSIONS:
        raise InvalidBitcoinAddress("not a P2PKH or P2SH address of a Bitcoin network")
    kind, network = _BASE58_VERSIONS[raw[0]]
    return BitcoinAddress(text, kind, network, raw[1:])


def _segwit_address(text: str) -> BitcoinAddress:
    prefix = text[:2]
    version, program = bech32.decode(prefix, text)
    if version is None or program is None:
        if _is_bech32m(text):
            raise UnsupportedBitcoinAddress("Taproot addresses are not supported")
        raise InvalidBitcoinAddress("not a valid Bitcoin address")
    if version != 0 or len(program) != 20:
        raise UnsupportedBitcoinAddress("only P2WPKH segwit addresses are supported")
    return BitcoinAddress(text, "p2wpkh", _SEGWIT_PREFIXES[prefix], bytes(program))


def _is_bech32m(text: str) -> bool:
    hrp, _, data = text.rpartition("1")
    if not hrp or len(data) < 6 or any(c not in bech32.CHARSET for c in data):
        return False
    values = [bech32.CHARSET.find(c) for c in data]
    return bech32.bech32_polymod(bech32.bech32_hrp_expand(hrp) + values) == _BECH32M_CONSTANT


def parse_signature(text: str) -> bytes:
    """A BIP-137 signature as wallets give it (base64) or as Passport does (0x-hex)."""
    if _HEX.fullmatch(text):
        raw = bytes.fromhex(text[2:])
    else:
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as error:
            raise InvalidBitcoinSignature("neither base64 nor 0x-prefixed hex") from error
    if len(raw) != SIGNATURE_LENGTH or not 27 <= raw[0] <= 42:
        raise InvalidBitcoinSignature("a BIP-137 signature is 65 bytes, header 27 to 42")
    return raw


def message_digest(message: str) -> bytes:
    """What a Bitcoin wallet signs for `message`: a double SHA-256 of it, prefixed."""
    encoded = message.encode()
    payload = MESSAGE_PREFIX + _varint(len(encoded)) + encoded
    return hashlib.sha256(hashlib.sha256(payload).digest()).digest()


def signing_address(message: str, signature: bytes, network: BitcoinNetwork) -> str | None:
    """The address, of the kind the signature's header names, whose key signed
    `message`; None when no key did."""
    header = signature[0] - 27
    recovery_id, kind_index = header % 4, header // 4
    recoverable = signature[1:] + bytes([recovery_id])
    try:
        key = PublicKey.from_signature_and_message(recoverable, message_digest(message), None)
    except ValueError:
        return None
    if kind_index == 0:  # P2PKH of the uncompressed key
        return _base58_address("p2pkh", network, _hash160(key.format(compressed=False)))
    key_hash = _hash160(key.format(compressed=True))
    if kind_index == 1:
        return _base58_address("p2pkh", network, key_hash)
    if kind_index == 2:
        return _base58_address("p2sh-p2wpkh", network, _hash160(b"\x00\x14" + key_hash))
    return str(bech32.encode("bc" if network == "mainnet" else "tb", 0, key_hash))


def _base58_address(kind: AddressKind, network: BitcoinNetwork, payload: bytes) -> str:
    version = next(v for v, known in _BASE58_VERSIONS.items() if known == (kind, network))
    return base58.b58encode_check(bytes([version]) + payload).decode()


def _hash160(data: bytes) -> bytes:
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


def _varint(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    return b"\xfe" + n.to_bytes(4, "little")

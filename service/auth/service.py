"""Sign-in: issue a nonce for a wallet, verify its signed message, hand out a token."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlmodel.ext.asyncio.session import AsyncSession

from service.auth import rules
from service.auth.message import SignInMessage
from service.auth.models import AuthNonce
from service.auth.repository import NonceRepository
from service.auth.signatures import verify_wallet_signature
from service.auth.tokens import TokenIssuer, WalletToken
from service.chain.addresses import checksum_wallet
from service.chain.rpc import ChainRpc
from service.columns import utcnow
from service.errors import Unauthorized

log = structlog.get_logger("onramp.auth")

NONCE_TTL = timedelta(minutes=5)
# Unused nonces a wallet may hold at once; asking for more evicts the oldest, so that
# nobody can exhaust a wallet's nonces by asking in its name.
LIVE_NONCES_PER_WALLET = 5
# Used and expired nonces are kept a while for audit, then deleted.
NONCE_RETENTION = timedelta(hours=1)
CLEANUP_INTERVAL_SECONDS = 60.0


@dataclass(frozen=True)
class IssuedNonce:
    nonce: str
    message: str
    expires_at: datetime


class SignIn:
    def __init__(self, audience: rules.Audience, tokens: TokenIssuer, chain: ChainRpc) -> None:
        self.audience = audience
        self.tokens = tokens
        self.chain = chain
        self._last_cleanup = 0.0

    async def issue_nonce(self, db: AsyncSession, wallet_address: str) -> IssuedNonce:
        now = utcnow()
        nonce = AuthNonce(
            nonce=rules.new_nonce(),
            wallet_address=wallet_address,
            issued_at=now,
            expires_at=now.replace(microsecond=0) + NONCE_TTL,
        )
        nonces = NonceRepository(db)
        await nonces.add(nonce)
        await nonces.keep_newest(wallet_address, LIVE_NONCES_PER_WALLET)
        await self._clean_up(nonces, now)
        message = rules.build_message(
            wallet_address, nonce.nonce, now, nonce.expires_at, self.audience
        )
        return IssuedNonce(nonce.nonce, message, nonce.expires_at)

    async def verify(
        self, db: AsyncSession, message: SignInMessage, message_text: str, signature_hex: str
    ) -> WalletToken:
        """Every check that needs no I/O runs first; the nonce is spent last.

        `message` is `message_text` parsed (`rules.parse_message`); the signature is
        checked over the text exactly as the wallet signed it.
        """
        now = utcnow()
        rules.check_message(message, self.audience, now)
        signature = rules.parse_signature(signature_hex)
        wallet = checksum_wallet(message.address)
        nonces = NonceRepository(db)
        record = await nonces.get_one_or_none(message.nonce)
        rules.check_nonce(
            None
            if record is None
            else rules.NonceRecord(
                record.wallet_address, record.issued_at, record.expires_at, record.used_at
            ),
            message,
            now,
            self.audience.clock_skew,
        )
        # Nothing is written yet: end the read so that no database connection is held
        # while a slow RPC node answers for a contract wallet.
        await db.commit()
        await verify_wallet_signature(message_text, signature, wallet, self.chain)
        if not await nonces.consume(message.nonce, now):
            raise Unauthorized("The nonce has already been used.", code="nonce_used")
        log.info("signed_in", wallet=wallet)
        return self.tokens.issue(wallet, now)

    async def _clean_up(self, nonces: NonceRepository, now: datetime) -> None:
        if time.monotonic() - self._last_cleanup < CLEANUP_INTERVAL_SECONDS:
            return
        self._last_cleanup = time.monotonic()
        removed = await nonces.delete_expired(now - NONCE_RETENTION)
        if removed:
            log.info("nonces_removed", count=removed)

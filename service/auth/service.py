"""Sign-in: issue a nonce for a wallet, verify its signed message, hand out a token."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from service.auth import repository, rules
from service.auth.message import SignInMessage
from service.auth.signatures import verify_wallet_signature
from service.auth.tokens import TokenIssuer, WalletToken
from service.chain.addresses import checksum_wallet
from service.chain.rpc import ChainRpc
from service.columns import utcnow
from service.database import Database
from service.errors import Unauthorized
from service.ratelimit import RateLimiter

log = structlog.get_logger("onramp.auth")

NONCE_TTL = timedelta(minutes=5)
# Unused nonces one client may hold for one wallet; asking for more evicts that
# client's oldest. Clients never evict each other's, so nobody can exhaust or push out
# a wallet's nonce by asking in its name.
LIVE_NONCES_PER_WALLET = 5
# The rate limiter's action for verifies that ask the chain (RATE_LIMIT_CHAIN_CHECKS_...).
CHAIN_CHECK = "chain_check"


@dataclass(frozen=True)
class IssuedNonce:
    nonce: str
    message: str
    expires_at: datetime


@dataclass(frozen=True)
class ChainChecks:
    """What a verify that asks the chain runs with: the node, the gas each call may
    burn (SIGN_IN_GAS_CAP), and the clients' budgets (`CHAIN_CHECK`)."""

    rpc: ChainRpc
    gas_cap: int
    budgets: RateLimiter


class SignIn:
    def __init__(
        self,
        audience: rules.Audience,
        tokens: TokenIssuer,
        chain: ChainChecks,
        database: Database,
    ) -> None:
        self.audience = audience
        self.tokens = tokens
        self.chain = chain
        self.database = database

    async def issue_nonce(self, wallet_address: str, asker: str) -> IssuedNonce:
        now = utcnow()
        nonce = rules.new_nonce()
        expires_at = now.replace(microsecond=0) + NONCE_TTL
        await repository.add_nonce(
            self.database,
            nonce,
            wallet_address,
            now,
            expires_at,
            asker=asker,
            keep=LIVE_NONCES_PER_WALLET,
        )
        message = rules.build_message(wallet_address, nonce, now, expires_at, self.audience)
        return IssuedNonce(nonce, message, expires_at)

    async def verify(
        self, message: SignInMessage, message_text: str, signature_text: str, client: str
    ) -> WalletToken:
        """Every check that needs no I/O runs first; the nonce is spent last.

        `message` is `message_text` parsed (`rules.parse_message`); the signature is
        checked over the text exactly as the wallet signed it, by the message's family:
        BIP-137 for a Bitcoin wallet, else EIP-191 from an EOA (65 or 64 bytes), EIP-1271
        from a deployed contract wallet or ERC-6492 from one not deployed yet. `client`
        is the caller's address, whose budget a check on chain spends.
        """
        now = utcnow()
        rules.check_message(message, self.audience, now)
        if message.family == "bitcoin" and self.audience.passport is not None:
            # The Bitcoin wallet's key signed; the token names its Mezo account.
            account = rules.bitcoin_account(
                message, message_text, signature_text, self.audience.passport
            )
            bitcoin_address = rules.nonce_wallet(message)
            await self._consume_nonce(message, bitcoin_address, now)
            log.info("signed_in", wallet=account, bitcoin_address=bitcoin_address)
            return self.tokens.issue(account, now, bitcoin_address=bitcoin_address)
        signature = rules.parse_signature(signature_text)
        wallet = checksum_wallet(message.address)
        if not rules.signed_by(message_text, signature, wallet):
            await self._ask_chain(message, message_text, signature, wallet, now, client)
        await self._consume_nonce(message, wallet, now)
        log.info("signed_in", wallet=wallet)
        return self.tokens.issue(wallet, now)

    async def _ask_chain(
        self,
        message: SignInMessage,
        message_text: str,
        signature: bytes,
        wallet: str,
        now: datetime,
        client: str,
    ) -> None:
        """Not the wallet's own key: perhaps a contract wallet, deployed or not, which
        the chain must answer for by running code the signer chose. So the nonce is
        checked first, then the client's budget spent, then one of the nonce's few
        checks on chain claimed (the last one failing spends it); no database
        connection is held while a node answers."""
        await self._check_nonce(message, now)
        await self.chain.budgets.spend(CHAIN_CHECK, ip=client)
        claimed = await repository.claim_chain_check(self.database, message.nonce, wallet, now)
        if claimed is None:
            await self._check_nonce(message, now)  # which rule refused it
            raise Unauthorized("The nonce has already been used.", code="nonce_used")
        try:
            await verify_wallet_signature(
                message_text, signature, wallet, self.chain.rpc, self.chain.gas_cap
            )
        except Exception:
            if claimed >= rules.CHAIN_CHECKS_PER_NONCE:
                await repository.spend(self.database, message.nonce, now)
            raise

    async def _consume_nonce(self, message: SignInMessage, wallet: str, now: datetime) -> None:
        # The message may predate its nonce by no more than the clock skew.
        issued_by = message.issued_at + self.audience.clock_skew
        if not await repository.consume(self.database, message.nonce, wallet, issued_by, now):
            await self._check_nonce(message, now)  # which rule refused it
            raise Unauthorized("The nonce has already been used.", code="nonce_used")

    async def _check_nonce(self, message: SignInMessage, now: datetime) -> None:
        record = await repository.read_nonce(self.database, message.nonce)
        rules.check_nonce(record, message, now, self.audience.clock_skew)

"""How many live streams may be open at once, counted in this process.

An open stream holds a socket and a watch for as long as it lasts, so the caps count
streams that are open, not openings (the rate limit counts those): per wallet, per
client network, and for the whole process. Each process counts its own, in memory;
`LIVE_MAX_STREAMS` is what one process can hold (its open-file limit is checked at
start-up, `open_files.py`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from service.errors import StreamCeiling, TooManyStreams
from service.settings import LiveSettings

# A refused client may try again this much later: a slot frees whenever any stream ends.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True, slots=True)
class StreamCaps:
    per_wallet: int
    per_client: int
    total: int

    @classmethod
    def of(cls, settings: LiveSettings) -> StreamCaps:
        return cls(
            settings.max_streams_per_wallet, settings.max_streams_per_client, settings.max_streams
        )


class StreamSlots:
    """The open streams of this process, by wallet and by client network."""

    def __init__(self, caps: StreamCaps) -> None:
        self.caps = caps
        self.open = 0
        self._wallets: Counter[str] = Counter()
        self._clients: Counter[str] = Counter()

    def take(self, wallet: str, client: str) -> Slot:
        """A place for one more stream of `wallet` from `client` (a client network), or
        503 `too_many_streams` when the process is full, 429 when the wallet or the
        client is. Checking and counting happen without a pause: no other stream can
        take the last place in between."""
        retry = {"Retry-After": str(RETRY_AFTER_SECONDS)}
        if self.open >= self.caps.total:
            raise StreamCeiling(
                "This server holds as many live streams as it may; retry shortly.", headers=retry
            )
        if self._wallets[wallet] >= self.caps.per_wallet:
            raise TooManyStreams(
                f"This wallet has {self.caps.per_wallet} live streams open, its most;"
                " close one first.",
                headers=retry,
            )
        if self._clients[client] >= self.caps.per_client:
            raise TooManyStreams(
                f"This client has {self.caps.per_client} live streams open, its most;"
                " close one first.",
                headers=retry,
            )
        self.open += 1
        self._wallets[wallet] += 1
        self._clients[client] += 1
        return Slot(self, wallet, client)

    def count(self, *, wallet: str | None = None, client: str | None = None) -> int:
        """Open streams of a wallet, of a client network, or in all."""
        if wallet is not None:
            return self._wallets[wallet]
        if client is not None:
            return self._clients[client]
        return self.open

    def _give_back(self, wallet: str, client: str) -> None:
        self.open -= 1
        for counts, key in ((self._wallets, wallet), (self._clients, client)):
            counts[key] -= 1
            if counts[key] <= 0:
                del counts[key]  # no entry kept for a wallet or client that has none open


class Slot:
    """One open stream's place, given back once however often `release` is called (a
    stream may end in several ways at once: its end, its client gone, an error)."""

    __slots__ = ("_client", "_slots", "_wallet")

    def __init__(self, slots: StreamSlots, wallet: str, client: str) -> None:
        self._slots: StreamSlots | None = slots
        self._wallet = wallet
        self._client = client

    def release(self) -> None:
        if self._slots is not None:
            slots, self._slots = self._slots, None
            slots._give_back(self._wallet, self._client)

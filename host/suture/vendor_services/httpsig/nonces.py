"""The replay cache: each ``(keyid, nonce)`` is accepted once while its signature is young.

RFC 9635 §7.3.1: when a signature carries a nonce, "the verifier MUST determine that the
nonce value is unique within a reasonably short time period". A nonce is remembered until the
signature it came with falls out of the ``created`` window; after that the window check alone
refuses a replay, so memory stays bounded by the request rate times the window.
"""

from __future__ import annotations

import heapq
import threading
from typing import Protocol

from suture.vendor_services.clock import Clock, system_clock

# Ceiling on remembered nonces: past it the oldest are dropped early, which only shortens how
# long a replay is refused by this cache; the ``created`` window still refuses it later.
MAX_NONCES = 100_000


class NonceStore(Protocol):
    """Where a verifier remembers the nonces it accepted (in memory, or persistent)."""

    def check_and_remember(self, keyid: str, nonce: str, until: float) -> bool:
        """``True`` the first time ``(keyid, nonce)`` is seen; ``False`` on a replay."""
        ...


class NonceCache:
    """Remembers ``(keyid, nonce)`` pairs in memory until they expire."""

    def __init__(self, clock: Clock = system_clock, max_entries: int = MAX_NONCES) -> None:
        self._clock = clock
        self._max = max_entries
        self._seen: dict[tuple[str, str], float] = {}
        self._expiry: list[tuple[float, tuple[str, str]]] = []
        self._lock = threading.Lock()

    def _purge(self, now: float) -> None:
        while self._expiry and (self._expiry[0][0] <= now or len(self._expiry) > self._max):
            _, entry = heapq.heappop(self._expiry)
            self._seen.pop(entry, None)

    def check_and_remember(self, keyid: str, nonce: str, until: float) -> bool:
        """``True`` the first time ``(keyid, nonce)`` is seen; ``False`` on a replay."""
        entry = (keyid, nonce)
        with self._lock:
            self._purge(self._clock())
            if entry in self._seen:
                return False
            self._seen[entry] = until
            heapq.heappush(self._expiry, (until, entry))
            return True

    def __len__(self) -> int:
        return len(self._seen)

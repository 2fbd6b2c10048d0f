"""The resource server's side of token introspection (RFC 9767 §3.3), cached briefly.

The RS posts the presented token to the AS, signed with its own key (§3.2), and keeps the
answer for a few seconds (never past the token's ``exp``), so a burst of range requests costs
one introspection. The cache holds answers, not trust: every request's own signature is still
verified against the key the answer names.

An answer is kept only while the AS's **revocation epoch** (``epoch()``) is the one it was
given under: any revocation, rotation or client removal changes the epoch, and the next
request introspects again, so a revoked token is never honoured from the cache.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

import httpx

from suture.vendor_services.clock import Clock
from suture.vendor_services.errors import VendorServicesError
from suture.vendor_services.httpsig import SigningKey, sign_request

MAX_CACHE = 10_000


class IntrospectionError(VendorServicesError, RuntimeError):
    """The AS could not be asked, or answered something unusable."""


class Introspector:
    """Asks the AS about tokens; ``http`` makes an ``httpx.AsyncClient`` for each call."""

    def __init__(
        self,
        *,
        endpoint: str,
        key: SigningKey,
        instance_id: str,
        http: Callable[[], httpx.AsyncClient],
        clock: Clock,
        cache_seconds: float,
        epoch: Callable[[], object] = lambda: None,
    ) -> None:
        self.endpoint = endpoint
        self.key = key
        self.instance_id = instance_id
        self.http = http
        self.clock = clock
        self.cache_seconds = cache_seconds
        self.epoch = epoch
        self._cache: dict[str, tuple[float, object, dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.calls = 0

    async def introspect(self, token: str) -> dict[str, Any]:
        """The AS's answer for ``token``: ``{"active": false}`` or the token's data."""
        now = self.clock()
        epoch = self.epoch()  # read before asking: a revocation meanwhile voids the answer
        cache_key = hashlib.sha256(token.encode()).hexdigest()
        with self._lock:
            hit = self._cache.get(cache_key)
            if hit is not None and hit[0] > now and hit[1] == epoch:
                return hit[2]
        body = json.dumps(
            {"access_token": token, "proof": "httpsig", "resource_server": self.instance_id}
        ).encode()
        headers = sign_request(
            self.key, "POST", self.endpoint, {"Content-Type": "application/json"}, body,
            clock=self.clock,
        )
        self.calls += 1
        try:
            async with self.http() as client:
                response = await client.post(self.endpoint, content=body, headers=headers)
        except httpx.HTTPError as e:
            raise IntrospectionError(f"introspection failed: {e}") from e
        if response.status_code != 200:
            raise IntrospectionError(f"introspection answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError as e:
            raise IntrospectionError("introspection answer is not JSON") from e
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise IntrospectionError("introspection answer has no 'active'")
        until = now + self.cache_seconds
        exp = answer.get("exp")
        if isinstance(exp, int):
            until = min(until, exp)
        with self._lock:
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            self._cache[cache_key] = (until, epoch, answer)
        return answer

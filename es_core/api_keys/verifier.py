"""Which key a bearer token proves, with rows cached for a few seconds.

Every call would otherwise read ``api_keys``; the cache bounds that to one read per key id per
``ttl_seconds``, and so bounds how long a revoked key keeps working. Unknown key ids are cached
too, so a flood of made-up tokens does not reach the database either."""

from __future__ import annotations

import time
from collections.abc import Callable

from es_core.api_keys import store
from es_core.api_keys.model import ApiKey, secret_matches, split_token
from es_core.api_keys.store import Conn

# Past this many cached key ids the cache starts over (made-up ids cannot grow it forever).
MAX_CACHED_KEYS = 10_000


class KeyVerifier:
    def __init__(
        self,
        conn: Conn,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._ttl = ttl_seconds
        self._clock = clock
        self._rows: dict[str, tuple[float, ApiKey | None]] = {}

    async def verify(self, token: str) -> ApiKey | None:
        """The live key ``token`` proves; None for a malformed, unknown, wrong or revoked one."""
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        key = await self._lookup(key_id)
        if key is None or key.revoked or not secret_matches(key, secret):
            return None
        return key

    async def _lookup(self, key_id: str) -> ApiKey | None:
        now = self._clock()
        cached = self._rows.get(key_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        key = await store.get_key(self._conn, key_id)
        if len(self._rows) >= MAX_CACHED_KEYS:
            self._rows.clear()
        self._rows[key_id] = (now, key)
        return key

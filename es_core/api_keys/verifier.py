"""Which key a bearer token or a client certificate proves, with rows cached for a few seconds.

Every call would otherwise read ``api_keys``; the cache bounds that to one read per key id (or
certificate) per ``ttl_seconds``, and so bounds how long a revoked key keeps working. Unknown
key ids and certificates are cached too, so a flood of made-up tokens, or of certificates the
client CA signed but no admin registered, does not reach the database either."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from es_core.api_keys import store
from es_core.api_keys.model import ApiKey, certificate_sha256, secret_matches, split_token
from es_core.api_keys.store import Conn
from es_core.errors import InvalidArgument

# Past this many cached key ids (or certificates) the cache starts over: made-up ones cannot
# grow it forever.
MAX_CACHED_KEYS = 10_000


class _RowCache:
    """Rows (or their absence) by id, each trusted for ``ttl`` seconds."""

    def __init__(
        self,
        read: Callable[[str], Awaitable[ApiKey | None]],
        ttl: float,
        clock: Callable[[], float],
    ) -> None:
        self._read = read
        self._ttl = ttl
        self._clock = clock
        self._rows: dict[str, tuple[float, ApiKey | None]] = {}

    async def get(self, row_id: str) -> ApiKey | None:
        now = self._clock()
        cached = self._rows.get(row_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        key = await self._read(row_id)
        if len(self._rows) >= MAX_CACHED_KEYS:
            self._rows.clear()
        self._rows[row_id] = (now, key)
        return key


class KeyVerifier:
    def __init__(
        self,
        conn: Conn,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        async def by_id(key_id: str) -> ApiKey | None:
            return await store.get_key(conn, key_id)

        async def by_certificate(fingerprint: str) -> ApiKey | None:
            return await store.get_live_key_of_certificate(conn, bytes.fromhex(fingerprint))

        self._by_id = _RowCache(by_id, ttl_seconds, clock)
        self._by_cert = _RowCache(by_certificate, ttl_seconds, clock)

    async def verify(self, token: str) -> ApiKey | None:
        """The live key ``token`` proves; None for a malformed, unknown, wrong or revoked one."""
        parts = split_token(token)
        if parts is None:
            return None
        key_id, secret = parts
        key = await self._by_id.get(key_id)
        if key is None or key.revoked or not secret_matches(key, secret):
            return None
        return key

    async def verify_certificate(self, certificate_pem: str | bytes) -> ApiKey | None:
        """The live key registered for the certificate a caller presented (TLS has verified it
        against the client CA already); None for one no live key names, or that is not a
        certificate at all."""
        try:
            digest = certificate_sha256(certificate_pem)
        except InvalidArgument:
            return None
        key = await self._by_cert.get(digest.hex())
        if key is None or key.revoked:
            return None
        return key

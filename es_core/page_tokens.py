"""Opaque page tokens: a keyset cursor bound to the query that produced it, signed with HMAC.

A token is ``base64url(body).base64url(mac)``; the body holds a digest of the query's scope and
the cursor, the mac is HMAC-SHA256 of the encoded body under a server key. The first key signs
and every listed key verifies, so a key can be rotated (new key first, old one kept until the
tokens it signed have been used up) without breaking the pages callers are reading. A caller
can neither forge a cursor nor alter one: anything that fails the check, or is not a token at
all, is INVALID_ARGUMENT naming the page token field, and its body is never parsed."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Sequence
from typing import Any

from es_core.errors import InvalidArgument

MAX_TOKEN_CHARS = 4096
# A key shorter than this is refused (HMAC-SHA256 keys should carry at least 128 bits).
MIN_KEY_BYTES = 16
_NOT_OURS = "is not a page token this service issued"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode((text + "=" * (-len(text) % 4)).encode("ascii"))


def _scope_digest(scope: Any) -> str:
    return hashlib.sha256(json.dumps(scope, sort_keys=True, default=str).encode()).hexdigest()[:16]


class PageTokens:
    """Signs and verifies the page tokens of one deployment: ``keys[0]`` signs, all verify."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise ValueError("page tokens need at least one key")
        if any(len(key) < MIN_KEY_BYTES for key in keys):
            raise ValueError(f"every page token key must be at least {MIN_KEY_BYTES} bytes")
        self._keys = [bytes(key) for key in keys]

    def _mac(self, key: bytes, body: str) -> bytes:
        return hmac.new(key, body.encode("ascii"), hashlib.sha256).digest()

    def encode(self, cursor: dict[str, Any], scope: Any) -> str:
        """A token for the page after ``cursor``; only valid with a query of the same ``scope``."""
        body = _b64(
            json.dumps({"s": _scope_digest(scope), "c": cursor}, separators=(",", ":")).encode()
        )
        return f"{body}.{_b64(self._mac(self._keys[0], body))}"

    def _verified(self, token: str, field: str) -> dict[str, Any]:
        """The token's body, once its mac matches one of the keys."""
        body, dot, mac = token.rpartition(".")
        if not dot or len(token) > MAX_TOKEN_CHARS or not token.isascii():
            raise InvalidArgument.field_error(field, _NOT_OURS)
        try:
            given = _unb64(mac)
        except (ValueError, binascii.Error):
            raise InvalidArgument.field_error(field, _NOT_OURS) from None
        if not any(hmac.compare_digest(self._mac(key, body), given) for key in self._keys):
            raise InvalidArgument.field_error(field, _NOT_OURS)
        try:
            decoded = json.loads(_unb64(body))
        except (ValueError, binascii.Error, RecursionError):
            raise InvalidArgument.field_error(field, _NOT_OURS) from None
        if not isinstance(decoded, dict) or not isinstance(decoded.get("c"), dict):
            raise InvalidArgument.field_error(field, _NOT_OURS)
        return decoded

    def decode(self, token: str, scope: Any, field: str = "page_token") -> dict[str, Any]:
        """The cursor inside ``token``; INVALID_ARGUMENT if it is not one of ours, or is from
        another query."""
        body = self._verified(token, field)
        if body.get("s") != _scope_digest(scope):
            raise InvalidArgument.field_error(
                field, "belongs to a different query; send the same query with it"
            )
        cursor: dict[str, Any] = body["c"]
        return cursor

    def collection(self, token: str, field: str = "page_token") -> str | None:
        """The collection a search page token was issued on ("col" in its cursor), or None when
        it names none. The token is verified; its scope is checked by the search that follows
        (the scope names the collection, so it can only be checked once it is known).

        A search that names no collection reads the blue one; its later pages read the
        collection their first page came from, so a blue switch between pages never mixes two
        collections."""
        collection = self._verified(token, field)["c"].get("col")
        return collection if isinstance(collection, str) else None

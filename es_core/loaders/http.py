"""HTTP(S) URLs as a blob store, limited to ``ES_HTTP_ALLOWED_PREFIXES`` so that a worker
cannot be made to fetch from the internal network. Redirects are not followed (one could
lead outside the prefixes): a 3xx fails the item. A URL that cannot be reached fails its item
only: another host may answer."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import requests

from es_core.config import Settings
from es_core.errors import FailedPrecondition, InvalidArgument, connection_reason
from es_core.loaders.blobs import Blob, BlobFailure, BlobLoader, Place, TooLarge, only_fields
from es_core.loaders.model import Locator

_CHUNK = 64 * 1024


def allowed(url: str, prefix: str) -> bool:
    """``url`` starts with ``prefix`` at a boundary: ``http://a.example`` does not allow
    ``http://a.example.evil``."""
    if not url.startswith(prefix):
        return False
    rest = url[len(prefix) :]
    return not rest or prefix.endswith("/") or rest[0] in "/?#"


def _unreachable(url: str, error: requests.RequestException) -> BlobFailure:
    if isinstance(error, requests.Timeout):
        why = "timed out"
    else:
        cause: Any = error.args[0] if error.args else error
        cause = getattr(cause, "reason", cause)  # urllib3 wraps the OSError
        refused = isinstance(cause, ConnectionRefusedError) or "refused" in str(cause).lower()
        why = (
            "connection refused"
            if refused
            else connection_reason(cause)
            if isinstance(cause, OSError)
            else "connection failed"
        )
    return BlobFailure(f"cannot reach {url}: {why}")


class HttpStore:
    loader = "http"

    def __init__(self, settings: Settings) -> None:
        self._prefixes = list(settings.http_allowed_prefixes)
        self._timeout = settings.http_timeout_seconds
        self._session = requests.Session()

    def place(self, locator: Locator, field: str, *, whole: bool) -> Place:
        only_fields(locator, ("url",), field, self.loader)
        named = f"{field}.url"
        if not self._prefixes:
            raise InvalidArgument.field_error(
                named, "the http loader fetches nothing: set ES_HTTP_ALLOWED_PREFIXES"
            )
        parts = urlsplit(locator.url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InvalidArgument.field_error(named, "an http:// or https:// URL is required")
        if parts.username or parts.password:
            raise InvalidArgument.field_error(named, "a URL may not carry credentials")
        if not any(allowed(locator.url, prefix) for prefix in self._prefixes):
            raise InvalidArgument.field_error(named, "is not under any of ES_HTTP_ALLOWED_PREFIXES")
        return Place("", locator.url)

    def locator(self, container: str, name: str) -> Locator:
        return Locator(url=name)

    def show(self, container: str, name: str) -> str:
        """The URL without its query (a signed URL's query is a credential)."""
        parts = urlsplit(name)
        return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))

    def _get(self, url: str) -> requests.Response:
        try:
            response = self._session.get(
                url, stream=True, timeout=self._timeout, allow_redirects=False
            )
        except requests.RequestException as error:
            raise _unreachable(self.show("", url), error) from None
        if response.status_code >= 300:
            response.close()
            status = response.status_code
            why = (
                "a redirect, not followed"
                if status < 400
                else "not found"
                if status == 404
                else "refused"
            )
            raise BlobFailure(f"{self.show('', url)}: HTTP {status} ({why})")
        return response

    async def probe(self, place: Place, field: str) -> None:
        try:
            response = await asyncio.to_thread(self._get, place.name)
        except BlobFailure as error:
            raise FailedPrecondition.field_error(f"{field}.url", str(error)) from None
        response.close()

    async def names(self, place: Place, after: str) -> AsyncIterator[str]:
        if not after:  # a URL is one blob: an import of a URL never lists
            yield place.name

    def _read(self, url: str, cap: int) -> Blob:
        shown = self.show("", url)
        with self._get(url) as response:
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > cap:
                raise TooLarge(shown, int(length), cap)
            content = bytearray()
            try:
                for chunk in response.iter_content(_CHUNK):
                    content += chunk
                    if len(content) > cap:
                        raise TooLarge(shown, None, cap)
            except requests.RequestException as error:
                raise _unreachable(shown, error) from None
            return Blob(bytes(content), response.headers.get("Content-Type", ""))

    async def read(self, container: str, name: str, cap: int) -> Blob:
        return await asyncio.to_thread(self._read, name, cap)

    async def open(self, container: str, name: str) -> tuple[IO[bytes], str]:
        response = await asyncio.to_thread(self._get, name)
        response.raw.decode_content = True
        stream: IO[bytes] = response.raw
        return stream, response.headers.get("Content-Type", "")

    async def close(self) -> None:
        self._session.close()


class HttpLoader(BlobLoader):
    """Items at URLs: a reference is a URL; an import the URL of a record file."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(HttpStore(settings), settings)

"""Google Cloud Storage as a blob store, through google-cloud-storage. With
``ES_GCS_ENDPOINT_URL`` set (an emulator) the client is anonymous unless a credentials file
is given. Its calls are synchronous: each runs in a worker thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import IO, Any, TypeVar

import requests
from google.api_core import exceptions as gexc
from google.auth.credentials import AnonymousCredentials
from google.auth.exceptions import GoogleAuthError, TransportError
from google.cloud import storage
from google.cloud.storage.retry import DEFAULT_RETRY

from es_core.config import Settings
from es_core.errors import FailedPrecondition, Unavailable
from es_core.loaders.blobs import Blob, BlobFailure, BlobLoader, Place, TooLarge
from es_core.loaders.buckets import bucket_locator, bucket_place
from es_core.loaders.model import Locator

T = TypeVar("T")

# Transient errors are retried for at most this long before the call fails.
_RETRY = DEFAULT_RETRY.with_timeout(20.0)
_UNREACHABLE = (requests.ConnectionError, requests.Timeout, TransportError)
# Bytes a record file is read in, a ranged request at a time.
_CHUNK = 1024 * 1024


def _failure(error: Exception, shown: str) -> Exception:
    if isinstance(error, gexc.NotFound):
        return BlobFailure(f"{shown}: no such bucket or object")
    if isinstance(error, gexc.Forbidden | gexc.Unauthorized):
        return BlobFailure(f"{shown}: access denied")
    if isinstance(error, gexc.GoogleAPICallError):
        return BlobFailure(f"{shown}: GCS error {error.code}")
    if isinstance(error, (*_UNREACHABLE, gexc.RetryError)):
        return Unavailable("GCS cannot be reached")
    return FailedPrecondition(f"GCS credentials are not usable ({type(error).__name__})")


class GcsStore:
    loader = "gcs"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._built: storage.Client | None = None

    @property
    def _client(self) -> storage.Client:
        """Built on first use: without an emulator it looks for Google's credentials."""
        if self._built is None:
            settings = self._settings
            options = (
                {"api_endpoint": settings.gcs_endpoint_url} if settings.gcs_endpoint_url else None
            )
            project = settings.gcs_project or None
            if settings.gcs_credentials_file is not None:
                self._built = storage.Client.from_service_account_json(
                    str(settings.gcs_credentials_file), project=project, client_options=options
                )
            elif options is not None:
                anonymous = AnonymousCredentials()  # type: ignore[no-untyped-call]
                self._built = storage.Client(
                    project=project or "local", credentials=anonymous, client_options=options
                )
            else:
                self._built = storage.Client(project=project)
        return self._built

    def place(self, locator: Locator, field: str, *, whole: bool) -> Place:
        return bucket_place(self.loader, locator, field, whole=whole)

    def locator(self, container: str, name: str) -> Locator:
        return bucket_locator(container, name)

    def show(self, container: str, name: str) -> str:
        return f"gs://{container}/{name}"

    async def _call(self, call: Callable[[], T], shown: str) -> T:
        try:
            return await asyncio.to_thread(call)
        except (gexc.GoogleAPIError, GoogleAuthError, requests.RequestException) as error:
            raise _failure(error, shown) from None

    async def probe(self, place: Place, field: str) -> None:
        bucket = await self._call(
            lambda: self._client.lookup_bucket(place.container, retry=_RETRY), ""
        )
        if bucket is None:
            shown = self.show(place.container, "")
            raise FailedPrecondition.field_error(f"{field}.bucket", f"{shown}: not found")
        if not place.many:
            blob = await self._call(lambda: bucket.get_blob(place.name, retry=_RETRY), "")
            if blob is None:
                shown = self.show(place.container, place.name)
                raise FailedPrecondition.field_error(f"{field}.key", f"{shown}: not found")

    async def names(self, place: Place, after: str) -> AsyncIterator[str]:
        shown = self.show(place.container, place.name)
        listing = self._client.list_blobs(
            place.container, prefix=place.name or None, start_offset=after or None, retry=_RETRY
        )
        pages = iter(listing.pages)
        while True:
            try:
                names = await self._call(lambda: [blob.name for blob in next(pages, ())], shown)
            except BlobFailure as error:
                raise FailedPrecondition(str(error)) from None
            if not names:
                return
            for name in names:
                if name > after and not name.endswith("/"):  # start_offset includes ``after``
                    yield name

    def _blob(self, container: str, name: str) -> Any:
        blob = self._client.bucket(container).get_blob(name, retry=_RETRY)
        if blob is None:
            raise BlobFailure(f"{self.show(container, name)}: no such object")
        return blob

    async def read(self, container: str, name: str, cap: int) -> Blob:
        shown = self.show(container, name)
        blob = await self._call(lambda: self._blob(container, name), shown)
        if blob.size is not None and blob.size > cap:
            raise TooLarge(shown, blob.size, cap)
        content: bytes = await self._call(lambda: blob.download_as_bytes(retry=_RETRY), shown)
        if len(content) > cap:
            raise TooLarge(shown, len(content), cap)
        return Blob(content, blob.content_type or "")

    async def open(self, container: str, name: str) -> tuple[IO[bytes], str]:
        shown = self.show(container, name)
        blob = await self._call(lambda: self._blob(container, name), shown)
        stream = await self._call(lambda: blob.open("rb", chunk_size=_CHUNK, retry=_RETRY), shown)
        return stream, blob.content_type or ""

    async def close(self) -> None:
        if self._built is not None:
            await asyncio.to_thread(self._built.close)


class GcsLoader(BlobLoader):
    """Items in GCS: a reference is a bucket and key; an import a bucket and prefix."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(GcsStore(settings), settings)

"""S3 (or any S3-compatible store) as a blob store, through boto3. boto3 is synchronous: each
call runs in a worker thread so that the event loop stays free."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import IO, Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from es_core.config import Settings
from es_core.errors import FailedPrecondition, Unavailable
from es_core.loaders.blobs import Blob, BlobFailure, BlobLoader, Place, TooLarge
from es_core.loaders.buckets import bucket_locator, bucket_place
from es_core.loaders.model import Locator

_UNREACHABLE = (
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
)
_MISSING = {"NoSuchKey": "no such object", "404": "no such object", "NotFound": "no such object"}
_DENIED = {"AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden"}


def _failure(error: Exception, shown: str) -> Exception:
    """A boto error as what the loader raises, by its code only: boto's messages may name
    the endpoint or the key id."""
    if isinstance(error, ClientError):
        code = str(error.response.get("Error", {}).get("Code", ""))
        if code == "NoSuchBucket":
            return BlobFailure(f"{shown}: no such bucket")
        if code in _MISSING:
            return BlobFailure(f"{shown}: {_MISSING[code]}")
        if code in _DENIED:
            return BlobFailure(f"{shown}: access denied")
        return BlobFailure(f"{shown}: S3 error {code or 'without a code'}")
    if isinstance(error, NoCredentialsError):
        return FailedPrecondition("S3 has no credentials: set ES_S3_ACCESS_KEY_ID or AWS's own")
    if isinstance(error, _UNREACHABLE):
        return Unavailable("S3 cannot be reached")
    return Unavailable(f"S3 failed ({type(error).__name__})")


class S3Store:
    loader = "s3"

    def __init__(self, settings: Settings) -> None:
        key_id = settings.s3_access_key_id.get_secret_value()
        secret = settings.s3_secret_access_key.get_secret_value()
        self._client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.s3_endpoint_url or None,
            region_name=settings.s3_region or None,
            aws_access_key_id=key_id or None,
            aws_secret_access_key=secret or None,
            config=Config(retries={"max_attempts": 3}, connect_timeout=10, read_timeout=60),
        )

    def place(self, locator: Locator, field: str, *, whole: bool) -> Place:
        return bucket_place(self.loader, locator, field, whole=whole)

    def locator(self, container: str, name: str) -> Locator:
        return bucket_locator(container, name)

    def show(self, container: str, name: str) -> str:
        return f"s3://{container}/{name}"

    async def _call(self, method: Callable[..., Any], shown: str, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(method, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _failure(error, shown) from None

    async def probe(self, place: Place, field: str) -> None:
        checks = [("bucket", self._client.head_bucket, {"Bucket": place.container})]
        if not place.many:
            checks.append(
                ("key", self._client.head_object, {"Bucket": place.container, "Key": place.name})
            )
        for named, method, request in checks:
            try:
                await asyncio.to_thread(method, **request)
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                what = (
                    "access denied"
                    if code in _DENIED
                    else "not found"
                    if code in _MISSING or code == "NoSuchBucket"
                    else f"S3 error {code}"
                )
                shown = self.show(place.container, "" if named == "bucket" else place.name)
                raise FailedPrecondition.field_error(
                    f"{field}.{named}", f"{shown}: {what}"
                ) from None
            except BotoCoreError as error:
                raise _failure(error, "") from None

    async def names(self, place: Place, after: str) -> AsyncIterator[str]:
        shown = self.show(place.container, place.name)
        request: dict[str, Any] = {"Bucket": place.container, "Prefix": place.name}
        if after:
            request["StartAfter"] = after
        while True:
            try:
                page = await self._call(self._client.list_objects_v2, shown, **request)
            except BlobFailure as error:
                raise FailedPrecondition(str(error)) from None
            for entry in page.get("Contents", []):
                if not entry["Key"].endswith("/"):  # a console's "folder" marker
                    yield entry["Key"]
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    async def read(self, container: str, name: str, cap: int) -> Blob:
        shown = self.show(container, name)
        response = await self._call(self._client.get_object, shown, Bucket=container, Key=name)
        body = response["Body"]
        try:
            if response.get("ContentLength", 0) > cap:
                raise TooLarge(shown, response["ContentLength"], cap)
            content = await asyncio.to_thread(body.read, cap + 1)
        except _UNREACHABLE:
            raise Unavailable("S3 cannot be reached") from None
        finally:
            await asyncio.to_thread(body.close)
        if len(content) > cap:
            raise TooLarge(shown, None, cap)
        return Blob(content, str(response.get("ContentType", "")))

    async def open(self, container: str, name: str) -> tuple[IO[bytes], str]:
        shown = self.show(container, name)
        response = await self._call(self._client.get_object, shown, Bucket=container, Key=name)
        return response["Body"], str(response.get("ContentType", ""))

    async def close(self) -> None:
        await asyncio.to_thread(self._client.close)


class S3Loader(BlobLoader):
    """Items in S3: a reference is a bucket and key; an import a bucket and prefix."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(S3Store(settings), settings)

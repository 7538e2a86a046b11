"""Where a locator points in a bucket store (S3, GCS): a bucket and either one object's key
or, for an import, a prefix (empty = the whole bucket) or one record file's key."""

from __future__ import annotations

from es_core.errors import InvalidArgument
from es_core.loaders.blobs import Place, only_fields
from es_core.loaders.model import Locator


def bucket_place(loader: str, locator: Locator, field: str, *, whole: bool) -> Place:
    only_fields(locator, ("bucket", "key", "prefix"), field, loader)
    if not locator.bucket:
        raise InvalidArgument.field_error(f"{field}.bucket", "a bucket is required")
    if whole:
        if locator.key and locator.prefix:
            raise InvalidArgument.field_error(
                f"{field}.key", "give a key (one record file) or a prefix, not both"
            )
        if locator.key:
            return Place(locator.bucket, locator.key)
        return Place(locator.bucket, locator.prefix, many=True)
    if locator.prefix:
        raise InvalidArgument.field_error(
            f"{field}.prefix", "a reference names one object: give its key, not a prefix"
        )
    if not locator.key:
        raise InvalidArgument.field_error(f"{field}.key", "a reference needs the object's key")
    return Place(locator.bucket, locator.key)


def bucket_locator(container: str, name: str) -> Locator:
    return Locator(bucket=container, key=name)

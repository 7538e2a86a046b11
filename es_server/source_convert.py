"""ContentSource / ItemFailure messages to and from the library's SourceSpec / ItemFailure."""

from __future__ import annotations

from embedding_studio.v1 import source_pb2
from es_core.loaders.model import Fields, ItemFailure, Locator, SourceSpec, Stage

# A source without a loader name takes the one its locator implies; a bucket names its own.
_IMPLIED_LOADERS = {"table": "postgres", "path": "file", "url": "http"}


def source_from_proto(message: source_pb2.ContentSource) -> SourceSpec:
    which = message.WhichOneof("locator") or ""
    if which == "bucket":
        b = message.bucket
        locator = Locator(bucket=b.bucket, key=b.key, prefix=b.prefix)
    elif which == "table":
        t = message.table
        locator = Locator(database=t.database, table=t.table, row_id=t.row_id)
    elif which == "path":
        locator = Locator(path=message.path)
    elif which == "url":
        locator = Locator(url=message.url)
    else:
        locator = Locator()
    f = message.fields
    return SourceSpec(
        loader=message.loader or _IMPLIED_LOADERS.get(which, ""),
        locator=locator,
        content_type=message.content_type,
        fields=Fields(
            id=f.id or "id",
            text=f.text or "text",
            payload=tuple(f.payload),
            template=f.template,
        ),
    )


def source_to_proto(spec: SourceSpec) -> source_pb2.ContentSource:
    loc = spec.locator
    message = source_pb2.ContentSource(loader=spec.loader, content_type=spec.content_type)
    if loc.bucket:
        message.bucket.CopyFrom(
            source_pb2.BucketLocation(bucket=loc.bucket, key=loc.key, prefix=loc.prefix)
        )
    elif loc.table:
        message.table.CopyFrom(
            source_pb2.TableLocation(database=loc.database, table=loc.table, row_id=loc.row_id)
        )
    elif loc.path:
        message.path = loc.path
    elif loc.url:
        message.url = loc.url
    if spec.fields != Fields():
        message.fields.CopyFrom(
            source_pb2.RecordFields(
                id=spec.fields.id,
                text=spec.fields.text,
                payload=list(spec.fields.payload),
                template=spec.fields.template,
            )
        )
    return message


def failure_to_proto(failure: ItemFailure) -> source_pb2.ItemFailure:
    stage = Stage(failure.stage)
    return source_pb2.ItemFailure(
        object_id=failure.object_id,
        stage=f"ITEM_STAGE_{stage.name}",
        reason=failure.reason,
    )

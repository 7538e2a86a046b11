"""Bad requests, built from raw messages, that the unit tests check refusal by refusal and the
e2e tests send through gRPC.

Requests are built from raw messages (not the client's helpers, which refuse some of them).
Objects they name use ids starting "bi-" and payload {"suite": "bad_input"}; they are written
against the stack's blue collection: 384 dimensions, cosine (``BLUE`` stands for it offline).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from google.protobuf import json_format

from embedding_studio.v1 import common_pb2, source_pb2, upsert_pb2
from es_core.domain import Collection, Model
from es_core.errors import InvalidArgument

DIMS = 384
SUITE = "bad_input"
LONG_ID = "bi-bad-" + "x" * 250  # 257 characters

BLUE = Collection(
    collection_id="blue",
    model=Model(
        model_id="minilm",
        name="all-MiniLM-L6-v2",
        version="1",
        dimensions=DIMS,
        metric="cosine",
        aggregation="min",
        source="test:none",
    ),
    table_name="items_blue",
    state="blue",
    hnsw_m=16,
    hnsw_ef_construction=64,
)


def expect_refusal(check: Callable[[], object], field: str) -> InvalidArgument:
    """Run ``check``: it must raise InvalidArgument (the server's INVALID_ARGUMENT) with exactly
    one violation naming ``field``, as tests/e2e/grpc_errors.expect_error asserts of a status."""
    with pytest.raises(InvalidArgument) as info:
        check()
    assert [v.field for v in info.value.violations] == [field], info.value.message
    return info.value


def unit(seed: int) -> list[float]:
    v = np.random.default_rng(seed).normal(size=DIMS)
    return [float(x) for x in v / np.linalg.norm(v)]


VEC = unit(1)
NAN_VEC = [math.nan, *VEC[1:]]
INF_VEC = [math.inf, *VEC[1:]]


def F(spec: dict[str, Any]) -> common_pb2.Filter:
    return json_format.ParseDict(spec, common_pb2.Filter())


def deep_bool(levels: int) -> common_pb2.Filter:
    """A term on the suite wrapped in ``levels`` bool.must levels."""
    spec: dict[str, Any] = {"term": {"field": "suite", "value": SUITE}}
    for _ in range(levels):
        spec = {"bool": {"must": [spec]}}
    return F(spec)


def part(
    vector: list[float] | None = None, text: str = "", part_id: str = ""
) -> common_pb2.ItemPart:
    return common_pb2.ItemPart(part_id=part_id, text=text, vector=vector or [])


def item(
    object_id: str, *parts: common_pb2.ItemPart, text: str = "", **payload: Any
) -> upsert_pb2.UpsertItem:
    message = upsert_pb2.UpsertItem(object_id=object_id, text=text, parts=list(parts))
    message.payload.update({"suite": SUITE, **payload})
    return message


def sourced(object_id: str, source: dict[str, Any], text: str = "") -> upsert_pb2.UpsertItem:
    """An item whose content is named by ``source`` (a ContentSource in its JSON form)."""
    message = item(object_id, text=text)
    message.source.CopyFrom(json_format.ParseDict(source, source_pb2.ContentSource()))
    return message


def ok_item(object_id: str) -> upsert_pb2.UpsertItem:
    return item(object_id, part(VEC))


def upsert(*items: upsert_pb2.UpsertItem, **kw: Any) -> upsert_pb2.UpsertItemsRequest:
    return upsert_pb2.UpsertItemsRequest(items=list(items), **kw)


# Bad writes and the field each refusal names (None: an unknown collection, NOT_FOUND). Each must
# be refused and leave no task and no item behind; the delete cases name bi-seed-1, which the e2e
# tests store first.
WRITE_CASES = [
    pytest.param(upsert(), "items", id="no-items"),
    pytest.param(
        upsert(*[ok_item(f"bi-bad-many-{i}") for i in range(1001)]), "items", id="1001-items"
    ),
    pytest.param(
        upsert(ok_item("bi-bad-dup"), ok_item("bi-bad-dup")),
        "items[1].object_id",
        id="duplicate-id",
    ),
    pytest.param(upsert(ok_item("bi-bad-ok1"), ok_item("")), "items[1].object_id", id="empty-id"),
    pytest.param(upsert(ok_item(LONG_ID)), "items[0].object_id", id="id-257"),
    pytest.param(upsert(ok_item("bi-bad-\x00")), "items[0].object_id", id="id-nul"),
    pytest.param(
        upsert(item("bi-bad-big", part(VEC), blob="x" * 66_000)),
        "items[0].payload",
        id="payload-66k",
    ),
    pytest.param(
        upsert(item("bi-bad-pnul", part(VEC), name="a\x00b")), "items[0].payload", id="payload-nul"
    ),
    pytest.param(
        upsert(item("bi-bad-both", part(VEC), text="words")), "items[0]", id="text-and-parts"
    ),
    pytest.param(
        upsert(sourced("bi-bad-tsrc", {"path": "a.txt"}, text="words")),
        "items[0]",
        id="text-and-source",
    ),
    pytest.param(
        upsert(sourced("bi-bad-ftp", {"loader": "ftp", "path": "a.txt"})),
        "items[0].source.loader",
        id="source-unknown-loader",
    ),
    pytest.param(
        upsert(sourced("bi-bad-bare", {})), "items[0].source.loader", id="source-no-locator"
    ),
    pytest.param(
        upsert(sourced("bi-bad-etc", {"path": "/etc/passwd"})),
        "items[0].source.path",
        id="source-path-outside-roots",
    ),
    pytest.param(
        upsert(sourced("bi-bad-meta", {"url": "http://169.254.169.254/latest/meta-data/"})),
        "items[0].source.url",
        id="source-url-not-allowed",
    ),
    pytest.param(
        upsert(sourced("bi-bad-tmpl", {"path": "a.json", "fields": {"template": "{title"}})),
        "items[0].source.fields.template",
        id="source-bad-template",
    ),
    pytest.param(
        upsert(sourced("bi-bad-csv", {"path": "a.csv", "content_type": "text/csv"})),
        "items[0].source.content_type",
        id="source-record-file",
    ),
    pytest.param(upsert(item("bi-bad-tnul", text="a\x00b")), "items[0].text", id="text-nul"),
    pytest.param(
        upsert(item("bi-bad-pboth", part(VEC, text="   "))),
        "items[0].parts[0].text",
        id="part-vector-and-blank-text",
    ),
    pytest.param(
        upsert(item("bi-bad-pnone", part(VEC), part())), "items[0].parts[1]", id="empty-part"
    ),
    pytest.param(
        upsert(item("bi-bad-dims", part(VEC[:100]))), "items[0].parts[0].vector", id="part-100-dims"
    ),
    pytest.param(
        upsert(item("bi-bad-nan", part(NAN_VEC))), "items[0].parts[0].vector", id="part-nan"
    ),
    pytest.param(
        upsert(item("bi-bad-inf", part(INF_VEC))), "items[0].parts[0].vector", id="part-inf"
    ),
    pytest.param(
        upsert(item("bi-bad-zero", part([0.0] * DIMS))),
        "items[0].parts[0].vector",
        id="part-zero-vector",
    ),
    pytest.param(
        upsert(item("bi-bad-ptnul", part(text="a\x00"))),
        "items[0].parts[0].text",
        id="part-text-nul",
    ),
    pytest.param(
        upsert(item("bi-bad-pid", part(VEC, part_id="a"), part(VEC, part_id="a"))),
        "items[0].parts[1].part_id",
        id="duplicate-part-id",
    ),
    pytest.param(
        upsert(item("bi-bad-pidlong", part(VEC, part_id="p" * 129))),
        "items[0].parts[0].part_id",
        id="part-id-129",
    ),
    pytest.param(
        upsert(item("bi-bad-pidnul", part(VEC, part_id="p\x00"))),
        "items[0].parts[0].part_id",
        id="part-id-nul",
    ),
    pytest.param(
        upsert(item("bi-bad-257parts", *[part(VEC) for _ in range(257)])),
        "items[0].parts",
        id="257-parts",
    ),
    pytest.param(
        upsert(ok_item("bi-bad-key"), idempotency_key="k" * 300),
        "idempotency_key",
        id="idempotency-key-300",
    ),
    pytest.param(
        upsert(ok_item("bi-bad-coll"), collection_id="c" * 129),
        "collection_id",
        id="collection-129",
    ),
    pytest.param(
        upsert(ok_item("bi-bad-nocoll"), collection_id="nope"), None, id="unknown-collection"
    ),
    pytest.param(upsert_pb2.DeleteItemsRequest(), "object_ids", id="delete-no-ids"),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=[f"bi-{i}" for i in range(1001)]),
        "object_ids",
        id="delete-1001-ids",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1", ""]),
        "object_ids[1]",
        id="delete-empty-id",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=[LONG_ID]), "object_ids[0]", id="delete-id-257"
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1\x00"]),
        "object_ids[0]",
        id="delete-id-nul",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], idempotency_key="k" * 300),
        "idempotency_key",
        id="delete-key-300",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], collection_id="c" * 129),
        "collection_id",
        id="delete-collection-129",
    ),
    pytest.param(
        upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], collection_id="nope"),
        None,
        id="delete-unknown-collection",
    ),
]

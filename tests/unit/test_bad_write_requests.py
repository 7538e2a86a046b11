"""Bad UpsertItems, DeleteItems and GetItems requests are refused naming the field, by the checks
their servicer (es_server/services/upsert.py) runs, in its order, on what the request carries.
``BLUE`` stands for the collection they resolve; an unknown collection needs the database, and
that a refused write leaves no task and no item is checked end to end
(tests/e2e/test_bad_input.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf.message import Message

from embedding_studio.v1 import upsert_pb2
from es_core.config import Settings
from es_core.ingest.sources import check_source
from es_core.item_input import check_items, check_object_ids
from es_core.loaders.aggregated import AggregatedLoader
from es_core.loaders.registry import Loaders
from es_core.storage.catalog import check_collection_id
from es_core.tasks.store import check_idempotency_key
from es_server.convert import items_from_proto
from tests.bad_requests import (
    BLUE,
    LONG_ID,
    VEC,
    WRITE_CASES,
    expect_refusal,
    item,
    ok_item,
    part,
    upsert,
)

SETTINGS = Settings(data_dir=Path("/nonexistent"))
LOADERS = AggregatedLoader(Loaders(SETTINGS))


def named_collection(collection_id: str) -> None:
    """What resolving the request's collection checks first (an empty id means blue)."""
    if collection_id:
        check_collection_id(collection_id)


def write_checks(request: Message) -> None:
    """What the servicer checks before it writes: the items (or ids), the collection id, and the
    idempotency key as the task row is created."""
    if isinstance(request, upsert_pb2.UpsertItemsRequest):
        items = items_from_proto(request.items)
        named_collection(request.collection_id)
        check_items(items, BLUE, SETTINGS)
        for i, one in enumerate(items):
            if one.source is not None:
                check_source(LOADERS, one.source, f"items[{i}].source", whole=False)
    else:
        assert isinstance(request, upsert_pb2.DeleteItemsRequest)
        check_object_ids(list(request.object_ids), "object_ids", SETTINGS)
        named_collection(request.collection_id)
    check_idempotency_key(request.idempotency_key)


OFFLINE_WRITE_CASES = [case for case in WRITE_CASES if case.values[1] is not None]


@pytest.mark.parametrize(("request_message", "field"), OFFLINE_WRITE_CASES)
def test_bad_write_is_refused_naming_the_field(request_message: Message, field: str) -> None:
    expect_refusal(lambda: write_checks(request_message), field)


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(
            upsert(ok_item("bi-limit-key"), idempotency_key="k" * 257),
            "idempotency_key",
            id="key-257",
        ),
        pytest.param(
            upsert(item("bi-limit-pid", part(VEC, part_id="p" * 129))),
            "items[0].parts[0].part_id",
            id="part-id-129",
        ),
        pytest.param(
            upsert(item("bi-limit-text", part(text="w" * 100_001))),
            "items[0].parts[0].text",
            id="part-text-100001",
        ),
    ],
)
def test_documented_write_limits_are_enforced(request_message: Message, field: str) -> None:
    expect_refusal(lambda: write_checks(request_message), field)


def test_write_checks_pass_a_good_write() -> None:
    """The positive control: what the table refuses is the one thing wrong with each request."""
    write_checks(upsert(ok_item("bi-ok-0"), item("bi-ok-1", text="words"), idempotency_key="k"))
    write_checks(upsert_pb2.DeleteItemsRequest(object_ids=["bi-seed-1"], collection_id="c"))


@pytest.mark.parametrize(
    ("request_message", "field"),
    [
        pytest.param(upsert_pb2.GetItemsRequest(), "object_ids", id="get-no-ids"),
        pytest.param(
            upsert_pb2.GetItemsRequest(object_ids=[f"bi-{i}" for i in range(1001)]),
            "object_ids",
            id="get-1001-ids",
        ),
        pytest.param(
            upsert_pb2.GetItemsRequest(object_ids=["bi-seed-0", ""]),
            "object_ids[1]",
            id="get-empty-id",
        ),
        pytest.param(
            upsert_pb2.GetItemsRequest(object_ids=[LONG_ID]), "object_ids[0]", id="get-id-257"
        ),
        pytest.param(
            upsert_pb2.GetItemsRequest(object_ids=["bi\x00x"]), "object_ids[0]", id="get-id-nul"
        ),
        pytest.param(
            upsert_pb2.GetItemsRequest(object_ids=["bi-seed-0"], collection_id="c" * 129),
            "collection_id",
            id="get-collection-129",
        ),
    ],
)
def test_bad_get_items_is_refused_naming_the_field(
    request_message: upsert_pb2.GetItemsRequest, field: str
) -> None:
    def checks() -> None:
        check_object_ids(list(request_message.object_ids), "object_ids", SETTINGS)
        named_collection(request_message.collection_id)

    expect_refusal(checks, field)

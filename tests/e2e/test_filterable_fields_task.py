"""SetFilterableFields through the whole stack (`es up`): the declaration is a task that the
bulk workers' Celery worker runs, watched to its end with WatchTask, after which
ListCollections reports the fields. Payload fields here are named "ff_*"."""

from __future__ import annotations

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2
from embedding_studio.v1 import deployment_pb2 as dp

pytestmark = pytest.mark.e2e


def _declared(client: Client, collection_id: str) -> list[tuple[str, int]]:
    listed = {c.collection_id: c for c in client.list_collections(timeout=30)}
    return [(f.field, f.type) for f in listed[collection_id].filterable_fields]


def test_a_declaration_is_a_task_a_worker_runs(client: Client) -> None:
    blue = client.get_blue_collection(timeout=30)
    before = _declared(client, blue.collection_id)
    response = client.set_filterable_fields(
        {"ff_price": "number", "ff_brand": "keyword"}, timeout=30
    )
    assert response.task.kind == common_pb2.TASK_KIND_FILTERABLE_FIELDS
    assert response.collection.collection_id == blue.collection_id
    done = client.wait_for_task(response.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    assert done.result["indexes_built"] == 2
    assert _declared(client, blue.collection_id) == [
        ("ff_price", dp.FIELD_TYPE_NUMBER),
        ("ff_brand", dp.FIELD_TYPE_KEYWORD),
    ]
    # Back to what was declared before, for the tests that follow.
    names = {dp.FIELD_TYPE_NUMBER: "number", dp.FIELD_TYPE_KEYWORD: "keyword"}
    restored = client.set_filterable_fields({f: names[t] for f, t in before}, timeout=30)
    done = client.wait_for_task(restored.task.task_id, timeout_seconds=300)
    assert done.status == common_pb2.TASK_STATUS_DONE, done.error
    assert _declared(client, blue.collection_id) == before

"""The whole spine through gRPC: real abstracts in, judged claims find them."""

from __future__ import annotations

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2, search_pb2
from es_core.beir import Dataset, load_dataset, scifact_dir

pytestmark = pytest.mark.e2e

N_DOCS = 200


def pick_slice(data: Dataset) -> tuple[list[str], dict[str, str]]:
    """200 abstracts: the judged ones of the first claims, then others, in a fixed order."""
    chosen: list[str] = []
    claims: dict[str, str] = {}
    for query_id in sorted(data.qrels, key=int):
        relevant = [d for d in data.qrels[query_id] if d in data.corpus]
        if len(chosen) + len(relevant) > N_DOCS // 2:
            break
        chosen.extend(d for d in relevant if d not in chosen)
        claims[query_id] = data.queries[query_id]
    for doc_id in sorted(data.corpus):
        if len(chosen) == N_DOCS:
            break
        if doc_id not in chosen:
            chosen.append(doc_id)
    return chosen, claims


@pytest.fixture(scope="module")
def scifact_slice(client: Client) -> tuple[Dataset, dict[str, str]]:
    directory = scifact_dir()
    if not (directory / "corpus.jsonl").exists():
        pytest.skip(f"SciFact not found at {directory}; set ES_SCIFACT_DIR")
    data = load_dataset(directory)
    doc_ids, claims = pick_slice(data)
    task = client.upsert_items(
        [
            {
                "object_id": doc_id,
                "payload": {"title": data.corpus[doc_id].title, "source": "scifact"},
                "text": data.corpus[doc_id].full_text,
            }
            for doc_id in doc_ids
        ]
    )
    final = client.wait_for_task(task.task_id, timeout_seconds=600)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    assert final.result["upserted_count"] == N_DOCS
    return data, claims


def test_judged_abstracts_are_found_for_most_claims(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    data, claims = scifact_slice
    assert len(claims) >= 40
    found = 0
    for query_id, claim in claims.items():
        reply = client.search.Search(search_pb2.SearchRequest(query_text=claim, limit=10))
        returned = [r.object_id for r in reply.results]
        assert len(returned) == 10 and len(set(returned)) == 10
        found += any(doc_id in returned for doc_id in data.qrels[query_id])
    assert found / len(claims) >= 0.8, f"judged abstract in top 10 for {found}/{len(claims)}"


def test_count_and_payload_filter_see_the_upserted_abstracts(
    client: Client, scifact_slice: tuple[Dataset, dict[str, str]]
) -> None:
    source = common_pb2.Filter(term=common_pb2.TermFilter(field="source"))
    source.term.value.string_value = "scifact"
    reply = client.search.CountItems(search_pb2.CountItemsRequest(filter=source))
    assert reply.count == N_DOCS

"""Fixtures of the end-to-end tests: SciFact abstracts indexed once per session."""

from __future__ import annotations

import pytest

from embedding_studio.client import Client
from embedding_studio.v1 import common_pb2
from es_harness.beir import Dataset, load_dataset, scifact_dir

N_DOCS = 100
# For throwaway stacks whose test is not about serving: workers and server encode in-process,
# which spares Triton's start and stop (about 20 s).
NO_TRITON = {"ES_SERVE_WITH_TRITON": "false"}


def pick_slice(data: Dataset) -> tuple[list[str], dict[str, str]]:
    """N_DOCS abstracts: the judged ones of the first claims, then others, in a fixed order."""
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


@pytest.fixture(scope="session")
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

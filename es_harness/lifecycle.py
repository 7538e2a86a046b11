"""The steps of the feedback loop as a client drives them, shared by `es demo` and the benchmarks.

Every step goes through the public gRPC API: upsert a corpus and wait for it, let simulated
users search and click, queue their sessions for improvement, follow a long task by polling
``TaskService.GetTask``, and measure NDCG / Recall / MRR @10 of queries through ``Search``.
Steps report how far they are through an optional ``advance(units)`` callback, so a caller can
draw a progress bar or print nothing.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from embedding_studio.client import TERMINAL_TASK_STATUSES, Client, ItemInput
from embedding_studio.v1 import clickstream_pb2, common_pb2, ranking_pb2, task_pb2
from es_core.evaluation.click_model import CascadeClickModel
from es_core.evaluation.metrics import evaluate_rankings
from es_harness.beir import Dataset
from es_harness.click_simulator import ClickSimulator, SimulationReport, rankings_for

K = 10
METRICS = (f"ndcg@{K}", f"recall@{K}", f"mrr@{K}")
NAMES = {f"ndcg@{K}": f"NDCG@{K}", f"recall@{K}": f"Recall@{K}", f"mrr@{K}": f"MRR@{K}"}
#: Most session ids one UseSessionsForImprovement call may carry.
MAX_IDS_PER_CALL = 1000

#: Called with the number of units (items, sessions, queries, tasks) just finished.
Advance = Callable[[int], None]

NUMERIC_DEV_RULE = "integer query id % 5 == 0"
HASHED_DEV_RULE = "sha256(query id), first 8 hex digits as an integer, % 5 == 0"


def _nothing(units: int) -> None:
    """The default ``Advance``: report nowhere."""


# ---- which queries train and which measure ----


def is_dev_numeric(query_id: str) -> bool:
    return int(query_id) % 5 == 0


def is_dev_hashed(query_id: str) -> bool:
    """Stable across processes and Python versions (``hash()`` is salted per process)."""
    return int(hashlib.sha256(query_id.encode()).hexdigest()[:8], 16) % 5 == 0


@dataclass(frozen=True)
class DevSplit:
    """Queries split into those users search and click (train) and those kept out (dev)."""

    rule: str
    train: dict[str, str]  # query id -> text
    dev: dict[str, str]


def split_dev(queries: Mapping[str, str]) -> DevSplit:
    """About one query in five is dev: by integer id when every id is an integer (the BEIR
    convention, comparable across runs and tools), else by a hash of the id."""
    numeric = all(q.strip().isdigit() for q in queries)
    rule, is_dev = (
        (NUMERIC_DEV_RULE, is_dev_numeric) if numeric else (HASHED_DEV_RULE, is_dev_hashed)
    )
    dev = {q: text for q, text in queries.items() if is_dev(q)}
    train = {q: text for q, text in queries.items() if q not in dev}
    return DevSplit(rule, train, dev)


def judged_query_ids(data: Dataset) -> list[str]:
    """Queries with at least one relevant document in the corpus, sorted."""
    return sorted(
        q
        for q, relevant in data.qrels.items()
        if q in data.queries and any(d in data.corpus for d in relevant)
    )


# ---- indexing ----


def upsert_and_wait(
    client: Client,
    items: Sequence[ItemInput],
    *,
    batch: int,
    idempotency_prefix: str = "",
    timeout_s: float = 3600.0,
    advance: Advance = _nothing,
) -> float:
    """Send every UpsertItems request (``batch`` items each), then wait for each task; calls
    ``advance(n)`` as a task of n items finishes. Returns seconds. A non-empty
    ``idempotency_prefix`` keys request i as ``<prefix>-<i>``, so a retried run repeats nothing."""
    started = time.perf_counter()
    sent: list[tuple[str, int]] = []
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        key = f"{idempotency_prefix}-{i // batch}" if idempotency_prefix else ""
        task = client.upsert_items(chunk, idempotency_key=key, timeout=300)
        sent.append((task.task_id, len(chunk)))
    for task_id, size in sent:
        done = client.wait_for_task(task_id, timeout_seconds=timeout_s)
        if done.status != common_pb2.TASK_STATUS_DONE:
            raise RuntimeError(f"upsert task {task_id} ended: {done.error}")
        advance(size)
    return time.perf_counter() - started


# ---- simulated users and improvement ----


def simulate_clicks(
    client: Client,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    users: Sequence[str],
    *,
    seed: int,
    limit: int = K,
    per_call: int = 0,
    collection_id: str = "",
    filter: common_pb2.Filter | None = None,
    model: CascadeClickModel | None = None,
    advance: Advance = _nothing,
) -> SimulationReport:
    """``ClickSimulator`` (``model``, else ``CascadeClickModel()`` defaults) for every user and
    query, searching ``collection_id`` (empty = blue) restricted by ``filter`` (None = all).

    ``per_call`` > 0 runs the simulator on that many queries at a time (one user at a time) and
    calls ``advance`` with the sessions each call made; the sessions and clicks are the same
    as in one call, since every draw depends only on (seed, user, query)."""
    simulator = ClickSimulator(client, model or CascadeClickModel(), seed, timeout=60)
    if per_call <= 0:
        report = simulator.run(
            queries, qrels, users, limit=limit, collection_id=collection_id, filter=filter
        )
        advance(len(report.session_ids))
        return report
    ids = sorted(queries)
    total = SimulationReport(clicks_per_query={q: 0 for q in ids})
    for user in users:
        for i in range(0, len(ids), per_call):
            part = simulator.run(
                {q: queries[q] for q in ids[i : i + per_call]},
                qrels,
                [user],
                limit=limit,
                collection_id=collection_id,
                filter=filter,
            )
            total.session_ids += part.session_ids
            total.events_sent += part.events_sent
            total.accepted_count += part.accepted_count
            total.duplicate_count += part.duplicate_count
            for query_id, clicks in part.clicks_per_query.items():
                total.clicks_per_query[query_id] += clicks
            total.rankings.update(part.rankings)
            advance(len(part.session_ids))
    return total


def improve(
    client: Client, session_ids: Sequence[str], advance: Advance = _nothing
) -> tuple[int, int, float]:
    """Queue the sessions (<= 1000 per call) and wait for each task, calling ``advance`` with
    the number of sessions a finished task was given; returns (queued, improved, seconds)."""
    started = time.perf_counter()
    queued, sent = 0, []
    for i in range(0, len(session_ids), MAX_IDS_PER_CALL):
        chunk = session_ids[i : i + MAX_IDS_PER_CALL]
        reply = client.clickstream.UseSessionsForImprovement(
            clickstream_pb2.UseSessionsForImprovementRequest(session_ids=chunk), timeout=60
        )
        queued += reply.queued_count
        sent.append((reply.task.task_id, len(chunk)))
    improved = 0
    for task_id, size in sent:
        done = client.wait_for_task(task_id, timeout_seconds=3600)
        if done.status != common_pb2.TASK_STATUS_DONE:
            raise RuntimeError(f"improvement task {task_id} ended: {done.error}")
        improved += done.improvement.improved_sessions
        advance(size)
    return queued, improved, time.perf_counter() - started


# ---- long tasks ----


def get_task(client: Client, task_id: str) -> common_pb2.Task:
    reply: task_pb2.GetTaskResponse = client.tasks.GetTask(
        task_pb2.GetTaskRequest(task_id=task_id), timeout=30
    )
    return reply.task


def status_name(task: common_pb2.Task) -> str:
    """The status as "DONE", "PROCESSING", ... (the enum name without its prefix)."""
    return common_pb2.TaskStatus.Name(task.status).removeprefix("TASK_STATUS_")


def follow(
    get: Callable[[str], common_pb2.Task],
    task_id: str,
    *,
    timeout_s: float,
    poll_seconds: float,
    on_poll: Callable[[common_pb2.Task, float], None],
) -> common_pb2.Task:
    """Read the task with ``get`` (e.g. ``lambda t: get_task(client, t)``) every
    ``poll_seconds`` until it ends, calling ``on_poll(task, elapsed seconds)`` after each read;
    returns its final state."""
    started = time.monotonic()
    while True:
        task = get(task_id)
        elapsed = time.monotonic() - started
        on_poll(task, elapsed)
        if task.status in TERMINAL_TASK_STATUSES:
            return task
        if elapsed > timeout_s:
            raise TimeoutError(f"task {task_id} still running after {timeout_s:.0f} s")
        time.sleep(poll_seconds)


# ---- measuring ----


def search_quality(
    client: Client,
    queries: Mapping[str, str],
    qrels: Mapping[str, Mapping[str, int]],
    *,
    collection_id: str = "",
    per_call: int = 20,
    filter: common_pb2.Filter | None = None,
    ranking: ranking_pb2.RankingSpec | None = None,
    advance: Advance = _nothing,
) -> dict[str, float]:
    """NDCG / Recall / MRR @K of ``queries`` as Search ranks them (no user, no session) in
    ``collection_id`` (empty = blue), restricted by ``filter`` and ranked by ``ranking`` (None =
    the collection's live spec); ``advance`` is called every ``per_call`` queries."""
    ids = sorted(queries)
    rankings: dict[str, list[str]] = {}
    for i in range(0, len(ids), per_call):
        part = {q: queries[q] for q in ids[i : i + per_call]}
        rankings.update(
            rankings_for(
                client,
                part,
                limit=K,
                collection_id=collection_id,
                filter=filter,
                ranking=ranking,
                timeout=60,
            )
        )
        advance(len(part))
    return evaluate_rankings(rankings, {q: qrels.get(q, {}) for q in ids}, K)


def relative_change(new: float, old: float) -> float:
    """(new / old - 1) in percent; NaN when old is 0."""
    return (new / old - 1.0) * 100.0 if old else float("nan")

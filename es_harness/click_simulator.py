"""Click simulator: searches through the real gRPC API and sends the clicks a click model draws.

Each (user, query) search creates a clickstream session (``create_session=True``); the clicks
drawn by a ``CascadeClickModel`` from the relevance judgements are pushed to
``ClickstreamService.PushEvents`` as "click" events. Event ids depend only on (session_id, rank),
so pushing the same session's clicks again is counted by the server as duplicates.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from embedding_studio.client import Client, build_search_request
from embedding_studio.v1 import clickstream_pb2, common_pb2, ranking_pb2, search_pb2
from es_core.evaluation.click_model import CascadeClickModel

#: Most events one PushEvents request may carry.
MAX_EVENTS_PER_REQUEST = 1000
CLICK_EVENT_TYPE = "click"
_EVENT_NAMESPACE = uuid.UUID("6f1c0d3e-5a2b-4c1e-9b7a-3e8d2f4a1c90")


def session_rng(seed: int, user_id: str, query_id: str) -> random.Random:
    """The generator for one (user, query) session: same inputs, same draws, in any process."""
    key = "\x1f".join((str(seed), user_id, query_id)).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def click_event_id(session_id: str, rank: int) -> str:
    """Deterministic event id (36 characters) of a click at ``rank`` in ``session_id``."""
    return str(uuid.uuid5(_EVENT_NAMESPACE, f"{session_id}\x1f{rank}"))


def search(
    client: Client,
    text: str,
    *,
    limit: int = 10,
    collection_id: str = "",
    user_id: str = "",
    create_session: bool = False,
    filter: common_pb2.Filter | None = None,
    ranking: ranking_pb2.RankingSpec | None = None,
    timeout: float | None = None,
) -> search_pb2.SearchResponse:
    """``client.search_text``, or with ``ranking`` set, the same request ranked by that spec
    (None: the collection's live spec)."""
    if ranking is None:
        return client.search_text(
            text,
            limit=limit,
            filter=filter,
            collection_id=collection_id,
            user_id=user_id,
            create_session=create_session,
            timeout=timeout,
        )
    request = build_search_request(text, limit, filter, collection_id, user_id, create_session)
    request.ranking.CopyFrom(ranking)
    response: search_pb2.SearchResponse = client.search.Search(request, timeout=timeout)
    return response


@dataclass
class SimulationReport:
    """What ``ClickSimulator.run`` did; accepted / duplicate counts are the server's answers."""

    session_ids: list[str] = field(default_factory=list)
    events_sent: int = 0
    accepted_count: int = 0
    duplicate_count: int = 0
    clicks_per_query: dict[str, int] = field(default_factory=dict)
    rankings: dict[tuple[str, str], list[str]] = field(default_factory=dict)


class ClickSimulator:
    """Simulated users searching and clicking; the same seed and rankings give the same clicks."""

    def __init__(
        self,
        client: Client,
        model: CascadeClickModel,
        seed: int,
        *,
        batch_size: int = MAX_EVENTS_PER_REQUEST,
        timeout: float | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_EVENTS_PER_REQUEST:
            raise ValueError(f"batch_size must be in 1..{MAX_EVENTS_PER_REQUEST}, got {batch_size}")
        self.client = client
        self.model = model
        self.seed = seed
        self.batch_size = batch_size
        self.timeout = timeout

    def run(
        self,
        queries: Mapping[str, str],
        qrels: Mapping[str, Mapping[str, int]],
        users: Sequence[str],
        limit: int = 10,
        collection_id: str = "",
        filter: common_pb2.Filter | None = None,
    ) -> SimulationReport:
        """For each user (in the given order) and query (by sorted query id): search with a new
        session (restricted by ``filter`` if given), draw clicks from ``qrels`` (unjudged queries
        and documents have grade 0, so they only get noise clicks) and push them, up to
        ``batch_size`` events per request."""
        report = SimulationReport(clicks_per_query={query_id: 0 for query_id in sorted(queries)})
        pending: list[clickstream_pb2.SessionEvent] = []
        for user_id in users:
            for query_id in sorted(queries):
                response = search(
                    self.client,
                    queries[query_id],
                    limit=limit,
                    collection_id=collection_id,
                    user_id=user_id,
                    create_session=True,
                    filter=filter,
                    timeout=self.timeout,
                )
                session_id = response.session_id
                if not session_id:
                    raise RuntimeError(f"Search for query {query_id!r} returned no session_id")
                shown = [result.object_id for result in response.results]
                report.session_ids.append(session_id)
                report.rankings[(user_id, query_id)] = shown
                rng = session_rng(self.seed, user_id, query_id)
                clicks = self.model.simulate(shown, qrels.get(query_id, {}), rng)
                report.clicks_per_query[query_id] += len(clicks)
                pending.extend(
                    clickstream_pb2.SessionEvent(
                        event_id=click_event_id(session_id, rank),
                        session_id=session_id,
                        object_id=shown[rank],
                        event_type=CLICK_EVENT_TYPE,
                    )
                    for rank in clicks
                )
                while len(pending) >= self.batch_size:
                    self._push(pending[: self.batch_size], report)
                    del pending[: self.batch_size]
        if pending:
            self._push(pending, report)
        return report

    def _push(
        self, events: Sequence[clickstream_pb2.SessionEvent], report: SimulationReport
    ) -> None:
        request = clickstream_pb2.PushEventsRequest(events=events)
        response: clickstream_pb2.PushEventsResponse = self.client.clickstream.PushEvents(
            request, timeout=self.timeout
        )
        report.events_sent += len(events)
        report.accepted_count += response.accepted_count
        report.duplicate_count += response.duplicate_count


def rankings_for(
    client: Client,
    queries: Mapping[str, str],
    user_id: str = "",
    limit: int = 10,
    collection_id: str = "",
    *,
    filter: common_pb2.Filter | None = None,
    ranking: ranking_pb2.RankingSpec | None = None,
    timeout: float | None = None,
) -> dict[str, list[str]]:
    """The object ids each query returns, without creating sessions (for NDCG before / after);
    ``filter`` restricts the items, ``ranking`` overrides the collection's live ranking."""
    return {
        query_id: [
            result.object_id
            for result in search(
                client,
                queries[query_id],
                limit=limit,
                collection_id=collection_id,
                user_id=user_id,
                filter=filter,
                ranking=ranking,
                timeout=timeout,
            ).results
        ]
        for query_id in sorted(queries)
    }

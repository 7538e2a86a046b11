"""Click-event ingestion through gRPC (StreamEvents, PushEvents) against asyncpg COPY.

    .venv/bin/python -m bench.clickstream [--quick] [--events N] [--json out.json]

Loads random unit vectors through UpsertItems (pre-computed vectors), registers sessions with
``Search(query_vector, create_session=True)`` (10 shown results each), then records the same
number of "click" events (each on one of its session's shown results, each with a fresh event id)
three ways, one after the other, every input built before its clock starts:

* ``ClickstreamService.StreamEvents``: one client stream, ``--batch`` events per message;
* ``ClickstreamService.PushEvents``: ``--batch`` events per call, ``--inflight`` calls in flight
  at once over one grpc.aio channel;
* ``PushEvents`` again with 1 call in flight (what a single stream does: one batch at a time);
* baseline: asyncpg ``copy_records_to_table`` of the same rows (one COPY of all of them) into
  ``bench_events``, a scratch table made with ``CREATE TABLE bench_events (LIKE session_events
  INCLUDING ALL)``: same columns, defaults, primary key (session_id, event_id) and (session_id,
  event_time) index; LIKE copies no foreign keys, so there is no FK to sessions, and COPY neither
  checks that sessions exist nor deduplicates nor computes ``object_not_shown`` (passed as false).

The server's path per batch: validate, ``COPY`` the events (first occurrence of each
(session_id, event_id)) into a per-connection temporary table, then one ``INSERT ... SELECT``
from it joined to sessions (refusing the batch if a session is unknown) ``ON CONFLICT DO
NOTHING``, in one transaction. The gRPC runs go in the order listed, so each later one
writes into a larger ``session_events`` (0 -> 3N rows); COPY writes into the empty scratch table.
Client, server and Postgres share this machine.

Last, WatchTask latency: the time from a task change's commit to a watch receiving it, with
the watch polling every ES_TASK_WATCH_POLL_SECONDS (0.25 s) and with it woken by LISTEN/NOTIFY.
Both run ``es_core.tasks.use_case.watch_task`` in this process against the stack's Postgres
(no gRPC), the changes ``--watch-changes`` progress reports spaced 50-350 ms apart at random.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

import asyncpg
import numpy as np

from bench.common import Row, base_parser, report, running_stack
from bench.search import load, texts, unit_vectors
from embedding_studio.client import AsyncClient
from embedding_studio.v1 import clickstream_pb2, common_pb2, search_pb2
from es_core.config import Settings
from es_core.context import Context
from es_core.page_tokens import PageTokens
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.storage.db import create_pool
from es_core.tasks import store
from es_core.tasks.model import Task
from es_core.tasks.updates import TaskUpdates
from es_core.tasks.use_case import watch_task

SHOWN = 10
COPY_COLUMNS = (
    "event_id",
    "session_id",
    "object_id",
    "event_type",
    "event_time",
    "meta",
    "object_not_shown",
)
Event = tuple[str, str, str]  # event_id, session_id, object_id


async def register_sessions(
    client: AsyncClient, rng: np.random.Generator, n: int, users: int, concurrency: int
) -> list[tuple[str, list[str]]]:
    """``n`` vector searches with create_session; returns (session_id, shown object ids)."""
    queries = unit_vectors(rng, n)
    out: list[tuple[str, list[str]]] = [("", [])] * n
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            reply = await client.search.Search(
                search_pb2.SearchRequest(
                    query_vector=common_pb2.Vector(values=queries[i].tolist()),
                    limit=SHOWN,
                    user_id=f"user-{i % users}",
                    create_session=True,
                ),
                timeout=60,
            )
            out[i] = (reply.session_id, [r.object_id for r in reply.results])

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def make_events(
    prefix: str, n: int, sessions: Sequence[tuple[str, list[str]]], rng: np.random.Generator
) -> list[Event]:
    """Event i belongs to session i mod len(sessions) and clicks one of its shown results."""
    picks = rng.integers(0, SHOWN, size=n)
    events = []
    for i in range(n):
        session_id, shown = sessions[i % len(sessions)]
        events.append((f"{prefix}-{i:09d}", session_id, shown[int(picks[i])]))
    return events


def event_messages(events: Sequence[Event]) -> list[clickstream_pb2.SessionEvent]:
    return [
        clickstream_pb2.SessionEvent(event_id=e, session_id=s, object_id=o, event_type="click")
        for e, s, o in events
    ]


def chunks(items: Sequence[Event], size: int) -> list[Sequence[Event]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


async def stream_events(
    client: AsyncClient, messages: list[clickstream_pb2.StreamEventsRequest]
) -> tuple[float, int, int]:
    async def requests() -> AsyncIterator[clickstream_pb2.StreamEventsRequest]:
        for m in messages:
            yield m

    started = time.perf_counter()
    reply = await client.clickstream.StreamEvents(requests(), timeout=3600)
    return time.perf_counter() - started, reply.accepted_count, reply.duplicate_count


async def push_events(
    client: AsyncClient, requests: list[clickstream_pb2.PushEventsRequest], inflight: int
) -> tuple[float, int, int]:
    gate = asyncio.Semaphore(inflight)

    async def send(request: clickstream_pb2.PushEventsRequest) -> tuple[int, int]:
        async with gate:
            reply = await client.clickstream.PushEvents(request, timeout=600)
            return reply.accepted_count, reply.duplicate_count

    started = time.perf_counter()
    counts = await asyncio.gather(*(send(r) for r in requests))
    seconds = time.perf_counter() - started
    return seconds, sum(a for a, _ in counts), sum(d for _, d in counts)


class _NoSender:
    def send(self, task: Task) -> None:
        pass


async def watch_latency(dsn: str, notify: bool, changes: int, rng: np.random.Generator) -> float:
    """Median seconds from a task change's commit to a watch of it receiving the change."""
    settings = Settings(task_watch_notify=notify)
    pool = await create_pool(settings, dsn)
    updates = TaskUpdates(dsn) if notify else None
    try:
        if updates is not None:
            updates.start()
            while updates.backend_pid is None:
                await asyncio.sleep(0.01)
        ctx = Context(
            settings,
            pool,
            _NoSender(),
            TextMiniLMPlugin(settings).get_search_index_info(),
            PageTokens([b"bench-page-token-key-0123456789ab"]),
            updates,
        )
        async with pool.acquire() as conn:
            task, _ = await store.create_task(conn, "improvement", {"bench": "watch"})
        await store.claim_task(pool, task.task_id, "bench", 600)
        arrived: asyncio.Queue[float] = asyncio.Queue()

        async def follow() -> None:
            async for _ in watch_task(ctx, task.task_id):
                arrived.put_nowait(time.perf_counter())

        watcher = asyncio.create_task(follow())
        await arrived.get()  # the task as it is now
        seconds = []
        for i in range(changes):
            await asyncio.sleep(float(rng.uniform(0.05, 0.35)))
            await store.report_progress(pool, task.task_id, "bench", 0.5, f"step {i}", 600)
            committed = time.perf_counter()
            seconds.append(await arrived.get() - committed)
        await store.finish_task(pool, task.task_id, "bench", "done")
        await watcher
        return float(np.median(seconds))
    finally:
        if updates is not None:
            await updates.close()
        await pool.close()


async def main_async(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    rows: list[Row] = []
    with running_stack() as stack:
        async with AsyncClient(stack.grpc_address) as client:
            vectors = unit_vectors(rng, args.items)
            seconds = await load(client, vectors, texts(rng, args.items), 500, 2)
            print(f"loaded {args.items} items (pre-computed vectors) in {seconds:.1f} s")

            started = time.perf_counter()
            sessions = await register_sessions(client, rng, args.sessions, args.users, 8)
            seconds = time.perf_counter() - started
            assert all(sid and len(shown) == SHOWN for sid, shown in sessions), "short session"
            print(
                f"registered {len(sessions)} sessions ({SHOWN} shown results each) via Search"
                f" create_session in {seconds:.1f} s = {len(sessions) / seconds:.0f} sessions/s"
            )

            n = args.events
            started = time.perf_counter()
            stream_in = [
                clickstream_pb2.StreamEventsRequest(events=event_messages(c))
                for c in chunks(make_events("stream", n, sessions, rng), args.batch)
            ]
            push_in = [
                clickstream_pb2.PushEventsRequest(events=event_messages(c))
                for c in chunks(make_events("push", n, sessions, rng), args.batch)
            ]
            push1_in = [
                clickstream_pb2.PushEventsRequest(events=event_messages(c))
                for c in chunks(make_events("push1", n, sessions, rng), args.batch)
            ]
            now = datetime.now(UTC)
            copy_in = [
                (e, s, o, "click", now, "{}", False)
                for e, s, o in make_events("copy", n, sessions, rng)
            ]
            print(f"built 4 x {n:,} events in {time.perf_counter() - started:.1f} s (untimed)")

            stream_s, stream_acc, stream_dup = await stream_events(client, stream_in)
            print(
                f"StreamEvents: {n:,} events in {stream_s:.2f} s = {n / stream_s:,.0f} events/s"
                f" (1 stream, {len(stream_in)} messages of {args.batch})"
            )
            push_s, push_acc, push_dup = await push_events(client, push_in, args.inflight)
            print(
                f"PushEvents: {n:,} events in {push_s:.2f} s = {n / push_s:,.0f} events/s"
                f" ({len(push_in)} calls of {args.batch}, {args.inflight} in flight)"
            )

            push1_s, push1_acc, push1_dup = await push_events(client, push1_in, 1)
            print(
                f"PushEvents: {n:,} events in {push1_s:.2f} s = {n / push1_s:,.0f} events/s"
                f" ({len(push1_in)} calls of {args.batch}, 1 in flight)"
            )

            conn = await asyncpg.connect(stack.postgres_dsn)
            try:
                await conn.execute("DROP TABLE IF EXISTS bench_events")
                await conn.execute("CREATE TABLE bench_events (LIKE session_events INCLUDING ALL)")
                started = time.perf_counter()
                await conn.copy_records_to_table(
                    "bench_events", records=copy_in, columns=COPY_COLUMNS
                )
                copy_s = time.perf_counter() - started
                print(f"COPY: {n:,} rows in {copy_s:.2f} s = {n / copy_s:,.0f} rows/s")

                landed = {
                    prefix: int(
                        await conn.fetchval(
                            f"SELECT count(*) FROM {table} WHERE event_id LIKE $1",
                            f"{prefix}-%",
                        )
                    )
                    for prefix, table in (
                        ("stream", "session_events"),
                        ("push", "session_events"),
                        ("push1", "session_events"),
                        ("copy", "bench_events"),
                    )
                }
                await conn.execute("DROP TABLE bench_events")
            finally:
                await conn.close()

            watch_poll = await watch_latency(stack.postgres_dsn, False, args.watch_changes, rng)
            watch_notify = await watch_latency(stack.postgres_dsn, True, args.watch_changes, rng)
            print(
                f"WatchTask latency (median of {args.watch_changes} changes): polling"
                f" {watch_poll * 1000:.1f} ms, LISTEN/NOTIFY {watch_notify * 1000:.1f} ms"
            )

    accepted, duplicates = (stream_acc, push_acc, push1_acc), (stream_dup, push_dup, push1_dup)
    ok = accepted == (n, n, n) and duplicates == (0, 0, 0) and all(v == n for v in landed.values())
    print(
        f"counts: StreamEvents accepted {stream_acc:,} dup {stream_dup};"
        f" PushEvents accepted {push_acc:,} dup {push_dup};"
        f" PushEvents (1 in flight) accepted {push1_acc:,} dup {push1_dup};"
        f" rows in Postgres: {', '.join(f'{k} {v:,}' for k, v in landed.items())}"
        f" (expected {n:,} each): {'OK' if ok else 'MISMATCH'}"
    )

    stream_r, push_r, push1_r, copy_r = n / stream_s, n / push_s, n / push1_s, n / copy_s
    copy_name = "asyncpg COPY into scratch table"
    push_name = f"PushEvents ({args.inflight} in flight)"
    rows += [
        Row("StreamEvents: events/s", stream_r, copy_r, copy_name),
        Row(f"{push_name}: events/s", push_r, copy_r, copy_name),
        Row("PushEvents (1 in flight): events/s", push1_r, copy_r, copy_name),
        Row("StreamEvents: events/s", stream_r, push1_r, "PushEvents (1 in flight)"),
        Row("COPY: rows/s", copy_r),
        Row("StreamEvents: accepted", stream_acc, n, "events sent"),
        Row(f"{push_name}: accepted", push_acc, n, "events sent"),
        Row("PushEvents (1 in flight): accepted", push1_acc, n, "events sent"),
        Row("WatchTask latency, notify: ms", watch_notify * 1000, watch_poll * 1000, "polling"),
    ]
    report(
        f"clickstream: {n:,} click events, {len(sessions)} sessions x {SHOWN} shown,"
        f" {args.batch} events per message/call",
        rows,
        args.json,
        {"args": {k: str(v) for k, v in vars(args).items()}, "counts_ok": ok},
    )
    if not ok:
        raise SystemExit("event counts do not match")


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "clickstream benchmark")
    parser.add_argument(
        "--events", type=int, help="events per method (default 200000; quick 20000)"
    )
    parser.add_argument("--sessions", type=int, default=2000, help="sessions to register")
    parser.add_argument("--items", type=int, default=2000, help="items to upsert (vectors)")
    parser.add_argument("--users", type=int, default=100, help="distinct user ids over sessions")
    parser.add_argument("--batch", type=int, default=1000, help="events per message / call")
    parser.add_argument("--inflight", type=int, default=4, help="PushEvents calls in flight")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--watch-changes", type=int, help="task changes per WatchTask mode (default 40; quick 10)"
    )
    args = parser.parse_args()
    if args.events is None:
        args.events = 20_000 if args.quick else 200_000
    if args.watch_changes is None:
        args.watch_changes = 10 if args.quick else 40
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()

"""A soak: mixed load from many clients on one `es up` stack while its parts fail under it.

    .venv/bin/python -m bench.soak [--minutes 10] [--clients 16] [--json out]

Each client loops until the time is up, choosing at random: a search by vector that records
a session (half of all calls), click events pushed into one of its own sessions, an upsert of
a few items (new ones, or newer versions of its own earlier ones; one upsert in flight per
client, as a client that waits for its writes has), or queuing its sessions for improvement.
One reindex into a second model runs through the middle of the load. Meanwhile
the worker is killed (SIGKILL) twice, for `es up` to restart it, and Redis is killed and
started again once. Clients retry UNAVAILABLE as a client of any service should, with the
same idempotency key or event ids, so a retry can never write twice.

At the end every accepted upsert must be DONE, every item must read back at the newest version
its writer was told was accepted, the collection must hold exactly those items, and every
session must hold exactly the events accepted for it. It prints the calls by status, p50/p99
per RPC and the server's memory, and exits 1 when any item or event was lost or duplicated,
any call ended INTERNAL, the reindex did not finish, or the server's RSS grew by 10 % or more
from minute 2 (or a fifth of a shorter run) to the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import grpc
import numpy as np
import psutil

from bench.common import Row, base_parser, percentile_ms, report
from bench.reindex import register_model
from embedding_studio.client import Client, from_struct, to_struct
from embedding_studio.v1 import clickstream_pb2 as cs
from embedding_studio.v1 import common_pb2, deployment_pb2, search_pb2, task_pb2, upsert_pb2
from es_cli.embedded import EmbeddedRedis, start_redis
from es_harness.throwaway import StackInfo, ThrowawayStack

DIMS = 384
SEED_ITEMS = 500
RETRIES = 8
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
TERMINAL = {
    common_pb2.TASK_STATUS_DONE,
    common_pb2.TASK_STATUS_FAILED,
    common_pb2.TASK_STATUS_CANCELED,
}


def unit_vector(rng: random.Random) -> list[float]:
    v = np.asarray([rng.gauss(0, 1) for _ in range(DIMS)], dtype=np.float32)
    return [float(x) for x in v / np.linalg.norm(v)]


@dataclass
class Ledger:
    """What the service said it accepted, and how every call ended; shared by the clients."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: defaultdict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    versions: dict[str, int] = field(default_factory=dict)  # object id -> newest accepted v
    upsert_tasks: list[str] = field(default_factory=list)
    events: defaultdict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def call(self, rpc: str, send: Callable[[], Any]) -> Any:
        """``send()``, retried on UNAVAILABLE; every try counted by its status. None when it
        still failed (the caller then counts nothing as accepted)."""
        for attempt in range(RETRIES):
            started = time.perf_counter()
            try:
                reply = send()
            except grpc.RpcError as error:
                code = error.code()
                with self.lock:
                    self.statuses[(rpc, code.name)] += 1
                if code != UNAVAILABLE:
                    return None
                time.sleep(min(2.0, 0.1 * 2**attempt))
                continue
            with self.lock:
                self.statuses[(rpc, "OK")] += 1
                self.latencies[rpc].append(time.perf_counter() - started)
            return reply
        return None


class SoakClient:
    def __init__(self, number: int, address: str, ledger: Ledger, ends: float) -> None:
        self.number, self.ledger, self.ends = number, ledger, ends
        self.rng = random.Random(number)
        self.client = Client(address)
        self.sessions: list[tuple[str, list[str]]] = []  # (session id, shown ids)
        self.items: dict[str, int] = {}
        self.upserting = ""  # the task of its upsert in flight (one at a time, as a client
        # that waits for its writes does; the queue then never grows past the clients)

    def run(self) -> None:
        with self.client:
            while time.monotonic() < self.ends:
                roll = self.rng.random()
                if roll < 0.5 or not self.sessions:
                    self.search()
                elif roll < 0.75:
                    self.push_events()
                elif roll < 0.95 and self.upsert_done():
                    self.upsert()
                else:
                    self.improve()

    def search(self) -> None:
        request = search_pb2.SearchRequest(
            query_vector=common_pb2.Vector(values=unit_vector(self.rng)),
            limit=10,
            create_session=True,
        )
        reply = self.ledger.call("Search", lambda: self.client.search.Search(request, timeout=30))
        if reply is not None and reply.session_id:
            self.sessions.append((reply.session_id, [r.object_id for r in reply.results]))

    def push_events(self) -> None:
        session_id, shown = self.rng.choice(self.sessions)
        events = [
            cs.SessionEvent(
                event_id=uuid.uuid4().hex,
                session_id=session_id,
                object_id=self.rng.choice(shown),
                event_type="click",
            )
            for _ in range(self.rng.randint(1, 3))
        ]
        request = cs.PushEventsRequest(events=events)
        reply = self.ledger.call(
            "PushEvents", lambda: self.client.clickstream.PushEvents(request, timeout=30)
        )
        if reply is not None:
            with self.ledger.lock:
                self.ledger.events[session_id].update(e.event_id for e in events)

    def upsert_done(self) -> bool:
        """Whether its last upsert ended (or there was none); else it searches meanwhile."""
        if not self.upserting:
            return True
        request = task_pb2.GetTaskRequest(task_id=self.upserting)
        reply = self.ledger.call("GetTask", lambda: self.client.tasks.GetTask(request, timeout=30))
        if reply is None or reply.task.status not in TERMINAL:
            self.search()
            return False
        self.upserting = ""
        return True

    def upsert(self) -> None:
        if self.items and self.rng.random() < 0.3:
            ids = self.rng.sample(sorted(self.items), min(len(self.items), 3))
        else:
            base = len(self.items)
            ids = [f"c{self.number:02d}-{base + i:06d}" for i in range(5)]
        versions = {object_id: self.items.get(object_id, 0) + 1 for object_id in ids}
        request = upsert_pb2.UpsertItemsRequest(
            items=[
                upsert_pb2.UpsertItem(
                    object_id=object_id,
                    payload=to_struct({"v": v, "client": self.number}),
                    parts=[common_pb2.ItemPart(part_id="0", vector=unit_vector(self.rng))],
                )
                for object_id, v in versions.items()
            ],
            idempotency_key=uuid.uuid4().hex,
        )
        reply = self.ledger.call(
            "UpsertItems", lambda: self.client.upsert.UpsertItems(request, timeout=30)
        )
        if reply is None:
            return
        self.items.update(versions)
        self.upserting = reply.task.task_id
        with self.ledger.lock:
            self.ledger.versions.update(versions)
            self.ledger.upsert_tasks.append(reply.task.task_id)

    def improve(self) -> None:
        session_ids = [s for s, _ in self.rng.sample(self.sessions, min(3, len(self.sessions)))]
        request = cs.UseSessionsForImprovementRequest(session_ids=session_ids)
        self.ledger.call(
            "UseSessionsForImprovement",
            lambda: self.client.clickstream.UseSessionsForImprovement(request, timeout=30),
        )


def stack_pid(stack: StackInfo, name: str) -> int:
    return int(json.loads((stack.data_dir / "stack.json").read_text())["pids"][name])


def kill_worker(stack: StackInfo) -> None:
    pid = stack_pid(stack, "worker-upsertion")
    for child in psutil.Process(pid).children(recursive=True):
        child.send_signal(signal.SIGKILL)
    psutil.Process(pid).send_signal(signal.SIGKILL)
    print(f"  {time.strftime('%H:%M:%S')} killed the upsertion worker (pid {pid})")


def gone(process: psutil.Process, timeout: float = 10.0) -> None:
    """Wait until ``process`` is dead (a zombie counts: its parent, not we, reaps it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return
        except psutil.NoSuchProcess:
            return
        time.sleep(0.1)
    raise RuntimeError(f"process {process.pid} did not die")


def restart_redis(stack: StackInfo) -> EmbeddedRedis:
    """Kill the stack's Redis and start it again on its port and data (its password kept)."""
    datadir = (stack.data_dir / "redis").resolve()
    for process in psutil.process_iter(["name", "cwd"]):
        if process.info["name"] == "redis-server" and process.info["cwd"] == str(datadir):
            process.send_signal(signal.SIGKILL)
            gone(process)
    print(f"  {time.strftime('%H:%M:%S')} killed Redis")
    time.sleep(3)
    port = urlsplit(stack.redis_url).port
    assert port is not None
    started = start_redis(datadir, port)
    print(f"  {time.strftime('%H:%M:%S')} Redis is back on port {port}")
    return started


def run_reindex(stack: StackInfo, ledger: Ledger) -> str:
    """Register a second model, reindex blue into it, and return the task id."""
    model_id = f"soak-{uuid.uuid4().hex[:8]}"
    asyncio.run(register_model(stack.postgres_dsn, model_id))
    with Client(stack.grpc_address) as client:
        deploy = ledger.call(
            "DeployModel",
            lambda: client.deployment.DeployModel(
                deployment_pb2.DeployModelRequest(model_id=model_id), timeout=60
            ),
        )
        if deploy is not None:
            client.wait_for_task(deploy.task.task_id, timeout_seconds=600)
        started = ledger.call(
            "StartReindex",
            lambda: client.deployment.StartReindex(
                deployment_pb2.StartReindexRequest(
                    destination_model_id=model_id, idempotency_key=model_id
                ),
                timeout=60,
            ),
        )
    if started is None:
        raise RuntimeError("StartReindex was refused")
    print(f"  {time.strftime('%H:%M:%S')} reindex {started.task.task_id} into {model_id}")
    return str(started.task.task_id)


def seed(stack: StackInfo, ledger: Ledger) -> None:
    rng = random.Random(0)
    with Client(stack.grpc_address) as client:
        items = [
            {"object_id": f"seed-{i:05d}", "parts": [{"part_id": "0", "vector": unit_vector(rng)}]}
            for i in range(SEED_ITEMS)
        ]
        task = client.upsert_items(items, timeout=120)
        done = client.wait_for_task(task.task_id, timeout_seconds=600)
        if done.status != common_pb2.TASK_STATUS_DONE:
            raise RuntimeError(f"seeding ended {done.status}: {done.error}")
    ledger.versions.update({f"seed-{i:05d}": 0 for i in range(SEED_ITEMS)})


def check(stack: StackInfo, ledger: Ledger, reindex_task: str) -> list[str]:
    """What went wrong: every accepted write and event must be there, once, as accepted."""
    problems: list[str] = []
    with Client(stack.grpc_address) as client:
        for task_id in ledger.upsert_tasks:
            task = client.wait_for_task(task_id, timeout_seconds=1800)
            if task.status != common_pb2.TASK_STATUS_DONE:
                problems.append(f"upsert task {task_id} ended {task.status}: {task.error}")
        reindex = client.wait_for_task(reindex_task, timeout_seconds=1800)
        if reindex.status != common_pb2.TASK_STATUS_DONE:
            problems.append(f"the reindex ended {reindex.status}: {reindex.error}")
        ids = sorted(ledger.versions)
        found: dict[str, int] = {}
        for start in range(0, len(ids), 1000):
            reply = client.upsert.GetItems(
                upsert_pb2.GetItemsRequest(object_ids=ids[start : start + 1000]), timeout=60
            )
            for item in reply.items:
                if item.object_id in found:
                    problems.append(f"item {item.object_id} read back twice")
                found[item.object_id] = int(from_struct(item.payload).get("v", 0))
        lost = [i for i in ids if i not in found]
        stale = [i for i in ids if i in found and found[i] != ledger.versions[i]]
        if lost:
            problems.append(f"{len(lost)} accepted items lost, e.g. {lost[:5]}")
        if stale:
            problems.append(f"{len(stale)} items not at their newest accepted version: {stale[:5]}")
        total = client.search.CountItems(search_pb2.CountItemsRequest(), timeout=60).count
        if total != len(ids):
            problems.append(f"the collection holds {total} items; {len(ids)} were written")
        for session_id, accepted in ledger.events.items():
            reply = client.clickstream.GetSession(
                cs.GetSessionRequest(session_id=session_id), timeout=30
            )
            stored = [e.event_id for e in reply.session.events]
            if len(stored) != len(set(stored)):
                problems.append(f"session {session_id} holds an event twice")
            if set(stored) != accepted:
                missing = accepted - set(stored)
                problems.append(f"session {session_id}: {len(missing)} accepted events missing")
    internal = sum(n for (_, code), n in ledger.statuses.items() if code == "INTERNAL")
    if internal:
        problems.append(f"{internal} calls ended INTERNAL")
    return problems


def main_with(args: argparse.Namespace) -> None:
    seconds = 60 * (2 if args.quick else args.minutes)
    ledger = Ledger()
    redis: EmbeddedRedis | None = None
    memory: list[tuple[float, int]] = []
    with (
        tempfile.TemporaryDirectory(prefix="es-soak-") as tmp,
        ThrowawayStack(Path(tmp) / "stack", extra_env={"ES_SERVE_WITH_TRITON": "false"}) as stack,
    ):
        try:
            seed(stack, ledger)
            begins = time.monotonic()
            ends = begins + seconds
            print(f"{args.clients} clients for {seconds / 60:g} min against {stack.grpc_address}")
            with ThreadPoolExecutor(args.clients) as pool:
                for n in range(args.clients):
                    pool.submit(SoakClient(n, stack.grpc_address, ledger, ends).run)
                chaos = {0.2: "worker", 0.3: "reindex", 0.45: "redis", 0.65: "worker"}
                reindex_task = ""
                while time.monotonic() < ends:
                    elapsed = time.monotonic() - begins
                    for at in [at for at in sorted(chaos) if elapsed >= at * seconds]:
                        what = chaos.pop(at)
                        if what == "worker":
                            kill_worker(stack)
                        elif what == "redis":
                            redis = restart_redis(stack)
                        else:
                            reindex_task = run_reindex(stack, ledger)
                    server = psutil.Process(stack_pid(stack, "server"))
                    memory.append((elapsed, server.memory_info().rss))
                    time.sleep(5)
            problems = check(stack, ledger, reindex_task)
        finally:
            if redis is not None:
                redis.stop()
    baseline_at = min(120.0, seconds / 5)
    start_rss = next(rss for t, rss in memory if t >= baseline_at)
    end_rss = memory[-1][1]
    growth = end_rss / start_rss - 1
    if growth >= 0.10:
        problems.append(f"server RSS grew {growth:.1%} from {baseline_at:.0f} s to the end")
    print("\ncalls by status:")
    for (rpc, code), n in sorted(ledger.statuses.items()):
        print(f"  {rpc:<28} {code:<20} {n}")
    rows = [
        Row(f"{rpc} p{q} (ms)", percentile_ms(times, q))
        for rpc, times in sorted(ledger.latencies.items())
        for q in (50, 99)
        if len(times) >= 10
    ]
    rows.append(
        Row(
            "server RSS at the end (MiB)",
            end_rss / 2**20,
            start_rss / 2**20,
            f"at {baseline_at:.0f} s",
        )
    )
    report(
        "soak",
        rows,
        args.json,
        {
            "minutes": seconds / 60,
            "clients": args.clients,
            "items": len(ledger.versions),
            "sessions_with_events": len(ledger.events),
            "events": sum(len(e) for e in ledger.events.values()),
            "problems": problems,
        },
    )
    print(
        f"\n{len(ledger.versions)} items and {sum(len(e) for e in ledger.events.values())} events"
        f" in {len(ledger.events)} sessions checked"
    )
    if problems:
        print("FAILED:\n  " + "\n  ".join(problems))
        raise SystemExit(1)
    print("no item or event lost or duplicated, no INTERNAL, memory steady")


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=16)
    main_with(parser.parse_args())


if __name__ == "__main__":
    main()

"""Task changes as they commit, for the watches waiting on them.

One LISTEN connection per process (not one per watch: a watch would hold a pooled connection
for as long as it lasts) hears the notifications migration 0020's trigger sends on every
watched change of a task, and wakes the queues of that task's watches. When the connection
drops it reconnects and then wakes every watch, as notifications sent meanwhile are lost; a
watch also re-reads its task on a slow fallback timer, so a lost notification only delays it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

import asyncpg

log = logging.getLogger(__name__)

CHANNEL = "es_task_updates"


class TaskUpdates:
    """Fans ``CHANNEL`` out to per-watch queues; ``start`` it once, ``close`` it on shutdown."""

    def __init__(
        self,
        dsn: str,
        *,
        check_seconds: float = 30.0,
        retry_seconds: float = 1.0,
        max_retry_seconds: float = 10.0,
    ) -> None:
        self._dsn = dsn
        self._check_seconds = check_seconds
        self._retry_seconds = retry_seconds
        self._max_retry_seconds = max_retry_seconds
        self._queues: dict[str, set[asyncio.Queue[None]]] = {}
        self._conn: asyncpg.Connection | None = None
        self._runner: asyncio.Task[None] | None = None
        self.connects = 0  # how many times the listener has (re)connected

    def start(self) -> None:
        if self._runner is None:
            self._runner = asyncio.create_task(self._run(), name="task-updates-listener")

    async def close(self) -> None:
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None

    @property
    def backend_pid(self) -> int | None:
        """The PostgreSQL backend listening now; None while disconnected."""
        conn = self._conn
        return None if conn is None or conn.is_closed() else conn.get_server_pid()

    def watching(self, task_id: str | None = None) -> int:
        """How many queues wait on ``task_id`` (on any task when None)."""
        if task_id is not None:
            return len(self._queues.get(task_id, ()))
        return sum(len(q) for q in self._queues.values())

    @contextlib.contextmanager
    def subscribe(self, task_id: str) -> Iterator[asyncio.Queue[None]]:
        """A queue that gets an item (coalesced: at most one waits) after each committed change
        of the task, and after every reconnect; released when the block ends."""
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._queues.setdefault(task_id, set()).add(queue)
        try:
            yield queue
        finally:
            queues = self._queues.get(task_id)
            if queues is not None:
                queues.discard(queue)
                if not queues:
                    del self._queues[task_id]

    def _wake(self, queues: Iterator[asyncio.Queue[None]] | set[asyncio.Queue[None]]) -> None:
        for queue in list(queues):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def _notified(self, conn: asyncpg.Connection, pid: int, channel: str, payload: str) -> None:
        self._wake(self._queues.get(payload, set()))

    def _wake_all(self) -> None:
        for queues in list(self._queues.values()):
            self._wake(queues)

    async def _run(self) -> None:
        delay = self._retry_seconds
        while True:
            try:
                await self._listen()
                delay = self._retry_seconds
            except Exception as error:  # noqa: BLE001 - the listener outlives any failure
                log.warning("task updates: listener lost (%s); reconnecting in %g s", error, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_retry_seconds)

    async def _listen(self) -> None:
        """Listen until the connection drops (or stops answering a check)."""
        lost = asyncio.Event()
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": "es-task-updates"}
        )
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self._conn = conn
            self.connects += 1
            # Changes made while no one listened were not heard: every watch re-reads.
            self._wake_all()
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), self._check_seconds)
                if not lost.is_set():
                    await conn.execute("SELECT 1", timeout=self._check_seconds)
            raise ConnectionError("the listening connection closed")
        finally:
            self._conn = None
            conn.terminate()

"""deploy_as_blue: a fine-tuning task whose model passed the gate deploys it, reindexes the blue
collection into the model's green collection and switches blue to it.

The fine-tuning task stays processing until then, handed over like a reindex parent (no lease);
its result's ``promotion`` says where the chain is. Each step is a task of its own (a
deployment, a reindex), and ``advance`` moves the chain on once the step's task has ended. It
runs under a row lock on the fine-tuning task and looks only at the rows, so any number of
callers may call it any number of times: the worker that ended a step calls it at once, and
every sweeper pass calls it for every waiting chain, so a lost worker only delays a chain.

A step that fails fails the fine-tuning task, naming the step and why; the registered model
version is kept. Canceling the fine-tuning task (``cancel_with_chain``, what CancelTask does)
cancels the step under way with it. The switch may also delete the collection that was the
rollback target until then (``promotion_delete_stale``), which undeploys its model.

With ``promotion_wait_for_interleaving`` the chain waits between the reindex and the switch
for the interleaving verdict of the new collection against blue (``es_core.interleaving``):
green better switches; blue better, or no verdict within the configured limits, ends the
task done with the promotion skipped and why.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from es_core.collections.blue import switch_blue
from es_core.collections.lifecycle import delete_collection
from es_core.collections.write_targets import lock_for_change
from es_core.config import Settings
from es_core.errors import EsError, FailedPrecondition
from es_core.interleaving.gate import promotion_decision
from es_core.interleaving.pair import interleaving_pair, pair_verdict
from es_core.reindex.start import create_reindex
from es_core.serving.deploy import start_deploy
from es_core.storage import catalog
from es_core.tasks import lookups
from es_core.tasks.model import Task
from es_core.tasks.store import SUBTASKS_OWNER, cancel_task, get_task, update_handed_over

Step = Literal[
    "deploying", "reindexing", "interleaving", "switching", "switched", "skipped", "failed"
]
WAITING: tuple[Step, ...] = ("deploying", "reindexing", "interleaving", "switching")
# The fine-tuning task's progress bar: training ends at 0.95; the chain fills the rest.
DEPLOY_PROGRESS, REINDEX_START, REINDEX_END = 0.95, 0.96, 0.99


def first_promotion(
    *, deploy_as_blue: bool, deployable: bool, model_id: str, margin: float
) -> dict[str, Any] | None:
    """The ``promotion`` a finished training starts with: None without deploy_as_blue."""
    if not deploy_as_blue:
        return None
    if not deployable:
        return {
            "step": "skipped",
            "model_id": model_id,
            "reason": "the deploy gate: on the held-out queries the lower bound of its NDCG@10"
            f" gain over the model in service was not above {margin}"
            " (ES_FINE_TUNING_GATE_MARGIN)",
        }
    return {"step": "deploying", "model_id": model_id}


def reindex_key(task_id: str) -> str:
    """The idempotency key of a chain's reindex: one per fine-tuning task."""
    return f"deploy_as_blue/{task_id}"


async def waiting_chains(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    """Fine-tuning tasks whose chain is under way, for the sweeper to move on."""
    return await lookups.handed_over(conn, "fine_tuning")


class _Chain:
    """One pass over one chain, inside the transaction that holds its task row."""

    def __init__(self, conn: asyncpg.Connection, settings: Settings, task_id: str) -> None:
        self.conn, self.settings, self.task_id = conn, settings, task_id
        self.to_send: list[Task] = []
        self.progress: float | None = None
        self.message: str | None = None

    async def _task(self, task_id: str) -> Task:
        return await get_task(self.conn, task_id)

    @staticmethod
    def _ended_badly(what: str, task: Task) -> FailedPrecondition:
        why = f": {task.error}" if task.error else ""
        return FailedPrecondition(f"{what} task {task.task_id} {task.status}{why}")

    async def deploying(self, p: dict[str, Any]) -> bool:
        model_id = p["model_id"]
        if not p.get("deploy_task_id"):
            model = await catalog.get_model(self.conn, model_id)
            if model.deployed:
                p["step"] = "reindexing"
                return True
            task, created = await start_deploy(self.conn, self.settings, model_id)
            if created:
                self.to_send.append(task)
                p["deploy_task_owned"] = True  # not a deploy someone else had asked for
            p["deploy_task_id"] = task.task_id
        task = await self._task(p["deploy_task_id"])
        if task.status == "done":
            p["step"] = "reindexing"
            return True
        if task.status in ("failed", "canceled"):
            raise self._ended_badly(f"deploying {model_id}: deployment", task)
        self.progress = DEPLOY_PROGRESS
        self.message = f"deploying {model_id} (task {task.task_id}): {task.progress_message}"
        return False

    async def reindexing(self, p: dict[str, Any]) -> bool:
        if not p.get("reindex_task_id"):
            started = await create_reindex(
                self.conn,
                self.settings,
                source_collection_id="",
                destination_model_id=p["model_id"],
                idempotency_key=reindex_key(self.task_id),
            )
            if started.created:
                self.to_send.append(started.task)
            p["reindex_task_id"] = started.task.task_id
            p["collection_id"] = started.destination_collection_id
            p["source_collection_id"] = str(started.task.params["resolved_source_collection_id"])
        task = await self._task(p["reindex_task_id"])
        if task.status == "done":
            wait = self.settings.promotion_wait_for_interleaving
            p["step"] = "interleaving" if wait else "switching"
            return True
        if task.status in ("failed", "canceled"):
            raise self._ended_badly(f"reindexing into {p['collection_id']}: reindex", task)
        self.progress = REINDEX_START + (REINDEX_END - REINDEX_START) * task.progress
        self.message = (
            f"reindexing {p['source_collection_id']} into {p['collection_id']}"
            f" (task {task.task_id}): {task.progress_message}"
        )
        return False

    async def interleaving(self, p: dict[str, Any]) -> bool:
        """Wait for the verdict of interleaved searches of the new collection against blue
        (ES_PROMOTION_WAIT_FOR_INTERLEAVING); blue better, or no verdict in time, skips."""
        now = datetime.now(UTC)
        since = datetime.fromisoformat(p.setdefault("interleaving_since", now.isoformat()))
        pair = await interleaving_pair(self.conn, p["collection_id"], field="collection_id")
        verdict = await pair_verdict(
            self.conn, pair, self.settings, self.settings.interleaving_confidence, sequential=True
        )
        action, why = promotion_decision(verdict, (now - since).total_seconds(), self.settings)
        p["interleaving"] = verdict.describe()
        if action == "switch":
            p["step"] = "switching"
            return True
        if action == "keep":
            p |= {"step": "skipped", "reason": why}
            self.message = f"not promoted: {why}"
            return False
        self.progress = REINDEX_END
        self.message = (
            f"waiting for the interleaving verdict of {p['collection_id']} against blue: {why}"
        )
        return False

    async def switching(self, p: dict[str, Any]) -> bool:
        await lock_for_change(self.conn)  # the alias cannot move between this read and the switch
        stale = await self.conn.fetchval("SELECT previous_collection_id FROM blue_collection")
        change = await switch_blue(self.conn, p["collection_id"])
        p["previous_collection_id"] = change.previous.collection_id
        p["step"] = "switched"
        if (
            self.settings.promotion_delete_stale
            and stale is not None
            and stale not in (change.blue.collection_id, change.previous.collection_id)
        ):
            try:
                self.to_send += await delete_collection(self.conn, self.settings, stale)
                p["deleted_collection_id"] = stale
            except EsError as exc:  # the switch stands; the stale collection stays for now
                p["stale_collection_kept"] = f"{stale}: {exc.message}"
        self.message = (
            f"{p['collection_id']} is blue; {change.previous.collection_id} is kept for rollback"
        )
        return False


async def advance(pool: asyncpg.Pool, settings: Settings, task_id: str) -> list[Task]:
    """Move one chain on as far as it goes now; returns the tasks to send (after commit)."""
    async with pool.acquire() as conn, conn.transaction():
        row = await lookups.lock(conn, task_id)
        if (
            row is None
            or row["kind"] != "fine_tuning"
            or row["status"] != "processing"
            or row["lease_owner"] != SUBTASKS_OWNER
        ):
            return []
        result = dict(row["result"] or {})
        promotion = dict(result.get("promotion") or {})
        if promotion.get("step") not in WAITING:
            return []
        chain = _Chain(conn, settings, task_id)
        steps = {
            "deploying": chain.deploying,
            "reindexing": chain.reindexing,
            "interleaving": chain.interleaving,
            "switching": chain.switching,
        }
        step = promotion["step"]
        try:
            while promotion["step"] in WAITING:
                step = promotion["step"]
                if not await steps[step](promotion):
                    break
        except EsError as exc:
            promotion |= {"step": "failed", "failed_step": step, "reason": exc.message}
            await update_handed_over(
                conn,
                task_id,
                status="failed",
                result=result | {"promotion": promotion},
                error=f"registered {promotion['model_id']}, but deploy_as_blue stopped while"
                f" {step}: {exc.message}",
            )
            return chain.to_send
        done = promotion["step"] in ("switched", "skipped")
        await update_handed_over(
            conn,
            task_id,
            status="done" if done else "processing",
            progress=chain.progress,
            message=chain.message,
            result=result | {"promotion": promotion},
        )
        return chain.to_send


async def cancel_with_chain(pool: asyncpg.Pool, task_id: str) -> Task:
    """Cancel a task (as ``store.cancel_task``); a fine-tuning task's chain stops with it: the
    deployment it started or its reindex, if under way, is canceled in the same transaction.
    A deployment the chain found already asked for by someone else goes on."""
    async with pool.acquire() as conn, conn.transaction():
        task = await cancel_task(conn, task_id)
        promotion = (task.result or {}).get("promotion") or {}
        if task.kind != "fine_tuning" or promotion.get("step") not in WAITING:
            return task
        step_task_id = ""
        if promotion["step"] == "deploying" and promotion.get("deploy_task_owned"):
            step_task_id = str(promotion.get("deploy_task_id") or "")
        elif promotion["step"] == "reindexing":
            step_task_id = str(promotion.get("reindex_task_id") or "")
        if step_task_id and (await get_task(conn, step_task_id)).status in (
            "pending",
            "processing",
        ):
            await cancel_task(conn, step_task_id)
        return task

"""deploy_as_blue: a fine-tuning task whose model passed the gate deploys it, reindexes the blue
collection into the model's green collection and switches blue to it.

The fine-tuning task waits until then (status waiting, no lease), like a reindex parent;
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

A categories fine-tuning's chain (``target`` "categories") deploys the same way, then its
``copying_categories`` step waits for a categories switch task (``es_core.categories.switch``)
instead of a reindex and a switch of blue: searches are untouched.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg

from es_core.categories.switch import start_categories_switch
from es_core.collections.blue import switch_blue
from es_core.collections.lifecycle import delete_collection
from es_core.collections.write_targets import lock_for_change
from es_core.config import Settings
from es_core.errors import EsError, FailedPrecondition
from es_core.interleaving.gate import promotion_decision
from es_core.interleaving.pair import interleaving_pair, pair_verdict
from es_core.plugins.protocol import SearchIndexInfo
from es_core.reindex.start import create_reindex
from es_core.serving.deploy import start_deploy
from es_core.storage import catalog
from es_core.tasks import lookups
from es_core.tasks.model import Task
from es_core.tasks.results import CategoriesSwitchResult, parse_result
from es_core.tasks.store import cancel_task, get_task, update_waiting

Step = Literal[
    "deploying",
    "reindexing",
    "interleaving",
    "switching",
    "copying_categories",
    "switched",
    "skipped",
    "failed",
]
WAITING: tuple[Step, ...] = (
    "deploying",
    "reindexing",
    "interleaving",
    "switching",
    "copying_categories",
)
# The fine-tuning task's progress bar: training ends at 0.95; the chain fills the rest.
DEPLOY_PROGRESS, REINDEX_START, REINDEX_END = 0.95, 0.96, 0.99
#: Promotion.target of a categories fine-tuning's chain.
CATEGORIES = "categories"


@dataclass(frozen=True)
class Promotion:
    """Where a deploy_as_blue chain stands, kept in its fine-tuning task's result as
    ``promotion`` (empty fields left out)."""

    step: Step
    model_id: str
    # Why the chain stopped (skipped or failed), and in which step it failed.
    reason: str = ""
    failed_step: str = ""
    # The deployment the chain waits for, and whether the chain asked for it (then canceling
    # the chain cancels it; a deployment someone else had asked for goes on).
    deploy_task_id: str = ""
    deploy_task_owned: bool = False
    # The reindex of blue into the model's collection, and that collection.
    reindex_task_id: str = ""
    collection_id: str = ""
    source_collection_id: str = ""
    # When the chain began waiting for the interleaving verdict (ISO 8601), and the verdict.
    interleaving_since: str = ""
    interleaving: str = ""
    # What the switch left: the rollback target, and the stale collection deleted or kept.
    previous_collection_id: str = ""
    deleted_collection_id: str = ""
    stale_collection_kept: str = ""
    # A categories fine-tuning ("categories"; empty for items): after the deployment, the
    # categories that ``items_model_id``'s predictions read are copied into the version's
    # categories collection and the predictions pointed at it (``es_core.categories.switch``).
    target: str = ""
    items_model_id: str = ""
    categories_task_id: str = ""
    categories_collection_id: str = ""
    previous_categories_collection_id: str = ""

    @property
    def waiting(self) -> bool:
        return self.step in WAITING

    def as_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def of(cls, stored: dict[str, Any]) -> Promotion:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in stored.items() if k in known})


def first_promotion(
    *, deploy_as_blue: bool, deployable: bool, model_id: str, margin: float
) -> Promotion | None:
    """The promotion a finished training starts with: None without deploy_as_blue."""
    if not deploy_as_blue:
        return None
    if not deployable:
        return Promotion(
            "skipped",
            model_id,
            reason="the deploy gate: on the held-out queries the lower bound of its NDCG@10"
            f" gain over the model in service was not above {margin}"
            " (ES_FINE_TUNING_GATE_MARGIN)",
        )
    return Promotion("deploying", model_id)


def reindex_key(task_id: str) -> str:
    """The idempotency key of a chain's reindex: one per fine-tuning task."""
    return f"deploy_as_blue/{task_id}"


async def waiting_chains(conn: asyncpg.Connection | asyncpg.Pool) -> list[str]:
    """Fine-tuning tasks whose chain is under way, for the sweeper to move on."""
    return await lookups.waiting(conn, "fine_tuning")


class _Chain:
    """One pass over one chain, inside the transaction that holds its task row: each step
    moves ``self.p`` on and says whether the next step may run now."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        settings: Settings,
        index: SearchIndexInfo,
        task_id: str,
        p: Promotion,
    ) -> None:
        self.conn, self.settings, self.index, self.task_id = conn, settings, index, task_id
        self.p = p
        self.to_send: list[Task] = []
        self.progress: float | None = None
        self.message: str | None = None

    async def _task(self, task_id: str) -> Task:
        return await get_task(self.conn, task_id)

    @staticmethod
    def _ended_badly(what: str, task: Task) -> FailedPrecondition:
        why = f": {task.error}" if task.error else ""
        return FailedPrecondition(f"{what} task {task.task_id} {task.status}{why}")

    async def deploying(self) -> bool:
        model_id = self.p.model_id
        after: Step = "copying_categories" if self.p.target == CATEGORIES else "reindexing"
        if not self.p.deploy_task_id:
            model = await catalog.get_model(self.conn, model_id)
            if model.deployed:
                self.p = replace(self.p, step=after)
                return True
            task, created = await start_deploy(self.conn, self.settings, model_id)
            if created:
                self.to_send.append(task)
            self.p = replace(self.p, deploy_task_id=task.task_id, deploy_task_owned=created)
        task = await self._task(self.p.deploy_task_id)
        if task.status == "done":
            self.p = replace(self.p, step=after)
            return True
        if task.status in ("failed", "canceled"):
            raise self._ended_badly(f"deploying {model_id}: deployment", task)
        self.progress = DEPLOY_PROGRESS
        self.message = f"deploying {model_id} (task {task.task_id}): {task.progress_message}"
        return False

    async def reindexing(self) -> bool:
        if not self.p.reindex_task_id:
            started = await create_reindex(
                self.conn,
                self.settings,
                self.index,
                source_collection_id="",
                destination_model_id=self.p.model_id,
                idempotency_key=reindex_key(self.task_id),
            )
            if started.created:
                self.to_send.append(started.task)
            self.p = replace(
                self.p,
                reindex_task_id=started.task.task_id,
                collection_id=started.destination_collection_id,
                source_collection_id=str(started.task.params["resolved_source_collection_id"]),
            )
        task = await self._task(self.p.reindex_task_id)
        if task.status == "done":
            wait = self.settings.promotion_wait_for_interleaving
            self.p = replace(self.p, step="interleaving" if wait else "switching")
            return True
        if task.status in ("failed", "canceled"):
            raise self._ended_badly(f"reindexing into {self.p.collection_id}: reindex", task)
        self.progress = REINDEX_START + (REINDEX_END - REINDEX_START) * task.progress
        self.message = (
            f"reindexing {self.p.source_collection_id} into {self.p.collection_id}"
            f" (task {task.task_id}): {task.progress_message}"
        )
        return False

    async def interleaving(self) -> bool:
        """Wait for the verdict of interleaved searches of the new collection against blue
        (ES_PROMOTION_WAIT_FOR_INTERLEAVING); blue better, or no verdict in time, skips."""
        now = datetime.now(UTC)
        if not self.p.interleaving_since:
            self.p = replace(self.p, interleaving_since=now.isoformat())
        since = datetime.fromisoformat(self.p.interleaving_since)
        pair = await interleaving_pair(self.conn, self.p.collection_id, field="collection_id")
        verdict = await pair_verdict(
            self.conn, pair, self.settings, self.settings.interleaving_confidence, sequential=True
        )
        action, why = promotion_decision(verdict, (now - since).total_seconds(), self.settings)
        self.p = replace(self.p, interleaving=verdict.describe())
        if action == "switch":
            self.p = replace(self.p, step="switching")
            return True
        if action == "keep":
            self.p = replace(self.p, step="skipped", reason=why)
            self.message = f"not promoted: {why}"
            return False
        self.progress = REINDEX_END
        self.message = (
            f"waiting for the interleaving verdict of {self.p.collection_id} against blue: {why}"
        )
        return False

    async def copying_categories(self) -> bool:
        """A categories fine-tuning's last step: its switch task copies and points."""
        if not self.p.categories_task_id:
            task, created = await start_categories_switch(
                self.conn, self.task_id, self.p.items_model_id, self.p.model_id
            )
            if created:
                self.to_send.append(task)
            self.p = replace(self.p, categories_task_id=task.task_id)
        task = await self._task(self.p.categories_task_id)
        if task.status == "done" and not task.result.get("stopped"):
            done = parse_result(CategoriesSwitchResult, task.result)
            self.p = replace(
                self.p,
                step="switched",
                categories_collection_id=done.categories_collection_id,
                previous_categories_collection_id=done.previous_categories_collection_id,
            )
            self.message = (
                f"predictions of {done.items_model_id} read {done.categories_collection_id};"
                f" {done.previous_categories_collection_id} is kept"
            )
            return False
        if task.status in ("failed", "canceled", "done"):
            raise self._ended_badly("switching the categories: categories_switch", task)
        self.progress = REINDEX_START
        self.message = f"switching the categories (task {task.task_id}): {task.progress_message}"
        return False

    async def switching(self) -> bool:
        await lock_for_change(self.conn)  # the alias cannot move between this read and the switch
        stale = await self.conn.fetchval("SELECT previous_collection_id FROM blue_collection")
        change = await switch_blue(self.conn, self.p.collection_id)
        previous = change.previous.collection_id
        self.p = replace(self.p, step="switched", previous_collection_id=previous)
        if (
            self.settings.promotion_delete_stale
            and stale is not None
            and stale not in (change.blue.collection_id, previous)
        ):
            try:
                self.to_send += await delete_collection(self.conn, self.settings, stale)
                self.p = replace(self.p, deleted_collection_id=stale)
            except EsError as exc:  # the switch stands; the stale collection stays for now
                self.p = replace(self.p, stale_collection_kept=f"{stale}: {exc.message}")
        self.message = f"{self.p.collection_id} is blue; {previous} is kept for rollback"
        return False


async def advance(
    pool: asyncpg.Pool, settings: Settings, index: SearchIndexInfo, task_id: str
) -> list[Task]:
    """Move one chain on as far as it goes now; returns the tasks to send (after commit).
    ``index``: the plugin's search index info, for the model's new collection."""
    async with pool.acquire() as conn, conn.transaction():
        row = await lookups.lock(conn, task_id)
        if row is None or row["kind"] != "fine_tuning" or row["status"] != "waiting":
            return []
        result = dict(row["result"] or {})
        if not result.get("promotion"):
            return []
        chain = _Chain(conn, settings, index, task_id, Promotion.of(result["promotion"]))
        steps = {
            "deploying": chain.deploying,
            "reindexing": chain.reindexing,
            "interleaving": chain.interleaving,
            "switching": chain.switching,
            "copying_categories": chain.copying_categories,
        }
        step = chain.p.step
        try:
            while chain.p.waiting:
                step = chain.p.step
                if not await steps[step]():
                    break
        except EsError as exc:
            failed = replace(chain.p, step="failed", failed_step=step, reason=exc.message)
            await update_waiting(
                conn,
                task_id,
                status="failed",
                result=result | {"promotion": failed.as_json()},
                error=f"registered {failed.model_id}, but deploy_as_blue stopped while"
                f" {step}: {exc.message}",
            )
            return chain.to_send
        await update_waiting(
            conn,
            task_id,
            status="waiting" if chain.p.waiting else "done",
            progress=chain.progress,
            message=chain.message,
            result=result | {"promotion": chain.p.as_json()},
        )
        return chain.to_send


async def cancel_with_chain(pool: asyncpg.Pool, task_id: str) -> Task:
    """Cancel a task (as ``store.cancel_task``); a fine-tuning task's chain stops with it: the
    deployment it started or its reindex, if under way, is canceled in the same transaction.
    A deployment the chain found already asked for by someone else goes on."""
    async with pool.acquire() as conn, conn.transaction():
        task = await cancel_task(conn, task_id)
        stored = (task.result or {}).get("promotion")
        if task.kind != "fine_tuning" or not stored or not Promotion.of(stored).waiting:
            return task
        promotion = Promotion.of(stored)
        step_task_id = ""
        if promotion.step == "deploying" and promotion.deploy_task_owned:
            step_task_id = promotion.deploy_task_id
        elif promotion.step == "reindexing":
            step_task_id = promotion.reindex_task_id
        elif promotion.step == "copying_categories":
            step_task_id = promotion.categories_task_id
        if step_task_id and not (await get_task(conn, step_task_id)).is_terminal:
            await cancel_task(conn, step_task_id)
        return task

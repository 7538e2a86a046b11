"""Import worker: reads whole sources into a collection, page by page from its checkpoint
(es_core/ingest/importing.py)."""

from __future__ import annotations

import sys
from typing import Any

from es_core.domain import Progress
from es_core.ingest.importing import ImportJob
from es_core.item_versions import write_version
from es_core.loaders.model import SourceSpec
from es_core.storage.catalog import get_collection
from es_core.tasks.model import Task
from es_workers.app import celery_app
from es_workers.runtime import WorkerContext, execute, run, task_owner


async def _import(ctx: WorkerContext, task: Task, progress: Progress) -> dict[str, Any]:
    params = task.params
    async with ctx.pool.acquire() as conn:
        collection = await get_collection(conn, params["collection_id"], kind=None)
    job = ImportJob(
        ctx.pool,
        collection,
        ctx.encoders,
        ctx.settings,
        ctx.preparer,
        ctx.loaders,
        task_owner.get(),
        write_version(task),
    )
    sources = [SourceSpec.from_json(spec) for spec in params["sources"]]
    return await job.run(
        task, sources, int(params["page_size"]), int(params.get("max_failed_items", 0))
    )


@celery_app.task(name="es.import", acks_late=True, reject_on_worker_lost=True)
def import_items(task_id: str) -> str:
    return run(execute(task_id, _import))


if __name__ == "__main__":
    # ``python -m es_workers.importing TASK_ID...`` runs imports here without a broker: for
    # operators, and for tests that kill a real worker process.
    for task_id in sys.argv[1:]:
        print(task_id, run(execute(task_id, _import)), flush=True)

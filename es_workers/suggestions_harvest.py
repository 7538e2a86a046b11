"""Suggestions harvest worker: every ``ES_SUGGESTIONS_HARVEST_INTERVAL_SECONDS`` the beat runs
one harvest pass (es_core.suggestions.harvest), which turns the queries of successful sessions
into phrases of the "clickstream" suggestion domain. ``ES_SUGGESTIONS_HARVEST=false`` leaves it
out of the schedule (and a pass started anyway writes nothing). Two passes at once are safe:
the second finds the first's lock and returns."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from es_core.suggestions.harvest import harvest
from es_workers.app import celery_app
from es_workers.runtime import context, run

log = logging.getLogger(__name__)


async def _harvest() -> dict[str, Any]:
    ctx = await context()
    report = await harvest(ctx.pool, ctx.settings, datetime.now(UTC))
    if report.ran:
        log.info("suggestions harvest: %s", report.as_dict())
    return report.as_dict()


@celery_app.task(name="es.suggestions_harvest", ignore_result=True)
def suggestions_harvest() -> dict[str, Any]:
    return run(_harvest())

"""MLflow aliases that name what serves: ``blue`` is the registry version whose collection is
blue, ``rollback`` the version of the rollback target. They follow the blue alias of the
database, which is the truth: every switch and rollback moves them once it commits, and the
sweeper brings them back in line should MLflow have been unreachable at that moment (or a
deploy_as_blue chain switched). A model the registry does not hold (a test model, a source
outside MLflow) leaves its alias unset; the base model is the version under alias ``base``."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import asyncpg

from es_core.domain import Model
from es_core.encoders.local import BASE_MODEL_SOURCE
from es_core.fine_tuning.experiments import (
    BASE_ALIAS,
    MLFLOW_SOURCE_PREFIX,
    MlflowExperiments,
    parse_models_uri,
)
from es_core.storage.catalog import get_collection

log = logging.getLogger(__name__)

BLUE_ALIAS = "blue"
ROLLBACK_ALIAS = "rollback"


@dataclass(frozen=True)
class Serving:
    blue: Model
    rollback: Model | None


async def serving_models(conn: asyncpg.Connection) -> Serving | None:
    """The models of the blue collection and of the rollback target; None before any blue."""
    row = await conn.fetchrow("SELECT collection_id, previous_collection_id FROM blue_collection")
    if row is None:
        return None
    blue = await get_collection(conn, row["collection_id"], kind=None)
    previous = row["previous_collection_id"]
    rollback = None if previous is None else await get_collection(conn, previous, kind=None)
    return Serving(blue.model, None if rollback is None else rollback.model)


def _registered(model: Model) -> tuple[str, str] | None:
    if not model.source.startswith(MLFLOW_SOURCE_PREFIX):
        return None
    try:
        return parse_models_uri(model.source[len(MLFLOW_SOURCE_PREFIX) :])
    except ValueError:
        return None


def _version_in(experiments: MlflowExperiments, name: str, model: Model | None) -> str | None:
    """``model``'s version under the registered model ``name``, if the registry holds it."""
    if model is None:
        return None
    registered = _registered(model)
    if registered is not None:
        return registered[1] if registered[0] == name else None
    if model.source == BASE_MODEL_SOURCE:
        try:
            return experiments.version_by_alias(name, BASE_ALIAS)
        except Exception:  # no base version registered under this name
            return None
    return None


def point_aliases(experiments: MlflowExperiments, serving: Serving) -> dict[str, dict[str, str]]:
    """Set ``blue`` and ``rollback`` on each registered model the serving versions belong to
    (drop the alias when its collection's model is not in that registered model); returns
    what each registered model's aliases now name."""
    names = {r[0] for m in (serving.blue, serving.rollback) if m and (r := _registered(m))}
    now: dict[str, dict[str, str]] = {}
    if not names:
        return now  # nothing the registry holds serves: MLflow is not even imported
    client = experiments.client()
    for name in sorted(names):
        current = {a: str(v) for a, v in client.get_registered_model(name).aliases.items()}
        for alias, model in ((BLUE_ALIAS, serving.blue), (ROLLBACK_ALIAS, serving.rollback)):
            version = _version_in(experiments, name, model)
            if version is None and alias in current:
                client.delete_registered_model_alias(name, alias)
                del current[alias]
            elif version is not None and current.get(alias) != version:
                client.set_registered_model_alias(name, alias, version)
                current[alias] = version
        now[name] = {a: v for a, v in current.items() if a in (BLUE_ALIAS, ROLLBACK_ALIAS)}
    return now


class AliasFollower:
    """Moves the aliases when what serves has changed since it last did (one per process);
    MLflow being unreachable is logged, and the next call tries again."""

    def __init__(self, experiments: MlflowExperiments) -> None:
        self._experiments = experiments
        self._done: Serving | None = None
        self._lock = asyncio.Lock()  # one move at a time, each reading what serves then
        self._background: set[asyncio.Task[None]] = set()

    async def follow(self, pool: asyncpg.Pool) -> None:
        async with self._lock:
            async with pool.acquire() as conn:
                serving = await serving_models(conn)
            if serving is None or serving == self._done:
                return
            try:
                await asyncio.to_thread(point_aliases, self._experiments, serving)
            except Exception as exc:
                log.warning("MLflow aliases blue/rollback not moved now (%s); will retry", exc)
                return
            self._done = serving

    def follow_soon(self, pool: asyncpg.Pool) -> None:
        """``follow`` in the background: a call that switched does not wait for MLflow (an
        MLflow server that does not answer is retried by its client for minutes)."""
        task = asyncio.get_running_loop().create_task(self.follow(pool))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

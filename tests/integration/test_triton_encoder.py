"""Serving through a real Triton (``python -m es_triton`` on free ports): encodings
match in-process sentence-transformers, batches are split, a model that is not deployed or a
Triton that is down fails clearly, and model versions are deployed and undeployed while the
others keep serving, under the cap."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio

from es_cli.embedded import EmbeddedPostgres, free_port
from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.local import (
    BASE_MODEL_ID,
    BASE_MODEL_SOURCE,
    SentenceTransformerEncoder,
    base_model_path,
)
from es_core.encoders.triton import (
    TritonEncoder,
    models_ready,
    triton_model_names,
)
from es_core.errors import EsError, FailedPrecondition, InvalidArgument, NotFound, Unavailable
from es_core.fine_tuning.experiments import MLFLOW_SOURCE_PREFIX, MlflowExperiments, models_uri
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_core.serving.deploy import run_deployment, start_deploy, start_undeploy
from es_core.storage import catalog
from es_core.storage.bootstrap import prepare_database
from es_core.storage.db import create_pool
from es_core.tasks import store
from es_core.tasks.model import Task
from tests.integration.helpers import fresh_database

pytestmark = pytest.mark.integration

COPY_NAME = "triton-test-copy"
COPY_ID = f"{COPY_NAME}-v1"
DIMS = 384
SERVER_BATCH = 16
TEXTS = [
    "Vitamin D deficiency is associated with an increased risk of fractures.",
    "ALDH1 expression is associated with poorer prognosis in breast cancer.",
    "Ünïcödé, emoji 🧬 and CJK 蛋白质 survive the trip as UTF-8.",
    "",
    "short",
    " ".join(["a long abstract about mitochondria and the cell cycle"] * 40),
] + [f"claim number {i}: protein {i} regulates gene {i * 7 % 13}" for i in range(34)]


@dataclass
class Served:
    """A database whose deployed models a real Triton process serves."""

    settings: Settings  # with triton_url set, as the stack passes it
    pool: asyncpg.Pool
    plugin: TextMiniLMPlugin
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return self.settings.triton_url


def _triton_env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "ES_DATA_DIR": str(settings.data_dir),
        "ES_POSTGRES_DSN": settings.postgres_dsn,
        "ES_TRITON_GRPC_PORT": str(settings.triton_grpc_port),
        "ES_TRITON_HTTP_PORT": str(settings.triton_http_port),
        "ES_TRITON_METRICS_PORT": str(settings.triton_metrics_port),
        "ES_TRITON_BATCH_SIZE": str(settings.triton_batch_size),
        "ES_TRITON_POLL_SECONDS": str(settings.triton_poll_seconds),
        "HF_HUB_OFFLINE": "1",
    }


async def _wait_until_serving(
    process: subprocess.Popen[bytes], url: str, model_id: str, log_path: Path
) -> None:
    names = list(triton_model_names(model_id))
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert process.poll() is None, "Triton exited:\n" + log_path.read_text(errors="replace")
        try:
            if all((await asyncio.to_thread(models_ready, url, names, timeout=1)).values()):
                return
        except Unavailable:
            pass
        await asyncio.sleep(0.5)
    raise AssertionError("Triton did not serve the base model:\n" + log_path.read_text())


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(
    pg_server: EmbeddedPostgres, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Served]:
    data_dir = tmp_path_factory.mktemp("triton-data")
    async with fresh_database(pg_server.dsn) as dsn:
        settings = Settings(
            data_dir=data_dir,
            postgres_dsn=dsn,
            triton_grpc_port=free_port(),
            triton_http_port=free_port(),
            triton_metrics_port=free_port(),
            triton_batch_size=SERVER_BATCH,
            triton_poll_seconds=0.3,
            max_deployed_models=2,
            deployment_timeout_seconds=120,
        )
        pool = await create_pool(settings, dsn, max_size=4)
        log_path = data_dir / "triton.log"
        process = None
        try:
            await prepare_database(pool, settings, TextMiniLMPlugin(settings))
            # A second model version: the base weights registered in MLflow under another name.
            version = await asyncio.to_thread(
                MlflowExperiments(settings).upload_initial_model, COPY_NAME, base_model_path()
            )
            async with pool.acquire() as conn:
                await catalog.insert_model(
                    conn,
                    Model(
                        model_id=COPY_ID,
                        name=COPY_NAME,
                        version=version,
                        dimensions=DIMS,
                        metric="cosine",
                        aggregation="min",
                        source=MLFLOW_SOURCE_PREFIX + models_uri(COPY_NAME, version),
                        parent_model_id=BASE_MODEL_ID,
                    ),
                )
            with open(log_path, "wb") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "es_triton"],
                    env=_triton_env(settings),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            url = f"127.0.0.1:{settings.triton_grpc_port}"
            await _wait_until_serving(process, url, BASE_MODEL_ID, log_path)
            with_url = settings.model_copy(update={"triton_url": url})
            yield Served(with_url, pool, TextMiniLMPlugin(with_url), process, log_path)
        finally:
            if process is not None:
                process.terminate()
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            await pool.close()


@pytest.fixture(scope="module")
def local() -> SentenceTransformerEncoder:
    return SentenceTransformerEncoder(base_model_path())


def _cosines(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return np.asarray(np.sum(a * b, axis=1), dtype=np.float64)


def _encoder(served: Served, model_id: str, batch_size: int = 8) -> TritonEncoder:
    query, item = triton_model_names(model_id)
    return TritonEncoder(
        served.url, query, item, DIMS, batch_size=batch_size, timeout=60, model_id=model_id
    )


async def _run(
    pool: asyncpg.Pool, settings: Settings, task: Task, plugin: TextMiniLMPlugin | None = None
) -> dict[str, Any]:
    """What the worker does with a deployment task: claim, run, record the outcome."""
    plugin = plugin or TextMiniLMPlugin(settings)
    owner = "test-worker"
    assert await store.claim_task(pool, task.task_id, owner, 60) is not None

    async def progress(fraction: float, message: str) -> bool:
        return await store.report_progress(pool, task.task_id, owner, fraction, message, 60)

    try:
        result = await run_deployment(pool, settings, plugin, task, progress)
    except EsError as exc:
        await store.finish_task(pool, task.task_id, owner, "failed", error=exc.message)
        raise
    await store.finish_task(pool, task.task_id, owner, "done", result=result)
    return result


async def _deployed(pool: asyncpg.Pool, model_id: str) -> bool:
    return bool(await pool.fetchval("SELECT deployed FROM models WHERE model_id = $1", model_id))


# ---- encoding --------------------------------------------------------------------------------


async def test_triton_encodes_as_sentence_transformers_do_in_process(
    served: Served, local: SentenceTransformerEncoder
) -> None:
    encoder = _encoder(served, BASE_MODEL_ID, batch_size=8)  # 40 texts: 5 requests
    items = await asyncio.to_thread(encoder.encode_items, TEXTS)
    queries = await asyncio.to_thread(encoder.encode_queries, TEXTS)
    expected = local.encode_items(TEXTS)
    for got in (items, queries):
        assert got.shape == (len(TEXTS), DIMS) and got.dtype == np.float32
        cosines = _cosines(got, expected)
        assert cosines.min() > 0.999, cosines
    assert encoder.encode_items([]).shape == (0, DIMS)


async def test_batches_split_under_the_server_limit_and_callers_run_concurrently(
    served: Served, local: SentenceTransformerEncoder
) -> None:
    encoder = _encoder(served, BASE_MODEL_ID, batch_size=SERVER_BATCH)
    many = [f"gene {i} is expressed in tissue {i % 11}" for i in range(96)]  # 2 requests each
    results = await asyncio.gather(
        *(asyncio.to_thread(encoder.encode_items, many[i::3]) for i in range(3))
    )
    for i, got in enumerate(results):
        assert _cosines(got, local.encode_items(many[i::3])).min() > 0.999


async def test_a_request_larger_than_the_served_batch_is_refused_clearly(served: Served) -> None:
    encoder = _encoder(served, BASE_MODEL_ID, batch_size=SERVER_BATCH * 2)
    with pytest.raises(FailedPrecondition, match=BASE_MODEL_ID):
        await asyncio.to_thread(encoder.encode_queries, ["x"] * (SERVER_BATCH + 1))


async def test_the_plugin_encodes_through_triton_when_a_url_is_set(served: Served) -> None:
    async with served.pool.acquire() as conn:
        base = await catalog.get_model(conn, BASE_MODEL_ID)
        copy = await catalog.get_model(conn, COPY_ID)
    factory = served.plugin.get_inference_client_factory()
    encoder = factory.create(base)
    assert isinstance(encoder, TritonEncoder) and encoder.url == served.url
    assert encoder.encode_queries(["hello"]).shape == (1, DIMS)
    with pytest.raises(FailedPrecondition, match=f"{COPY_ID}.*not deployed"):
        factory.create(copy)


async def test_a_model_triton_does_not_serve_fails_naming_it(served: Served) -> None:
    with pytest.raises(FailedPrecondition, match=f"{COPY_ID}.*not deployed"):
        await asyncio.to_thread(_encoder(served, COPY_ID).encode_items, ["x"])


async def test_a_triton_that_is_down_fails_as_unavailable() -> None:
    url = f"127.0.0.1:{free_port()}"
    query, item = triton_model_names(BASE_MODEL_ID)
    encoder = TritonEncoder(url, query, item, DIMS, timeout=5, model_id=BASE_MODEL_ID)
    with pytest.raises(Unavailable, match=f"{url}.*{BASE_MODEL_ID}"):
        await asyncio.to_thread(encoder.encode_queries, ["x"])
    with pytest.raises(Unavailable, match=url):
        await asyncio.to_thread(models_ready, url, [query], timeout=1.0)


# ---- deploy and undeploy while serving ------------------------------------------------------


@pytest.fixture
def base_traffic(served: Served) -> Iterator[list[Any]]:
    """Searches' encodings of the base model, all the time the test runs; yields the outcomes."""
    outcomes: list[Any] = []
    stop = threading.Event()
    encoder = _encoder(served, BASE_MODEL_ID)

    def hammer() -> None:
        while not stop.is_set():
            try:
                outcomes.append(encoder.encode_queries(["is the base model still served?"]).shape)
            except Exception as exc:  # collected, asserted on by the test
                outcomes.append(exc)

    thread = threading.Thread(target=hammer, daemon=True)
    thread.start()
    yield outcomes
    stop.set()
    thread.join(30)


async def test_deploy_and_undeploy_a_registered_version_while_the_base_serves(
    served: Served, local: SentenceTransformerEncoder, base_traffic: list[Any]
) -> None:
    for round_ in range(2):  # the second round binds the same Triton names again
        async with served.pool.acquire() as conn:
            task, created = await start_deploy(conn, served.settings, COPY_ID)
            again, created_again = await start_deploy(conn, served.settings, COPY_ID)
        assert created and not created_again and again.task_id == task.task_id
        assert task.kind == "deployment"
        assert task.params == {"action": "deploy", "model_id": COPY_ID}
        result = await _run(served.pool, served.settings, task, served.plugin)
        assert result["deployed"] is True
        assert result["triton_models"] == list(triton_model_names(COPY_ID))
        assert await _deployed(served.pool, COPY_ID)
        got = await asyncio.to_thread(_encoder(served, COPY_ID).encode_items, TEXTS[:5])
        assert _cosines(got, local.encode_items(TEXTS[:5])).min() > 0.999, round_

        async with served.pool.acquire() as conn:
            with pytest.raises(FailedPrecondition, match="already deployed"):
                await start_deploy(conn, served.settings, COPY_ID)
            undeploy, created = await start_undeploy(conn, served.settings, COPY_ID, required=True)
        assert created and undeploy is not None
        undone = await _run(served.pool, served.settings, undeploy, served.plugin)
        assert undone["deployed"] is False
        assert not await _deployed(served.pool, COPY_ID)
        assert not any(
            (await asyncio.to_thread(models_ready, served.url, result["triton_models"])).values()
        )
        with pytest.raises(FailedPrecondition, match=COPY_ID):
            await asyncio.to_thread(_encoder(served, COPY_ID).encode_items, ["x"])

    errors = [o for o in base_traffic if isinstance(o, Exception)]
    assert not errors, errors[:3]
    assert len(base_traffic) > 20
    assert served.process.poll() is None


async def test_a_registered_version_that_is_missing_fails_the_deploy_at_once(
    served: Served,
) -> None:
    async with served.pool.acquire() as conn:
        await catalog.insert_model(
            conn,
            Model(
                model_id="gone-v7",
                name="gone",
                version="7",
                dimensions=DIMS,
                metric="cosine",
                aggregation="min",
                source=MLFLOW_SOURCE_PREFIX + models_uri(COPY_NAME, "7"),
            ),
        )
        task, _ = await start_deploy(conn, served.settings, "gone-v7")
    started = time.monotonic()
    with pytest.raises(FailedPrecondition, match="gone-v7.*cannot be loaded"):
        await _run(served.pool, served.settings, task, served.plugin)
    assert time.monotonic() - started < 60
    assert not await _deployed(served.pool, "gone-v7")
    assert (await store.get_task(served.pool, task.task_id)).status == "failed"


async def test_the_blue_model_cannot_be_undeployed(served: Served) -> None:
    async with served.pool.acquire() as conn:
        with pytest.raises(FailedPrecondition, match="blue") as caught:
            await start_undeploy(conn, served.settings, BASE_MODEL_ID, required=True)
    assert caught.value.violations[0].field == "model_id"


# ---- the catalogue side, with no Triton watching ---------------------------------------------


@pytest_asyncio.fixture(loop_scope="session")
async def catalogue(pg_server: EmbeddedPostgres, tmp_path: Path) -> AsyncIterator[Any]:
    """A fresh database, its settings (Triton URL on a dead port, cap 2) and a pool."""
    async with fresh_database(pg_server.dsn) as dsn:
        settings = Settings(
            data_dir=tmp_path / "data",
            postgres_dsn=dsn,
            triton_url=f"127.0.0.1:{free_port()}",
            max_deployed_models=2,
            deployment_timeout_seconds=1.5,
        )
        pool = await create_pool(settings, dsn, max_size=2)
        try:
            await prepare_database(pool, settings, TextMiniLMPlugin(settings))
            async with pool.acquire() as conn:
                for model_id, source in [
                    ("spare-a", BASE_MODEL_SOURCE),
                    ("spare-b", BASE_MODEL_SOURCE),
                    ("odd-source", "elsewhere:model"),
                ]:
                    await catalog.insert_model(
                        conn,
                        Model(model_id, "spare", "1", DIMS, "cosine", "min", source),
                    )
            yield settings, pool
        finally:
            await pool.close()


@pytest.mark.parametrize(
    ("model_id", "error", "words"),
    [
        ("", InvalidArgument, "must name a model version"),
        ("x" * 129, InvalidArgument, "at most 128"),
        ("nul\x00", InvalidArgument, "without NUL"),
        ("no-such-model", NotFound, "does not exist"),
    ],
)
async def test_bad_model_ids_are_refused_naming_the_field(
    catalogue: Any, model_id: str, error: type[EsError], words: str
) -> None:
    settings, pool = catalogue
    async with pool.acquire() as conn:
        for start in (start_deploy, start_undeploy):
            with pytest.raises(error, match=words) as caught:
                await start(conn, settings, model_id)
            assert [v.field for v in caught.value.violations] == ["model_id"]
    assert await pool.fetchval("SELECT count(*) FROM tasks") == 0


async def test_the_cap_counts_deployed_and_deploying_models(catalogue: Any) -> None:
    settings, pool = catalogue
    async with pool.acquire() as conn:
        task, created = await start_deploy(conn, settings, "spare-a")  # base + spare-a = 2
        assert created
        with pytest.raises(FailedPrecondition, match="max_deployed_models.*is 2") as caught:
            await start_deploy(conn, settings, "spare-b")
        assert caught.value.violations[0].field == "model_id"
        # An undeploy of a model being deployed waits for that deploy.
        with pytest.raises(FailedPrecondition, match=f"being deployed by task {task.task_id}"):
            await start_undeploy(conn, settings, "spare-a", required=True)
        assert await start_undeploy(conn, settings, "spare-a") == (None, False)
        await store.cancel_task(conn, task.task_id)
        # The worker checks again: a deploy task past the cap fails and changes nothing.
        await conn.execute("UPDATE models SET deployed = true WHERE model_id = 'spare-a'")
        late, _ = await store.create_task(
            conn, "deployment", {"action": "deploy", "model_id": "spare-b"}
        )
    with pytest.raises(FailedPrecondition, match="max_deployed_models"):
        await _run(pool, settings, late)
    assert not await _deployed(pool, "spare-b")


async def test_undeploy_refuses_a_model_not_deployed_or_one_a_reindex_uses(
    catalogue: Any,
) -> None:
    settings, pool = catalogue
    async with pool.acquire() as conn:
        with pytest.raises(FailedPrecondition, match="is not deployed"):
            await start_undeploy(conn, settings, "spare-a", required=True)
        await conn.execute("UPDATE models SET deployed = true WHERE model_id = 'spare-a'")
        reindex, _ = await store.create_task(
            conn, "reindex", {"source_collection_id": "", "destination_model_id": "spare-a"}
        )
        with pytest.raises(FailedPrecondition, match=f"reindex task {reindex.task_id}"):
            await start_undeploy(conn, settings, "spare-a", required=True)
        await store.cancel_task(conn, reindex.task_id)
        task, created = await start_undeploy(conn, settings, "spare-a", required=True)
        assert created and task is not None
        assert await start_undeploy(conn, settings, "spare-a", required=True) == (task, False)
        with pytest.raises(FailedPrecondition, match="being undeployed"):
            await start_deploy(conn, settings, "spare-a")


async def test_a_deploy_triton_never_confirms_times_out_and_is_rolled_back(
    catalogue: Any,
) -> None:
    settings, pool = catalogue
    async with pool.acquire() as conn:
        task, _ = await start_deploy(conn, settings, "spare-a")
    with pytest.raises(Unavailable, match=settings.triton_url):
        await _run(pool, settings, task)
    assert not await _deployed(pool, "spare-a")
    failed = await store.get_task(pool, task.task_id)
    assert failed.status == "failed" and settings.triton_url in failed.error


async def test_a_source_no_method_loads_fails_the_deploy(catalogue: Any) -> None:
    settings, pool = catalogue
    async with pool.acquire() as conn:
        task, _ = await start_deploy(conn, settings, "odd-source")
    with pytest.raises(FailedPrecondition, match="odd-source.*elsewhere:model"):
        await _run(pool, settings, task)
    assert not await _deployed(pool, "odd-source")


async def test_without_triton_deploying_only_flips_the_flag(catalogue: Any) -> None:
    settings, pool = catalogue
    in_process = settings.model_copy(update={"triton_url": ""})
    async with pool.acquire() as conn:
        task, _ = await start_deploy(conn, in_process, "spare-b")
    result = await _run(pool, in_process, task)
    assert result == {
        "action": "deploy",
        "model_id": "spare-b",
        "triton_models": ["spare-b-query", "spare-b-item"],
        "triton_url": "",
        "deployed": True,
    }
    assert await _deployed(pool, "spare-b")

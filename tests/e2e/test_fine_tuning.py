"""Fine-tuning end to end: simulated sessions through the API, one short task, a registered
model version with its metrics and lineage in MLflow, loaded back and encoding, and the deploy
gate refusing it.

The one task trains with a learning rate that wrecks the top layer (the five below are frozen,
which keeps it cheap on two cores) and asks for deploy_as_blue, so a single training shows both
the registration and the gate. A model that does get promoted is trained by
tests/e2e/test_demo.py; the chain after the gate runs in test_deployment_api.py."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import numpy as np
import pytest
from mlflow.exceptions import MlflowException

from embedding_studio.client import Client, from_struct, to_struct
from embedding_studio.v1 import common_pb2, fine_tune_pb2
from es_core.config import Settings
from es_core.domain import Model
from es_core.encoders.local import SentenceTransformerEncoder, base_model_path
from es_core.evaluation.click_gains import MAX_POSITION_FACTOR
from es_core.evaluation.click_model import CascadeClickModel
from es_core.fine_tuning.experiments import (
    CANDIDATE_ALIAS,
    DEPLOYABLE_ALIAS,
    MlflowExperiments,
    parse_models_uri,
)
from es_core.plugins.text_minilm import TextMiniLMPlugin
from es_harness.beir import Dataset
from es_harness.click_simulator import ClickSimulator
from es_harness.throwaway import StackInfo

pytestmark = pytest.mark.e2e

# One trial that wrecks the weights it trains.
WRECKING_TRIAL = {"learning_rate": [1.0], "frozen_layers": [5], "epochs": [1]}


def _start(client: Client, **fields: Any) -> fine_tune_pb2.FineTuningTask:
    hyperparameters = fields.pop("hyperparameters", None)
    request = fine_tune_pb2.StartFineTuningRequest(**fields)
    if hyperparameters is not None:
        request.hyperparameters.CopyFrom(to_struct(hyperparameters))
    response: fine_tune_pb2.StartFineTuningResponse = client.fine_tune.StartFineTuning(request)
    return response.task


def _finish(client: Client, task_id: str) -> tuple[common_pb2.Task, fine_tune_pb2.FineTuningTask]:
    final = client.wait_for_task(task_id, timeout_seconds=1200)
    assert final.status == common_pb2.TASK_STATUS_DONE, final.error
    got = client.fine_tune.GetFineTuningTask(
        fine_tune_pb2.GetFineTuningTaskRequest(task_id=task_id)
    )
    return final, got.task


async def _model_row(dsn: str, model_id: str) -> asyncpg.Record | None:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetchrow("SELECT * FROM models WHERE model_id = $1", model_id)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def blue_before(client: Client) -> str:
    return client.get_blue_collection(timeout=30).collection_id


@pytest.fixture(scope="module")
def trained(
    client: Client,
    stack: StackInfo,
    scifact_slice: tuple[Dataset, dict[str, str]],
    blue_before: str,
) -> tuple[common_pb2.Task, fine_tune_pb2.FineTuningTask]:
    data, claims = scifact_slice
    simulator = ClickSimulator(client, CascadeClickModel(), seed=11)
    report = simulator.run(claims, data.qrels, users=["ft-user-1", "ft-user-2"])
    assert report.accepted_count > 20
    started = _start(
        client,
        idempotency_key="e2e-fine-tuning",
        deploy_as_blue=True,
        hyperparameters=WRECKING_TRIAL,
    )
    assert started.task.kind == common_pb2.TASK_KIND_FINE_TUNING
    assert started.batch_id and started.deploy_as_blue
    return _finish(client, started.task.task_id)


def test_the_task_reports_its_model_and_held_out_metrics(
    trained: tuple[common_pb2.Task, fine_tune_pb2.FineTuningTask],
) -> None:
    final, task = trained
    result = from_struct(final.result)
    assert task.model_id == result["model_id"] == f"all-minilm-l6-v2-ft-v{result['model_version']}"
    assert task.mlflow_run_id == result["mlflow_run_id"]
    for name in ("recall@10", "mrr@10"):
        assert 0.0 <= task.metrics[name] <= 1.0
        assert 0.0 <= task.metrics[f"in_service.{name}"] <= 1.0
    # NDCG's click gains are divided by the chance their rank was looked at (at most 10 times
    # the click), over the ideal of the clicks as they are: above 1 when clicks came from low.
    for name in ("ndcg@10", "judged.ndcg@10"):
        assert 0.0 <= task.metrics[name] <= MAX_POSITION_FACTOR
        assert 0.0 <= task.metrics[f"in_service.{name}"] <= MAX_POSITION_FACTOR
    assert result["examples"]["train"] > 0 and result["examples"]["test"] > 0
    assert len(result["trials"]) == 1
    assert task.deployable is result["deployable"] is False
    assert final.progress == pytest.approx(1.0)


def test_the_version_is_registered_with_metrics_and_lineage(
    trained: tuple[common_pb2.Task, fine_tune_pb2.FineTuningTask], stack: StackInfo
) -> None:
    final, task = trained
    result = from_struct(final.result)
    experiments = MlflowExperiments(Settings(data_dir=stack.data_dir))
    name, version = result["registered_model"], str(result["model_version"])
    tags = experiments.version_tags(name, version)
    assert tags["es.task_id"] == final.task_id
    assert tags["es.session_batch_id"] == task.batch_id
    assert tags["es.parent_model_id"] == "all-minilm-l6-v2"
    # The base model was uploaded to the registry once, as the parent.
    parent_name, parent_version = parse_models_uri(tags["es.parent_source"])
    assert parent_name == "all-minilm-l6-v2"
    assert experiments.version_tags(parent_name, parent_version)["initial"] == "true"
    assert float(tags["metric.ndcg_at_10"]) == pytest.approx(task.metrics["ndcg@10"], abs=1e-6)
    assert float(tags["in_service.ndcg_at_10"]) == pytest.approx(
        task.metrics["in_service.ndcg@10"], abs=1e-6
    )
    assert tags["deployable"] == "false"
    assert experiments.version_by_alias(name, CANDIDATE_ALIAS) == version
    # Never given the alias deployments look for: no version of this registry has it.
    with pytest.raises(MlflowException):
        experiments.version_by_alias(name, DEPLOYABLE_ALIAS)
    run = experiments.client().get_run(task.mlflow_run_id)
    assert run.data.metrics["ndcg_at_10"] == pytest.approx(task.metrics["ndcg@10"])
    assert float(run.data.params["learning_rate"]) == 1.0
    assert run.data.params["frozen_layers"] == "5"
    parent = experiments.client().get_run(run.data.tags["mlflow.parentRunId"])
    assert parent.data.metrics["in_service.ndcg_at_10"] == pytest.approx(
        task.metrics["in_service.ndcg@10"]
    )


def test_the_registered_version_loads_back_and_encodes(
    trained: tuple[common_pb2.Task, fine_tune_pb2.FineTuningTask],
    stack: StackInfo,
) -> None:
    _, task = trained
    row = asyncio.run(_model_row(stack.postgres_dsn, task.model_id))
    assert row is not None and row["parent_model_id"] == "all-minilm-l6-v2"
    assert not row["deployed"]
    model = Model(
        model_id=row["model_id"],
        name=row["name"],
        version=row["version"],
        dimensions=row["dimensions"],
        metric=row["metric"],
        aggregation=row["aggregation"],
        source=row["source"],
    )
    # Read the way the server will: the stack's MLflow store, downloaded into its model cache.
    settings = Settings(data_dir=stack.data_dir)
    plugin = TextMiniLMPlugin(settings)
    encoder = plugin.get_inference_client_factory().create(model)
    texts = ["aspirin lowers the risk of heart attacks", "vitamin D and bone density"]
    tuned = encoder.encode_queries(texts)
    assert tuned.shape == (2, 384) and np.all(np.isfinite(tuned))
    assert np.linalg.norm(tuned, axis=1) == pytest.approx([1.0, 1.0], abs=1e-4)
    base = SentenceTransformerEncoder(base_model_path()).encode_queries(texts)
    assert not np.allclose(tuned, base, atol=1e-4), "the registered weights are the base model's"


def test_the_gate_refuses_the_worse_version_and_blue_stays(
    trained: tuple[common_pb2.Task, fine_tune_pb2.FineTuningTask],
    client: Client,
    blue_before: str,
) -> None:
    final, task = trained
    assert task.metrics["ndcg@10"] < task.metrics["in_service.ndcg@10"]
    assert not task.deployable
    assert task.deploy_as_blue
    assert task.promotion.step == fine_tune_pb2.PROMOTION_STEP_SKIPPED
    assert task.promotion.model_id == task.model_id
    assert "deploy gate" in task.promotion.reason
    assert not task.promotion.deploy_task_id and not task.promotion.reindex_task_id
    assert from_struct(final.result)["promotion"]["step"] == "skipped"
    assert client.get_blue_collection(timeout=30).collection_id == blue_before

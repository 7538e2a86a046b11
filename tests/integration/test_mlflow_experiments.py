"""The MLflow experiment manager against a real sqlite store: runs, registry, aliases, download."""

from __future__ import annotations

from pathlib import Path

import pytest

from es_core.config import Settings
from es_core.encoders.backends import RECORD_FILE
from es_core.encoders.onnx_export import ONNX_DIR
from es_core.fine_tuning.experiments import (
    BASE_ALIAS,
    CANDIDATE_ALIAS,
    DEPLOYABLE_ALIAS,
    MlflowExperiments,
    models_uri,
    parse_models_uri,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def experiments(tmp_path: Path) -> MlflowExperiments:
    return MlflowExperiments(Settings(data_dir=tmp_path / "data"))


def _model_dir(tmp_path: Path, content: str) -> Path:
    directory = tmp_path / f"model-{content}"
    directory.mkdir()
    (directory / "weights.txt").write_text(content)
    return directory


def test_store_is_sqlite_in_the_data_directory(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    assert settings.resolved_mlflow_tracking_uri == (
        f"sqlite:///{(tmp_path / 'data' / 'mlflow' / 'mlflow.db').resolve()}"
    )
    assert Settings(mlflow_tracking_uri="http://mlflow:5000").resolved_mlflow_tracking_uri == (
        "http://mlflow:5000"
    )


def test_trials_nest_under_the_task_and_the_best_is_registered(
    experiments: MlflowExperiments, tmp_path: Path
) -> None:
    task_run = experiments.start_task("task-1", {"batch_id": "b1"})
    good = experiments.log_trial(
        task_run, 0, {"learning_rate": 2e-5}, {"ndcg@10": 0.7}, _model_dir(tmp_path, "good")
    )
    bad = experiments.log_trial(
        task_run, 1, {"learning_rate": 1.0}, {"ndcg@10": 0.1}, _model_dir(tmp_path, "bad")
    )
    experiments.finish_task(task_run, {"in_service.ndcg@10": 0.6}, "FINISHED")
    client = experiments.client()
    assert client.get_run(good).data.tags["mlflow.parentRunId"] == task_run
    assert client.get_run(bad).data.metrics == {"ndcg_at_10": 0.1}
    assert client.get_run(task_run).data.metrics == {"in_service.ndcg_at_10": 0.6}
    assert client.get_run(task_run).info.status == "FINISHED"

    v1 = experiments.register("m", good, {"ndcg@10": 0.7}, {"es.task_id": "task-1"}, True)
    v2 = experiments.register("m", bad, {"ndcg@10": 0.1}, {"in_service.ndcg@10": "0.6"}, False)
    assert (v1, v2) == ("1", "2")
    assert experiments.version_tags("m", v1) == {
        "es.task_id": "task-1",
        "metric.ndcg_at_10": "0.700000",
        "deployable": "true",
    }
    assert experiments.version_tags("m", v2)["in_service.ndcg_at_10"] == "0.6"
    # The newest version is the candidate; the deployable alias stays on the one that passed.
    assert experiments.version_by_alias("m", CANDIDATE_ALIAS) == "2"
    assert experiments.version_by_alias("m", DEPLOYABLE_ALIAS) == "1"

    downloaded = experiments.download(models_uri("m", v1), tmp_path / "cache" / "m-v1")
    assert (downloaded / "weights.txt").read_text() == "good"
    # A second download reuses the directory.
    assert experiments.download(models_uri("m", v1), tmp_path / "cache" / "m-v1") == downloaded


def test_the_initial_model_is_uploaded_once(experiments: MlflowExperiments, tmp_path: Path) -> None:
    first = experiments.upload_initial_model("base", _model_dir(tmp_path, "base"))
    again = experiments.upload_initial_model("base", _model_dir(tmp_path, "other"))
    assert first == again == "1"
    assert experiments.version_by_alias("base", BASE_ALIAS) == "1"


@pytest.mark.parametrize("bad", ["runs:/x/model", "models:/name", "models:/name/latest", "x"])
def test_models_uri_parsing_rejects_other_forms(bad: str) -> None:
    with pytest.raises(ValueError, match="models:/<name>/<version>"):
        parse_models_uri(bad)
    assert parse_models_uri("models:/a/b/3") == ("a/b", "3")


def test_a_versions_export_and_backend_record_travel_with_it(
    experiments: MlflowExperiments, tmp_path: Path
) -> None:
    task_run = experiments.start_task("task-2", {})
    trial = experiments.log_trial(task_run, 0, {}, {"ndcg@10": 0.5}, _model_dir(tmp_path, "w"))
    version = experiments.register("m", trial, {}, {}, True)
    # What the guard leaves in the registered version's directory once it is downloaded.
    local = experiments.download(models_uri("m", version), tmp_path / "cache" / "m-v1")
    (local / ONNX_DIR).mkdir()
    (local / ONNX_DIR / "model.onnx").write_bytes(b"graph")
    (local / RECORD_FILE).write_text('{"backend": "onnx", "passed": true}')
    experiments.log_encoder_backend(
        "m",
        version,
        trial,
        local,
        {"es.encoder_backend": "onnx", "es.encoder_backend.passed": "true"},
    )
    elsewhere = experiments.download(models_uri("m", version), tmp_path / "other-host" / "m-v1")
    assert (elsewhere / "weights.txt").read_text() == "w"
    assert (elsewhere / ONNX_DIR / "model.onnx").read_bytes() == b"graph"
    assert (elsewhere / RECORD_FILE).read_text() == '{"backend": "onnx", "passed": true}'
    tags = experiments.version_tags("m", version)
    assert tags["es.encoder_backend"] == "onnx" and tags["es.encoder_backend.passed"] == "true"

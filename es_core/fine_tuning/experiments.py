"""MLflow as the experiment manager: a run per fine-tuning task, a nested run per trial, and
the model registry with lineage tags and aliases.

The store is the configured tracking server (``ES_MLFLOW_TRACKING_URI``) or, by default, a
sqlite database with local artifacts under ``ES_DATA_DIR/mlflow``. Only the MLflow client API is
used (no process-global tracking state), so several stores can live in one process.
"""

from __future__ import annotations

import logging
import math
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from es_core.config import Settings
from es_core.encoders.backends import RECORD_FILE
from es_core.encoders.onnx_export import ONNX_DIR

log = logging.getLogger(__name__)

# "latest" is reserved by MLflow; these are ours.
CANDIDATE_ALIAS = "candidate"
DEPLOYABLE_ALIAS = "deployable"
BASE_ALIAS = "base"
MODELS_URI_PREFIX = "models:/"
# A catalogue model whose source is ``mlflow:models:/<name>/<version>`` lives in the registry.
MLFLOW_SOURCE_PREFIX = "mlflow:"


def models_uri(name: str, version: str) -> str:
    return f"{MODELS_URI_PREFIX}{name}/{version}"


def parse_models_uri(uri: str) -> tuple[str, str]:
    """(registered name, version) of ``models:/<name>/<version>``; ValueError otherwise."""
    if not uri.startswith(MODELS_URI_PREFIX):
        raise ValueError(f"{uri!r} is not a models:/<name>/<version> URI")
    name, _, version = uri[len(MODELS_URI_PREFIX) :].rpartition("/")
    if not name or not version.isdigit():
        raise ValueError(f"{uri!r} is not a models:/<name>/<version> URI")
    return name, version


def mlflow_metric_name(name: str) -> str:
    """MLflow metric and tag names take no "@": "ndcg@10" is logged as "ndcg_at_10"."""
    return name.replace("@", "_at_")


def _param_value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text[:500]


class MlflowExperiments:
    """The experiment manager of the built-in method (any method may reuse it)."""

    def __init__(self, settings: Settings) -> None:
        self._uri = settings.resolved_mlflow_tracking_uri
        self._local = not settings.mlflow_tracking_uri
        self._experiment_name = settings.mlflow_experiment
        self._artifacts_dir = settings.mlflow_artifacts_dir
        self._mlflow_dir = settings.mlflow_dir
        self._client_: Any = None
        self._experiment_id: str | None = None
        self._lock = threading.Lock()

    @property
    def tracking_uri(self) -> str:
        return self._uri

    def client(self) -> Any:
        """The MLflow client (created on first use: importing mlflow takes a few seconds)."""
        with self._lock:
            if self._client_ is None:
                from mlflow import MlflowClient

                # Workers log to files: no per-file download progress bars in them.
                os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
                if self._local:
                    self._mlflow_dir.mkdir(parents=True, exist_ok=True)
                    self._artifacts_dir.mkdir(parents=True, exist_ok=True)
                self._client_ = MlflowClient(tracking_uri=self._uri, registry_uri=self._uri)
            return self._client_

    def experiment_id(self) -> str:
        if self._experiment_id is None:
            client = self.client()
            found = client.get_experiment_by_name(self._experiment_name)
            if found is not None:
                self._experiment_id = str(found.experiment_id)
            else:
                location = self._artifacts_dir.as_uri() if self._local else None
                try:
                    self._experiment_id = str(
                        client.create_experiment(self._experiment_name, artifact_location=location)
                    )
                except Exception:  # created by another process meanwhile
                    found = client.get_experiment_by_name(self._experiment_name)
                    if found is None:
                        raise
                    self._experiment_id = str(found.experiment_id)
        return self._experiment_id

    def _log(
        self,
        run_id: str,
        params: dict[str, Any] | None = None,
        metrics: dict[str, float] | None = None,
    ) -> None:
        from mlflow.entities import Metric, Param

        now = int(time.time() * 1000)
        self.client().log_batch(
            run_id,
            metrics=[
                Metric(mlflow_metric_name(k), float(v), now, 0)
                for k, v in (metrics or {}).items()
                if not math.isnan(float(v))
            ],
            params=[Param(k, _param_value(v)) for k, v in (params or {}).items()],
        )

    def start_task(self, task_id: str, params: dict[str, Any]) -> str:
        run = self.client().create_run(
            self.experiment_id(),
            run_name=f"fine-tuning {task_id[:8]}",
            tags={"es.task_id": task_id, "es.kind": "fine_tuning"},
        )
        self._log(run.info.run_id, params=params)
        return str(run.info.run_id)

    def log_trial(
        self,
        task_run_id: str,
        trial: int,
        params: dict[str, Any],
        metrics: dict[str, float],
        model_dir: Path | None,
    ) -> str:
        client = self.client()
        run = client.create_run(
            self.experiment_id(),
            run_name=f"trial {trial}",
            tags={"mlflow.parentRunId": task_run_id, "es.trial": str(trial)},
        )
        run_id = str(run.info.run_id)
        self._log(run_id, params=params, metrics=metrics)
        if model_dir is not None:
            client.log_artifacts(run_id, str(model_dir), "model")
        client.set_terminated(run_id, "FINISHED")
        return run_id

    def finish_task(self, task_run_id: str, metrics: dict[str, float], status: str) -> None:
        self._log(task_run_id, metrics=metrics)
        self.client().set_terminated(task_run_id, status)

    def _ensure_registered_model(self, name: str) -> None:
        from mlflow.exceptions import MlflowException

        client = self.client()
        try:
            client.get_registered_model(name)
        except MlflowException:
            try:
                client.create_registered_model(name)
            except MlflowException:  # registered by another process meanwhile
                client.get_registered_model(name)

    def register(
        self,
        name: str,
        run_id: str,
        metrics: dict[str, float],
        tags: dict[str, str],
        deployable: bool,
    ) -> str:
        """Registers the run's ``model`` artifacts as a new version of ``name``; returns it.

        The version carries ``tags`` (lineage) and the metrics as ``metric.<name>`` tags; alias
        ``candidate`` moves to it, and ``deployable`` too when it passed the gate.
        """
        client = self.client()
        self._ensure_registered_model(name)
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        all_tags = {
            **{mlflow_metric_name(k): v for k, v in tags.items()},
            **{f"metric.{mlflow_metric_name(k)}": f"{v:.6f}" for k, v in metrics.items()},
            "deployable": str(deployable).lower(),
        }
        version = client.create_model_version(name, source, run_id=run_id, tags=all_tags)
        client.set_registered_model_alias(name, CANDIDATE_ALIAS, version.version)
        if deployable:
            client.set_registered_model_alias(name, DEPLOYABLE_ALIAS, version.version)
        return str(version.version)

    def log_encoder_backend(
        self, name: str, version: str, run_id: str, model_dir: Path, tags: dict[str, str]
    ) -> None:
        """The version's ONNX export and backend quality record, logged beside its weights
        (``model/onnx/``, ``model/encoder_backend.json``: a download of the version brings
        them), and the record's figures as version tags."""
        client = self.client()
        if (model_dir / ONNX_DIR).is_dir():
            client.log_artifacts(run_id, str(model_dir / ONNX_DIR), f"model/{ONNX_DIR}")
        client.log_artifact(run_id, str(model_dir / RECORD_FILE), "model")
        for key, value in tags.items():
            client.set_model_version_tag(name, version, key, value)

    def version_tags(self, name: str, version: str) -> dict[str, str]:
        return dict(self.client().get_model_version(name, version).tags)

    def version_by_alias(self, name: str, alias: str) -> str:
        return str(self.client().get_model_version_by_alias(name, alias).version)

    def download(self, uri: str, destination: Path) -> Path:
        """The files of ``models:/<name>/<version>`` in ``destination`` (downloaded once; a
        half-finished download is never left under the final name)."""
        if destination.exists():
            return destination
        from mlflow.artifacts import download_artifacts

        name, version = parse_models_uri(uri)
        source = self.client().get_model_version_download_uri(name, version)
        destination.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=destination.parent))
        try:
            fetched = Path(
                download_artifacts(
                    artifact_uri=source, dst_path=str(staging), tracking_uri=self._uri
                )
            )
            try:
                os.rename(fetched, destination)
            except OSError:
                if not destination.exists():  # not a lost race with another process
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return destination

    def upload_initial_model(self, name: str, model_dir: Path) -> str:
        """Registers the starting model once, under alias ``base``; returns its version."""
        from mlflow.exceptions import MlflowException

        client = self.client()
        self._ensure_registered_model(name)
        try:
            return str(client.get_model_version_by_alias(name, BASE_ALIAS).version)
        except MlflowException:
            pass
        run = client.create_run(
            self.experiment_id(), run_name=f"initial model {name}", tags={"es.kind": "initial"}
        )
        run_id = str(run.info.run_id)
        client.log_artifacts(run_id, str(model_dir), "model")
        client.set_terminated(run_id, "FINISHED")
        source = f"{client.get_run(run_id).info.artifact_uri}/model"
        version = client.create_model_version(name, source, run_id=run_id, tags={"initial": "true"})
        client.set_registered_model_alias(name, BASE_ALIAS, version.version)
        return str(version.version)

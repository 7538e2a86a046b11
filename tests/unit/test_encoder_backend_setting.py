"""ES_ENCODER_BACKEND: only known backends, and a model's quality record decides whether a
faster backend runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from es_core.config import Settings
from es_core.encoders.backends import RECORD_FILE, check_backend, choose_backend


def test_an_unknown_backend_setting_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ES_ENCODER_BACKEND", "tensorrt")
    with pytest.raises(ValidationError, match="encoder_backend"):
        Settings()
    with pytest.raises(ValueError, match="ES_ENCODER_BACKEND is 'tensorrt'"):
        check_backend("tensorrt")


def test_known_backends_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("torch", "onnx", "onnx-int8", "openvino"):
        monkeypatch.setenv("ES_ENCODER_BACKEND", name)
        assert Settings().encoder_backend == name == check_backend(name)
    assert Settings().encoder_backend_max_ndcg_drop == 0.005


def _record(model_dir: Path, backend: str, passed: bool) -> None:
    model_dir.mkdir(exist_ok=True)
    reason = f"{backend}: {'within' if passed else 'beyond'} the margin"
    record = {"backend": backend, "passed": passed, "reason": reason}
    (model_dir / RECORD_FILE).write_text(json.dumps(record))


def test_torch_is_torch_whatever_the_record_says(tmp_path: Path) -> None:
    _record(tmp_path, "onnx", True)
    assert choose_backend(tmp_path, "torch").backend == "torch"


def test_a_model_without_a_record_runs_the_backend_as_set(tmp_path: Path) -> None:
    choice = choose_backend(tmp_path, "onnx-int8")
    assert choice.backend == "onnx-int8"
    assert "no quality record" in choice.reason


def test_a_record_that_passed_lets_the_backend_run(tmp_path: Path) -> None:
    _record(tmp_path, "onnx-int8", True)
    assert choose_backend(tmp_path, "onnx-int8").backend == "onnx-int8"


def test_a_failed_record_falls_back_to_torch_saying_why(tmp_path: Path) -> None:
    _record(tmp_path, "onnx-int8", False)
    choice = choose_backend(tmp_path, "onnx-int8")
    assert choice.backend == "torch"
    assert "beyond the margin" in choice.reason


def test_a_record_of_another_backend_does_not_vouch_for_this_one(tmp_path: Path) -> None:
    _record(tmp_path, "onnx", True)
    choice = choose_backend(tmp_path, "onnx-int8")
    assert choice.backend == "torch"
    assert "measured 'onnx'" in choice.reason

"""Encoding through a Triton inference server over gRPC (``tritonclient.grpc``).

Every deployed model version is served as two Triton models, one for queries and one for items
(``triton_model_names``). Each takes a BYTES tensor ``text`` of shape [n, 1] (UTF-8) and returns
an FP32 tensor ``embedding`` of shape [n, dimensions].
"""

from __future__ import annotations

import hashlib
import re
import time
from typing import Any

import numpy as np

from es_core.encoders.base import Vectors
from es_core.errors import EsError, FailedPrecondition, Unavailable
from es_core.observability.metrics import TRITON_REQUEST_SECONDS

INPUT_NAME = "text"
OUTPUT_NAME = "embedding"
QUERY_SUFFIX = "-query"
ITEM_SUFFIX = "-item"

# Triton model names become directory names in its model repository.
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def triton_model_names(model_id: str) -> tuple[str, str]:
    """(query model, item model) names of a model version in Triton.

    An id made of letters, digits, ``._-`` (at most 100 characters, not starting with a dot) is
    used as it is; any other id has its other characters replaced by ``_`` and a short hash of
    the id appended, so that two ids never share a name.
    """
    base = model_id
    if not _SAFE_NAME.fullmatch(model_id):
        cleaned = _UNSAFE_CHARS.sub("_", model_id)[:80].lstrip(".")
        digest = hashlib.sha256(model_id.encode()).hexdigest()[:10]
        base = f"{cleaned}_{digest}" if cleaned else digest
    return base + QUERY_SUFFIX, base + ITEM_SUFFIX


def grpc_target(url: str) -> str:
    """``host:port`` from a Triton URL given with or without a ``grpc://`` scheme."""
    for scheme in ("grpc://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme) :]
    return url


def _status(exc: Exception) -> str:
    status = getattr(exc, "status", None)
    return str(status() if callable(status) else "")


def _is_model_missing(message: str) -> bool:
    lowered = message.lower()
    return any(
        phrase in lowered
        for phrase in (
            "unknown model",
            "is not found",
            "not ready",
            "is not loaded",
            "no available versions",
        )
    )


def triton_error(exc: Exception, url: str, model_id: str, triton_model: str) -> EsError:
    """A library error that names the model and says whether Triton or the model is missing."""
    from tritonclient.utils import InferenceServerException

    if not isinstance(exc, InferenceServerException):
        return Unavailable(f"Triton at {url} failed while encoding with model {model_id!r}: {exc}")
    status = _status(exc)
    message = str(exc.message() or exc)
    if "DEADLINE_EXCEEDED" in status:
        return Unavailable(
            f"Triton at {url} did not answer in time for model {model_id!r} ({triton_model})"
        )
    if status.endswith("UNAVAILABLE") and not _is_model_missing(message):
        return Unavailable(
            f"Triton at {url} is unavailable (model {model_id!r} cannot encode): {message}"
        )
    if _is_model_missing(message) or status.endswith("NOT_FOUND"):
        return FailedPrecondition(
            f"model {model_id!r} is not deployed in Triton at {url} (no ready model"
            f" {triton_model!r}); deploy it with DeploymentService.DeployModel"
        )
    return FailedPrecondition(
        f"Triton at {url} refused to encode with model {model_id!r} ({triton_model}): {message}"
    )


class TritonEncoder:
    """The ``Encoder`` of one model version served by Triton.

    Texts go in requests of at most ``batch_size`` rows (the served models' max_batch_size);
    Triton's dynamic batcher merges requests from concurrent callers. One gRPC client is shared:
    tritonclient's unary calls are thread-safe, and the server calls this from threads.
    """

    def __init__(
        self,
        url: str,
        query_model: str,
        item_model: str,
        dimensions: int,
        *,
        batch_size: int = 64,
        timeout: float = 60.0,
        model_id: str = "",
    ) -> None:
        import tritonclient.grpc as grpcclient

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._grpc = grpcclient
        self._url = grpc_target(url)
        self._client = grpcclient.InferenceServerClient(url=self._url)
        self._query_model = query_model
        self._item_model = item_model
        self._dimensions = dimensions
        self._batch_size = batch_size
        self._timeout = timeout
        self._model_id = model_id or query_model.removesuffix(QUERY_SUFFIX)

    @property
    def dimensions(self) -> int:
        return self._dimensions

    @property
    def url(self) -> str:
        return self._url

    def encode_queries(self, texts: list[str]) -> Vectors:
        return self._encode(self._query_model, texts)

    def encode_items(self, texts: list[str]) -> Vectors:
        return self._encode(self._item_model, texts)

    def is_ready(self) -> bool:
        """True when Triton answers and both models are ready."""
        return all(self.models_ready().values())

    def models_ready(self) -> dict[str, bool]:
        """Readiness of the query and item models; Unavailable when Triton does not answer."""
        from tritonclient.utils import InferenceServerException

        try:
            return {
                name: bool(self._client.is_model_ready(name, client_timeout=self._timeout))
                for name in (self._query_model, self._item_model)
            }
        except InferenceServerException as exc:
            raise Unavailable(f"Triton at {self._url} is unavailable: {exc.message()}") from None

    def close(self) -> None:
        self._client.close()

    def _encode(self, triton_model: str, texts: list[str]) -> Vectors:
        """Requests of texts of about one length (longest first), so a request's rows are
        padded to little more than their own length; the vectors come back in ``texts``'s
        order. sentence-transformers sorts a call's texts the same way in process."""
        if not texts:
            return np.zeros((0, self._dimensions), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        by_length = [texts[i] for i in order]
        chunks = [
            self._infer(triton_model, by_length[start : start + self._batch_size])
            for start in range(0, len(by_length), self._batch_size)
        ]
        encoded = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        vectors = np.empty_like(encoded)
        vectors[order] = encoded
        return vectors

    def _infer(self, triton_model: str, texts: list[str]) -> Vectors:
        data = np.array([[text.encode("utf-8")] for text in texts], dtype=np.object_)
        request = self._grpc.InferInput(INPUT_NAME, list(data.shape), "BYTES")
        request.set_data_from_numpy(data)
        started = time.perf_counter()
        try:
            result: Any = self._client.infer(
                triton_model,
                [request],
                outputs=[self._grpc.InferRequestedOutput(OUTPUT_NAME)],
                client_timeout=self._timeout,
            )
        except Exception as exc:
            raise triton_error(exc, self._url, self._model_id, triton_model) from None
        finally:
            TRITON_REQUEST_SECONDS.labels(triton_model).observe(time.perf_counter() - started)
        vectors = result.as_numpy(OUTPUT_NAME)
        if vectors is None or vectors.shape != (len(texts), self._dimensions):
            shape = None if vectors is None else vectors.shape
            raise FailedPrecondition(
                f"Triton model {triton_model!r} returned {shape}, expected"
                f" ({len(texts)}, {self._dimensions}) for model {self._model_id!r}"
            )
        return np.asarray(vectors, dtype=np.float32)


def models_ready(url: str, names: list[str], *, timeout: float = 5.0) -> dict[str, bool]:
    """Whether each named model is ready in Triton; Unavailable when Triton does not answer."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    target = grpc_target(url)
    try:
        with grpcclient.InferenceServerClient(url=target) as client:
            return {n: bool(client.is_model_ready(n, client_timeout=timeout)) for n in names}
    except InferenceServerException as exc:
        raise Unavailable(f"Triton at {target} is unavailable: {exc.message()}") from None


def server_live(url: str, *, timeout: float) -> bool:
    """Whether the Triton server at ``url`` answers that it is live within ``timeout`` seconds."""
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    try:
        with grpcclient.InferenceServerClient(url=grpc_target(url)) as client:
            return bool(client.is_server_live(client_timeout=timeout))
    except InferenceServerException:
        return False

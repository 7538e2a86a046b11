"""``python -m es_triton``: a Triton inference server that serves every deployed
model version and follows deploys and undeploys while it runs.

The Triton server binary comes from the ``nvidia-pytriton`` wheel (Triton 2.51, CPU here). Each
model row with ``deployed = true`` is served as two Triton models (``triton_model_names``):
its query encoder and its item encoder, with dynamic batching up to ``ES_TRITON_BATCH_SIZE``.

The catalogue is the truth: this process polls it every ``ES_TRITON_POLL_SECONDS`` and binds
the models that became deployed and unloads those that no longer are, one model at a time,
while the others keep serving. (pytriton binds into a running server through Triton's explicit
model control; it has no unbind, so ``ServingTriton.unbind`` does what its ``stop`` does for
all models, for one.) The deployment worker flips the flag and waits until Triton reports the
models ready or gone.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import sysconfig
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from es_core.config import Settings, get_settings
from es_core.domain import Model
from es_core.encoders.backends import model_encoder
from es_core.encoders.base import Encoder
from es_core.encoders.triton import INPUT_NAME, OUTPUT_NAME, triton_model_names
from es_core.observability.logs import configure_logging
from es_core.plugins.protocol import FineTuningMethod
from es_core.plugins.registry import load_plugin
from es_core.storage import catalog
from es_core.storage.db import create_pool

log = logging.getLogger("es.triton")
# Models that failed to load are tried again after this many seconds.
RETRY_FAILED_SECONDS = 30.0
# Dynamic batching: how long Triton may hold a request to merge it with others.
MAX_QUEUE_DELAY_MICROSECONDS = 2000


def set_library_path() -> None:
    """Triton's Python backend crashes under this interpreter unless its shared libpython is
    on LD_LIBRARY_PATH. pytriton copies this process's environment into tritonserver's, so
    setting it here, before ``Triton()`` starts, is enough."""
    libdir = sysconfig.get_config_var("LIBDIR")
    current = os.environ.get("LD_LIBRARY_PATH", "")
    if libdir and libdir not in current.split(":"):
        os.environ["LD_LIBRARY_PATH"] = f"{libdir}:{current}" if current else str(libdir)


def triton_config(settings: Settings) -> Any:
    from pytriton.triton import TritonConfig

    return TritonConfig(
        http_address=settings.triton_host,
        http_port=settings.triton_http_port,
        grpc_address=settings.triton_host,
        grpc_port=settings.triton_grpc_port,
        metrics_port=settings.triton_metrics_port,
        metrics_address=settings.triton_host,
        allow_gpu_metrics=False,
        exit_timeout_secs=10,
    )


def make_infer(encode: Callable[[list[str]], Any]) -> Callable[..., dict[str, Any]]:
    """A pytriton inference callable: [n, 1] UTF-8 bytes in, [n, dims] float32 out."""
    from pytriton.decorators import batch

    @batch  # type: ignore[untyped-decorator]
    def infer(**inputs: Any) -> dict[str, Any]:
        texts = [
            row[0].decode("utf-8") if isinstance(row[0], bytes) else str(row[0])
            for row in inputs[INPUT_NAME]
        ]
        return {OUTPUT_NAME: np.asarray(encode(texts), dtype=np.float32)}

    return infer  # type: ignore[no-any-return]


@dataclass
class Served:
    model: Model
    names: tuple[str, str]


class ServingTriton:
    """A local Triton whose set of models can change while it serves."""

    def __init__(self, settings: Settings, plugin: FineTuningMethod) -> None:
        self._settings = settings
        self._plugin = plugin
        self._triton: Any = None
        self._served: dict[str, Served] = {}
        self._failed: dict[str, float] = {}
        self._loaded: dict[str, Encoder] = {}
        self._lock = threading.Lock()

    @property
    def served(self) -> dict[str, Served]:
        return dict(self._served)

    def start(self) -> None:
        from pytriton.triton import Triton

        set_library_path()
        self._triton = Triton(config=triton_config(self._settings))
        self._triton.run()
        log.info(
            "Triton serving on %s:%d (gRPC), %s:%d (HTTP)",
            self._settings.triton_host,
            self._settings.triton_grpc_port,
            self._settings.triton_host,
            self._settings.triton_http_port,
        )

    def is_alive(self) -> bool:
        return bool(self._triton is not None and self._triton.is_alive())

    def stop(self) -> None:
        if self._triton is not None:
            self._triton.stop()
            self._triton = None

    def load(self, model: Model) -> Encoder:
        """The model's weights in this process, run by ES_ENCODER_BACKEND as the in-process
        encoders run it (loaded once; ``start`` may run meanwhile)."""
        with self._lock:
            encoder = self._loaded.get(model.model_id)
        if encoder is None:
            path = self._plugin.get_inference_client_factory().model_path(model)
            encoder = model_encoder(
                path, self._settings, batch_size=self._settings.triton_batch_size
            )
            if encoder.dimensions != model.dimensions:
                raise RuntimeError(
                    f"model {model.model_id!r} encodes {encoder.dimensions} dims, catalogue says"
                    f" {model.dimensions}"
                )
            with self._lock:
                self._loaded[model.model_id] = encoder
        return encoder

    def bind(self, model: Model) -> None:
        """Bind the model's query and item encoders into the running Triton."""
        from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor

        encoder = self.load(model)
        names = triton_model_names(model.model_id)
        config = ModelConfig(
            batching=True,
            max_batch_size=self._settings.triton_batch_size,
            batcher=DynamicBatcher(max_queue_delay_microseconds=MAX_QUEUE_DELAY_MICROSECONDS),
        )
        encoders = (encoder.encode_queries, encoder.encode_items)
        bound: list[str] = []
        try:
            for name, encode in zip(names, encoders, strict=True):
                self._triton.bind(
                    model_name=name,
                    infer_func=make_infer(encode),
                    inputs=[Tensor(name=INPUT_NAME, dtype=bytes, shape=(1,))],
                    outputs=[Tensor(name=OUTPUT_NAME, dtype=np.float32, shape=(model.dimensions,))],
                    config=config,
                    strict=True,
                )
                bound.append(name)
        except BaseException:
            for name in bound:
                self._unbind_name(name)
            raise
        self._served[model.model_id] = Served(model, names)
        log.info("deployed %s as %s and %s", model.model_id, *names)

    def unbind(self, model_id: str) -> None:
        served = self._served.pop(model_id)
        for name in served.names:
            self._unbind_name(name)
        with self._lock:
            self._loaded.pop(model_id, None)
        log.info("undeployed %s", model_id)

    def _unbind_name(self, name: str) -> None:
        """What pytriton's ``stop`` does for every model, for one: forget its termination
        events (they would stop the whole server), unload it from Triton (in-flight requests
        finish first), then stop its inference threads. pytriton keeps one tensor-store client
        per socket path for the life of the process; it is dropped too, or binding the name
        again would talk to the new backend with the old one's key."""
        from pytriton.client.utils import create_client_from_url
        from pytriton.proxy.data import TensorStore

        manager = self._triton._model_manager
        model = manager._models.pop((name.lower(), 1), None)
        if model is None:
            return
        with model._observers_lock:
            model._model_events_observers.clear()
        client = create_client_from_url(self._triton._url)
        try:
            client.unload_model(name, headers=manager._headers)
        finally:
            client.close()
        model.clean()
        TensorStore._instances.pop(
            (self._triton._workspace.path / f"{name}-data.sock").as_posix(), None
        )

    def sync(self, deployed: list[Model], now: float) -> None:
        """Serve exactly ``deployed``: unload first (freeing memory), then load."""
        wanted = {m.model_id: m for m in deployed}
        for model_id in [m for m in self._served if m not in wanted]:
            try:
                self.unbind(model_id)
            except Exception:
                log.exception("could not undeploy %s", model_id)
        with self._lock:
            for model_id in [m for m in self._loaded if m not in wanted]:
                del self._loaded[model_id]
        for model_id, model in wanted.items():
            if model_id in self._served:
                continue
            if now - self._failed.get(model_id, -RETRY_FAILED_SECONDS) < RETRY_FAILED_SECONDS:
                continue
            try:
                self.bind(model)
            except Exception:
                log.exception(
                    "could not deploy %s; trying again in %.0fs", model_id, RETRY_FAILED_SECONDS
                )
                self._failed[model_id] = now
            else:
                self._failed.pop(model_id, None)


async def deployed_models(pool: Any) -> list[Model]:
    rows = await pool.fetch("SELECT * FROM models WHERE deployed ORDER BY create_time, model_id")
    return [catalog.model_from_row(row) for row in rows]


def _preload(triton: ServingTriton, model: Model) -> None:
    try:
        triton.load(model)
    except Exception:  # reported again, with its traceback, when binding it
        log.warning("could not load %s ahead of binding", model.model_id)


async def serve(settings: Settings, stop: asyncio.Event) -> int:
    plugin = load_plugin(settings)
    pool = await create_pool(settings, settings.require_postgres_dsn(), max_size=2)
    triton = ServingTriton(settings, plugin)
    try:
        # Weights load while Triton starts: each takes seconds.
        first = await deployed_models(pool)
        await asyncio.gather(
            asyncio.to_thread(triton.start),
            *(asyncio.to_thread(_preload, triton, model) for model in first),
        )
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            if not triton.is_alive():
                log.error("Triton stopped on its own; exiting")
                return 1
            try:
                models = await deployed_models(pool)
            except Exception:
                log.exception("could not read the catalogue; trying again")
            else:
                await asyncio.to_thread(triton.sync, models, loop.time())
            try:
                await asyncio.wait_for(stop.wait(), settings.triton_poll_seconds)
            except TimeoutError:
                pass
        return 0
    finally:
        await asyncio.to_thread(triton.stop)
        await pool.close()


async def _main(settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # A background process ignores SIGINT; `es up` stops this one with SIGTERM.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return await serve(settings, stop)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m es_triton",
        description="Triton serving every deployed model version (ports from ES_TRITON_*)",
    )
    parser.parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_format, text_format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    set_library_path()
    return asyncio.run(_main(settings))


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the benchmarks: a throwaway stack, task waiting, percentiles, the table."""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from embedding_studio.client import AsyncClient
from embedding_studio.v1 import common_pb2
from es_core.config import Settings
from es_core.upsertion import splitter
from es_harness.throwaway import StackInfo, ThrowawayStack


def base_parser(description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small smoke run (under ~2 minutes)")
    parser.add_argument("--json", type=Path, help="also write the table as JSON to this path")
    return parser


@contextmanager
def running_stack(extra_env: dict[str, str] | None = None) -> Iterator[StackInfo]:
    """A whole `es up` stack (Postgres, Redis, worker, gRPC server) in a temporary directory."""
    with tempfile.TemporaryDirectory(prefix="es-bench-") as tmp:
        started = time.perf_counter()
        with ThrowawayStack(Path(tmp) / "stack", extra_env=extra_env) as info:
            print(f"stack up in {time.perf_counter() - started:.1f} s at {info.grpc_address}")
            yield info


async def wait_all(client: AsyncClient, task_ids: Sequence[str], timeout_s: float = 3600) -> None:
    """Watch each task (in submission order, one stream at a time) until it is DONE."""
    for task_id in task_ids:
        task = await client.wait_for_task(task_id, timeout_seconds=timeout_s)
        if task.status != common_pb2.TASK_STATUS_DONE:
            status = common_pb2.TaskStatus.Name(task.status)
            raise RuntimeError(f"task {task_id} ended {status}: {task.error}")


def percentile_ms(latencies_s: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(latencies_s), q)) * 1000.0


@dataclass
class Row:
    """One measured figure, optionally against a baseline measured in the same run."""

    measure: str
    value: float
    baseline: float | None = None
    baseline_name: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}" if abs(x) < 10 else f"{x:.1f}"


def report(
    title: str, rows: Sequence[Row], json_path: Path | None, extra: dict[str, object]
) -> None:
    """Print the rows as a table; write them (plus ``extra``: sizes, settings) as JSON if asked."""
    header = ("measure", "value", "baseline", "ratio", "baseline is")
    cells = [
        (
            r.measure,
            _num(r.value),
            _num(r.baseline),
            "-" if r.ratio is None else f"{r.ratio:.2f}",
            r.baseline_name,
        )
        for r in rows
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
    line = "  ".join(f"{{:{'<' if i in (0, 4) else '>'}{w}}}" for i, w in enumerate(widths))
    print(f"\n== {title} ==")
    for cell in [header, tuple("-" * w for w in widths), *cells]:
        print(line.format(*cell).rstrip())
    if json_path is not None:
        data = {
            "title": title,
            **extra,
            "rows": [{**asdict(r), "ratio": r.ratio} for r in rows],
        }
        json_path.write_text(json.dumps(data, indent=2))
        print(f"(written to {json_path})")


def worker_parts(texts: Sequence[str], settings: Settings) -> list[str]:
    """The parts the worker encodes for ``texts``: each cut by the built-in sentence splitter
    with the settings' window, as the text-minilm plugin cuts them."""
    split = splitter(settings, None)
    return [chunk for text in texts for chunk in split(text)]

"""Encoding speed and quality of each encoder backend against torch float32, in this process.

    .venv/bin/python -m bench.encode [--quick] [--threads N] [--backends a,b] [--json out]

Every backend of ``ES_ENCODER_BACKEND`` (``es_core.encoders.backends``: torch, onnx, onnx-int8,
openvino) runs the base model on the same texts, one after the other, with ``--threads``
threads (torch too):

- abstracts/s: SciFact abstracts (``title. text``) cut into parts as the worker cuts them
  (``bench.common.worker_parts``), encoded in batches of ``ES_ENCODE_BATCH_SIZE``;
- queries/s: SciFact dev claims, one query per call, as searches arrive;
- NDCG@10 on the dev split (claims whose integer id % 5 == 0, qrels/train.tsv): each claim
  against every encoded abstract by exact cosine, an abstract as near as its nearest part (MIN,
  as the plugin aggregates);
- 1 - the lowest cosine between a backend's vector and torch's over every part and claim.

Backends take turns call by call (each call of ``CALL_PARTS`` parts, then each claim, is
encoded by every backend before the next), so a change in the machine's other load weighs
on all of them alike.

The whole corpus (5,183 abstracts) unless ``--quick``: the dev claims' judged abstracts plus
filler up to 300 abstracts, and 40 claims for queries/s. ONNX exports are cached under
``.bench-cache/encode/``. The machine's other load shows in the rates: compare ratios.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bench.common import Row, base_parser, report, worker_parts
from es_core.config import Settings
from es_core.encoders.backends import BACKENDS, Backend, build_encoder, check_backend
from es_core.encoders.base import Encoder, Vectors
from es_core.encoders.local import base_model_path
from es_core.evaluation.metrics import per_query_metrics
from es_harness.beir import Dataset, load_dataset, scifact_dir
from es_harness.lifecycle import split_dev

CACHE_DIR = Path(__file__).resolve().parents[1] / ".bench-cache"
K = 10
QUICK_DOCS = 300
QUICK_QUERIES = 40
# Parts per encode call: about an import page (ES_IMPORT_PAGE_SIZE), sorted by length inside.
CALL_PARTS = 256


@dataclass(frozen=True)
class Corpus:
    doc_ids: list[str]
    parts: list[str]
    part_doc: list[int]  # index into doc_ids of each part
    dev: dict[str, str]  # dev claim id -> text
    qrels: dict[str, dict[str, int]]


def corpus(data: Dataset, settings: Settings, quick: bool) -> Corpus:
    judged = {q: data.queries[q] for q in data.qrels}
    dev = split_dev(judged).dev
    doc_ids = sorted(data.corpus)
    if quick:
        wanted = {d for q in dev for d in data.qrels[q] if d in data.corpus}
        filler = [d for d in doc_ids if d not in wanted][: max(0, QUICK_DOCS - len(wanted))]
        doc_ids = sorted(wanted | set(filler))
    parts: list[str] = []
    part_doc: list[int] = []
    for i, doc_id in enumerate(doc_ids):
        cut = worker_parts([data.corpus[doc_id].full_text], settings)
        parts += cut
        part_doc += [i] * len(cut)
    return Corpus(doc_ids, parts, part_doc, dev, {q: data.qrels[q] for q in dev})


@dataclass
class Measured:
    backend: Backend
    encoder: Encoder
    items_seconds: float = 0.0
    queries_seconds: float = 0.0
    parts: list[Vectors] = field(default_factory=list)
    queries: Vectors | None = None


def dev_ndcg(c: Corpus, queries: Vectors, parts: Vectors) -> float:
    similarity = queries @ parts.T
    per_doc = np.full((len(c.doc_ids), len(queries)), -np.inf, dtype=np.float32)
    np.maximum.at(per_doc, np.asarray(c.part_doc), similarity.T)
    ids = list(c.dev)
    rankings = {
        q: [c.doc_ids[j] for j in np.argsort(-per_doc[:, i], kind="stable")[:K]]
        for i, q in enumerate(ids)
    }
    scores = per_query_metrics(rankings, c.qrels, K)[f"ndcg@{K}"]
    return float(np.mean([scores.get(q, 0.0) for q in ids]))


def build(backends: Sequence[Backend], settings: Settings) -> list[Measured]:
    out = []
    for backend in backends:
        started = time.perf_counter()
        encoder = build_encoder(
            base_model_path(), backend, settings, batch_size=settings.encode_batch_size
        )
        encoder.encode_items(["warm up", "a second, longer text to warm the runtime up"])
        print(f"{backend}: ready in {time.perf_counter() - started:.1f} s")
        out.append(Measured(backend, encoder))
    return out


def run(measured: Sequence[Measured], c: Corpus, quick: bool) -> None:
    """Every backend encodes the same call in turn, call after call, so a change in the
    machine's other load weighs on all of them alike."""
    for start in range(0, len(c.parts), CALL_PARTS):
        chunk = c.parts[start : start + CALL_PARTS]
        for m in measured:
            started = time.perf_counter()
            m.parts.append(m.encoder.encode_items(chunk))
            m.items_seconds += time.perf_counter() - started
    claims = list(c.dev.values())
    for claim in claims[:QUICK_QUERIES] if quick else claims:
        for m in measured:
            started = time.perf_counter()
            m.encoder.encode_queries([claim])
            m.queries_seconds += time.perf_counter() - started
    for m in measured:
        m.queries = m.encoder.encode_queries(claims)


def rows(measured: Sequence[Measured], c: Corpus, quick: bool) -> list[Row]:
    timed = min(len(c.dev), QUICK_QUERIES) if quick else len(c.dev)
    torch = measured[0]
    assert torch.queries is not None
    torch_parts = np.concatenate(torch.parts)
    torch_ndcg = dev_ndcg(c, torch.queries, torch_parts)
    base = "torch float32"
    out: list[Row] = []
    for m in measured:
        assert m.queries is not None
        parts = np.concatenate(m.parts)
        ndcg = dev_ndcg(c, m.queries, parts)
        cosines = np.concatenate(
            [np.sum(parts * torch_parts, 1), np.sum(m.queries * torch.queries, 1)]
        )
        out += [
            Row(
                f"abstracts/s {m.backend}",
                len(c.doc_ids) / m.items_seconds,
                len(c.doc_ids) / torch.items_seconds,
                base,
            ),
            Row(
                f"queries/s {m.backend}",
                timed / m.queries_seconds,
                timed / torch.queries_seconds,
                base,
            ),
            Row(f"dev ndcg@10 {m.backend}", ndcg, torch_ndcg, base),
            Row(f"dev ndcg@10 drop {m.backend}", torch_ndcg - ndcg),
            Row(f"1 - min cosine to torch {m.backend}", 1.0 - float(cosines.min())),
        ]
    return out


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="threads per runtime (torch too)")
    parser.add_argument(
        "--backends", default=",".join(BACKENDS), help="comma-separated; torch always runs first"
    )
    args: argparse.Namespace = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    wanted = [check_backend(b.strip()) for b in args.backends.split(",") if b.strip()]
    backends: list[Backend] = ["torch", *(b for b in wanted if b != "torch")]
    settings = Settings(data_dir=CACHE_DIR / "encode", encoder_threads=args.threads)
    c = corpus(load_dataset(scifact_dir()), settings, args.quick)
    print(f"{len(c.doc_ids)} abstracts in {len(c.parts)} parts; {len(c.dev)} dev claims")
    measured = build(backends, settings)
    run(measured, c, args.quick)
    report(
        "Encoder backends against torch float32 (same run, same texts)",
        rows(measured, c, args.quick),
        args.json,
        {
            "abstracts": len(c.doc_ids),
            "parts": len(c.parts),
            "dev_claims": len(c.dev),
            "threads": args.threads,
            "batch_size": settings.encode_batch_size,
        },
    )


if __name__ == "__main__":
    main()

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
- the lowest cosine between a backend's vector and torch's over every part and claim.

The whole corpus (5,183 abstracts) unless ``--quick``: the dev claims' judged abstracts plus
filler up to 300 abstracts, and 40 claims for queries/s. ONNX exports are cached under
``.bench-cache/encode/``. The machine's other load shows in the rates: compare ratios.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Measured:
    backend: Backend
    abstracts_per_s: float
    queries_per_s: float
    ndcg: float
    parts: Vectors
    queries: Vectors


def dev_ndcg(c: Corpus, queries: Vectors, parts: Vectors) -> float:
    similarity = queries @ parts.T
    per_doc = np.full((len(queries), len(c.doc_ids)), -np.inf, dtype=np.float32)
    np.maximum.at(per_doc.T, np.asarray(c.part_doc), similarity.T)
    ids = list(c.dev)
    rankings = {
        q: [c.doc_ids[j] for j in np.argsort(-per_doc[i], kind="stable")[:K]]
        for i, q in enumerate(ids)
    }
    scores = per_query_metrics(rankings, c.qrels, K)[f"ndcg@{K}"]
    return float(np.mean([scores.get(q, 0.0) for q in ids]))


def measure(backend: Backend, c: Corpus, settings: Settings, quick: bool) -> Measured:
    started = time.perf_counter()
    encoder: Encoder = build_encoder(
        base_model_path(), backend, settings, batch_size=settings.encode_batch_size
    )
    print(f"{backend}: ready in {time.perf_counter() - started:.1f} s")
    encoder.encode_items(c.parts[:8])  # warm up
    started = time.perf_counter()
    parts = encoder.encode_items(c.parts)
    abstracts_per_s = len(c.doc_ids) / (time.perf_counter() - started)
    claims = list(c.dev.values())
    timed = claims[:QUICK_QUERIES] if quick else claims
    started = time.perf_counter()
    for claim in timed:
        encoder.encode_queries([claim])
    queries_per_s = len(timed) / (time.perf_counter() - started)
    queries = encoder.encode_queries(claims)
    ndcg = dev_ndcg(c, queries, parts)
    print(
        f"{backend}: {abstracts_per_s:.1f} abstracts/s, {queries_per_s:.1f} queries/s,"
        f" dev ndcg@10 {ndcg:.4f}"
    )
    return Measured(backend, abstracts_per_s, queries_per_s, ndcg, parts, queries)


def min_cosine(a: Measured, b: Measured) -> float:
    rows = np.concatenate([np.sum(a.parts * b.parts, 1), np.sum(a.queries * b.queries, 1)])
    return float(rows.min())


def rows(results: Sequence[Measured]) -> list[Row]:
    torch = results[0]
    out: list[Row] = []
    for m in results:
        base = "torch float32"
        out += [
            Row(f"abstracts/s {m.backend}", m.abstracts_per_s, torch.abstracts_per_s, base),
            Row(f"queries/s {m.backend}", m.queries_per_s, torch.queries_per_s, base),
            Row(f"dev ndcg@10 {m.backend}", m.ndcg, torch.ndcg, base),
            Row(f"min cosine to torch {m.backend}", min_cosine(m, torch)),
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
    results = [measure(b, c, settings, args.quick) for b in backends]
    report(
        "Encoder backends against torch float32 (same run, same texts)",
        rows(results),
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

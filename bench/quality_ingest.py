"""Ingest fidelity on SciFact: what the worker's own path (clean, split, encode through the
serving encoder) does to dev-split quality, against vectors encoded in this process from the
raw text.

    .venv/bin/python -m bench.quality_ingest [--quick] [--batch N] [--json out.json]

One throwaway stack (the stack's default encoder, Triton), one collection:

1. baseline: every abstract's parts cut as the worker cuts them from the *raw* text, sent
   with their text and the base model's vectors encoded in process (cached under
   ``.bench-cache/`` like ``bench.quality_finetune --split``), so the worker encodes nothing;
   dev claims (integer id % 5 == 0) through Search: NDCG / Recall / MRR @10;
2. the abstracts the cleaner changes, plus ``--control`` abstracts it leaves as they are (seed
   0), again as plain text: the worker cleans them with the plugin's cleaner (HTML, NFKC,
   whitespace), splits and encodes them through the serving encoder (requests sorted by
   length) and replaces each item; the same dev claims through Search again. An abstract the
   cleaner leaves alone has the same parts either way, so the control sample stands for the
   rest (the encoder path alone); ``--all`` sends every abstract again instead.

Also printed: how many abstracts the cleaner changes at all, and what it changes.

``--quick``: 190 judged claims with their judged abstracts plus filler up to 600 abstracts
(``bench.quality_personalization.choose``, seed 0).
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter

from bench.common import Row, base_parser, report, running_stack
from bench.quality_finetune import QUICK_DOCS, QUICK_QUERIES, base_part_vectors, cache_path, upsert
from bench.quality_personalization import choose
from embedding_studio.client import Client
from es_core.config import Settings
from es_core.encoders.local import SentenceTransformerEncoder, base_model_path
from es_core.ingest.cleaning import TextCleaner
from es_core.plugins.text_minilm import CLEANING_STEPS, SentenceSplitter
from es_harness.beir import load_dataset, scifact_dir
from es_harness.lifecycle import METRICS, NAMES, search_quality, split_dev, upsert_and_wait

SEED = 0


def cleaner_changes(texts: dict[str, str]) -> tuple[list[str], Counter[str]]:
    """The ids of the texts the plugin's cleaner changes, and the characters it removes most."""
    cleaner = TextCleaner(CLEANING_STEPS)
    changed = []
    removed: Counter[str] = Counter()
    for doc_id, text in texts.items():
        cleaned = cleaner.clean(text)
        if cleaned != text:
            changed.append(doc_id)
            removed.update(set(text) - set(cleaned))
    return changed, removed


def main_run(args: argparse.Namespace) -> None:
    settings = Settings()
    data = load_dataset(scifact_dir())
    if args.quick:
        _, _, doc_ids = choose(data, QUICK_QUERIES, 0, QUICK_DOCS, SEED)
    else:
        doc_ids = sorted(data.corpus)
    split = split_dev({q: data.queries[q] for q in data.qrels if q in data.queries})
    loaded = set(doc_ids)
    dev = {q: t for q, t in split.dev.items() if set(data.qrels[q]) & loaded}
    texts = {d: data.corpus[d].full_text for d in doc_ids}
    changed, removed = cleaner_changes(texts)
    shown = ", ".join(f"{c!r} {n}" for c, n in removed.most_common(8))
    print(f"{len(texts)} abstracts, {len(dev)} dev claims ({split.rule})")
    print(f"the cleaner changes {len(changed)} of {len(texts)} abstracts; removed most: {shown}")
    unchanged = sorted(set(texts) - set(changed))
    random.Random(SEED).shuffle(unchanged)
    resent = sorted(texts) if args.all else sorted([*changed, *unchanged[: args.control]])

    splitter = SentenceSplitter(settings)
    parts = {d: splitter.split(text) for d, text in texts.items()}
    base = SentenceTransformerEncoder(base_model_path(), batch_size=settings.encode_batch_size)
    vectors = base_part_vectors(
        parts, base, cache_path(settings, scifact_dir() / "corpus.jsonl", True)
    )
    with running_stack() as stack, Client(stack.grpc_address) as client:
        seconds = upsert(client, parts, vectors, args.batch)
        print(f"baseline: {len(parts)} items as parts with vectors in {seconds:.0f} s")
        raw = search_quality(client, dev, data.qrels)
        started = time.perf_counter()
        items = [{"object_id": d, "text": texts[d]} for d in resent]
        seconds = upsert_and_wait(client, items, batch=args.batch)
        print(
            f"worker path: {len(items)} items as text in {seconds:.0f} s"
            f" = {len(items) / seconds:.1f} items/s"
        )
        ingested = search_quality(client, dev, data.qrels)
        print(f"measured in {time.perf_counter() - started:.0f} s")
    rows = [
        Row(f"dev {NAMES[m]}, worker path", ingested[m], raw[m], "raw text, encoded in process")
        for m in METRICS
    ]
    report(
        f"ingest fidelity: {len(texts)} SciFact abstracts ({len(resent)} through the worker),"
        f" {len(dev)} dev claims",
        rows,
        args.json,
        {"changed_by_cleaner": len(changed), "resent": len(resent), "raw": raw, "worker": ingested},
    )


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0] if __doc__ else "ingest fidelity")
    parser.add_argument("--batch", type=int, default=100, help="items per UpsertItems request")
    parser.add_argument(
        "--control", type=int, default=200, help="unchanged abstracts sent again as text"
    )
    parser.add_argument("--all", action="store_true", help="send every abstract again as text")
    main_run(parser.parse_args())


if __name__ == "__main__":
    main()

"""A small shop catalogue for `es demo`, generated from a seed, in the BEIR layout.

Products of a few kinds (headphones, tents, ...) share colours and features, so a query's
colour and feature words match products of every kind. Shoppers, though, name a kind by the
shop's own nickname for it ("vorta red waterproof" means red waterproof headphones), a word
no product text contains and the base model has never seen: before any feedback it ranks red
waterproof things of every kind. Clicks on the right kind are the signal fine-tuning learns
the nicknames from, and queries kept out of training use the same nicknames with other colour
and feature pairs, so what is learnt shows on them.

Judgements: grade 2 for the right kind with both the colour and the feature, grade 1 for the
right kind with one of the two.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from es_harness.beir import Dataset, Document


@dataclass(frozen=True)
class Kind:
    noun: str
    nickname: str
    features: tuple[str, ...]


# (what it is, the shop's nickname for it, the features its products come with)
KINDS: tuple[Kind, ...] = tuple(
    Kind(noun, nickname, tuple(features.split()))
    for noun, nickname, features in (
        ("headphones", "vorta", "wireless foldable lightweight rechargeable waterproof"),
        ("backpack", "quibber", "waterproof lightweight foldable adjustable breathable"),
        ("tent", "snellin", "waterproof lightweight foldable compact insulated"),
        ("desk lamp", "draxa", "adjustable rechargeable compact foldable wireless"),
        ("speaker", "mirelo", "wireless waterproof compact rechargeable lightweight"),
        ("running shoes", "tovik", "lightweight waterproof breathable adjustable foldable"),
        ("smartwatch", "peltra", "waterproof rechargeable lightweight wireless compact"),
        ("jacket", "zundal", "waterproof insulated lightweight breathable foldable"),
    )
)
COLOURS = ("red", "blue", "black", "white", "green", "grey")
BRANDS = (
    "Norvale", "Saltrek", "Quenna", "Brovik", "Tamsel", "Oskaro",
    "Velmar", "Kestrin", "Halden", "Ombra", "Lusso", "Ferrant",
)  # fmt: skip
LINES = ("Air", "Trail", "Pro", "Lite", "Max", "One", "Go", "Edge")
EXTRAS = (
    "Two-year warranty.",
    "Ships in recycled packaging.",
    "Free returns within 30 days.",
    "A customer favourite this season.",
    "Limited edition run.",
    "Made with recycled materials.",
)
QUERY_FORMS = (
    "{nickname} {colour} {feature}",
    "{colour} {feature} {nickname}",
    "{feature} {nickname} in {colour}",
    "{colour} {nickname}, {feature}",
)


@dataclass(frozen=True)
class Product:
    doc_id: str
    kind: Kind
    colour: str
    features: tuple[str, ...]  # two of its kind's


def generate_catalogue(
    seed: int = 0,
    *,
    kinds: int = len(KINDS),
    items_per_kind: int = 50,
    queries_per_kind: int = 25,
) -> Dataset:
    """``kinds`` x ``items_per_kind`` products and up to ``kinds`` x ``queries_per_kind``
    judged queries (each with at least one grade-2 product); same arguments, same catalogue.

    Query ids are "1", "2", ... so the usual BEIR dev rule (integer id % 5 == 0) applies."""
    if not 1 <= kinds <= len(KINDS):
        raise ValueError(f"kinds must be in 1..{len(KINDS)}, got {kinds}")
    if items_per_kind < 1 or queries_per_kind < 1:
        raise ValueError("items_per_kind and queries_per_kind must be at least 1")
    rng = random.Random(seed)
    products: list[Product] = []
    corpus: dict[str, Document] = {}
    for kind in KINDS[:kinds]:
        for _ in range(items_per_kind):
            product = Product(
                f"p{len(products) + 1:04d}",
                kind,
                rng.choice(COLOURS),
                tuple(rng.sample(kind.features, 2)),
            )
            products.append(product)
            corpus[product.doc_id] = _document(product, rng)
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    for kind in KINDS[:kinds]:
        pairs = [(c, f) for c in COLOURS for f in kind.features]
        rng.shuffle(pairs)
        made = 0
        for colour, feature in pairs:
            if made == queries_per_kind:
                break
            judged = _judge(products, kind, colour, feature)
            if 2 not in judged.values():
                continue
            query_id = str(len(queries) + 1)
            form = rng.choice(QUERY_FORMS)
            queries[query_id] = form.format(nickname=kind.nickname, colour=colour, feature=feature)
            qrels[query_id] = judged
            made += 1
    return Dataset(corpus, queries, qrels)


def _document(product: Product, rng: random.Random) -> Document:
    first, second = product.features
    title = f"{rng.choice(BRANDS)} {rng.choice(LINES)} {rng.randint(2, 9)}00 {product.kind.noun}"
    text = (
        f"{first.capitalize()} and {second} {product.kind.noun} in {product.colour}."
        f" {rng.choice(EXTRAS)}"
    )
    return Document(product.doc_id, title, text)


def _judge(products: list[Product], kind: Kind, colour: str, feature: str) -> dict[str, int]:
    grades = {}
    for p in products:
        if p.kind != kind:
            continue
        matches = (p.colour == colour) + (feature in p.features)
        if matches:
            grades[p.doc_id] = matches
    return grades


def write_beir(data: Dataset, directory: Path, split: str = "train") -> None:
    """``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv``, as ``load_dataset`` reads."""
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    with open(directory / "corpus.jsonl", "w", encoding="utf-8") as f:
        for doc in data.corpus.values():
            f.write(json.dumps({"_id": doc.doc_id, "title": doc.title, "text": doc.text}) + "\n")
    with open(directory / "queries.jsonl", "w", encoding="utf-8") as f:
        for query_id, text in data.queries.items():
            f.write(json.dumps({"_id": query_id, "text": text}) + "\n")
    with open(directory / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as f:
        f.write("query-id\tcorpus-id\tscore\n")
        for query_id, judged in data.qrels.items():
            for doc_id, grade in judged.items():
                f.write(f"{query_id}\t{doc_id}\t{grade}\n")

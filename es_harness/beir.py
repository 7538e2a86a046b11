"""Datasets in the BEIR layout (corpus.jsonl, queries.jsonl, qrels/*.tsv), e.g. SciFact."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path

SCIFACT_DIR_VARIABLE = "ES_SCIFACT_DIR"


@dataclass(frozen=True)
class Document:
    doc_id: str
    title: str
    text: str

    @property
    def full_text(self) -> str:
        """Title and abstract as one text, the way the SciFact baselines encode them."""
        return f"{self.title}. {self.text}" if self.title else self.text


@dataclass(frozen=True)
class Dataset:
    corpus: dict[str, Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]  # query id -> {doc id: grade}


def scifact_dir() -> Path:
    """``$ES_SCIFACT_DIR``, else ``shared/data/scifact`` beside the project checkout."""
    configured = os.environ.get(SCIFACT_DIR_VARIABLE)
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"


def load_dataset(directory: Path, split: str = "train") -> Dataset:
    corpus = {}
    with open(directory / "corpus.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            corpus[str(row["_id"])] = Document(str(row["_id"]), row.get("title", ""), row["text"])
    queries = {}
    with open(directory / "queries.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            queries[str(row["_id"])] = row["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(directory / "qrels" / f"{split}.tsv", encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            grade = int(row["score"])
            if grade > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = grade
    return Dataset(corpus, queries, qrels)

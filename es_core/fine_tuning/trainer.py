"""One fine-tuning trial with sentence-transformers: (query, clicked, passed-over) rows and a
ranking loss, on the CPU here and on a GPU when one is present."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from es_core.encoders.local import SentenceTransformerEncoder
from es_core.fine_tuning.corpus_pairs import corpus_pairs
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.search_space import Dimension, apply_overrides, number_in, one_of
from es_core.plugins.protocol import TrialResult

# The search space of the built-in text method. "mnrl" is MultipleNegativesRankingLoss: each
# query against its clicked item, its hard negative and every other item of the batch (scale is
# its inverse temperature); "triplet" is TripletLoss on cosine distance with ``margin``.
# Defaults measured on SciFact (bench.quality_finetune --quick, dev NDCG@10 against the base):
# learning rate 5e-5 with nothing frozen +4.1 %; three layers frozen +1.8 %; two epochs +1.9 %.
DIMENSIONS: dict[str, Dimension] = {
    "learning_rate": Dimension((5e-5, 2e-5), number_in(1e-9, 10.0)),
    "loss": Dimension(("mnrl",), one_of("mnrl", "triplet")),
    "scale": Dimension((20.0,), number_in(1.0, 100.0)),
    "margin": Dimension((0.3,), number_in(0.01, 2.0)),
    "frozen_layers": Dimension((0,), number_in(0, 64, integer=True)),
    "epochs": Dimension((1,), number_in(1, 20, integer=True)),
    # Pairs cut from the collection's own items (``corpus_pairs``) per click row: 0.5 adds half
    # as many (anchor, positive) rows as the clicks give.
    "corpus_pairs": Dimension((0.0,), number_in(0.0, 10.0)),
}
MAX_ROWS_PER_POSITIVE = 3

StepCallback = Callable[[float], bool]


def item_text(parts: Sequence[str]) -> str:
    return " ".join(parts)


def training_rows(
    examples: Sequence[Example],
    item_parts: Mapping[str, list[str]],
    seed: int = 0,
    corpus_share: float = 0.0,
) -> dict[str, list[str]]:
    """Columns anchor / positive / negative.

    Each clicked item gives round(weight) rows (1..3), or one per hard negative when it has more
    (up to 3); hard negatives (those shown above a click, then the mined ones) are cycled
    through. A query without hard negatives gets a random item of the batch that is not one of
    its positives (in-batch negatives do the rest). Then ``corpus_share`` times as many rows of
    pairs cut from the items themselves, each with a random other item as its negative.
    """
    rng = random.Random(seed)
    known = sorted(o for o, parts in item_parts.items() if parts)
    rows: dict[str, list[str]] = {"anchor": [], "positive": [], "negative": []}
    for example in examples:
        hard = dict.fromkeys((*example.negatives, *example.mined))
        negatives = [o for o in hard if item_parts.get(o) and o not in example.positives]
        others = [o for o in known if o not in example.positives]
        for object_id, weight in example.positives.items():
            if not item_parts.get(object_id):
                continue
            repeats = min(MAX_ROWS_PER_POSITIVE, max(1, round(weight)))
            n_rows = max(repeats, min(len(negatives), MAX_ROWS_PER_POSITIVE))
            for i in range(n_rows):
                if negatives:
                    negative = negatives[i % len(negatives)]
                elif others:
                    negative = rng.choice(others)
                else:
                    continue
                rows["anchor"].append(example.query)
                rows["positive"].append(item_text(item_parts[object_id]))
                rows["negative"].append(item_text(item_parts[negative]))
    wanted = round(corpus_share * len(rows["anchor"]))
    for object_id, anchor, positive in corpus_pairs(item_parts, wanted, seed):
        others = [o for o in known if o != object_id]
        if others:
            rows["anchor"].append(anchor)
            rows["positive"].append(positive)
            rows["negative"].append(item_text(item_parts[rng.choice(others)]))
    return rows


class SentenceTransformersBuilder:
    """The fine-tuning builder of the text method."""

    def __init__(self, *, batch_size: int, max_seq_length: int, seed: int) -> None:
        self._batch_size = batch_size
        self._max_seq_length = max_seq_length
        self._seed = seed

    def search_space(self, overrides: Mapping[str, Any]) -> dict[str, list[Any]]:
        return apply_overrides(DIMENSIONS, overrides)

    def train(
        self,
        start_model_dir: Path,
        examples: Sequence[Example],
        item_parts: dict[str, list[str]],
        hyperparameters: dict[str, Any],
        output_dir: Path,
        on_step: StepCallback | None = None,
    ) -> TrialResult:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from datasets import Dataset
        from sentence_transformers import (
            SentenceTransformer,
            SentenceTransformerTrainer,
            SentenceTransformerTrainingArguments,
        )
        from sentence_transformers.sentence_transformer import losses
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
        from transformers import TrainerCallback

        started = time.monotonic()
        rows = training_rows(
            examples, item_parts, self._seed, float(hyperparameters.get("corpus_pairs", 0.0))
        )
        if not rows["anchor"]:
            raise ValueError("no training rows: no clicked item has text")
        use_gpu = torch.cuda.is_available()
        model = SentenceTransformer(
            str(start_model_dir), device="cuda" if use_gpu else "cpu", local_files_only=True
        )
        serving_length = int(model.max_seq_length or self._max_seq_length)
        model.max_seq_length = min(serving_length, self._max_seq_length)
        freeze_bottom_layers(model, int(hyperparameters["frozen_layers"]))
        if hyperparameters["loss"] == "triplet":
            loss: Any = losses.TripletLoss(
                model,
                distance_metric=losses.TripletDistanceMetric.COSINE,
                triplet_margin=float(hyperparameters["margin"]),
            )
        else:
            loss = losses.MultipleNegativesRankingLoss(model, scale=float(hyperparameters["scale"]))

        class Report(TrainerCallback):
            def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
                if on_step is not None and state.max_steps:
                    if not on_step(state.global_step / state.max_steps):
                        control.should_training_stop = True

        args = SentenceTransformerTrainingArguments(
            output_dir=str(output_dir / "checkpoints"),
            num_train_epochs=int(hyperparameters["epochs"]),
            per_device_train_batch_size=self._batch_size,
            learning_rate=float(hyperparameters["learning_rate"]),
            warmup_ratio=0.1,
            use_cpu=not use_gpu,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            seed=self._seed,
            data_seed=self._seed,
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_dict(rows),
            loss=loss,
            callbacks=[Report()],
        )
        outcome = trainer.train()
        for parameter in model.parameters():
            parameter.requires_grad = True
        # Trained on short inputs for speed; served at the model's own length.
        model.max_seq_length = serving_length
        model_dir = output_dir / "model"
        model.save(str(model_dir))
        return TrialResult(
            model_dir=model_dir,
            train_loss=float(outcome.training_loss),
            train_rows=len(rows["anchor"]),
            seconds=time.monotonic() - started,
        )

    def encoder_for(self, model_dir: Path) -> SentenceTransformerEncoder:
        return SentenceTransformerEncoder(model_dir)


def freeze_bottom_layers(model: Any, layers: int) -> int:
    """Freeze the embeddings and the lowest ``layers`` transformer layers; returns how many
    layers were frozen (capped at the model's depth). 0 freezes nothing."""
    if layers <= 0:
        return 0
    transformer = model[0].auto_model
    for parameter in transformer.embeddings.parameters():
        parameter.requires_grad = False
    blocks = transformer.encoder.layer
    frozen = min(layers, len(blocks))
    for block in blocks[:frozen]:
        for parameter in block.parameters():
            parameter.requires_grad = False
    return frozen

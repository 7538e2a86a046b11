"""Pairs cut from the items themselves, and their share of the training rows."""

from __future__ import annotations

import random

from es_core.fine_tuning.corpus_pairs import MAX_ANCHOR_WORDS, corpus_pairs, item_pair
from es_core.fine_tuning.examples import Example
from es_core.fine_tuning.trainer import training_rows


def test_one_part_items_give_their_first_sentence_and_the_rest() -> None:
    rng = random.Random(0)
    assert item_pair(["Aspirin and the heart. Low doses cut risk. Trials agree."], rng) == (
        "Aspirin and the heart.",
        "Low doses cut risk. Trials agree.",
    )
    assert item_pair(["One sentence only."], rng) is None
    assert item_pair(["", "  "], rng) is None
    long = " ".join(f"w{i}" for i in range(50))
    anchor, positive = item_pair([long + ". Tail."], rng) or ("", "")
    assert len(anchor.split()) == MAX_ANCHOR_WORDS
    assert f"{anchor} {positive}" == long + ". Tail."


def test_many_part_items_give_one_part_and_the_others() -> None:
    anchor, positive = item_pair(["p0", "p1", "p2"], random.Random(1)) or ("", "")
    assert anchor in {"p0", "p1", "p2"}
    assert positive.split() == [p for p in ("p0", "p1", "p2") if p != anchor]


def test_pairs_come_from_distinct_items_up_to_the_count_and_are_seeded() -> None:
    items = {f"i{n}": [f"Title {n}. Body {n}."] for n in range(10)} | {"short": ["x"]}
    pairs = corpus_pairs(items, 4, seed=3)
    assert len(pairs) == 4 and len({o for o, _, _ in pairs}) == 4
    assert all(a == f"Title {o[1:]}." and p == f"Body {o[1:]}." for o, a, p in pairs)
    assert pairs == corpus_pairs(items, 4, seed=3)
    assert len(corpus_pairs(items, 100)) == 10  # "short" gives none


def test_corpus_share_adds_that_many_rows_per_click_row() -> None:
    items = {f"i{n}": [f"Title {n}. Body {n}."] for n in range(10)}
    examples = [Example(f"q{n}", {f"i{n}": 1.0}, negatives=(f"i{n + 1}",)) for n in range(4)]
    clicks = training_rows(examples, items)
    mixed = training_rows(examples, items, corpus_share=0.5)
    assert len(clicks["anchor"]) == 4 and len(mixed["anchor"]) == 6
    assert mixed["anchor"][:4] == clicks["anchor"]
    assert all(a.startswith("Title") for a in mixed["anchor"][4:])
    # A corpus row's negative is another item, never its own.
    for anchor, negative in zip(mixed["anchor"][4:], mixed["negative"][4:], strict=True):
        assert not negative.startswith(anchor)

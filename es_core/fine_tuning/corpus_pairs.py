"""The collection itself as training signal: (anchor, positive) pairs cut from single items.

An item of several parts gives one of its parts (the anchor, drawn at random) and the others
(the positive); an item of one part gives its first sentence (a title, mostly; at most
``MAX_ANCHOR_WORDS`` words) and the rest of its text. These pairs teach the model the collection's
own language without a click, which keeps it from drifting too far toward the clicked queries.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence

MAX_ANCHOR_WORDS = 32
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def item_pair(parts: Sequence[str], rng: random.Random) -> tuple[str, str] | None:
    """One (anchor, positive) pair from an item's parts, None when it has too little text."""
    texts = [p.strip() for p in parts if p.strip()]
    if len(texts) >= 2:
        i = rng.randrange(len(texts))
        return texts[i], " ".join(texts[:i] + texts[i + 1 :])
    if not texts:
        return None
    pieces = _SENTENCE_END.split(texts[0], maxsplit=1)
    head, rest = pieces[0], pieces[1] if len(pieces) > 1 else ""
    words = head.split()
    if len(words) > MAX_ANCHOR_WORDS:
        head, rest = (
            " ".join(words[:MAX_ANCHOR_WORDS]),
            " ".join(words[MAX_ANCHOR_WORDS:]) + " " + rest,
        )
    rest = rest.strip()
    return (head, rest) if head and rest else None


def corpus_pairs(
    item_parts: Mapping[str, Sequence[str]], count: int, seed: int = 0
) -> list[tuple[str, str, str]]:
    """Up to ``count`` (object id, anchor, positive) triples, from distinct items drawn at
    random (seeded)."""
    rng = random.Random(seed)
    ids = sorted(item_parts)
    rng.shuffle(ids)
    pairs: list[tuple[str, str, str]] = []
    for object_id in ids:
        if len(pairs) >= count:
            break
        pair = item_pair(item_parts[object_id], rng)
        if pair is not None:
            pairs.append((object_id, *pair))
    return pairs

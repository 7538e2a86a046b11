"""Splits an item's text into parts that fit the model's window, preferring sentence ends."""

from __future__ import annotations

import re

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def split_text(text: str, *, max_words: int, overlap_words: int = 0) -> list[str]:
    """Chunks of at most ``max_words`` words; whole sentences where they fit.

    A sentence longer than the window is cut into windows that overlap by ``overlap_words``,
    so no phrase is lost at a cut. Empty or blank text yields no parts.
    """
    if max_words < 1 or not 0 <= overlap_words < max_words:
        raise ValueError("need max_words >= 1 and 0 <= overlap_words < max_words")
    parts: list[str] = []
    current: list[str] = []
    for sentence in _SENTENCE_END.split(text.strip()):
        words = sentence.split()
        if not words:
            continue
        if len(current) + len(words) <= max_words:
            current.extend(words)
            continue
        if current:
            parts.append(" ".join(current))
            current = []
        if len(words) <= max_words:
            current = words
            continue
        step = max_words - overlap_words
        start = 0
        while start + max_words < len(words):
            parts.append(" ".join(words[start : start + max_words]))
            start += step
        current = words[start:]
    if current:
        parts.append(" ".join(current))
    return parts

"""split_text packs whole sentences, windows long ones with overlap, and never loses a word."""

from __future__ import annotations

import random

import pytest

from es_core.splitter import split_text


def _words(n: int, prefix: str = "w") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_short_sentences_are_packed_into_one_part() -> None:
    text = "One two three. Four five! Six seven?"
    assert split_text(text, max_words=10) == ["One two three. Four five! Six seven?"]


def test_sentences_are_packed_up_to_the_window_and_never_cut_when_they_fit() -> None:
    text = "a b c. d e f. g h i. j k."
    parts = split_text(text, max_words=6)
    assert parts == ["a b c. d e f.", "g h i. j k."]
    assert all(len(p.split()) <= 6 for p in parts)


def test_a_sentence_that_does_not_fit_starts_a_new_part() -> None:
    text = "a b c d. e f g h i."
    assert split_text(text, max_words=6) == ["a b c d.", "e f g h i."]


def test_long_sentence_is_windowed_with_overlap() -> None:
    words = _words(25)
    parts = split_text(" ".join(words), max_words=10, overlap_words=3)
    windows = [p.split() for p in parts]
    assert all(1 <= len(w) <= 10 for w in windows)
    # Consecutive windows share exactly overlap_words words at the cut.
    for prev, nxt in zip(windows, windows[1:], strict=False):
        assert prev[-3:] == nxt[:3]
    assert windows[0] == words[:10]
    assert windows[1] == words[7:17]
    assert windows[-1][-1] == words[-1]
    # Reassembling without the overlaps gives the sentence back.
    rebuilt = windows[0] + [w for window in windows[1:] for w in window[3:]]
    assert rebuilt == words


def test_long_sentence_without_overlap_is_cut_in_disjoint_windows() -> None:
    words = _words(23)
    parts = split_text(" ".join(words), max_words=10, overlap_words=0)
    assert [p.split() for p in parts] == [words[:10], words[10:20], words[20:]]


def test_sentence_of_exactly_the_window_is_one_part() -> None:
    words = _words(10)
    assert split_text(" ".join(words), max_words=10, overlap_words=4) == [" ".join(words)]


def test_text_after_a_long_sentence_follows_its_last_window() -> None:
    long = " ".join(_words(12)) + "."
    parts = split_text(long + " tail end.", max_words=8, overlap_words=2)
    assert all(len(p.split()) <= 8 for p in parts)
    assert parts[-1].endswith("tail end.")


@pytest.mark.parametrize("blank", ["", "   ", "\n\t  \n", ". . ."[:0]])
def test_blank_text_has_no_parts(blank: str) -> None:
    assert split_text(blank, max_words=5) == []


@pytest.mark.parametrize(
    ("max_words", "overlap_words"),
    [(0, 0), (-1, 0), (5, 5), (5, 6), (5, -1), (1, 1)],
)
def test_bad_arguments_raise_value_error(max_words: int, overlap_words: int) -> None:
    with pytest.raises(ValueError):
        split_text("some words here", max_words=max_words, overlap_words=overlap_words)


def test_max_words_one_gives_one_word_per_part() -> None:
    assert split_text("a b. c", max_words=1) == ["a", "b.", "c"]


@pytest.mark.parametrize("seed", range(30))
def test_no_word_is_lost_and_windows_are_respected(seed: int) -> None:
    rng = random.Random(seed)
    max_words = rng.randint(1, 12)
    overlap = rng.randint(0, max_words - 1)
    sentences = []
    counter = 0
    for _ in range(rng.randint(1, 15)):
        n = rng.randint(1, 30)
        words = [f"x{counter + k}" for k in range(n)]
        counter += n
        sentences.append(" ".join(words) + rng.choice([".", "!", "?", ""]))
    text = rng.choice([" ", "  ", "\n"]).join(sentences)
    parts = split_text(text, max_words=max_words, overlap_words=overlap)
    input_words = text.split()
    part_words = [w for p in parts for w in p.split()]
    assert parts, "non-blank text must give parts"
    assert all(1 <= len(p.split()) <= max_words for p in parts)
    assert set(input_words) <= set(part_words)
    # Order is kept: the first occurrences follow the input order.
    first_seen = list(dict.fromkeys(part_words))
    assert first_seen == input_words

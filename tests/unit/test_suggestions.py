"""Suggestions without a database: normalising and tokenising, where tokens stand in the
original text, the typed words of a prefix, the lookup strings of a typed word, and the checks
of every request."""

from __future__ import annotations

import random
import string

import pytest

from es_core.errors import InvalidArgument
from es_core.suggestions import model
from es_core.suggestions import text as text_module
from es_core.suggestions.matching import score, typed_words
from es_core.suggestions.model import PhraseInput, PhraseUpdate, SetEdit
from es_core.suggestions.text import (
    default_max_edits,
    deletions,
    normalise,
    normalise_text_prefix,
    swaps,
    tokenise,
    tokenise_folding,
    words,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  Café   Noir ", "cafe noir"),
        ("STRASSE", "strasse"),
        ("Straße", "strasse"),
        ("ﬁsh", "fish"),
        ("ＡＢＣ", "abc"),
        ("rock'n'roll", "rock'n'roll"),
        ("e\u0301clair", "eclair"),
        ("a\tb\nc", "a b c"),
    ],
)
def test_normalise(text: str, expected: str) -> None:
    assert normalise(text) == expected


def test_tokens_are_word_runs_normalised_one_by_one() -> None:
    assert words("Rock'n'Roll -- 2 Go!") == ["rock", "n", "roll", "2", "go"]
    assert words("snake_case name") == ["snake_case", "name"]
    assert words("!!! ...") == []


def test_token_offsets_point_into_the_original_text() -> None:
    text = "  Crème Straße e\u0301clair"
    tokens = tokenise(text)
    assert [t.text for t in tokens] == ["creme", "strasse", "eclair"]
    assert [text[t.start : t.end] for t in tokens] == ["Crème", "Straße", "e\u0301clair"]
    strasse = tokens[1]
    # "ss" comes from one character: a prefix ending inside it ends after that character
    assert text[strasse.start : strasse.end_of_prefix(5)] == "Straß"
    assert text[strasse.start : strasse.end_of_prefix(4)] == "Stra"
    assert strasse.end_of_prefix(0) == strasse.start
    assert strasse.end_of_prefix(99) == strasse.end


def test_ascii_text_is_tokenised_and_normalised_as_any_text() -> None:
    rng = random.Random(7)
    alphabet = string.printable + "\x00\x1c\x1f\x7f"
    texts = ["", " ", "Rock'n'Roll -- 2 Go!", "snake_case  NAME\t", "a\x1cb", "__ 9x"]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30))) for _ in range(500)]
    for text in texts:
        assert tokenise(text) == tokenise_folding(text), text
        assert normalise(text) == " ".join(text_module._fold(text).split()), text


def test_the_first_tokens_are_those_of_the_whole_text() -> None:
    for text in ["Rock'n'Roll -- 2 Go!", "Straße  CAFÉ noir ﬁne", "", "one"]:
        whole = tokenise(text)
        for first in range(len(whole) + 2):
            assert tokenise(text, first) == whole[:first], (text, first)
        assert tokenise(text, None) == whole


def test_text_prefix_keeps_a_trailing_space() -> None:
    assert normalise_text_prefix("Red  ") == "red "
    assert normalise_text_prefix("Red") == "red"
    assert normalise_text_prefix("") == ""


def test_default_max_edits_grow_with_the_word() -> None:
    assert [default_max_edits("x" * n) for n in (1, 3, 4, 7, 8, 20)] == [0, 0, 1, 1, 2, 2]


def test_lookup_strings_of_a_typed_word() -> None:
    assert swaps("abc") == ["acb", "bac"]
    assert swaps("aab") == ["aba"]
    assert deletions("abc", 1) == ["ab", "abc", "ac", "bc"]
    assert "a" in deletions("abc", 2) and len(deletions("abcd", 2)) == 1 + 4 + 6


def test_the_last_typed_word_is_a_prefix_until_something_follows_it() -> None:
    typed = typed_words("Red shoe", None, allow_typos=True)
    assert [(w.text, w.as_prefix, w.max_edits) for w in typed] == [
        ("red", False, 0),
        ("shoe", True, 1),
    ]
    assert [w.as_prefix for w in typed_words("red shoe ", None, True)] == [False, False]
    assert [w.as_prefix for w in typed_words("red shoe,", None, True)] == [False, False]
    assert [w.max_edits for w in typed_words("red waterproof", 2, True)] == [2, 2]
    assert [w.max_edits for w in typed_words("red waterproof", None, False)] == [0, 0]


def test_scores_follow_match_type_then_edits_then_weight() -> None:
    ranked = [score(0, 0, 0.0), score(1, 0, 0.0), score(1, 1, 1e9), score(2, 0, 5.0)]
    assert ranked == sorted(ranked, reverse=True)
    assert score(1, 0, 2.0) > score(1, 0, 1.0)


def test_set_edits() -> None:
    assert SetEdit(add=["b", "c"], remove=["a"]).apply(["a", "b"]) == ["b", "c"]
    assert SetEdit(replace=True, values=["x", "x"], add=["y"]).apply(["a"]) == ["x", "y"]
    assert SetEdit(replace=True).apply(["a"]) == []


def _field(call: object) -> str:
    assert callable(call)
    with pytest.raises(InvalidArgument) as info:
        call()
    return info.value.violations[0].field


def test_phrase_inputs_are_checked_field_by_field() -> None:
    ok = PhraseInput("fine phrase")
    assert model.check_inputs([ok])[0].weight == 1.0
    assert model.check_inputs([ok])[0].domains == [""]
    assert _field(lambda: model.check_inputs([])) == "phrases"
    assert _field(lambda: model.check_inputs([ok] * 1001)) == "phrases"
    assert _field(lambda: model.check_inputs([ok, PhraseInput("")])) == "phrases[1].phrase"
    assert _field(lambda: model.check_inputs([PhraseInput("x" * 257)])) == "phrases[0].phrase"
    assert _field(lambda: model.check_inputs([PhraseInput("a\x00")])) == "phrases[0].phrase"
    assert _field(lambda: model.check_inputs([PhraseInput("?!")])) == "phrases[0].phrase"
    assert _field(lambda: model.check_inputs([PhraseInput("a", weight=-1)])) == "phrases[0].weight"
    nan = PhraseInput("a", weight=float("nan"))
    assert _field(lambda: model.check_inputs([nan])) == "phrases[0].weight"
    labels = PhraseInput("a", labels=["ok", ""])
    assert _field(lambda: model.check_inputs([labels])) == "phrases[0].labels[1]"
    many = PhraseInput("a", labels=[f"l{i}" for i in range(33)])
    assert _field(lambda: model.check_inputs([many])) == "phrases[0].labels"
    long_label = PhraseInput("a", labels=["x" * 65])
    assert _field(lambda: model.check_inputs([long_label])) == "phrases[0].labels[0]"
    domains = PhraseInput("a", domains=[f"d{i}" for i in range(33)])
    assert _field(lambda: model.check_inputs([domains])) == "phrases[0].domains"


def test_updates_are_checked_field_by_field() -> None:
    assert _field(lambda: model.check_updates([])) == "updates"
    assert _field(lambda: model.check_updates([PhraseUpdate("")])) == "updates[0].phrase_id"
    twice = [PhraseUpdate("a"), PhraseUpdate("a")]
    assert _field(lambda: model.check_updates(twice)) == "updates[1].phrase_id"
    weight = [PhraseUpdate("a", weight=-2)]
    assert _field(lambda: model.check_updates(weight)) == "updates[0].weight"
    labels = [PhraseUpdate("a", labels=SetEdit(add=["x\x00"]))]
    assert _field(lambda: model.check_updates(labels)) == "updates[0].labels.add[0]"
    values = [PhraseUpdate("a", domains=SetEdit(values=["x"]))]
    assert _field(lambda: model.check_updates(values)) == "updates[0].domains.values"


def test_suggest_checks() -> None:
    assert _field(lambda: model.check_prefix("")) == "prefix"
    assert _field(lambda: model.check_prefix("x" * 257)) == "prefix"
    assert _field(lambda: model.check_prefix("a\x00")) == "prefix"
    assert _field(lambda: model.check_prefix(" ".join(["w"] * 33))) == "prefix"
    assert _field(lambda: model.check_limit(-1)) == "limit"
    assert model.check_limit(0) == 10 and model.check_limit(100) == 100
    assert _field(lambda: model.check_match_types([1, 7])) == "match_types[1]"
    assert model.check_match_types([]) == set(model.MatchType)
    assert _field(lambda: model.check_max_edits(-1)) == "max_edits"
    assert model.check_max_edits(None) is None and model.check_max_edits(2) == 2
    assert _field(lambda: model.check_domains(["a"] * 33)) == "domains"
    assert model.check_domains(["b", "a", "b"]) == ["b", "a"]
    assert model.check_domains([]) == [""]
    assert _field(lambda: model.check_ids(["ok", "x" * 129])) == "phrase_ids[1]"
    assert _field(lambda: model.check_text_prefix("a\x00")) == "text_prefix"

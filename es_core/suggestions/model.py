"""Phrases and suggestions as the library sees them, and the checks every request passes.

Every check raises InvalidArgument naming the field of the request ("prefix", "domains[3]",
"phrases[2].labels[0]", "match_types[0]")."""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from es_core.errors import InvalidArgument
from es_core.suggestions.text import normalise_text_prefix, tokenise

MAX_PHRASE_CHARS = 256
MAX_PREFIX_CHARS = 256
# Typed words beyond this are refused: each is one index condition of the query.
MAX_TYPED_WORDS = 32
MAX_DOMAINS = 32
MAX_DOMAIN_CHARS = 64
MAX_LABELS = 32
MAX_LABEL_CHARS = 64
MAX_PHRASES_PER_REQUEST = 1000
MAX_ID_CHARS = 128
DEFAULT_LIMIT = 10
MAX_LIMIT = 100
MAX_EDITS = 2
DEFAULT_DOMAIN = ""


class MatchType(enum.IntEnum):
    """How a suggestion matched, best first (the numbers are the API's)."""

    EXACT = 1
    PREFIX = 2
    FUZZY = 3
    MID_PHRASE = 4


@dataclass(frozen=True)
class Phrase:
    phrase_id: str
    phrase: str
    weight: float
    labels: list[str]
    domains: list[str]
    create_time: datetime | None = None
    update_time: datetime | None = None


@dataclass(frozen=True)
class PhraseInput:
    """A phrase to add; weight 0 means 1.0, no domains means the default domain."""

    phrase: str
    weight: float = 0.0
    labels: list[str] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class SetEdit:
    """A change to a set of strings: become ``values`` (when ``replace``), then add and remove."""

    replace: bool = False
    values: list[str] = field(default_factory=list)
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)

    def apply(self, current: Sequence[str]) -> list[str]:
        result = list(dict.fromkeys(self.values)) if self.replace else list(current)
        result += [v for v in dict.fromkeys(self.add) if v not in result]
        gone = set(self.remove)
        return [v for v in result if v not in gone]


@dataclass(frozen=True)
class PhraseUpdate:
    """A partial update: None leaves that part as stored."""

    phrase_id: str
    weight: float | None = None
    labels: SetEdit | None = None
    domains: SetEdit | None = None


@dataclass(frozen=True)
class Span:
    """Where a typed word matched in a phrase, in code points of the phrase."""

    start: int
    end: int
    typed_word: str
    edits: int


@dataclass(frozen=True)
class Suggestion:
    phrase: Phrase
    score: float
    match_type: MatchType
    spans: list[Span]


@dataclass(frozen=True)
class SuggestInput:
    prefix: str
    limit: int = 0
    domains: list[str] = field(default_factory=list)
    match_types: list[int] = field(default_factory=list)
    max_edits: int | None = None


@dataclass(frozen=True)
class ListPhrasesInput:
    page_size: int = 0
    page_token: str = ""
    domains: list[str] = field(default_factory=list)  # empty = every domain
    labels: list[str] = field(default_factory=list)
    text_prefix: str = ""


def _bad(field_path: str, description: str) -> InvalidArgument:
    return InvalidArgument.field_error(field_path, description)


def check_text(value: str, field_path: str, max_chars: int) -> None:
    if not value.strip():
        raise _bad(field_path, "must not be empty")
    if len(value) > max_chars:
        raise _bad(field_path, f"must be at most {max_chars} characters")
    if "\x00" in value:
        raise _bad(field_path, "must not contain NUL characters")


def check_phrase_text(value: str, field_path: str) -> None:
    check_text(value, field_path, MAX_PHRASE_CHARS)
    if not tokenise(value):
        raise _bad(field_path, "must contain at least one letter or digit")


def _check_strings(
    values: Sequence[str], field_path: str, most: int, max_chars: int, *, empty_ok: bool
) -> None:
    if len(values) > most:
        raise _bad(field_path, f"must hold at most {most} values")
    for i, value in enumerate(values):
        if not value and not empty_ok:
            raise _bad(f"{field_path}[{i}]", "must not be empty")
        if len(value) > max_chars:
            raise _bad(f"{field_path}[{i}]", f"must be at most {max_chars} characters")
        if "\x00" in value:
            raise _bad(f"{field_path}[{i}]", "must not contain NUL characters")


def check_domains(domains: Sequence[str], field_path: str = "domains") -> list[str]:
    """Distinct domains in order ("" is the default domain); none = the default one."""
    _check_strings(domains, field_path, MAX_DOMAINS, MAX_DOMAIN_CHARS, empty_ok=True)
    return list(dict.fromkeys(domains)) or [DEFAULT_DOMAIN]


def check_labels(labels: Sequence[str], field_path: str = "labels") -> list[str]:
    _check_strings(labels, field_path, MAX_LABELS, MAX_LABEL_CHARS, empty_ok=False)
    return list(dict.fromkeys(labels))


def check_weight(weight: float, field_path: str) -> float:
    if not math.isfinite(weight) or weight < 0:
        raise _bad(field_path, "must be a finite number >= 0")
    return weight


def check_ids(ids: Sequence[str], field_path: str = "phrase_ids") -> list[str]:
    """1..1000 ids, duplicates collapsed."""
    if not ids:
        raise _bad(field_path, "must name at least one phrase")
    if len(ids) > MAX_PHRASES_PER_REQUEST:
        raise _bad(field_path, f"must name at most {MAX_PHRASES_PER_REQUEST} phrases")
    for i, ident in enumerate(ids):
        check_id(ident, f"{field_path}[{i}]")
    return list(dict.fromkeys(ids))


def check_id(ident: str, field_path: str) -> None:
    if not ident:
        raise _bad(field_path, "must not be empty")
    if len(ident) > MAX_ID_CHARS or "\x00" in ident:
        raise _bad(field_path, f"must be at most {MAX_ID_CHARS} characters, without NUL")


def check_count(count: int, field_path: str) -> None:
    if count == 0:
        raise _bad(field_path, "must hold at least one phrase")
    if count > MAX_PHRASES_PER_REQUEST:
        raise _bad(field_path, f"must hold at most {MAX_PHRASES_PER_REQUEST} phrases")


def check_inputs(phrases: Sequence[PhraseInput], field_path: str = "phrases") -> list[PhraseInput]:
    """The inputs with defaults filled in: weight 0 = 1.0, no domains = the default domain."""
    check_count(len(phrases), field_path)
    checked = []
    for i, phrase in enumerate(phrases):
        here = f"{field_path}[{i}]"
        check_phrase_text(phrase.phrase, f"{here}.phrase")
        weight = check_weight(phrase.weight, f"{here}.weight") or 1.0
        checked.append(
            PhraseInput(
                phrase.phrase,
                weight,
                check_labels(phrase.labels, f"{here}.labels"),
                check_domains(phrase.domains, f"{here}.domains"),
            )
        )
    return checked


def check_set_edit(edit: SetEdit, field_path: str, *, domains: bool) -> None:
    for name in ("values", "add", "remove"):
        values = getattr(edit, name)
        if domains:
            _check_strings(
                values, f"{field_path}.{name}", MAX_DOMAINS, MAX_DOMAIN_CHARS, empty_ok=True
            )
        else:
            _check_strings(
                values, f"{field_path}.{name}", MAX_LABELS, MAX_LABEL_CHARS, empty_ok=False
            )
    if edit.values and not edit.replace:
        raise _bad(f"{field_path}.values", "is only read with replace = true")


def check_updates(updates: Sequence[PhraseUpdate], field_path: str = "updates") -> None:
    check_count(len(updates), field_path)
    seen: set[str] = set()
    for i, update in enumerate(updates):
        here = f"{field_path}[{i}]"
        check_id(update.phrase_id, f"{here}.phrase_id")
        if update.phrase_id in seen:
            raise _bad(f"{here}.phrase_id", "repeats an earlier update's phrase")
        seen.add(update.phrase_id)
        if update.weight is not None:
            check_weight(update.weight, f"{here}.weight")
        if update.labels is not None:
            check_set_edit(update.labels, f"{here}.labels", domains=False)
        if update.domains is not None:
            check_set_edit(update.domains, f"{here}.domains", domains=True)


def check_result_sets(phrase: Phrase, field_path: str) -> None:
    """An updated phrase's sets stay within their limits and it keeps a domain."""
    if not phrase.domains:
        raise _bad(f"{field_path}.domains", "would leave the phrase without a domain")
    if len(phrase.domains) > MAX_DOMAINS:
        raise _bad(f"{field_path}.domains", f"would give the phrase more than {MAX_DOMAINS}")
    if len(phrase.labels) > MAX_LABELS:
        raise _bad(f"{field_path}.labels", f"would give the phrase more than {MAX_LABELS}")


def check_limit(limit: int) -> int:
    if limit < 0:
        raise _bad("limit", "must not be negative")
    if limit > MAX_LIMIT:
        raise _bad("limit", f"must be at most {MAX_LIMIT}")
    return limit or DEFAULT_LIMIT


def check_match_types(match_types: Sequence[int]) -> set[MatchType]:
    """The kinds of match allowed; none = every kind."""
    allowed: set[MatchType] = set()
    for i, value in enumerate(match_types):
        try:
            allowed.add(MatchType(value))
        except ValueError:
            raise _bad(f"match_types[{i}]", "must be EXACT, PREFIX, FUZZY or MID_PHRASE") from None
    return allowed or set(MatchType)


def check_max_edits(max_edits: int | None) -> int | None:
    if max_edits is not None and not 0 <= max_edits <= MAX_EDITS:
        raise _bad("max_edits", f"must be within 0..{MAX_EDITS}")
    return max_edits


def check_prefix(prefix: str) -> None:
    check_text(prefix, "prefix", MAX_PREFIX_CHARS)
    typed = tokenise(prefix)
    if not typed:
        raise _bad("prefix", "must contain at least one letter or digit")
    if len(typed) > MAX_TYPED_WORDS:
        raise _bad("prefix", f"must hold at most {MAX_TYPED_WORDS} words")


def check_text_prefix(text_prefix: str) -> str:
    if len(text_prefix) > MAX_PHRASE_CHARS or "\x00" in text_prefix:
        raise _bad("text_prefix", f"must be at most {MAX_PHRASE_CHARS} characters, without NUL")
    return normalise_text_prefix(text_prefix)

"""How phrases and typed prefixes become comparable: normalised text and tokens with their
places in the original text, and the strings a typed word is looked up by.

Normalising: NFKC (so "ﬁ" is "fi" and full-width letters are plain), case folded ("ß" is
"ss"), accents stripped (NFKD, combining marks dropped), runs of whitespace collapsed to one
space and trimmed. The normalised text is a phrase's identity: "Café  Noir" and "cafe noir" are
one phrase. A token is a maximal run of letters, digits, underscores and combining marks in the
original text, normalised on its own; punctuation separates tokens but stays part of the
identity ("rock'n'roll" and "rock n roll" are two phrases with the same tokens)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from itertools import islice

# ASCII text folds to its lower case (NFKC, NFKD and NFC leave it as it is, it has no combining
# marks) and its word characters are letters, digits and the underscore: Suggest tokenises the
# typed text and every phrase it returns, so the common case skips the per-character folding.
_ASCII_WORD = re.compile(r"[A-Za-z0-9_]+")


def _fold(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    stripped = "".join(
        c for c in unicodedata.normalize("NFKD", folded) if not unicodedata.combining(c)
    )
    return unicodedata.normalize("NFC", stripped)


def normalise(text: str) -> str:
    """The identity of a phrase (see the module docstring)."""
    if text.isascii():
        return " ".join(text.lower().split())
    return " ".join(_fold(text).split())


def _is_word_char(char: str, inside: bool) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LN" or char == "_" or (inside and category[0] == "M")


@dataclass(frozen=True)
class Token:
    """A normalised word and where it stands in the original text: ``offsets[i]`` is the
    code point offset, in the original, of the character that produced the token's i-th
    character; ``end`` is the offset just past the word."""

    text: str
    offsets: tuple[int, ...]
    end: int

    @property
    def start(self) -> int:
        return self.offsets[0]

    def end_of_prefix(self, length: int) -> int:
        """The original offset just past the first ``length`` normalised characters (past the
        whole original character when it produced more than one, as "ß" does "ss")."""
        if length <= 0:
            return self.start
        last = self.offsets[min(length, len(self.offsets)) - 1]
        return next((o for o in self.offsets[length:] if o > last), self.end)


def _token(word: str, start: int) -> Token | None:
    text: list[str] = []
    offsets: list[int] = []
    for i, char in enumerate(word):
        folded = _fold(char)
        text.append(folded)
        offsets.extend([start + i] * len(folded))
    joined = "".join(text)
    # Folding char by char can differ from folding the word (combining marks fold into the
    # letter before them); the word's own folding wins and the offsets are cut to fit.
    whole = "".join(_fold(word).split())
    if not whole:
        return None
    if whole != joined:
        offsets = (offsets + [start + len(word) - 1] * len(whole))[: len(whole)]
    return Token(whole, tuple(offsets), start + len(word))


def tokenise(text: str, first: int | None = None) -> list[Token]:
    """The tokens of ``text`` in order (see the module docstring); with ``first``, only the
    first ``first`` of them (Suggest highlights the words typed, often fewer than a phrase's)."""
    if text.isascii():
        return [
            Token(m.group().lower(), tuple(range(m.start(), m.end())), m.end())
            for m in islice(_ASCII_WORD.finditer(text), first)
        ]
    return tokenise_folding(text)[:first]


def tokenise_folding(text: str) -> list[Token]:
    """``tokenise`` character by character, for any text."""
    tokens: list[Token] = []
    start: int | None = None
    for i, char in enumerate(text + " "):
        if _is_word_char(char, start is not None) and i < len(text):
            if start is None:
                start = i
            continue
        if start is not None:
            token = _token(text[start:i], start)
            if token is not None:
                tokens.append(token)
            start = None
    return tokens


def normalise_text_prefix(text: str) -> str:
    """As ``normalise``, but a trailing space is kept: "red " is only followed by a new word."""
    folded = normalise(text)
    return folded + " " if folded and text[-1:].isspace() else folded


def words(text: str) -> list[str]:
    return [t.text for t in tokenise(text)]


def default_max_edits(word: str) -> int:
    """Typos tolerated in a typed word when the request does not say: none up to 3
    characters, 1 up to 7, then 2."""
    return 0 if len(word) <= 3 else 1 if len(word) <= 7 else 2


def swaps(word: str) -> list[str]:
    """The word with each adjacent pair of characters swapped (distinct, the word excluded):
    one transposition away from it."""
    found = {word[:i] + word[i + 1] + word[i] + word[i + 2 :] for i in range(len(word) - 1)}
    found.discard(word)
    return sorted(found)


def deletions(word: str, depth: int) -> list[str]:
    """The word and every string up to ``depth`` deletions away from it, at least 1
    character long."""
    found = {word}
    frontier = {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w)) if len(w) > 1}
        found |= frontier
    return sorted(found)

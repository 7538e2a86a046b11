"""The word tokenizer of Match, in Python, agreeing with the SQL the compiler emits.

The SQL side is ``regexp_split_to_array(lower(text COLLATE pg_unicode_fast), '[^[:alnum:]_]+')``:
the ``pg_unicode_fast`` collation (PostgreSQL 18, built in) makes lower-casing and the ``alnum``
class Unicode-aware and independent of the server's OS locale. Python's ``str.lower`` uses the
same full case mapping (``"İ"`` becomes ``"i̇"``, a final ``"Σ"`` becomes ``"ς"``).

Where the two may differ: PostgreSQL's ``alnum`` is the Unicode ``Alphabetic`` property plus
decimal digits. ``Alphabetic`` also covers the combining vowel signs of Indic and some other
scripts (``"े"`` in ``"नमस्ते"``), which Python cannot name; here a word character is a letter
(``str.isalpha()``), a letter number (``"Ⅻ"``), a decimal digit, or ``_``, so such words may
split differently. The Unicode versions of Python and the server may differ too. ASCII, Latin,
Greek, Cyrillic, CJK, Arabic and Hebrew letters and all decimal digits agree.
"""

from __future__ import annotations

import unicodedata


def _is_word_char(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal() or unicodedata.category(ch) == "Nl"


def words(text: str) -> list[str]:
    """The distinct lower-cased words of ``text``, in order of first appearance."""
    found: dict[str, None] = {}
    current: list[str] = []
    for ch in text.lower() + " ":
        if _is_word_char(ch):
            current.append(ch)
        elif current:
            found.setdefault("".join(current))
            current = []
    return list(found)

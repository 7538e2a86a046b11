"""The phrase dictionary in PostgreSQL: added (upserted by normalised text), changed, deleted,
read and listed. A request of up to 1000 phrases is one statement (reads and changes) or one
transaction of two (partial updates)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeAlias

import asyncpg

from es_core.errors import InvalidArgument
from es_core.page_tokens import PageTokens
from es_core.suggestions.model import ListPhrasesInput, Phrase, PhraseInput
from es_core.suggestions.text import normalise, words

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool

COLUMNS = "phrase_id, phrase, weight, labels, domains, create_time, update_time"


def phrase_from_row(row: asyncpg.Record) -> Phrase:
    return Phrase(
        phrase_id=row["phrase_id"],
        phrase=row["phrase"],
        weight=row["weight"],
        labels=list(row["labels"]),
        domains=list(row["domains"]),
        create_time=row["create_time"],
        update_time=row["update_time"],
    )


def merge_inputs(phrases: Sequence[PhraseInput]) -> tuple[list[dict[str, Any]], list[str]]:
    """One row per distinct normalised text (a later copy's weight and labels win, the domains
    of all copies are kept) and each input's normalised text, in request order."""
    rows: dict[str, dict[str, Any]] = {}
    keys = []
    for phrase in phrases:
        key = normalise(phrase.phrase)
        keys.append(key)
        row = rows.get(key)
        if row is None:
            rows[key] = {
                "phrase": phrase.phrase.strip(),
                "normalised": key,
                "tokens": words(phrase.phrase),
                "domains": list(phrase.domains),
                "labels": list(phrase.labels),
                "weight": phrase.weight,
            }
        else:
            row["weight"], row["labels"] = phrase.weight, list(phrase.labels)
            row["domains"] += [d for d in phrase.domains if d not in row["domains"]]
    return list(rows.values()), keys


async def add_phrases(
    conn: Conn, phrases: Sequence[PhraseInput], *, owned_domain: str | None = None
) -> list[str]:
    """Upsert by normalised text: a known phrase keeps its id and text, takes the new weight and
    labels and gains the new domains. New words join the vocabulary with their lookup keys, in
    the same statement. Returns each input's phrase id, in request order.

    With ``owned_domain`` (the harvest's "clickstream"), a known phrase that belongs to any
    other domain keeps its weight and labels and only gains the domains: a writer that owns one
    domain never overwrites what someone else curated."""
    rows, keys = merge_inputs(phrases)
    stored = await conn.fetch(
        """
        WITH input AS (
            SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(
                phrase text, normalised text, tokens text[], domains text[], labels text[],
                weight double precision)
        ), upserted AS (
            INSERT INTO suggestion_phrases AS p
                (phrase_id, phrase, normalised, tokens, domains, labels, weight)
            SELECT replace(gen_random_uuid()::text, '-', ''), phrase, normalised, tokens,
                   domains, labels, weight
            FROM input ORDER BY normalised
            ON CONFLICT (normalised) DO UPDATE SET
                weight = CASE WHEN $2::text IS NULL OR p.domains <@ ARRAY[$2::text]
                              THEN EXCLUDED.weight ELSE p.weight END,
                labels = CASE WHEN $2::text IS NULL OR p.domains <@ ARRAY[$2::text]
                              THEN EXCLUDED.labels ELSE p.labels END,
                domains = p.domains || ARRAY(
                    SELECT d FROM unnest(EXCLUDED.domains) AS d WHERE d <> ALL (p.domains)),
                update_time = now()
            RETURNING phrase_id, normalised
        ), new_words AS (
            INSERT INTO suggestion_words (word)
            SELECT DISTINCT w FROM input, unnest(tokens) AS w ORDER BY w
            ON CONFLICT DO NOTHING
            RETURNING word
        ), new_keys AS (
            INSERT INTO suggestion_word_keys (key, word)
            SELECT k, word FROM new_words, suggestion_keys_of(word) AS k
            ON CONFLICT DO NOTHING
        )
        SELECT phrase_id, normalised FROM upserted
        """,
        rows,
        owned_domain,
    )
    ids = {r["normalised"]: r["phrase_id"] for r in stored}
    return [ids[key] for key in keys]


async def get_phrases(conn: Conn, phrase_ids: Sequence[str]) -> list[Phrase]:
    """The phrases found, in the order of ``phrase_ids``."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM suggestion_phrases WHERE phrase_id = ANY($1::text[])",
        list(phrase_ids),
    )
    found = {r["phrase_id"]: phrase_from_row(r) for r in rows}
    return [found[i] for i in phrase_ids if i in found]


async def get_for_update(conn: asyncpg.Connection, phrase_ids: Sequence[str]) -> list[Phrase]:
    """As ``get_phrases``, the rows locked (in id order) until the transaction ends."""
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM suggestion_phrases WHERE phrase_id = ANY($1::text[])"
        " ORDER BY phrase_id FOR UPDATE",
        list(phrase_ids),
    )
    found = {r["phrase_id"]: phrase_from_row(r) for r in rows}
    return [found[i] for i in phrase_ids if i in found]


async def write_phrases(conn: Conn, phrases: Sequence[Phrase]) -> list[Phrase]:
    """Store the weight, labels and domains of existing phrases; returns them as stored, in
    the given order (a phrase deleted meanwhile is absent)."""
    rows = [
        {"phrase_id": p.phrase_id, "weight": p.weight, "labels": p.labels, "domains": p.domains}
        for p in phrases
    ]
    stored = await conn.fetch(
        f"""
        UPDATE suggestion_phrases AS p
        SET weight = r.weight, labels = r.labels, domains = r.domains, update_time = now()
        FROM jsonb_to_recordset($1::jsonb)
             AS r(phrase_id text, weight double precision, labels text[], domains text[])
        WHERE p.phrase_id = r.phrase_id
        RETURNING {", ".join("p." + c.strip() for c in COLUMNS.split(","))}
        """,
        rows,
    )
    found = {r["phrase_id"]: phrase_from_row(r) for r in stored}
    return [found[p.phrase_id] for p in phrases if p.phrase_id in found]


async def delete_phrases(conn: Conn, phrase_ids: Sequence[str]) -> int:
    """How many of the phrases existed (their words stay in the vocabulary)."""
    result = await conn.execute(
        "DELETE FROM suggestion_phrases WHERE phrase_id = ANY($1::text[])", list(phrase_ids)
    )
    return int(result.split()[-1])


def _scope(request: ListPhrasesInput) -> dict[str, Any]:
    return {
        "list": "phrases",
        "domains": sorted(request.domains),
        "labels": sorted(request.labels),
        "text_prefix": request.text_prefix,
    }


async def list_phrases(
    conn: Conn, tokens: PageTokens, request: ListPhrasesInput, page_size: int
) -> tuple[list[Phrase], str]:
    """Phrases in normalised-text order, keyset-paged; ``request.text_prefix`` is normalised."""
    scope = _scope(request)
    after: str | None = None
    if request.page_token:
        cursor = tokens.decode(request.page_token, scope)
        after = cursor.get("after")
        if not isinstance(after, str):
            raise InvalidArgument.field_error(
                "page_token", "is not a page token this service issued"
            )
    rows = await conn.fetch(
        f"""
        SELECT {COLUMNS}, normalised FROM suggestion_phrases
        WHERE ($1::text IS NULL OR normalised > $1)
          AND (cardinality($2::text[]) = 0 OR domains && $2)
          AND labels @> $3::text[]
          AND ($4 = '' OR (normalised >= $4 AND starts_with(normalised, $4)))
        ORDER BY normalised
        LIMIT $5
        """,
        after,
        list(request.domains),
        list(request.labels),
        request.text_prefix,
        page_size + 1,
    )
    page = rows[:page_size]
    token = ""
    if len(rows) > page_size:
        token = tokens.encode({"after": page[-1]["normalised"]}, scope)
    return [phrase_from_row(r) for r in page], token

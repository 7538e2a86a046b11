"""The suggestion use cases behind SuggestionService: Suggest reads through the search pool
(``SearchContext``, short statement timeout); the phrase dictionary is managed through the
API pool (``Context``)."""

from __future__ import annotations

import dataclasses

from es_core.context import Context
from es_core.errors import InvalidArgument, NotFound
from es_core.pagination import check_page_size
from es_core.search.use_case import SearchContext
from es_core.suggestions import matching, store
from es_core.suggestions.model import (
    MAX_PHRASES_PER_REQUEST,
    ListPhrasesInput,
    MatchType,
    Phrase,
    PhraseInput,
    PhraseUpdate,
    SuggestInput,
    Suggestion,
    check_count,
    check_domains,
    check_id,
    check_ids,
    check_inputs,
    check_labels,
    check_limit,
    check_match_types,
    check_max_edits,
    check_phrase_text,
    check_prefix,
    check_result_sets,
    check_text_prefix,
    check_updates,
    check_weight,
)
from es_core.suggestions.text import normalise


async def suggest(ctx: SearchContext, request: SuggestInput) -> list[Suggestion]:
    """The best completions of what the user typed, best first."""
    check_prefix(request.prefix)
    limit = check_limit(request.limit)
    domains = check_domains(request.domains)
    allowed = check_match_types(request.match_types)
    max_edits = check_max_edits(request.max_edits)
    allow_typos = bool(allowed & {MatchType.FUZZY, MatchType.MID_PHRASE})
    typed = matching.typed_words(request.prefix, max_edits, allow_typos)
    async with ctx.pool.acquire() as conn:
        return await matching.suggest(conn, request.prefix, typed, domains, allowed, limit)


async def add_phrases(ctx: Context, phrases: list[PhraseInput]) -> list[str]:
    """Each phrase's id in request order; a phrase already stored (same normalised text) is
    updated: weight and labels replaced, domains added."""
    checked = check_inputs(phrases)
    async with ctx.pool.acquire() as conn:
        return await store.add_phrases(conn, checked)


async def get_phrases(ctx: Context, phrase_ids: list[str]) -> list[Phrase]:
    """The phrases found, in request order (repeated ids once)."""
    return await store.get_phrases(ctx.pool, check_ids(phrase_ids))


async def delete_phrases(ctx: Context, phrase_ids: list[str]) -> int:
    return await store.delete_phrases(ctx.pool, check_ids(phrase_ids))


async def replace_phrases(ctx: Context, phrases: list[Phrase]) -> list[Phrase]:
    """Replace the weight, labels and domains of stored phrases; the text cannot change (a
    phrase given with a different text is refused). NOT_FOUND names the first unknown id."""
    check_count(len(phrases), "phrases")
    wanted: list[Phrase] = []
    seen: set[str] = set()
    for i, phrase in enumerate(phrases):
        here = f"phrases[{i}]"
        check_id(phrase.phrase_id, f"{here}.phrase_id")
        if phrase.phrase_id in seen:
            raise InvalidArgument.field_error(f"{here}.phrase_id", "repeats an earlier phrase's id")
        seen.add(phrase.phrase_id)
        if phrase.phrase:
            check_phrase_text(phrase.phrase, f"{here}.phrase")
        wanted.append(
            dataclasses.replace(
                phrase,
                weight=check_weight(phrase.weight, f"{here}.weight"),
                labels=check_labels(phrase.labels, f"{here}.labels"),
                domains=check_domains(phrase.domains, f"{here}.domains"),
            )
        )
    async with ctx.pool.acquire() as conn, conn.transaction():
        stored = await store.get_for_update(conn, [p.phrase_id for p in wanted])
        by_id = {p.phrase_id: p for p in stored}
        for i, phrase in enumerate(wanted):
            current = by_id.get(phrase.phrase_id)
            if current is None:
                raise NotFound.field_error(
                    f"phrases[{i}].phrase_id", f"phrase {phrase.phrase_id!r} does not exist"
                )
            if phrase.phrase and normalise(phrase.phrase) != normalise(current.phrase):
                raise InvalidArgument.field_error(
                    f"phrases[{i}].phrase",
                    "cannot change a phrase's text: add the new phrase and delete this one",
                )
        return await store.write_phrases(conn, wanted)


async def update_phrases(ctx: Context, updates: list[PhraseUpdate]) -> list[Phrase]:
    """Partial updates in one transaction: weight set, labels and domains set, added to or
    removed from. NOT_FOUND names the first unknown id; a phrase left without a domain is
    refused (nothing is changed then)."""
    check_updates(updates)
    async with ctx.pool.acquire() as conn, conn.transaction():
        stored = await store.get_for_update(conn, [u.phrase_id for u in updates])
        by_id = {p.phrase_id: p for p in stored}
        changed = []
        for i, update in enumerate(updates):
            here = f"updates[{i}]"
            current = by_id.get(update.phrase_id)
            if current is None:
                raise NotFound.field_error(
                    f"{here}.phrase_id", f"phrase {update.phrase_id!r} does not exist"
                )
            phrase = dataclasses.replace(
                current,
                weight=current.weight if update.weight is None else update.weight,
                labels=current.labels
                if update.labels is None
                else update.labels.apply(current.labels),
                domains=current.domains
                if update.domains is None
                else update.domains.apply(current.domains),
            )
            check_result_sets(phrase, here)
            changed.append(phrase)
        return await store.write_phrases(conn, changed)


async def list_phrases(ctx: Context, request: ListPhrasesInput) -> tuple[list[Phrase], str]:
    """A page of phrases in normalised-text order, and the next page's token ("" at the end)."""
    page_size = check_page_size(
        request.page_size, default=ctx.settings.default_page_size, maximum=MAX_PHRASES_PER_REQUEST
    )
    checked = ListPhrasesInput(
        page_size,
        request.page_token,
        sorted(set(check_domains(request.domains))) if request.domains else [],
        check_labels(request.labels),
        check_text_prefix(request.text_prefix),
    )
    return await store.list_phrases(ctx.pool, ctx.tokens, checked, page_size)

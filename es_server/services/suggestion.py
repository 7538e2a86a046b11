"""SuggestionService: completions of a typed prefix, and the phrase dictionary behind them."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from embedding_studio.v1 import suggestion_pb2, suggestion_pb2_grpc
from es_core.errors import InvalidArgument
from es_core.suggestions import use_case
from es_core.suggestions.model import (
    ListPhrasesInput,
    Phrase,
    PhraseInput,
    PhraseUpdate,
    SetEdit,
    SuggestInput,
    Suggestion,
)
from es_server.state import ServerState


def _domains(domain: str, domains: Sequence[str], field_path: str) -> list[str]:
    """The domains of a message that still carries the deprecated single ``domain``."""
    if domain and domains:
        raise InvalidArgument.field_error(
            f"{field_path}domain", "is deprecated: set domains only, not both"
        )
    return [domain] if domain else list(domains)


def phrase_to_proto(phrase: Phrase) -> suggestion_pb2.Phrase:
    return suggestion_pb2.Phrase(
        phrase_id=phrase.phrase_id,
        phrase=phrase.phrase,
        weight=phrase.weight,
        labels=phrase.labels,
        domain=phrase.domains[0] if phrase.domains else "",
        domains=phrase.domains,
    )


def suggestion_to_proto(suggestion: Suggestion) -> suggestion_pb2.Suggestion:
    phrase = suggestion.phrase
    return suggestion_pb2.Suggestion(
        phrase_id=phrase.phrase_id,
        phrase=phrase.phrase,
        score=suggestion.score,
        match_type=int(suggestion.match_type),  # type: ignore[arg-type]
        spans=[
            suggestion_pb2.MatchedSpan(
                start=s.start, end=s.end, typed_word=s.typed_word, edits=s.edits
            )
            for s in suggestion.spans
        ],
        weight=phrase.weight,
        labels=phrase.labels,
        domains=phrase.domains,
    )


def _set_edit(message: suggestion_pb2.StringSetEdit) -> SetEdit:
    return SetEdit(message.replace, list(message.values), list(message.add), list(message.remove))


def _update(message: suggestion_pb2.PhraseUpdate) -> PhraseUpdate:
    return PhraseUpdate(
        message.phrase_id,
        weight=message.weight if message.HasField("weight") else None,
        labels=_set_edit(message.labels) if message.HasField("labels") else None,
        domains=_set_edit(message.domains) if message.HasField("domains") else None,
    )


class SuggestionService(suggestion_pb2_grpc.SuggestionServiceServicer):
    def __init__(self, state: ServerState) -> None:
        self.state = state

    async def Suggest(
        self, request: suggestion_pb2.SuggestRequest, context: grpc.aio.ServicerContext
    ) -> suggestion_pb2.SuggestResponse:
        suggestions = await use_case.suggest(
            self.state.search,
            SuggestInput(
                request.prefix,
                limit=request.limit,
                domains=_domains(request.domain, request.domains, ""),
                match_types=list(request.match_types),
                max_edits=request.max_edits if request.HasField("max_edits") else None,
            ),
        )
        return suggestion_pb2.SuggestResponse(
            suggestions=[suggestion_to_proto(s) for s in suggestions]
        )

    async def AddPhrases(
        self, request: suggestion_pb2.AddPhrasesRequest, context: grpc.aio.ServicerContext
    ) -> suggestion_pb2.AddPhrasesResponse:
        inputs = [
            PhraseInput(
                p.phrase,
                p.weight,
                list(p.labels),
                _domains(p.domain, p.domains, f"phrases[{i}]."),
            )
            for i, p in enumerate(request.phrases)
        ]
        ids = await use_case.add_phrases(self.state.context, inputs)
        return suggestion_pb2.AddPhrasesResponse(phrase_ids=ids)

    async def DeletePhrases(
        self, request: suggestion_pb2.DeletePhrasesRequest, context: grpc.aio.ServicerContext
    ) -> suggestion_pb2.DeletePhrasesResponse:
        deleted = await use_case.delete_phrases(self.state.context, list(request.phrase_ids))
        return suggestion_pb2.DeletePhrasesResponse(deleted_count=deleted)

    async def UpdatePhrases(
        self, request: suggestion_pb2.UpdatePhrasesRequest, context: grpc.aio.ServicerContext
    ) -> suggestion_pb2.UpdatePhrasesResponse:
        if request.phrases and request.updates:
            raise InvalidArgument.field_error("updates", "cannot be set together with phrases")
        if request.updates:
            updated = await use_case.update_phrases(
                self.state.context, [_update(u) for u in request.updates]
            )
        else:
            replacements = [
                Phrase(
                    p.phrase_id,
                    p.phrase,
                    p.weight,
                    list(p.labels),
                    _domains(p.domain, p.domains, f"phrases[{i}]."),
                )
                for i, p in enumerate(request.phrases)
            ]
            updated = await use_case.replace_phrases(self.state.context, replacements)
        return suggestion_pb2.UpdatePhrasesResponse(phrases=[phrase_to_proto(p) for p in updated])

    async def ListPhrases(
        self, request: suggestion_pb2.ListPhrasesRequest, context: grpc.aio.ServicerContext
    ) -> suggestion_pb2.ListPhrasesResponse:
        domains = list(request.domains) + ([request.domain] if request.domain else [])
        phrases, token = await use_case.list_phrases(
            self.state.context,
            ListPhrasesInput(
                request.page_size,
                request.page_token,
                domains,
                list(request.labels),
                request.text_prefix,
            ),
        )
        return suggestion_pb2.ListPhrasesResponse(
            phrases=[phrase_to_proto(p) for p in phrases], next_page_token=token
        )

    async def GetPhrases(
        self, request: suggestion_pb2.GetPhrasesRequest, context: grpc.aio.ServicerContext
    ) -> suggestion_pb2.GetPhrasesResponse:
        phrases = await use_case.get_phrases(self.state.context, list(request.phrase_ids))
        return suggestion_pb2.GetPhrasesResponse(phrases=[phrase_to_proto(p) for p in phrases])

from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MatchType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATCH_TYPE_UNSPECIFIED: _ClassVar[MatchType]
    MATCH_TYPE_EXACT: _ClassVar[MatchType]
    MATCH_TYPE_PREFIX: _ClassVar[MatchType]
    MATCH_TYPE_FUZZY: _ClassVar[MatchType]
    MATCH_TYPE_MID_PHRASE: _ClassVar[MatchType]
MATCH_TYPE_UNSPECIFIED: MatchType
MATCH_TYPE_EXACT: MatchType
MATCH_TYPE_PREFIX: MatchType
MATCH_TYPE_FUZZY: MatchType
MATCH_TYPE_MID_PHRASE: MatchType

class MatchedSpan(_message.Message):
    __slots__ = ("start", "end", "typed_word", "edits")
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    TYPED_WORD_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    start: int
    end: int
    typed_word: str
    edits: int
    def __init__(self, start: _Optional[int] = ..., end: _Optional[int] = ..., typed_word: _Optional[str] = ..., edits: _Optional[int] = ...) -> None: ...

class StringSetEdit(_message.Message):
    __slots__ = ("replace", "values", "add", "remove")
    REPLACE_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    ADD_FIELD_NUMBER: _ClassVar[int]
    REMOVE_FIELD_NUMBER: _ClassVar[int]
    replace: bool
    values: _containers.RepeatedScalarFieldContainer[str]
    add: _containers.RepeatedScalarFieldContainer[str]
    remove: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, replace: _Optional[bool] = ..., values: _Optional[_Iterable[str]] = ..., add: _Optional[_Iterable[str]] = ..., remove: _Optional[_Iterable[str]] = ...) -> None: ...

class PhraseUpdate(_message.Message):
    __slots__ = ("phrase_id", "weight", "labels", "domains")
    PHRASE_ID_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    phrase_id: str
    weight: float
    labels: StringSetEdit
    domains: StringSetEdit
    def __init__(self, phrase_id: _Optional[str] = ..., weight: _Optional[float] = ..., labels: _Optional[_Union[StringSetEdit, _Mapping]] = ..., domains: _Optional[_Union[StringSetEdit, _Mapping]] = ...) -> None: ...

class GetPhrasesRequest(_message.Message):
    __slots__ = ("phrase_ids",)
    PHRASE_IDS_FIELD_NUMBER: _ClassVar[int]
    phrase_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phrase_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class GetPhrasesResponse(_message.Message):
    __slots__ = ("phrases",)
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    def __init__(self, phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ...) -> None: ...

class Phrase(_message.Message):
    __slots__ = ("phrase_id", "phrase", "weight", "labels", "domain", "domains")
    PHRASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    phrase_id: str
    phrase: str
    weight: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    domain: str
    domains: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phrase_id: _Optional[str] = ..., phrase: _Optional[str] = ..., weight: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., domain: _Optional[str] = ..., domains: _Optional[_Iterable[str]] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("phrase_id", "phrase", "score", "match_type", "spans", "weight", "labels", "domains")
    PHRASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    MATCH_TYPE_FIELD_NUMBER: _ClassVar[int]
    SPANS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    phrase_id: str
    phrase: str
    score: float
    match_type: MatchType
    spans: _containers.RepeatedCompositeFieldContainer[MatchedSpan]
    weight: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    domains: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phrase_id: _Optional[str] = ..., phrase: _Optional[str] = ..., score: _Optional[float] = ..., match_type: _Optional[_Union[MatchType, str]] = ..., spans: _Optional[_Iterable[_Union[MatchedSpan, _Mapping]]] = ..., weight: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., domains: _Optional[_Iterable[str]] = ...) -> None: ...

class PhraseInput(_message.Message):
    __slots__ = ("phrase", "weight", "labels", "domain", "domains")
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    phrase: str
    weight: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    domain: str
    domains: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phrase: _Optional[str] = ..., weight: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., domain: _Optional[str] = ..., domains: _Optional[_Iterable[str]] = ...) -> None: ...

class SuggestRequest(_message.Message):
    __slots__ = ("prefix", "limit", "domain", "domains", "match_types", "max_edits")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    MATCH_TYPES_FIELD_NUMBER: _ClassVar[int]
    MAX_EDITS_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    limit: int
    domain: str
    domains: _containers.RepeatedScalarFieldContainer[str]
    match_types: _containers.RepeatedScalarFieldContainer[MatchType]
    max_edits: int
    def __init__(self, prefix: _Optional[str] = ..., limit: _Optional[int] = ..., domain: _Optional[str] = ..., domains: _Optional[_Iterable[str]] = ..., match_types: _Optional[_Iterable[_Union[MatchType, str]]] = ..., max_edits: _Optional[int] = ...) -> None: ...

class SuggestResponse(_message.Message):
    __slots__ = ("suggestions",)
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    suggestions: _containers.RepeatedCompositeFieldContainer[Suggestion]
    def __init__(self, suggestions: _Optional[_Iterable[_Union[Suggestion, _Mapping]]] = ...) -> None: ...

class AddPhrasesRequest(_message.Message):
    __slots__ = ("phrases",)
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[PhraseInput]
    def __init__(self, phrases: _Optional[_Iterable[_Union[PhraseInput, _Mapping]]] = ...) -> None: ...

class AddPhrasesResponse(_message.Message):
    __slots__ = ("phrase_ids",)
    PHRASE_IDS_FIELD_NUMBER: _ClassVar[int]
    phrase_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phrase_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeletePhrasesRequest(_message.Message):
    __slots__ = ("phrase_ids",)
    PHRASE_IDS_FIELD_NUMBER: _ClassVar[int]
    phrase_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, phrase_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeletePhrasesResponse(_message.Message):
    __slots__ = ("deleted_count",)
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    def __init__(self, deleted_count: _Optional[int] = ...) -> None: ...

class UpdatePhrasesRequest(_message.Message):
    __slots__ = ("phrases", "updates")
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    UPDATES_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    updates: _containers.RepeatedCompositeFieldContainer[PhraseUpdate]
    def __init__(self, phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ..., updates: _Optional[_Iterable[_Union[PhraseUpdate, _Mapping]]] = ...) -> None: ...

class UpdatePhrasesResponse(_message.Message):
    __slots__ = ("phrases",)
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    def __init__(self, phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ...) -> None: ...

class ListPhrasesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "domain", "labels", "domains", "text_prefix")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOMAINS_FIELD_NUMBER: _ClassVar[int]
    TEXT_PREFIX_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    domain: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    domains: _containers.RepeatedScalarFieldContainer[str]
    text_prefix: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., domain: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., domains: _Optional[_Iterable[str]] = ..., text_prefix: _Optional[str] = ...) -> None: ...

class ListPhrasesResponse(_message.Message):
    __slots__ = ("phrases", "next_page_token")
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    next_page_token: str
    def __init__(self, phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

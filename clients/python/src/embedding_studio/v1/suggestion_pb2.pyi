from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Phrase(_message.Message):
    __slots__ = ("phrase_id", "phrase", "weight", "labels", "domain")
    PHRASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    phrase_id: str
    phrase: str
    weight: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    domain: str
    def __init__(self, phrase_id: _Optional[str] = ..., phrase: _Optional[str] = ..., weight: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., domain: _Optional[str] = ...) -> None: ...

class Suggestion(_message.Message):
    __slots__ = ("phrase_id", "phrase", "score")
    PHRASE_ID_FIELD_NUMBER: _ClassVar[int]
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    phrase_id: str
    phrase: str
    score: float
    def __init__(self, phrase_id: _Optional[str] = ..., phrase: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class PhraseInput(_message.Message):
    __slots__ = ("phrase", "weight", "labels", "domain")
    PHRASE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    phrase: str
    weight: float
    labels: _containers.RepeatedScalarFieldContainer[str]
    domain: str
    def __init__(self, phrase: _Optional[str] = ..., weight: _Optional[float] = ..., labels: _Optional[_Iterable[str]] = ..., domain: _Optional[str] = ...) -> None: ...

class SuggestRequest(_message.Message):
    __slots__ = ("prefix", "limit", "domain")
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    prefix: str
    limit: int
    domain: str
    def __init__(self, prefix: _Optional[str] = ..., limit: _Optional[int] = ..., domain: _Optional[str] = ...) -> None: ...

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
    __slots__ = ("phrases",)
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    def __init__(self, phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ...) -> None: ...

class UpdatePhrasesResponse(_message.Message):
    __slots__ = ("phrases",)
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    def __init__(self, phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ...) -> None: ...

class ListPhrasesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "domain")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    DOMAIN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    domain: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., domain: _Optional[str] = ...) -> None: ...

class ListPhrasesResponse(_message.Message):
    __slots__ = ("phrases", "next_page_token")
    PHRASES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    phrases: _containers.RepeatedCompositeFieldContainer[Phrase]
    next_page_token: str
    def __init__(self, phrases: _Optional[_Iterable[_Union[Phrase, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

from embedding_studio.v1 import common_pb2 as _common_pb2
from embedding_studio.v1 import ranking_pb2 as _ranking_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SearchRequest(_message.Message):
    __slots__ = ("query_text", "query_vector", "filter", "sort", "limit", "max_distance", "page_token", "collection_id", "user_id", "create_session", "ranking", "lexical_query", "interleave")
    QUERY_TEXT_FIELD_NUMBER: _ClassVar[int]
    QUERY_VECTOR_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    CREATE_SESSION_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_QUERY_FIELD_NUMBER: _ClassVar[int]
    INTERLEAVE_FIELD_NUMBER: _ClassVar[int]
    query_text: str
    query_vector: _common_pb2.Vector
    filter: _common_pb2.Filter
    sort: _common_pb2.SortBy
    limit: int
    max_distance: float
    page_token: str
    collection_id: str
    user_id: str
    create_session: bool
    ranking: _ranking_pb2.RankingSpec
    lexical_query: str
    interleave: bool
    def __init__(self, query_text: _Optional[str] = ..., query_vector: _Optional[_Union[_common_pb2.Vector, _Mapping]] = ..., filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., sort: _Optional[_Union[_common_pb2.SortBy, _Mapping]] = ..., limit: _Optional[int] = ..., max_distance: _Optional[float] = ..., page_token: _Optional[str] = ..., collection_id: _Optional[str] = ..., user_id: _Optional[str] = ..., create_session: _Optional[bool] = ..., ranking: _Optional[_Union[_ranking_pb2.RankingSpec, _Mapping]] = ..., lexical_query: _Optional[str] = ..., interleave: _Optional[bool] = ...) -> None: ...

class SearchResponse(_message.Message):
    __slots__ = ("results", "next_page_token", "session_id", "collection_id", "ranking", "ranking_version", "interleaved_collection_id")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIELD_NUMBER: _ClassVar[int]
    RANKING_VERSION_FIELD_NUMBER: _ClassVar[int]
    INTERLEAVED_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_common_pb2.SearchResult]
    next_page_token: str
    session_id: str
    collection_id: str
    ranking: _ranking_pb2.RankingSpec
    ranking_version: int
    interleaved_collection_id: str
    def __init__(self, results: _Optional[_Iterable[_Union[_common_pb2.SearchResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., session_id: _Optional[str] = ..., collection_id: _Optional[str] = ..., ranking: _Optional[_Union[_ranking_pb2.RankingSpec, _Mapping]] = ..., ranking_version: _Optional[int] = ..., interleaved_collection_id: _Optional[str] = ...) -> None: ...

class SearchByPayloadRequest(_message.Message):
    __slots__ = ("filter", "sort", "limit", "page_token", "collection_id", "user_id")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    SORT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    filter: _common_pb2.Filter
    sort: _common_pb2.SortBy
    limit: int
    page_token: str
    collection_id: str
    user_id: str
    def __init__(self, filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., sort: _Optional[_Union[_common_pb2.SortBy, _Mapping]] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ..., collection_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class SearchByPayloadResponse(_message.Message):
    __slots__ = ("items", "next_page_token", "collection_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.Item]
    next_page_token: str
    collection_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.Item, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., collection_id: _Optional[str] = ...) -> None: ...

class CountItemsRequest(_message.Message):
    __slots__ = ("filter", "collection_id")
    FILTER_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    filter: _common_pb2.Filter
    collection_id: str
    def __init__(self, filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., collection_id: _Optional[str] = ...) -> None: ...

class CountItemsResponse(_message.Message):
    __slots__ = ("count", "collection_id")
    COUNT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    count: int
    collection_id: str
    def __init__(self, count: _Optional[int] = ..., collection_id: _Optional[str] = ...) -> None: ...

class FindSimilarItemsRequest(_message.Message):
    __slots__ = ("object_id", "filter", "limit", "max_distance", "page_token", "collection_id", "user_id")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    object_id: str
    filter: _common_pb2.Filter
    limit: int
    max_distance: float
    page_token: str
    collection_id: str
    user_id: str
    def __init__(self, object_id: _Optional[str] = ..., filter: _Optional[_Union[_common_pb2.Filter, _Mapping]] = ..., limit: _Optional[int] = ..., max_distance: _Optional[float] = ..., page_token: _Optional[str] = ..., collection_id: _Optional[str] = ..., user_id: _Optional[str] = ...) -> None: ...

class FindSimilarItemsResponse(_message.Message):
    __slots__ = ("results", "next_page_token", "collection_id")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_common_pb2.SearchResult]
    next_page_token: str
    collection_id: str
    def __init__(self, results: _Optional[_Iterable[_Union[_common_pb2.SearchResult, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., collection_id: _Optional[str] = ...) -> None: ...

class PredictCategoriesRequest(_message.Message):
    __slots__ = ("query_text", "limit", "collection_id", "category_field", "query_vector", "selector")
    QUERY_TEXT_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_FIELD_NUMBER: _ClassVar[int]
    QUERY_VECTOR_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    query_text: str
    limit: int
    collection_id: str
    category_field: str
    query_vector: _common_pb2.Vector
    selector: CategorySelector
    def __init__(self, query_text: _Optional[str] = ..., limit: _Optional[int] = ..., collection_id: _Optional[str] = ..., category_field: _Optional[str] = ..., query_vector: _Optional[_Union[_common_pb2.Vector, _Mapping]] = ..., selector: _Optional[_Union[CategorySelector, _Mapping]] = ...) -> None: ...

class CategorySelector(_message.Message):
    __slots__ = ("distance", "probability")
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    distance: DistanceSelector
    probability: ProbabilitySelector
    def __init__(self, distance: _Optional[_Union[DistanceSelector, _Mapping]] = ..., probability: _Optional[_Union[ProbabilitySelector, _Mapping]] = ...) -> None: ...

class DistanceSelector(_message.Message):
    __slots__ = ("max_distance",)
    MAX_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    max_distance: float
    def __init__(self, max_distance: _Optional[float] = ...) -> None: ...

class ProbabilitySelector(_message.Message):
    __slots__ = ("temperature", "min_probability")
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MIN_PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    temperature: float
    min_probability: float
    def __init__(self, temperature: _Optional[float] = ..., min_probability: _Optional[float] = ...) -> None: ...

class CategoryPrediction(_message.Message):
    __slots__ = ("category", "probability", "category_id", "name", "distance", "score")
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    category: str
    probability: float
    category_id: str
    name: str
    distance: float
    score: float
    def __init__(self, category: _Optional[str] = ..., probability: _Optional[float] = ..., category_id: _Optional[str] = ..., name: _Optional[str] = ..., distance: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class PredictCategoriesResponse(_message.Message):
    __slots__ = ("predictions", "categories_collection_id")
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    predictions: _containers.RepeatedCompositeFieldContainer[CategoryPrediction]
    categories_collection_id: str
    def __init__(self, predictions: _Optional[_Iterable[_Union[CategoryPrediction, _Mapping]]] = ..., categories_collection_id: _Optional[str] = ...) -> None: ...

import datetime

from embedding_studio.v1 import source_pb2 as _source_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class MatchOperator(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MATCH_OPERATOR_UNSPECIFIED: _ClassVar[MatchOperator]
    MATCH_OPERATOR_OR: _ClassVar[MatchOperator]
    MATCH_OPERATOR_AND: _ClassVar[MatchOperator]

class SortOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SORT_ORDER_UNSPECIFIED: _ClassVar[SortOrder]
    SORT_ORDER_ASC: _ClassVar[SortOrder]
    SORT_ORDER_DESC: _ClassVar[SortOrder]

class Metric(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    METRIC_UNSPECIFIED: _ClassVar[Metric]
    METRIC_COSINE: _ClassVar[Metric]
    METRIC_DOT: _ClassVar[Metric]
    METRIC_EUCLIDEAN: _ClassVar[Metric]

class Aggregation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AGGREGATION_UNSPECIFIED: _ClassVar[Aggregation]
    AGGREGATION_MIN: _ClassVar[Aggregation]
    AGGREGATION_AVG: _ClassVar[Aggregation]

class TaskKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_KIND_UNSPECIFIED: _ClassVar[TaskKind]
    TASK_KIND_UPSERTION: _ClassVar[TaskKind]
    TASK_KIND_DELETION: _ClassVar[TaskKind]
    TASK_KIND_IMPROVEMENT: _ClassVar[TaskKind]
    TASK_KIND_FINE_TUNING: _ClassVar[TaskKind]
    TASK_KIND_DEPLOYMENT: _ClassVar[TaskKind]
    TASK_KIND_REINDEX: _ClassVar[TaskKind]
    TASK_KIND_RANKING_FIT: _ClassVar[TaskKind]
    TASK_KIND_CATEGORIES_SWITCH: _ClassVar[TaskKind]
    TASK_KIND_IMPORT: _ClassVar[TaskKind]
    TASK_KIND_FILTERABLE_FIELDS: _ClassVar[TaskKind]

class TaskStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TASK_STATUS_UNSPECIFIED: _ClassVar[TaskStatus]
    TASK_STATUS_PENDING: _ClassVar[TaskStatus]
    TASK_STATUS_PROCESSING: _ClassVar[TaskStatus]
    TASK_STATUS_DONE: _ClassVar[TaskStatus]
    TASK_STATUS_FAILED: _ClassVar[TaskStatus]
    TASK_STATUS_CANCELED: _ClassVar[TaskStatus]
    TASK_STATUS_WAITING: _ClassVar[TaskStatus]
MATCH_OPERATOR_UNSPECIFIED: MatchOperator
MATCH_OPERATOR_OR: MatchOperator
MATCH_OPERATOR_AND: MatchOperator
SORT_ORDER_UNSPECIFIED: SortOrder
SORT_ORDER_ASC: SortOrder
SORT_ORDER_DESC: SortOrder
METRIC_UNSPECIFIED: Metric
METRIC_COSINE: Metric
METRIC_DOT: Metric
METRIC_EUCLIDEAN: Metric
AGGREGATION_UNSPECIFIED: Aggregation
AGGREGATION_MIN: Aggregation
AGGREGATION_AVG: Aggregation
TASK_KIND_UNSPECIFIED: TaskKind
TASK_KIND_UPSERTION: TaskKind
TASK_KIND_DELETION: TaskKind
TASK_KIND_IMPROVEMENT: TaskKind
TASK_KIND_FINE_TUNING: TaskKind
TASK_KIND_DEPLOYMENT: TaskKind
TASK_KIND_REINDEX: TaskKind
TASK_KIND_RANKING_FIT: TaskKind
TASK_KIND_CATEGORIES_SWITCH: TaskKind
TASK_KIND_IMPORT: TaskKind
TASK_KIND_FILTERABLE_FIELDS: TaskKind
TASK_STATUS_UNSPECIFIED: TaskStatus
TASK_STATUS_PENDING: TaskStatus
TASK_STATUS_PROCESSING: TaskStatus
TASK_STATUS_DONE: TaskStatus
TASK_STATUS_FAILED: TaskStatus
TASK_STATUS_CANCELED: TaskStatus
TASK_STATUS_WAITING: TaskStatus

class Filter(_message.Message):
    __slots__ = ("term", "terms", "range", "exists", "match", "wildcard", "bool", "nested")
    TERM_FIELD_NUMBER: _ClassVar[int]
    TERMS_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    EXISTS_FIELD_NUMBER: _ClassVar[int]
    MATCH_FIELD_NUMBER: _ClassVar[int]
    WILDCARD_FIELD_NUMBER: _ClassVar[int]
    BOOL_FIELD_NUMBER: _ClassVar[int]
    NESTED_FIELD_NUMBER: _ClassVar[int]
    term: TermFilter
    terms: TermsFilter
    range: RangeFilter
    exists: ExistsFilter
    match: MatchFilter
    wildcard: WildcardFilter
    bool: BoolFilter
    nested: NestedFilter
    def __init__(self, term: _Optional[_Union[TermFilter, _Mapping]] = ..., terms: _Optional[_Union[TermsFilter, _Mapping]] = ..., range: _Optional[_Union[RangeFilter, _Mapping]] = ..., exists: _Optional[_Union[ExistsFilter, _Mapping]] = ..., match: _Optional[_Union[MatchFilter, _Mapping]] = ..., wildcard: _Optional[_Union[WildcardFilter, _Mapping]] = ..., bool: _Optional[_Union[BoolFilter, _Mapping]] = ..., nested: _Optional[_Union[NestedFilter, _Mapping]] = ...) -> None: ...

class TermFilter(_message.Message):
    __slots__ = ("field", "value")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    field: str
    value: _struct_pb2.Value
    def __init__(self, field: _Optional[str] = ..., value: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class TermsFilter(_message.Message):
    __slots__ = ("field", "values")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    field: str
    values: _containers.RepeatedCompositeFieldContainer[_struct_pb2.Value]
    def __init__(self, field: _Optional[str] = ..., values: _Optional[_Iterable[_Union[_struct_pb2.Value, _Mapping]]] = ...) -> None: ...

class RangeFilter(_message.Message):
    __slots__ = ("field", "gt", "gte", "lt", "lte")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    GT_FIELD_NUMBER: _ClassVar[int]
    GTE_FIELD_NUMBER: _ClassVar[int]
    LT_FIELD_NUMBER: _ClassVar[int]
    LTE_FIELD_NUMBER: _ClassVar[int]
    field: str
    gt: _struct_pb2.Value
    gte: _struct_pb2.Value
    lt: _struct_pb2.Value
    lte: _struct_pb2.Value
    def __init__(self, field: _Optional[str] = ..., gt: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., gte: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., lt: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ..., lte: _Optional[_Union[_struct_pb2.Value, _Mapping]] = ...) -> None: ...

class ExistsFilter(_message.Message):
    __slots__ = ("field",)
    FIELD_FIELD_NUMBER: _ClassVar[int]
    field: str
    def __init__(self, field: _Optional[str] = ...) -> None: ...

class MatchFilter(_message.Message):
    __slots__ = ("field", "query", "operator")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    QUERY_FIELD_NUMBER: _ClassVar[int]
    OPERATOR_FIELD_NUMBER: _ClassVar[int]
    field: str
    query: str
    operator: MatchOperator
    def __init__(self, field: _Optional[str] = ..., query: _Optional[str] = ..., operator: _Optional[_Union[MatchOperator, str]] = ...) -> None: ...

class WildcardFilter(_message.Message):
    __slots__ = ("field", "pattern", "case_insensitive")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    PATTERN_FIELD_NUMBER: _ClassVar[int]
    CASE_INSENSITIVE_FIELD_NUMBER: _ClassVar[int]
    field: str
    pattern: str
    case_insensitive: bool
    def __init__(self, field: _Optional[str] = ..., pattern: _Optional[str] = ..., case_insensitive: _Optional[bool] = ...) -> None: ...

class BoolFilter(_message.Message):
    __slots__ = ("must", "should", "must_not", "minimum_should_match")
    MUST_FIELD_NUMBER: _ClassVar[int]
    SHOULD_FIELD_NUMBER: _ClassVar[int]
    MUST_NOT_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_SHOULD_MATCH_FIELD_NUMBER: _ClassVar[int]
    must: _containers.RepeatedCompositeFieldContainer[Filter]
    should: _containers.RepeatedCompositeFieldContainer[Filter]
    must_not: _containers.RepeatedCompositeFieldContainer[Filter]
    minimum_should_match: int
    def __init__(self, must: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., should: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., must_not: _Optional[_Iterable[_Union[Filter, _Mapping]]] = ..., minimum_should_match: _Optional[int] = ...) -> None: ...

class NestedFilter(_message.Message):
    __slots__ = ("path", "filter")
    PATH_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    path: str
    filter: Filter
    def __init__(self, path: _Optional[str] = ..., filter: _Optional[_Union[Filter, _Mapping]] = ...) -> None: ...

class SortBy(_message.Message):
    __slots__ = ("field", "order")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    ORDER_FIELD_NUMBER: _ClassVar[int]
    field: str
    order: SortOrder
    def __init__(self, field: _Optional[str] = ..., order: _Optional[_Union[SortOrder, str]] = ...) -> None: ...

class Vector(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, values: _Optional[_Iterable[float]] = ...) -> None: ...

class ItemPart(_message.Message):
    __slots__ = ("part_id", "text", "vector")
    PART_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    part_id: str
    text: str
    vector: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, part_id: _Optional[str] = ..., text: _Optional[str] = ..., vector: _Optional[_Iterable[float]] = ...) -> None: ...

class Item(_message.Message):
    __slots__ = ("object_id", "payload", "parts", "user_id", "update_time", "version", "source")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    object_id: str
    payload: _struct_pb2.Struct
    parts: _containers.RepeatedCompositeFieldContainer[ItemPart]
    user_id: str
    update_time: _timestamp_pb2.Timestamp
    version: int
    source: _source_pb2.ContentSource
    def __init__(self, object_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., parts: _Optional[_Iterable[_Union[ItemPart, _Mapping]]] = ..., user_id: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[int] = ..., source: _Optional[_Union[_source_pb2.ContentSource, _Mapping]] = ...) -> None: ...

class SearchResult(_message.Message):
    __slots__ = ("object_id", "distance", "payload", "matched_part_id", "user_id", "score", "lexical_score")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    MATCHED_PART_ID_FIELD_NUMBER: _ClassVar[int]
    USER_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_SCORE_FIELD_NUMBER: _ClassVar[int]
    object_id: str
    distance: float
    payload: _struct_pb2.Struct
    matched_part_id: str
    user_id: str
    score: float
    lexical_score: float
    def __init__(self, object_id: _Optional[str] = ..., distance: _Optional[float] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., matched_part_id: _Optional[str] = ..., user_id: _Optional[str] = ..., score: _Optional[float] = ..., lexical_score: _Optional[float] = ...) -> None: ...

class Task(_message.Message):
    __slots__ = ("task_id", "kind", "status", "progress", "progress_message", "error", "attempts", "idempotency_key", "result", "create_time", "update_time", "start_time", "finish_time", "parent_task_id", "upsertion", "deletion", "improvement", "deployment", "reindex", "ranking_fit", "categories_switch", "import_result")
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    FINISH_TIME_FIELD_NUMBER: _ClassVar[int]
    PARENT_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    UPSERTION_FIELD_NUMBER: _ClassVar[int]
    DELETION_FIELD_NUMBER: _ClassVar[int]
    IMPROVEMENT_FIELD_NUMBER: _ClassVar[int]
    DEPLOYMENT_FIELD_NUMBER: _ClassVar[int]
    REINDEX_FIELD_NUMBER: _ClassVar[int]
    RANKING_FIT_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_SWITCH_FIELD_NUMBER: _ClassVar[int]
    IMPORT_RESULT_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    kind: TaskKind
    status: TaskStatus
    progress: float
    progress_message: str
    error: str
    attempts: int
    idempotency_key: str
    result: _struct_pb2.Struct
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    start_time: _timestamp_pb2.Timestamp
    finish_time: _timestamp_pb2.Timestamp
    parent_task_id: str
    upsertion: UpsertionResult
    deletion: DeletionResult
    improvement: ImprovementResult
    deployment: DeploymentResult
    reindex: ReindexResult
    ranking_fit: RankingFitResult
    categories_switch: CategoriesSwitchResult
    import_result: ImportResult
    def __init__(self, task_id: _Optional[str] = ..., kind: _Optional[_Union[TaskKind, str]] = ..., status: _Optional[_Union[TaskStatus, str]] = ..., progress: _Optional[float] = ..., progress_message: _Optional[str] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., result: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., finish_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., parent_task_id: _Optional[str] = ..., upsertion: _Optional[_Union[UpsertionResult, _Mapping]] = ..., deletion: _Optional[_Union[DeletionResult, _Mapping]] = ..., improvement: _Optional[_Union[ImprovementResult, _Mapping]] = ..., deployment: _Optional[_Union[DeploymentResult, _Mapping]] = ..., reindex: _Optional[_Union[ReindexResult, _Mapping]] = ..., ranking_fit: _Optional[_Union[RankingFitResult, _Mapping]] = ..., categories_switch: _Optional[_Union[CategoriesSwitchResult, _Mapping]] = ..., import_result: _Optional[_Union[ImportResult, _Mapping]] = ...) -> None: ...

class CategoriesSwitchResult(_message.Message):
    __slots__ = ("items_model_id", "previous_categories_collection_id", "categories_collection_id", "categories_copied")
    ITEMS_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CATEGORIES_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_COPIED_FIELD_NUMBER: _ClassVar[int]
    items_model_id: str
    previous_categories_collection_id: str
    categories_collection_id: str
    categories_copied: int
    def __init__(self, items_model_id: _Optional[str] = ..., previous_categories_collection_id: _Optional[str] = ..., categories_collection_id: _Optional[str] = ..., categories_copied: _Optional[int] = ...) -> None: ...

class UpsertionResult(_message.Message):
    __slots__ = ("upserted_count", "superseded_count", "superseded_object_ids", "failed_count", "failed_items")
    UPSERTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    FAILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    upserted_count: int
    superseded_count: int
    superseded_object_ids: _containers.RepeatedScalarFieldContainer[str]
    failed_count: int
    failed_items: _containers.RepeatedCompositeFieldContainer[_source_pb2.ItemFailure]
    def __init__(self, upserted_count: _Optional[int] = ..., superseded_count: _Optional[int] = ..., superseded_object_ids: _Optional[_Iterable[str]] = ..., failed_count: _Optional[int] = ..., failed_items: _Optional[_Iterable[_Union[_source_pb2.ItemFailure, _Mapping]]] = ...) -> None: ...

class ImportResult(_message.Message):
    __slots__ = ("imported_count", "failed_count", "failed_items", "superseded_count", "sources_done")
    IMPORTED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_COUNT_FIELD_NUMBER: _ClassVar[int]
    FAILED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCES_DONE_FIELD_NUMBER: _ClassVar[int]
    imported_count: int
    failed_count: int
    failed_items: _containers.RepeatedCompositeFieldContainer[_source_pb2.ItemFailure]
    superseded_count: int
    sources_done: int
    def __init__(self, imported_count: _Optional[int] = ..., failed_count: _Optional[int] = ..., failed_items: _Optional[_Iterable[_Union[_source_pb2.ItemFailure, _Mapping]]] = ..., superseded_count: _Optional[int] = ..., sources_done: _Optional[int] = ...) -> None: ...

class DeletionResult(_message.Message):
    __slots__ = ("deleted_count", "missing_count", "superseded_count", "superseded_object_ids")
    DELETED_COUNT_FIELD_NUMBER: _ClassVar[int]
    MISSING_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUPERSEDED_OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    deleted_count: int
    missing_count: int
    superseded_count: int
    superseded_object_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, deleted_count: _Optional[int] = ..., missing_count: _Optional[int] = ..., superseded_count: _Optional[int] = ..., superseded_object_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ImprovementResult(_message.Message):
    __slots__ = ("improved_sessions", "skipped_sessions", "copies_written", "skipped_because", "recomputed_in", "recomputed_from", "users")
    class SkippedBecauseEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    IMPROVED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    COPIES_WRITTEN_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_BECAUSE_FIELD_NUMBER: _ClassVar[int]
    RECOMPUTED_IN_FIELD_NUMBER: _ClassVar[int]
    RECOMPUTED_FROM_FIELD_NUMBER: _ClassVar[int]
    USERS_FIELD_NUMBER: _ClassVar[int]
    improved_sessions: int
    skipped_sessions: int
    copies_written: int
    skipped_because: _containers.ScalarMap[str, int]
    recomputed_in: str
    recomputed_from: str
    users: int
    def __init__(self, improved_sessions: _Optional[int] = ..., skipped_sessions: _Optional[int] = ..., copies_written: _Optional[int] = ..., skipped_because: _Optional[_Mapping[str, int]] = ..., recomputed_in: _Optional[str] = ..., recomputed_from: _Optional[str] = ..., users: _Optional[int] = ...) -> None: ...

class DeploymentResult(_message.Message):
    __slots__ = ("action", "model_id", "triton_models", "deployed")
    ACTION_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    TRITON_MODELS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_FIELD_NUMBER: _ClassVar[int]
    action: str
    model_id: str
    triton_models: _containers.RepeatedScalarFieldContainer[str]
    deployed: bool
    def __init__(self, action: _Optional[str] = ..., model_id: _Optional[str] = ..., triton_models: _Optional[_Iterable[str]] = ..., deployed: _Optional[bool] = ...) -> None: ...

class ReindexResult(_message.Message):
    __slots__ = ("copied", "already_present", "gone", "item_count", "source_item_count", "subtasks", "destination_collection_id", "user_copies_task_id", "checkpoint", "pages", "categories_copied")
    COPIED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_PRESENT_FIELD_NUMBER: _ClassVar[int]
    GONE_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    SUBTASKS_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    USER_COPIES_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    PAGES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_COPIED_FIELD_NUMBER: _ClassVar[int]
    copied: int
    already_present: int
    gone: int
    item_count: int
    source_item_count: int
    subtasks: int
    destination_collection_id: str
    user_copies_task_id: str
    checkpoint: str
    pages: int
    categories_copied: int
    def __init__(self, copied: _Optional[int] = ..., already_present: _Optional[int] = ..., gone: _Optional[int] = ..., item_count: _Optional[int] = ..., source_item_count: _Optional[int] = ..., subtasks: _Optional[int] = ..., destination_collection_id: _Optional[str] = ..., user_copies_task_id: _Optional[str] = ..., checkpoint: _Optional[str] = ..., pages: _Optional[int] = ..., categories_copied: _Optional[int] = ...) -> None: ...

class RankingFitResult(_message.Message):
    __slots__ = ("version", "went_live", "metrics", "note")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    WENT_LIVE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    version: int
    went_live: bool
    metrics: _containers.ScalarMap[str, float]
    note: str
    def __init__(self, version: _Optional[int] = ..., went_live: _Optional[bool] = ..., metrics: _Optional[_Mapping[str, float]] = ..., note: _Optional[str] = ...) -> None: ...

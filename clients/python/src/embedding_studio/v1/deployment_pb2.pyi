import datetime

from embedding_studio.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CollectionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLLECTION_STATE_UNSPECIFIED: _ClassVar[CollectionState]
    COLLECTION_STATE_GREEN: _ClassVar[CollectionState]
    COLLECTION_STATE_BLUE: _ClassVar[CollectionState]
    COLLECTION_STATE_RETIRED: _ClassVar[CollectionState]

class FieldType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FIELD_TYPE_UNSPECIFIED: _ClassVar[FieldType]
    FIELD_TYPE_KEYWORD: _ClassVar[FieldType]
    FIELD_TYPE_NUMBER: _ClassVar[FieldType]

class InterleavingDecision(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    INTERLEAVING_DECISION_UNSPECIFIED: _ClassVar[InterleavingDecision]
    INTERLEAVING_DECISION_NO_DIFFERENCE: _ClassVar[InterleavingDecision]
    INTERLEAVING_DECISION_GREEN_BETTER: _ClassVar[InterleavingDecision]
    INTERLEAVING_DECISION_BLUE_BETTER: _ClassVar[InterleavingDecision]
COLLECTION_STATE_UNSPECIFIED: CollectionState
COLLECTION_STATE_GREEN: CollectionState
COLLECTION_STATE_BLUE: CollectionState
COLLECTION_STATE_RETIRED: CollectionState
FIELD_TYPE_UNSPECIFIED: FieldType
FIELD_TYPE_KEYWORD: FieldType
FIELD_TYPE_NUMBER: FieldType
INTERLEAVING_DECISION_UNSPECIFIED: InterleavingDecision
INTERLEAVING_DECISION_NO_DIFFERENCE: InterleavingDecision
INTERLEAVING_DECISION_GREEN_BETTER: InterleavingDecision
INTERLEAVING_DECISION_BLUE_BETTER: InterleavingDecision

class Model(_message.Message):
    __slots__ = ("model_id", "name", "version", "dimensions", "metric", "aggregation", "parent_model_id", "deployed", "create_time")
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    PARENT_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOYED_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    name: str
    version: str
    dimensions: int
    metric: _common_pb2.Metric
    aggregation: _common_pb2.Aggregation
    parent_model_id: str
    deployed: bool
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, model_id: _Optional[str] = ..., name: _Optional[str] = ..., version: _Optional[str] = ..., dimensions: _Optional[int] = ..., metric: _Optional[_Union[_common_pb2.Metric, str]] = ..., aggregation: _Optional[_Union[_common_pb2.Aggregation, str]] = ..., parent_model_id: _Optional[str] = ..., deployed: _Optional[bool] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Collection(_message.Message):
    __slots__ = ("collection_id", "model_id", "state", "dimensions", "metric", "aggregation", "item_count", "create_time", "filterable_fields")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DIMENSIONS_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    AGGREGATION_FIELD_NUMBER: _ClassVar[int]
    ITEM_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    FILTERABLE_FIELDS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    model_id: str
    state: CollectionState
    dimensions: int
    metric: _common_pb2.Metric
    aggregation: _common_pb2.Aggregation
    item_count: int
    create_time: _timestamp_pb2.Timestamp
    filterable_fields: _containers.RepeatedCompositeFieldContainer[FilterableField]
    def __init__(self, collection_id: _Optional[str] = ..., model_id: _Optional[str] = ..., state: _Optional[_Union[CollectionState, str]] = ..., dimensions: _Optional[int] = ..., metric: _Optional[_Union[_common_pb2.Metric, str]] = ..., aggregation: _Optional[_Union[_common_pb2.Aggregation, str]] = ..., item_count: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., filterable_fields: _Optional[_Iterable[_Union[FilterableField, _Mapping]]] = ...) -> None: ...

class FilterableField(_message.Message):
    __slots__ = ("field", "type")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    field: str
    type: FieldType
    def __init__(self, field: _Optional[str] = ..., type: _Optional[_Union[FieldType, str]] = ...) -> None: ...

class DeployModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class DeployModelResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class UndeployModelRequest(_message.Message):
    __slots__ = ("model_id",)
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    model_id: str
    def __init__(self, model_id: _Optional[str] = ...) -> None: ...

class UndeployModelResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models", "next_page_token")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[Model]
    next_page_token: str
    def __init__(self, models: _Optional[_Iterable[_Union[Model, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections", "next_page_token")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[Collection]
    next_page_token: str
    def __init__(self, collections: _Optional[_Iterable[_Union[Collection, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetBlueCollectionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetBlueCollectionResponse(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    def __init__(self, collection: _Optional[_Union[Collection, _Mapping]] = ...) -> None: ...

class SwitchBlueCollectionRequest(_message.Message):
    __slots__ = ("collection_id",)
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    def __init__(self, collection_id: _Optional[str] = ...) -> None: ...

class SwitchBlueCollectionResponse(_message.Message):
    __slots__ = ("blue", "previous")
    BLUE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    blue: Collection
    previous: Collection
    def __init__(self, blue: _Optional[_Union[Collection, _Mapping]] = ..., previous: _Optional[_Union[Collection, _Mapping]] = ...) -> None: ...

class RollbackBlueCollectionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RollbackBlueCollectionResponse(_message.Message):
    __slots__ = ("blue", "previous")
    BLUE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    blue: Collection
    previous: Collection
    def __init__(self, blue: _Optional[_Union[Collection, _Mapping]] = ..., previous: _Optional[_Union[Collection, _Mapping]] = ...) -> None: ...

class StartReindexRequest(_message.Message):
    __slots__ = ("source_collection_id", "destination_model_id", "idempotency_key")
    SOURCE_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    source_collection_id: str
    destination_model_id: str
    idempotency_key: str
    def __init__(self, source_collection_id: _Optional[str] = ..., destination_model_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class StartReindexResponse(_message.Message):
    __slots__ = ("task", "destination_collection_id")
    TASK_FIELD_NUMBER: _ClassVar[int]
    DESTINATION_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    destination_collection_id: str
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ..., destination_collection_id: _Optional[str] = ...) -> None: ...

class DeleteCollectionRequest(_message.Message):
    __slots__ = ("collection_id",)
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    def __init__(self, collection_id: _Optional[str] = ...) -> None: ...

class DeleteCollectionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInterleavingVerdictRequest(_message.Message):
    __slots__ = ("green_collection_id", "confidence")
    GREEN_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    green_collection_id: str
    confidence: float
    def __init__(self, green_collection_id: _Optional[str] = ..., confidence: _Optional[float] = ...) -> None: ...

class GetInterleavingVerdictResponse(_message.Message):
    __slots__ = ("green_collection_id", "blue_collection_id", "decision", "sessions", "green_wins", "blue_wins", "ties", "p_value", "green_win_rate", "green_win_rate_lower", "green_win_rate_upper", "confidence")
    GREEN_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    BLUE_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    DECISION_FIELD_NUMBER: _ClassVar[int]
    SESSIONS_FIELD_NUMBER: _ClassVar[int]
    GREEN_WINS_FIELD_NUMBER: _ClassVar[int]
    BLUE_WINS_FIELD_NUMBER: _ClassVar[int]
    TIES_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    GREEN_WIN_RATE_FIELD_NUMBER: _ClassVar[int]
    GREEN_WIN_RATE_LOWER_FIELD_NUMBER: _ClassVar[int]
    GREEN_WIN_RATE_UPPER_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_FIELD_NUMBER: _ClassVar[int]
    green_collection_id: str
    blue_collection_id: str
    decision: InterleavingDecision
    sessions: int
    green_wins: int
    blue_wins: int
    ties: int
    p_value: float
    green_win_rate: float
    green_win_rate_lower: float
    green_win_rate_upper: float
    confidence: float
    def __init__(self, green_collection_id: _Optional[str] = ..., blue_collection_id: _Optional[str] = ..., decision: _Optional[_Union[InterleavingDecision, str]] = ..., sessions: _Optional[int] = ..., green_wins: _Optional[int] = ..., blue_wins: _Optional[int] = ..., ties: _Optional[int] = ..., p_value: _Optional[float] = ..., green_win_rate: _Optional[float] = ..., green_win_rate_lower: _Optional[float] = ..., green_win_rate_upper: _Optional[float] = ..., confidence: _Optional[float] = ...) -> None: ...

class SetFilterableFieldsRequest(_message.Message):
    __slots__ = ("collection_id", "fields", "idempotency_key")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    fields: _containers.RepeatedCompositeFieldContainer[FilterableField]
    idempotency_key: str
    def __init__(self, collection_id: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FilterableField, _Mapping]]] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class SetFilterableFieldsResponse(_message.Message):
    __slots__ = ("collection", "task")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    collection: Collection
    task: _common_pb2.Task
    def __init__(self, collection: _Optional[_Union[Collection, _Mapping]] = ..., task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

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

class RankingMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RANKING_METHOD_UNSPECIFIED: _ClassVar[RankingMethod]
    RANKING_METHOD_VECTOR: _ClassVar[RankingMethod]
    RANKING_METHOD_LEXICAL: _ClassVar[RankingMethod]
    RANKING_METHOD_HYBRID: _ClassVar[RankingMethod]

class FusionMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FUSION_METHOD_UNSPECIFIED: _ClassVar[FusionMethod]
    FUSION_METHOD_WEIGHTED: _ClassVar[FusionMethod]
    FUSION_METHOD_RECIPROCAL_RANK: _ClassVar[FusionMethod]

class BoostFunction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOOST_FUNCTION_UNSPECIFIED: _ClassVar[BoostFunction]
    BOOST_FUNCTION_LOG: _ClassVar[BoostFunction]
    BOOST_FUNCTION_LINEAR: _ClassVar[BoostFunction]
    BOOST_FUNCTION_DECAY: _ClassVar[BoostFunction]

class SignalKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SIGNAL_KIND_UNSPECIFIED: _ClassVar[SignalKind]
    SIGNAL_KIND_NUMBER: _ClassVar[SignalKind]
    SIGNAL_KIND_TIMESTAMP: _ClassVar[SignalKind]

class RankingSpecOrigin(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RANKING_SPEC_ORIGIN_UNSPECIFIED: _ClassVar[RankingSpecOrigin]
    RANKING_SPEC_ORIGIN_MANUAL: _ClassVar[RankingSpecOrigin]
    RANKING_SPEC_ORIGIN_LEARNED: _ClassVar[RankingSpecOrigin]
    RANKING_SPEC_ORIGIN_INHERITED: _ClassVar[RankingSpecOrigin]
RANKING_METHOD_UNSPECIFIED: RankingMethod
RANKING_METHOD_VECTOR: RankingMethod
RANKING_METHOD_LEXICAL: RankingMethod
RANKING_METHOD_HYBRID: RankingMethod
FUSION_METHOD_UNSPECIFIED: FusionMethod
FUSION_METHOD_WEIGHTED: FusionMethod
FUSION_METHOD_RECIPROCAL_RANK: FusionMethod
BOOST_FUNCTION_UNSPECIFIED: BoostFunction
BOOST_FUNCTION_LOG: BoostFunction
BOOST_FUNCTION_LINEAR: BoostFunction
BOOST_FUNCTION_DECAY: BoostFunction
SIGNAL_KIND_UNSPECIFIED: SignalKind
SIGNAL_KIND_NUMBER: SignalKind
SIGNAL_KIND_TIMESTAMP: SignalKind
RANKING_SPEC_ORIGIN_UNSPECIFIED: RankingSpecOrigin
RANKING_SPEC_ORIGIN_MANUAL: RankingSpecOrigin
RANKING_SPEC_ORIGIN_LEARNED: RankingSpecOrigin
RANKING_SPEC_ORIGIN_INHERITED: RankingSpecOrigin

class SignalField(_message.Message):
    __slots__ = ("field", "kind")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    field: str
    kind: SignalKind
    def __init__(self, field: _Optional[str] = ..., kind: _Optional[_Union[SignalKind, str]] = ...) -> None: ...

class Boost(_message.Message):
    __slots__ = ("field", "function", "weight", "half_life_seconds")
    FIELD_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    HALF_LIFE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    field: str
    function: BoostFunction
    weight: float
    half_life_seconds: float
    def __init__(self, field: _Optional[str] = ..., function: _Optional[_Union[BoostFunction, str]] = ..., weight: _Optional[float] = ..., half_life_seconds: _Optional[float] = ...) -> None: ...

class RankingSpec(_message.Message):
    __slots__ = ("method", "fusion", "vector_weight", "lexical_weight", "boosts", "window", "rrf_k")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    FUSION_FIELD_NUMBER: _ClassVar[int]
    VECTOR_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    LEXICAL_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BOOSTS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    RRF_K_FIELD_NUMBER: _ClassVar[int]
    method: RankingMethod
    fusion: FusionMethod
    vector_weight: float
    lexical_weight: float
    boosts: _containers.RepeatedCompositeFieldContainer[Boost]
    window: int
    rrf_k: float
    def __init__(self, method: _Optional[_Union[RankingMethod, str]] = ..., fusion: _Optional[_Union[FusionMethod, str]] = ..., vector_weight: _Optional[float] = ..., lexical_weight: _Optional[float] = ..., boosts: _Optional[_Iterable[_Union[Boost, _Mapping]]] = ..., window: _Optional[int] = ..., rrf_k: _Optional[float] = ...) -> None: ...

class RankingSpecVersion(_message.Message):
    __slots__ = ("version", "spec", "origin", "deployable", "metrics", "task_id", "note", "create_time")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    DEPLOYABLE_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    version: int
    spec: RankingSpec
    origin: RankingSpecOrigin
    deployable: bool
    metrics: _containers.ScalarMap[str, float]
    task_id: str
    note: str
    create_time: _timestamp_pb2.Timestamp
    def __init__(self, version: _Optional[int] = ..., spec: _Optional[_Union[RankingSpec, _Mapping]] = ..., origin: _Optional[_Union[RankingSpecOrigin, str]] = ..., deployable: _Optional[bool] = ..., metrics: _Optional[_Mapping[str, float]] = ..., task_id: _Optional[str] = ..., note: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RankingSettings(_message.Message):
    __slots__ = ("collection_id", "text_search_config", "signal_fields", "live", "previous")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_SEARCH_CONFIG_FIELD_NUMBER: _ClassVar[int]
    SIGNAL_FIELDS_FIELD_NUMBER: _ClassVar[int]
    LIVE_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    text_search_config: str
    signal_fields: _containers.RepeatedCompositeFieldContainer[SignalField]
    live: RankingSpecVersion
    previous: RankingSpecVersion
    def __init__(self, collection_id: _Optional[str] = ..., text_search_config: _Optional[str] = ..., signal_fields: _Optional[_Iterable[_Union[SignalField, _Mapping]]] = ..., live: _Optional[_Union[RankingSpecVersion, _Mapping]] = ..., previous: _Optional[_Union[RankingSpecVersion, _Mapping]] = ...) -> None: ...

class GetRankingSettingsRequest(_message.Message):
    __slots__ = ("collection_id",)
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    def __init__(self, collection_id: _Optional[str] = ...) -> None: ...

class GetRankingSettingsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: RankingSettings
    def __init__(self, settings: _Optional[_Union[RankingSettings, _Mapping]] = ...) -> None: ...

class SetRankingSpecRequest(_message.Message):
    __slots__ = ("collection_id", "spec")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    spec: RankingSpec
    def __init__(self, collection_id: _Optional[str] = ..., spec: _Optional[_Union[RankingSpec, _Mapping]] = ...) -> None: ...

class SetRankingSpecResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: RankingSettings
    def __init__(self, settings: _Optional[_Union[RankingSettings, _Mapping]] = ...) -> None: ...

class DeclareSignalFieldsRequest(_message.Message):
    __slots__ = ("collection_id", "fields")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    fields: _containers.RepeatedCompositeFieldContainer[SignalField]
    def __init__(self, collection_id: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[SignalField, _Mapping]]] = ...) -> None: ...

class DeclareSignalFieldsResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: RankingSettings
    def __init__(self, settings: _Optional[_Union[RankingSettings, _Mapping]] = ...) -> None: ...

class ListRankingSpecsRequest(_message.Message):
    __slots__ = ("collection_id", "page_size", "page_token")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    page_size: int
    page_token: str
    def __init__(self, collection_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListRankingSpecsResponse(_message.Message):
    __slots__ = ("versions", "next_page_token")
    VERSIONS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    versions: _containers.RepeatedCompositeFieldContainer[RankingSpecVersion]
    next_page_token: str
    def __init__(self, versions: _Optional[_Iterable[_Union[RankingSpecVersion, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class RollbackRankingSpecRequest(_message.Message):
    __slots__ = ("collection_id",)
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    def __init__(self, collection_id: _Optional[str] = ...) -> None: ...

class RollbackRankingSpecResponse(_message.Message):
    __slots__ = ("settings",)
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    settings: RankingSettings
    def __init__(self, settings: _Optional[_Union[RankingSettings, _Mapping]] = ...) -> None: ...

class StartRankingFitRequest(_message.Message):
    __slots__ = ("collection_id", "idempotency_key")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    idempotency_key: str
    def __init__(self, collection_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class StartRankingFitResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

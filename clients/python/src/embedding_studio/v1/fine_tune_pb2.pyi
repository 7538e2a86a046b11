from embedding_studio.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PromotionStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROMOTION_STEP_UNSPECIFIED: _ClassVar[PromotionStep]
    PROMOTION_STEP_DEPLOYING: _ClassVar[PromotionStep]
    PROMOTION_STEP_REINDEXING: _ClassVar[PromotionStep]
    PROMOTION_STEP_SWITCHING: _ClassVar[PromotionStep]
    PROMOTION_STEP_SWITCHED: _ClassVar[PromotionStep]
    PROMOTION_STEP_SKIPPED: _ClassVar[PromotionStep]
    PROMOTION_STEP_FAILED: _ClassVar[PromotionStep]
    PROMOTION_STEP_INTERLEAVING: _ClassVar[PromotionStep]
    PROMOTION_STEP_COPYING_CATEGORIES: _ClassVar[PromotionStep]

class FineTuningTarget(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FINE_TUNING_TARGET_UNSPECIFIED: _ClassVar[FineTuningTarget]
    FINE_TUNING_TARGET_ITEMS: _ClassVar[FineTuningTarget]
    FINE_TUNING_TARGET_CATEGORIES: _ClassVar[FineTuningTarget]
PROMOTION_STEP_UNSPECIFIED: PromotionStep
PROMOTION_STEP_DEPLOYING: PromotionStep
PROMOTION_STEP_REINDEXING: PromotionStep
PROMOTION_STEP_SWITCHING: PromotionStep
PROMOTION_STEP_SWITCHED: PromotionStep
PROMOTION_STEP_SKIPPED: PromotionStep
PROMOTION_STEP_FAILED: PromotionStep
PROMOTION_STEP_INTERLEAVING: PromotionStep
PROMOTION_STEP_COPYING_CATEGORIES: PromotionStep
FINE_TUNING_TARGET_UNSPECIFIED: FineTuningTarget
FINE_TUNING_TARGET_ITEMS: FineTuningTarget
FINE_TUNING_TARGET_CATEGORIES: FineTuningTarget

class FineTuningTask(_message.Message):
    __slots__ = ("task", "batch_id", "model_id", "mlflow_run_id", "metrics", "deployable", "deploy_as_blue", "promotion", "target")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TASK_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MLFLOW_RUN_ID_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    DEPLOYABLE_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_AS_BLUE_FIELD_NUMBER: _ClassVar[int]
    PROMOTION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    batch_id: str
    model_id: str
    mlflow_run_id: str
    metrics: _containers.ScalarMap[str, float]
    deployable: bool
    deploy_as_blue: bool
    promotion: Promotion
    target: FineTuningTarget
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ..., batch_id: _Optional[str] = ..., model_id: _Optional[str] = ..., mlflow_run_id: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., deployable: _Optional[bool] = ..., deploy_as_blue: _Optional[bool] = ..., promotion: _Optional[_Union[Promotion, _Mapping]] = ..., target: _Optional[_Union[FineTuningTarget, str]] = ...) -> None: ...

class Promotion(_message.Message):
    __slots__ = ("step", "model_id", "deploy_task_id", "reindex_task_id", "collection_id", "previous_collection_id", "deleted_collection_id", "reason", "interleaving", "categories_task_id", "categories_collection_id", "previous_categories_collection_id")
    STEP_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    REINDEX_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    DELETED_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INTERLEAVING_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_TASK_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_CATEGORIES_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    step: PromotionStep
    model_id: str
    deploy_task_id: str
    reindex_task_id: str
    collection_id: str
    previous_collection_id: str
    deleted_collection_id: str
    reason: str
    interleaving: str
    categories_task_id: str
    categories_collection_id: str
    previous_categories_collection_id: str
    def __init__(self, step: _Optional[_Union[PromotionStep, str]] = ..., model_id: _Optional[str] = ..., deploy_task_id: _Optional[str] = ..., reindex_task_id: _Optional[str] = ..., collection_id: _Optional[str] = ..., previous_collection_id: _Optional[str] = ..., deleted_collection_id: _Optional[str] = ..., reason: _Optional[str] = ..., interleaving: _Optional[str] = ..., categories_task_id: _Optional[str] = ..., categories_collection_id: _Optional[str] = ..., previous_categories_collection_id: _Optional[str] = ...) -> None: ...

class StartFineTuningRequest(_message.Message):
    __slots__ = ("idempotency_key", "deploy_as_blue", "batch_id", "hyperparameters", "target")
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DEPLOY_AS_BLUE_FIELD_NUMBER: _ClassVar[int]
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    HYPERPARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    idempotency_key: str
    deploy_as_blue: bool
    batch_id: str
    hyperparameters: _struct_pb2.Struct
    target: FineTuningTarget
    def __init__(self, idempotency_key: _Optional[str] = ..., deploy_as_blue: _Optional[bool] = ..., batch_id: _Optional[str] = ..., hyperparameters: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., target: _Optional[_Union[FineTuningTarget, str]] = ...) -> None: ...

class StartFineTuningResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: FineTuningTask
    def __init__(self, task: _Optional[_Union[FineTuningTask, _Mapping]] = ...) -> None: ...

class GetFineTuningTaskRequest(_message.Message):
    __slots__ = ("task_id",)
    TASK_ID_FIELD_NUMBER: _ClassVar[int]
    task_id: str
    def __init__(self, task_id: _Optional[str] = ...) -> None: ...

class GetFineTuningTaskResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: FineTuningTask
    def __init__(self, task: _Optional[_Union[FineTuningTask, _Mapping]] = ...) -> None: ...

class ListFineTuningTasksRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListFineTuningTasksResponse(_message.Message):
    __slots__ = ("tasks", "next_page_token")
    TASKS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    tasks: _containers.RepeatedCompositeFieldContainer[FineTuningTask]
    next_page_token: str
    def __init__(self, tasks: _Optional[_Iterable[_Union[FineTuningTask, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

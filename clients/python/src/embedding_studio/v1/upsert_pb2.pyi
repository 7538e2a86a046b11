from embedding_studio.v1 import common_pb2 as _common_pb2
from embedding_studio.v1 import source_pb2 as _source_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpsertItem(_message.Message):
    __slots__ = ("object_id", "payload", "text", "parts", "source")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PARTS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    object_id: str
    payload: _struct_pb2.Struct
    text: str
    parts: _containers.RepeatedCompositeFieldContainer[_common_pb2.ItemPart]
    source: _source_pb2.ContentSource
    def __init__(self, object_id: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., text: _Optional[str] = ..., parts: _Optional[_Iterable[_Union[_common_pb2.ItemPart, _Mapping]]] = ..., source: _Optional[_Union[_source_pb2.ContentSource, _Mapping]] = ...) -> None: ...

class UpsertItemsRequest(_message.Message):
    __slots__ = ("items", "collection_id", "idempotency_key")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[UpsertItem]
    collection_id: str
    idempotency_key: str
    def __init__(self, items: _Optional[_Iterable[_Union[UpsertItem, _Mapping]]] = ..., collection_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class UpsertItemsResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class DeleteItemsRequest(_message.Message):
    __slots__ = ("object_ids", "collection_id", "idempotency_key")
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    object_ids: _containers.RepeatedScalarFieldContainer[str]
    collection_id: str
    idempotency_key: str
    def __init__(self, object_ids: _Optional[_Iterable[str]] = ..., collection_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class DeleteItemsResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class GetItemsRequest(_message.Message):
    __slots__ = ("object_ids", "collection_id", "include_vectors")
    OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_VECTORS_FIELD_NUMBER: _ClassVar[int]
    object_ids: _containers.RepeatedScalarFieldContainer[str]
    collection_id: str
    include_vectors: bool
    def __init__(self, object_ids: _Optional[_Iterable[str]] = ..., collection_id: _Optional[str] = ..., include_vectors: _Optional[bool] = ...) -> None: ...

class GetItemsResponse(_message.Message):
    __slots__ = ("items", "missing_object_ids")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    MISSING_OBJECT_IDS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[_common_pb2.Item]
    missing_object_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, items: _Optional[_Iterable[_Union[_common_pb2.Item, _Mapping]]] = ..., missing_object_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class ImportItemsRequest(_message.Message):
    __slots__ = ("collection_id", "sources", "idempotency_key", "page_size", "max_failed_items")
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_FAILED_ITEMS_FIELD_NUMBER: _ClassVar[int]
    collection_id: str
    sources: _containers.RepeatedCompositeFieldContainer[_source_pb2.ContentSource]
    idempotency_key: str
    page_size: int
    max_failed_items: int
    def __init__(self, collection_id: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[_source_pb2.ContentSource, _Mapping]]] = ..., idempotency_key: _Optional[str] = ..., page_size: _Optional[int] = ..., max_failed_items: _Optional[int] = ...) -> None: ...

class ImportItemsResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

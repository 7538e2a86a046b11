from embedding_studio.v1 import common_pb2 as _common_pb2
from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Category(_message.Message):
    __slots__ = ("category_id", "name", "text", "payload")
    CATEGORY_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    category_id: str
    name: str
    text: str
    payload: _struct_pb2.Struct
    def __init__(self, category_id: _Optional[str] = ..., name: _Optional[str] = ..., text: _Optional[str] = ..., payload: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class UpsertCategoriesRequest(_message.Message):
    __slots__ = ("categories", "collection_id", "idempotency_key")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedCompositeFieldContainer[Category]
    collection_id: str
    idempotency_key: str
    def __init__(self, categories: _Optional[_Iterable[_Union[Category, _Mapping]]] = ..., collection_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class UpsertCategoriesResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class DeleteCategoriesRequest(_message.Message):
    __slots__ = ("category_ids", "collection_id", "idempotency_key")
    CATEGORY_IDS_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    category_ids: _containers.RepeatedScalarFieldContainer[str]
    collection_id: str
    idempotency_key: str
    def __init__(self, category_ids: _Optional[_Iterable[str]] = ..., collection_id: _Optional[str] = ..., idempotency_key: _Optional[str] = ...) -> None: ...

class DeleteCategoriesResponse(_message.Message):
    __slots__ = ("task",)
    TASK_FIELD_NUMBER: _ClassVar[int]
    task: _common_pb2.Task
    def __init__(self, task: _Optional[_Union[_common_pb2.Task, _Mapping]] = ...) -> None: ...

class ListCategoriesRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "collection_id")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    collection_id: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., collection_id: _Optional[str] = ...) -> None: ...

class ListCategoriesResponse(_message.Message):
    __slots__ = ("categories", "next_page_token", "categories_collection_id")
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_COLLECTION_ID_FIELD_NUMBER: _ClassVar[int]
    categories: _containers.RepeatedCompositeFieldContainer[Category]
    next_page_token: str
    categories_collection_id: str
    def __init__(self, categories: _Optional[_Iterable[_Union[Category, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., categories_collection_id: _Optional[str] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ItemStage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ITEM_STAGE_UNSPECIFIED: _ClassVar[ItemStage]
    ITEM_STAGE_FETCH: _ClassVar[ItemStage]
    ITEM_STAGE_PARSE: _ClassVar[ItemStage]
    ITEM_STAGE_PREPROCESS: _ClassVar[ItemStage]
    ITEM_STAGE_SPLIT: _ClassVar[ItemStage]
    ITEM_STAGE_ENCODE: _ClassVar[ItemStage]
    ITEM_STAGE_STORE: _ClassVar[ItemStage]
ITEM_STAGE_UNSPECIFIED: ItemStage
ITEM_STAGE_FETCH: ItemStage
ITEM_STAGE_PARSE: ItemStage
ITEM_STAGE_PREPROCESS: ItemStage
ITEM_STAGE_SPLIT: ItemStage
ITEM_STAGE_ENCODE: ItemStage
ITEM_STAGE_STORE: ItemStage

class BucketLocation(_message.Message):
    __slots__ = ("bucket", "key", "prefix")
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    bucket: str
    key: str
    prefix: str
    def __init__(self, bucket: _Optional[str] = ..., key: _Optional[str] = ..., prefix: _Optional[str] = ...) -> None: ...

class TableLocation(_message.Message):
    __slots__ = ("database", "table", "row_id")
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    ROW_ID_FIELD_NUMBER: _ClassVar[int]
    database: str
    table: str
    row_id: str
    def __init__(self, database: _Optional[str] = ..., table: _Optional[str] = ..., row_id: _Optional[str] = ...) -> None: ...

class RecordFields(_message.Message):
    __slots__ = ("id", "text", "payload", "template")
    ID_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_FIELD_NUMBER: _ClassVar[int]
    id: str
    text: str
    payload: _containers.RepeatedScalarFieldContainer[str]
    template: str
    def __init__(self, id: _Optional[str] = ..., text: _Optional[str] = ..., payload: _Optional[_Iterable[str]] = ..., template: _Optional[str] = ...) -> None: ...

class ContentSource(_message.Message):
    __slots__ = ("loader", "bucket", "table", "path", "url", "content_type", "fields")
    LOADER_FIELD_NUMBER: _ClassVar[int]
    BUCKET_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    loader: str
    bucket: BucketLocation
    table: TableLocation
    path: str
    url: str
    content_type: str
    fields: RecordFields
    def __init__(self, loader: _Optional[str] = ..., bucket: _Optional[_Union[BucketLocation, _Mapping]] = ..., table: _Optional[_Union[TableLocation, _Mapping]] = ..., path: _Optional[str] = ..., url: _Optional[str] = ..., content_type: _Optional[str] = ..., fields: _Optional[_Union[RecordFields, _Mapping]] = ...) -> None: ...

class ItemFailure(_message.Message):
    __slots__ = ("object_id", "stage", "reason")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    object_id: str
    stage: ItemStage
    reason: str
    def __init__(self, object_id: _Optional[str] = ..., stage: _Optional[_Union[ItemStage, str]] = ..., reason: _Optional[str] = ...) -> None: ...

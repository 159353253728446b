from onekey.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ReadinessRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadinessResponse(_message.Message):
    __slots__ = ("ready", "store", "store_down_seconds", "usage_backlog", "journal_bytes", "rate_limit_store")
    READY_FIELD_NUMBER: _ClassVar[int]
    STORE_FIELD_NUMBER: _ClassVar[int]
    STORE_DOWN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    USAGE_BACKLOG_FIELD_NUMBER: _ClassVar[int]
    JOURNAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_STORE_FIELD_NUMBER: _ClassVar[int]
    ready: bool
    store: str
    store_down_seconds: float
    usage_backlog: int
    journal_bytes: int
    rate_limit_store: str
    def __init__(self, ready: _Optional[bool] = ..., store: _Optional[str] = ..., store_down_seconds: _Optional[float] = ..., usage_backlog: _Optional[int] = ..., journal_bytes: _Optional[int] = ..., rate_limit_store: _Optional[str] = ...) -> None: ...

class ValidateKeyRequest(_message.Message):
    __slots__ = ("api_key",)
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    def __init__(self, api_key: _Optional[str] = ...) -> None: ...

class ValidateKeyResponse(_message.Message):
    __slots__ = ("project_id", "key_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    key_id: str
    def __init__(self, project_id: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class ResolveModelRequest(_message.Message):
    __slots__ = ("model", "endpoint")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    model: str
    endpoint: str
    def __init__(self, model: _Optional[str] = ..., endpoint: _Optional[str] = ...) -> None: ...

class ResolveModelResponse(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.Model
    def __init__(self, model: _Optional[_Union[_common_pb2.Model, _Mapping]] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[_common_pb2.Model]
    def __init__(self, models: _Optional[_Iterable[_Union[_common_pb2.Model, _Mapping]]] = ...) -> None: ...

class ForwardRequest(_message.Message):
    __slots__ = ("api_key", "endpoint", "body", "headers", "request_id", "method")
    API_KEY_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    api_key: str
    endpoint: str
    body: bytes
    headers: _containers.RepeatedCompositeFieldContainer[_common_pb2.Header]
    request_id: str
    method: str
    def __init__(self, api_key: _Optional[str] = ..., endpoint: _Optional[str] = ..., body: _Optional[bytes] = ..., headers: _Optional[_Iterable[_Union[_common_pb2.Header, _Mapping]]] = ..., request_id: _Optional[str] = ..., method: _Optional[str] = ...) -> None: ...

class ForwardResponse(_message.Message):
    __slots__ = ("head", "chunk", "trailer")
    HEAD_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    TRAILER_FIELD_NUMBER: _ClassVar[int]
    head: ResponseHead
    chunk: bytes
    trailer: ResponseTrailer
    def __init__(self, head: _Optional[_Union[ResponseHead, _Mapping]] = ..., chunk: _Optional[bytes] = ..., trailer: _Optional[_Union[ResponseTrailer, _Mapping]] = ...) -> None: ...

class ResponseHead(_message.Message):
    __slots__ = ("status", "headers", "request_id", "model", "provider", "channel", "body")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    HEADERS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    status: int
    headers: _containers.RepeatedCompositeFieldContainer[_common_pb2.Header]
    request_id: str
    model: str
    provider: str
    channel: str
    body: bytes
    def __init__(self, status: _Optional[int] = ..., headers: _Optional[_Iterable[_Union[_common_pb2.Header, _Mapping]]] = ..., request_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., channel: _Optional[str] = ..., body: _Optional[bytes] = ...) -> None: ...

class ResponseTrailer(_message.Message):
    __slots__ = ("usage", "cost_micro_usd", "request_id")
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    usage: _common_pb2.Usage
    cost_micro_usd: int
    request_id: str
    def __init__(self, usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., cost_micro_usd: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

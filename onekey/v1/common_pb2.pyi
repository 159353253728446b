from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Header(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class Usage(_message.Message):
    __slots__ = ("input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens", "estimated", "cache_write_tokens")
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    estimated: bool
    cache_write_tokens: int
    def __init__(self, input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., reasoning_tokens: _Optional[int] = ..., estimated: _Optional[bool] = ..., cache_write_tokens: _Optional[int] = ...) -> None: ...

class Model(_message.Message):
    __slots__ = ("id", "provider", "upstream_id", "display_name", "input_price", "output_price", "cached_input_price", "context_window", "status", "endpoints", "created", "status_note", "channels", "test_model", "cache_write_input_price", "price_source", "translated_endpoints")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    INPUT_PRICE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_PRICE_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_PRICE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_WINDOW_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    STATUS_NOTE_FIELD_NUMBER: _ClassVar[int]
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    TEST_MODEL_FIELD_NUMBER: _ClassVar[int]
    CACHE_WRITE_INPUT_PRICE_FIELD_NUMBER: _ClassVar[int]
    PRICE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TRANSLATED_ENDPOINTS_FIELD_NUMBER: _ClassVar[int]
    id: str
    provider: str
    upstream_id: str
    display_name: str
    input_price: int
    output_price: int
    cached_input_price: int
    context_window: int
    status: str
    endpoints: _containers.RepeatedScalarFieldContainer[str]
    created: int
    status_note: str
    channels: _containers.RepeatedScalarFieldContainer[str]
    test_model: bool
    cache_write_input_price: int
    price_source: str
    translated_endpoints: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., provider: _Optional[str] = ..., upstream_id: _Optional[str] = ..., display_name: _Optional[str] = ..., input_price: _Optional[int] = ..., output_price: _Optional[int] = ..., cached_input_price: _Optional[int] = ..., context_window: _Optional[int] = ..., status: _Optional[str] = ..., endpoints: _Optional[_Iterable[str]] = ..., created: _Optional[int] = ..., status_note: _Optional[str] = ..., channels: _Optional[_Iterable[str]] = ..., test_model: _Optional[bool] = ..., cache_write_input_price: _Optional[int] = ..., price_source: _Optional[str] = ..., translated_endpoints: _Optional[_Iterable[str]] = ...) -> None: ...

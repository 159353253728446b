import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from onekey.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GroupBy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GROUP_BY_UNSPECIFIED: _ClassVar[GroupBy]
    GROUP_BY_DAY: _ClassVar[GroupBy]
    GROUP_BY_MODEL: _ClassVar[GroupBy]
    GROUP_BY_KEY: _ClassVar[GroupBy]
GROUP_BY_UNSPECIFIED: GroupBy
GROUP_BY_DAY: GroupBy
GROUP_BY_MODEL: GroupBy
GROUP_BY_KEY: GroupBy

class GetBalanceRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class Balance(_message.Message):
    __slots__ = ("project_id", "balance_micro_usd", "free_requests", "reserved_micro_usd")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    FREE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RESERVED_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    balance_micro_usd: int
    free_requests: int
    reserved_micro_usd: int
    def __init__(self, project_id: _Optional[str] = ..., balance_micro_usd: _Optional[int] = ..., free_requests: _Optional[int] = ..., reserved_micro_usd: _Optional[int] = ...) -> None: ...

class GetUsageSummaryRequest(_message.Message):
    __slots__ = ("project_id", "start", "end", "group_by")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    GROUP_BY_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    group_by: GroupBy
    def __init__(self, project_id: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., group_by: _Optional[_Union[GroupBy, str]] = ...) -> None: ...

class UsageRow(_message.Message):
    __slots__ = ("group", "requests", "input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens", "cost_micro_usd", "charged_micro_usd", "errors")
    GROUP_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    CACHED_INPUT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    REASONING_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COST_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    CHARGED_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    group: str
    requests: int
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    reasoning_tokens: int
    cost_micro_usd: int
    charged_micro_usd: int
    errors: int
    def __init__(self, group: _Optional[str] = ..., requests: _Optional[int] = ..., input_tokens: _Optional[int] = ..., output_tokens: _Optional[int] = ..., cached_input_tokens: _Optional[int] = ..., reasoning_tokens: _Optional[int] = ..., cost_micro_usd: _Optional[int] = ..., charged_micro_usd: _Optional[int] = ..., errors: _Optional[int] = ...) -> None: ...

class UsageSummary(_message.Message):
    __slots__ = ("rows", "total")
    ROWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    rows: _containers.RepeatedCompositeFieldContainer[UsageRow]
    total: UsageRow
    def __init__(self, rows: _Optional[_Iterable[_Union[UsageRow, _Mapping]]] = ..., total: _Optional[_Union[UsageRow, _Mapping]] = ...) -> None: ...

class ListUsageEventsRequest(_message.Message):
    __slots__ = ("project_id", "page_size", "page_token", "start", "end", "status", "model", "key_id")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    page_size: int
    page_token: str
    start: _timestamp_pb2.Timestamp
    end: _timestamp_pb2.Timestamp
    status: str
    model: str
    key_id: str
    def __init__(self, project_id: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., status: _Optional[str] = ..., model: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class UsageEvent(_message.Message):
    __slots__ = ("request_id", "time", "project_id", "key_id", "model", "provider", "channel", "usage", "cost_micro_usd", "charged_micro_usd", "status", "latency_ms", "ttfb_ms", "endpoint", "stream", "error_code", "requested_model")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    USAGE_FIELD_NUMBER: _ClassVar[int]
    COST_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    CHARGED_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    TTFB_MS_FIELD_NUMBER: _ClassVar[int]
    ENDPOINT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_MODEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    time: _timestamp_pb2.Timestamp
    project_id: str
    key_id: str
    model: str
    provider: str
    channel: str
    usage: _common_pb2.Usage
    cost_micro_usd: int
    charged_micro_usd: int
    status: int
    latency_ms: int
    ttfb_ms: int
    endpoint: str
    stream: bool
    error_code: str
    requested_model: str
    def __init__(self, request_id: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., project_id: _Optional[str] = ..., key_id: _Optional[str] = ..., model: _Optional[str] = ..., provider: _Optional[str] = ..., channel: _Optional[str] = ..., usage: _Optional[_Union[_common_pb2.Usage, _Mapping]] = ..., cost_micro_usd: _Optional[int] = ..., charged_micro_usd: _Optional[int] = ..., status: _Optional[int] = ..., latency_ms: _Optional[int] = ..., ttfb_ms: _Optional[int] = ..., endpoint: _Optional[str] = ..., stream: _Optional[bool] = ..., error_code: _Optional[str] = ..., requested_model: _Optional[str] = ...) -> None: ...

class ListUsageEventsResponse(_message.Message):
    __slots__ = ("events", "next_page_token")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[UsageEvent]
    next_page_token: str
    def __init__(self, events: _Optional[_Iterable[_Union[UsageEvent, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetRequestUsageRequest(_message.Message):
    __slots__ = ("request_id", "project_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    project_id: str
    def __init__(self, request_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class ListCreditsRequest(_message.Message):
    __slots__ = ("project_id", "limit")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    limit: int
    def __init__(self, project_id: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class CreditEntry(_message.Message):
    __slots__ = ("time", "amount_micro_usd", "reason")
    TIME_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    amount_micro_usd: int
    reason: str
    def __init__(self, time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., amount_micro_usd: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ListCreditsResponse(_message.Message):
    __slots__ = ("entries",)
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[CreditEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[CreditEntry, _Mapping]]] = ...) -> None: ...

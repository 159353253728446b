import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SyncModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ChannelListing(_message.Message):
    __slots__ = ("channel", "listed", "error")
    CHANNEL_FIELD_NUMBER: _ClassVar[int]
    LISTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    channel: str
    listed: int
    error: str
    def __init__(self, channel: _Optional[str] = ..., listed: _Optional[int] = ..., error: _Optional[str] = ...) -> None: ...

class UnpricedModels(_message.Message):
    __slots__ = ("provider", "upstream_ids")
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    UPSTREAM_IDS_FIELD_NUMBER: _ClassVar[int]
    provider: str
    upstream_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, provider: _Optional[str] = ..., upstream_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class SyncModelsResponse(_message.Message):
    __slots__ = ("channels", "unpriced", "servable", "price_source")
    class ServableEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    UNPRICED_FIELD_NUMBER: _ClassVar[int]
    SERVABLE_FIELD_NUMBER: _ClassVar[int]
    PRICE_SOURCE_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[ChannelListing]
    unpriced: _containers.RepeatedCompositeFieldContainer[UnpricedModels]
    servable: _containers.ScalarMap[str, int]
    price_source: str
    def __init__(self, channels: _Optional[_Iterable[_Union[ChannelListing, _Mapping]]] = ..., unpriced: _Optional[_Iterable[_Union[UnpricedModels, _Mapping]]] = ..., servable: _Optional[_Mapping[str, int]] = ..., price_source: _Optional[str] = ...) -> None: ...

class Project(_message.Message):
    __slots__ = ("id", "name", "balance_micro_usd", "free_requests", "created_at", "rate_limit_rpm", "closed_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    FREE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_RPM_FIELD_NUMBER: _ClassVar[int]
    CLOSED_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    name: str
    balance_micro_usd: int
    free_requests: int
    created_at: _timestamp_pb2.Timestamp
    rate_limit_rpm: int
    closed_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., name: _Optional[str] = ..., balance_micro_usd: _Optional[int] = ..., free_requests: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_limit_rpm: _Optional[int] = ..., closed_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CloseProjectRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class CloseProjectResponse(_message.Message):
    __slots__ = ("keys_revoked", "project")
    KEYS_REVOKED_FIELD_NUMBER: _ClassVar[int]
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    keys_revoked: int
    project: Project
    def __init__(self, keys_revoked: _Optional[int] = ..., project: _Optional[_Union[Project, _Mapping]] = ...) -> None: ...

class CreateProjectRequest(_message.Message):
    __slots__ = ("name", "credit_micro_usd", "free_requests", "rate_limit_rpm")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CREDIT_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    FREE_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_RPM_FIELD_NUMBER: _ClassVar[int]
    name: str
    credit_micro_usd: int
    free_requests: int
    rate_limit_rpm: int
    def __init__(self, name: _Optional[str] = ..., credit_micro_usd: _Optional[int] = ..., free_requests: _Optional[int] = ..., rate_limit_rpm: _Optional[int] = ...) -> None: ...

class GetProjectRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class RenameProjectRequest(_message.Message):
    __slots__ = ("project_id", "name")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    name: str
    def __init__(self, project_id: _Optional[str] = ..., name: _Optional[str] = ...) -> None: ...

class ApiKey(_message.Message):
    __slots__ = ("id", "project_id", "name", "prefix", "created_at", "last_used_at", "revoked_at", "rate_limit_rpm", "spend_limit_micro_usd", "expires_at")
    ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_USED_AT_FIELD_NUMBER: _ClassVar[int]
    REVOKED_AT_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_RPM_FIELD_NUMBER: _ClassVar[int]
    SPEND_LIMIT_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    id: str
    project_id: str
    name: str
    prefix: str
    created_at: _timestamp_pb2.Timestamp
    last_used_at: _timestamp_pb2.Timestamp
    revoked_at: _timestamp_pb2.Timestamp
    rate_limit_rpm: int
    spend_limit_micro_usd: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, id: _Optional[str] = ..., project_id: _Optional[str] = ..., name: _Optional[str] = ..., prefix: _Optional[str] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_used_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., revoked_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., rate_limit_rpm: _Optional[int] = ..., spend_limit_micro_usd: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class CreateKeyRequest(_message.Message):
    __slots__ = ("project_id", "name", "rate_limit_rpm", "spend_limit_micro_usd", "expires_at")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_RPM_FIELD_NUMBER: _ClassVar[int]
    SPEND_LIMIT_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    name: str
    rate_limit_rpm: int
    spend_limit_micro_usd: int
    expires_at: _timestamp_pb2.Timestamp
    def __init__(self, project_id: _Optional[str] = ..., name: _Optional[str] = ..., rate_limit_rpm: _Optional[int] = ..., spend_limit_micro_usd: _Optional[int] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class UpdateKeyRequest(_message.Message):
    __slots__ = ("key_id", "project_id", "spend_limit_micro_usd", "clear_spend_limit", "expires_at", "clear_expiry")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SPEND_LIMIT_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    CLEAR_SPEND_LIMIT_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    CLEAR_EXPIRY_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    project_id: str
    spend_limit_micro_usd: int
    clear_spend_limit: bool
    expires_at: _timestamp_pb2.Timestamp
    clear_expiry: bool
    def __init__(self, key_id: _Optional[str] = ..., project_id: _Optional[str] = ..., spend_limit_micro_usd: _Optional[int] = ..., clear_spend_limit: _Optional[bool] = ..., expires_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., clear_expiry: _Optional[bool] = ...) -> None: ...

class CreateKeyResponse(_message.Message):
    __slots__ = ("key", "secret")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    key: ApiKey
    secret: str
    def __init__(self, key: _Optional[_Union[ApiKey, _Mapping]] = ..., secret: _Optional[str] = ...) -> None: ...

class ListKeysRequest(_message.Message):
    __slots__ = ("project_id",)
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    def __init__(self, project_id: _Optional[str] = ...) -> None: ...

class ListKeysResponse(_message.Message):
    __slots__ = ("keys",)
    KEYS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedCompositeFieldContainer[ApiKey]
    def __init__(self, keys: _Optional[_Iterable[_Union[ApiKey, _Mapping]]] = ...) -> None: ...

class RevokeKeyRequest(_message.Message):
    __slots__ = ("key_id", "project_id")
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    key_id: str
    project_id: str
    def __init__(self, key_id: _Optional[str] = ..., project_id: _Optional[str] = ...) -> None: ...

class AddCreditRequest(_message.Message):
    __slots__ = ("project_id", "amount_micro_usd", "idempotency_key", "reason")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MICRO_USD_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    amount_micro_usd: int
    idempotency_key: str
    reason: str
    def __init__(self, project_id: _Optional[str] = ..., amount_micro_usd: _Optional[int] = ..., idempotency_key: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class AddCreditResponse(_message.Message):
    __slots__ = ("project", "applied")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    project: Project
    applied: bool
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., applied: _Optional[bool] = ...) -> None: ...

class AddFreeRequestsRequest(_message.Message):
    __slots__ = ("project_id", "count")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    count: int
    def __init__(self, project_id: _Optional[str] = ..., count: _Optional[int] = ...) -> None: ...

class ListChannelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Channel(_message.Message):
    __slots__ = ("name", "provider", "base_url", "priority", "weight", "state", "error_rate", "latency_ms_p50", "requests", "models")
    NAME_FIELD_NUMBER: _ClassVar[int]
    PROVIDER_FIELD_NUMBER: _ClassVar[int]
    BASE_URL_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_P50_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    provider: str
    base_url: str
    priority: int
    weight: int
    state: str
    error_rate: float
    latency_ms_p50: float
    requests: int
    models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., provider: _Optional[str] = ..., base_url: _Optional[str] = ..., priority: _Optional[int] = ..., weight: _Optional[int] = ..., state: _Optional[str] = ..., error_rate: _Optional[float] = ..., latency_ms_p50: _Optional[float] = ..., requests: _Optional[int] = ..., models: _Optional[_Iterable[str]] = ...) -> None: ...

class ListChannelsResponse(_message.Message):
    __slots__ = ("channels",)
    CHANNELS_FIELD_NUMBER: _ClassVar[int]
    channels: _containers.RepeatedCompositeFieldContainer[Channel]
    def __init__(self, channels: _Optional[_Iterable[_Union[Channel, _Mapping]]] = ...) -> None: ...

class SetRateLimitRequest(_message.Message):
    __slots__ = ("project_id", "key_id", "rate_limit_rpm")
    PROJECT_ID_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    RATE_LIMIT_RPM_FIELD_NUMBER: _ClassVar[int]
    project_id: str
    key_id: str
    rate_limit_rpm: int
    def __init__(self, project_id: _Optional[str] = ..., key_id: _Optional[str] = ..., rate_limit_rpm: _Optional[int] = ...) -> None: ...

class SetRateLimitResponse(_message.Message):
    __slots__ = ("project", "key")
    PROJECT_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    project: Project
    key: ApiKey
    def __init__(self, project: _Optional[_Union[Project, _Mapping]] = ..., key: _Optional[_Union[ApiKey, _Mapping]] = ...) -> None: ...

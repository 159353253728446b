"""The core's one typed settings object, built from its TOML section and the environment."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from router_core.breaker import BreakerSettings


class ConfigError(ValueError):
    """A configuration the core cannot start with; the message names the offending key.

    `channel_index` is the position of the [[channels]] table at fault, when one is: the
    loader that has the file text turns it into a line number.
    """

    def __init__(self, message: str, channel_index: int | None = None) -> None:
        super().__init__(message)
        self.channel_index = channel_index


class Secret:
    """A string that never prints: repr and str show a mask, reveal() gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


PROVIDERS = ("openai", "anthropic", "google", "xai", "sandbox")

# Official OpenAI-compatible bases and the environment variables that hold their keys, used
# when the config lists no channel at all.
DEFAULT_CHANNELS = {
    "openai": ("https://api.openai.com/v1", "OPENAI_API_KEY"),
    "anthropic": ("https://api.anthropic.com/v1", "ANTHROPIC_API_KEY"),
    "google": ("https://generativelanguage.googleapis.com/v1beta/openai", "GEMINI_API_KEY"),
    "xai": ("https://api.x.ai/v1", "XAI_API_KEY"),
}


@dataclass(frozen=True)
class ChannelSettings:
    """One way to reach a provider: a base URL and the key to use there."""

    name: str
    provider: str
    base_url: str
    api_key: Secret
    priority: int = 0
    weight: int = 1
    models: tuple[str, ...] = ()


@dataclass(frozen=True)
class Timeouts:
    """Per-phase upstream timeouts in seconds (reasoning models think for minutes)."""

    connect: float = 10.0
    first_byte: float = 600.0
    idle: float = 120.0


@dataclass(frozen=True)
class CoreSettings:
    listen: str = "127.0.0.1:50051"
    database_url: str = "sqlite:///.onekey/router.db"
    service_token: Secret = field(default_factory=lambda: Secret(""))
    channels: tuple[ChannelSettings, ...] = ()
    timeouts: Timeouts = Timeouts()
    max_body_bytes: int = 10 * 1024 * 1024
    key_cache_ttl: float = 2.0
    usage_flush_interval: float = 0.5
    shutdown_grace: float = 30.0
    sandbox: bool = True
    new_project_free_requests: int = 20
    max_attempts: int = 3
    # The longest `retry-after` the core waits out before trying a channel again.
    max_retry_wait: float = 2.0
    breaker: BreakerSettings = BreakerSettings()
    # host:port of the core's Prometheus endpoint (channel health); empty: none.
    metrics_listen: str = ""
    # Requests per minute of a key that has no limit of its own; 0: no limit.
    rate_limit_rpm: int = 0
    # Where replicas share rate-limit counters (redis://…); empty: each core counts in memory.
    redis_url: Secret = field(default_factory=lambda: Secret(""))
    # Longest wait for Redis per request before counting in memory instead (seconds).
    redis_timeout: float = 0.5
    # Credit leases (router_core/credits.py): how often a replica proves it is alive, and how
    # long a lease may go unrenewed before another replica takes its credit back.
    lease_renew_interval: float = 10.0
    lease_stale_after: float = 120.0
    # End each paid answer only once its charge is committed (group commit): a killed core then
    # loses no charge of an answer the client received whole. Costs about one store write of
    # latency per request (see bench/README.md).
    durable_charges: bool = False
    # Forward calls served at once; beyond it a call is refused at once (503 at the edge).
    max_in_flight: int = 1024
    # The operator's catalog file (models added, overridden, hidden; markup); empty: none.
    catalog_file: str = ""
    # How often each channel's model list is read again (seconds; 0: only at start and on
    # `onekey models sync`), and how long one read may take.
    models_sync_interval: float = 900.0
    models_sync_timeout: float = 5.0
    # The longest a request waits on the routing store (seconds): past it, or at once while the
    # store is known down, what memory cannot decide is refused with 503 `store_unavailable`.
    store_timeout: float = 2.0
    # Where each served request's usage event is appended before its answer ends, until the
    # store has it (router_core/journal.py); a core started on the folder replays what a dead
    # one left. Empty: no journal (a killed core loses its unwritten charges).
    journal_dir: str = ".onekey/journal"
    # "seal": synced to disk every usage flush (a machine crash loses at most that interval);
    # "always": synced per event.
    journal_fsync: str = "seal"
    # Usage events held in memory while the store is down; beyond it paid requests get 503.
    usage_backlog_max: int = 200_000


_CORE_KEYS = {
    "listen", "database_url", "service_token", "service_token_env", "connect_timeout",
    "first_byte_timeout", "idle_timeout", "max_body_bytes", "key_cache_ttl",
    "usage_flush_interval", "shutdown_grace", "sandbox", "new_project_free_requests",
    "max_attempts", "max_retry_wait", "metrics_listen", "breaker_window", "breaker_min_requests",
    "breaker_failure_rate", "breaker_cooldown", "breaker_max_cooldown", "rate_limit_rpm",
    "redis_url", "redis_url_env", "redis_timeout",
    "lease_renew_interval", "lease_stale_after", "durable_charges", "max_in_flight", "catalog",
    "models_sync_interval", "models_sync_timeout", "store_timeout", "journal_dir", "journal_fsync",
    "usage_backlog_max",
}
_CHANNEL_KEYS = {"name", "provider", "base_url", "api_key", "api_key_env", "priority", "weight", "models"}


def _check_keys(where: str, table: Mapping[str, Any], allowed: set[str]) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} in {where}: {', '.join(unknown)}")


def _typed(where: str, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
        expected = " or ".join(k.__name__ for k in kinds)
        raise ConfigError(f"{where}.{key} must be {expected}, not {type(value).__name__}")
    return value


def _channel(index: int, raw: Mapping[str, Any], env: Mapping[str, str]) -> ChannelSettings:
    try:
        return _parse_channel(index, raw, env)
    except ConfigError as exc:
        raise ConfigError(str(exc), channel_index=index) from None


def _parse_channel(index: int, raw: Mapping[str, Any], env: Mapping[str, str]) -> ChannelSettings:
    where = f"channels[{index}]"
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where} must be a table")
    _check_keys(where, raw, _CHANNEL_KEYS)
    name = raw.get("name")
    if not name or not isinstance(name, str):
        raise ConfigError(f"{where} needs a name")
    where = f"channel {name!r} ({where})"
    provider = raw.get("provider")
    if provider not in PROVIDERS:
        raise ConfigError(f"{where}: unknown provider {provider!r}; expected one of {', '.join(PROVIDERS)}")
    base_url = raw.get("base_url") or DEFAULT_CHANNELS.get(provider, ("", ""))[0]
    if provider != "sandbox" and not base_url:
        raise ConfigError(f"{where} needs a base_url")
    if "api_key" in raw and "api_key_env" in raw:
        raise ConfigError(f"{where}: give api_key or api_key_env, not both")
    if "api_key_env" in raw:
        key = env.get(_typed(where, "api_key_env", raw["api_key_env"], str), "")
        if not key and provider != "sandbox":
            raise ConfigError(f"{where}: environment variable {raw['api_key_env']} is not set")
    else:
        key = _typed(where, "api_key", raw.get("api_key", ""), str)
    if not key and provider != "sandbox":
        raise ConfigError(f"{where} has no key: set api_key or api_key_env")
    priority = _typed(where, "priority", raw.get("priority", 0), int)
    weight = _typed(where, "weight", raw.get("weight", 1), int)
    if weight < 1:
        raise ConfigError(f"{where}.weight must be at least 1")
    models = raw.get("models", [])
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise ConfigError(f"{where}.models must be a list of model ids")
    return ChannelSettings(
        name=name, provider=provider, base_url=str(base_url).rstrip("/"), api_key=Secret(key),
        priority=priority, weight=weight, models=tuple(models),
    )


def default_channels(env: Mapping[str, str]) -> tuple[ChannelSettings, ...]:
    """One channel per provider whose usual environment variable holds a key."""
    return tuple(
        ChannelSettings(name=provider, provider=provider, base_url=base, api_key=Secret(env[var]))
        for provider, (base, var) in DEFAULT_CHANNELS.items()
        if env.get(var)
    )


def load_core_settings(
    section: Mapping[str, Any], channels: list[Any], env: Mapping[str, str]
) -> CoreSettings:
    """Build CoreSettings from the [core] table, the [[channels]] list and the environment."""
    _check_keys("[core]", section, _CORE_KEYS)
    if channels:
        built = tuple(_channel(i, raw, env) for i, raw in enumerate(channels))
    else:
        built = default_channels(env)
    seen: dict[str, int] = {}
    for index, channel in enumerate(built):
        if channel.name in seen:
            raise ConfigError(f"duplicate channel name {channel.name!r}: channels[{index}] repeats "
                              f"channels[{seen[channel.name]}]", channel_index=index)
        seen[channel.name] = index
    token_env = section.get("service_token_env", "ONEKEY_SERVICE_TOKEN")
    token = env.get(token_env) or section.get("service_token", "")
    defaults = CoreSettings()
    timeouts = Timeouts(
        connect=float(_typed("[core]", "connect_timeout", section.get("connect_timeout", Timeouts.connect), (int, float))),
        first_byte=float(_typed("[core]", "first_byte_timeout", section.get("first_byte_timeout", Timeouts.first_byte), (int, float))),
        idle=float(_typed("[core]", "idle_timeout", section.get("idle_timeout", Timeouts.idle), (int, float))),
    )
    timeouts_ok = timeouts.connect > 0 and timeouts.first_byte > 0 and timeouts.idle > 0
    if not timeouts_ok:
        raise ConfigError("[core] connect_timeout, first_byte_timeout and idle_timeout must be positive")
    renew = float(_typed("[core]", "lease_renew_interval",
                         section.get("lease_renew_interval", defaults.lease_renew_interval), (int, float)))
    stale = float(_typed("[core]", "lease_stale_after",
                         section.get("lease_stale_after", defaults.lease_stale_after), (int, float)))
    if renew <= 0 or stale < 3 * renew:
        raise ConfigError("[core] lease_renew_interval must be positive and lease_stale_after at least three "
                          "times it (a live replica's lease must never look dead)")
    max_in_flight = _typed("[core]", "max_in_flight", section.get("max_in_flight", defaults.max_in_flight), int)
    if max_in_flight < 1:
        raise ConfigError("[core].max_in_flight must be at least 1")
    journal_fsync = _typed("[core]", "journal_fsync", section.get("journal_fsync", defaults.journal_fsync), str)
    if journal_fsync not in ("seal", "always"):
        raise ConfigError('[core].journal_fsync must be "seal" or "always"')
    backlog_max = _typed("[core]", "usage_backlog_max", section.get("usage_backlog_max", defaults.usage_backlog_max), int)
    if backlog_max < 1:
        raise ConfigError("[core].usage_backlog_max must be at least 1")
    return CoreSettings(
        store_timeout=_positive("[core]", "store_timeout", section.get("store_timeout", defaults.store_timeout)),
        journal_dir=_typed("[core]", "journal_dir", section.get("journal_dir", defaults.journal_dir), str),
        journal_fsync=journal_fsync,
        usage_backlog_max=backlog_max,
        rate_limit_rpm=_rate_limit(section),
        redis_url=_redis_url(section, env),
        redis_timeout=_positive("[core]", "redis_timeout", section.get("redis_timeout", defaults.redis_timeout)),
        lease_renew_interval=renew,
        durable_charges=_typed("[core]", "durable_charges", section.get("durable_charges", False), bool),
        lease_stale_after=stale,
        breaker=_breaker(section),
        max_retry_wait=float(_typed("[core]", "max_retry_wait", section.get("max_retry_wait", defaults.max_retry_wait), (int, float))),
        metrics_listen=_typed("[core]", "metrics_listen", section.get("metrics_listen", ""), str),
        catalog_file=_typed("[core]", "catalog", section.get("catalog", ""), str),
        models_sync_interval=float(_typed("[core]", "models_sync_interval",
                                          section.get("models_sync_interval", defaults.models_sync_interval), (int, float))),
        models_sync_timeout=float(_typed("[core]", "models_sync_timeout",
                                         section.get("models_sync_timeout", defaults.models_sync_timeout), (int, float))),
        listen=_typed("[core]", "listen", section.get("listen", defaults.listen), str),
        database_url=_typed("[core]", "database_url", section.get("database_url", defaults.database_url), str),
        service_token=Secret(token),
        channels=built,
        timeouts=timeouts,
        max_body_bytes=_typed("[core]", "max_body_bytes", section.get("max_body_bytes", defaults.max_body_bytes), int),
        key_cache_ttl=float(_typed("[core]", "key_cache_ttl", section.get("key_cache_ttl", defaults.key_cache_ttl), (int, float))),
        usage_flush_interval=float(section.get("usage_flush_interval", defaults.usage_flush_interval)),
        shutdown_grace=float(section.get("shutdown_grace", defaults.shutdown_grace)),
        sandbox=_typed("[core]", "sandbox", section.get("sandbox", True), bool),
        new_project_free_requests=_typed("[core]", "new_project_free_requests", section.get("new_project_free_requests", 20), int),
        max_attempts=_typed("[core]", "max_attempts", section.get("max_attempts", defaults.max_attempts), int),
        max_in_flight=max_in_flight,
    )


def _positive(where: str, key: str, value: Any) -> float:
    number = float(_typed(where, key, value, (int, float)))
    if number <= 0:
        raise ConfigError(f"{where} {key} must be positive")
    return number


def _rate_limit(section: Mapping[str, Any]) -> int:
    rpm = _typed("[core]", "rate_limit_rpm", section.get("rate_limit_rpm", 0), int)
    if rpm < 0:
        raise ConfigError("[core] rate_limit_rpm must be 0 (no limit) or a positive number of requests per minute")
    return rpm


def _redis_url(section: Mapping[str, Any], env: Mapping[str, str]) -> Secret:
    """[core] redis_url, or the variable named by redis_url_env (its password stays out of logs)."""
    if "redis_url" in section and "redis_url_env" in section:
        raise ConfigError("[core]: give redis_url or redis_url_env, not both")
    if "redis_url_env" in section:
        name = _typed("[core]", "redis_url_env", section["redis_url_env"], str)
        url = env.get(name, "")
        if not url:
            raise ConfigError(f"[core] redis_url_env: environment variable {name} is not set")
    else:
        url = _typed("[core]", "redis_url", section.get("redis_url", ""), str)
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("[core] redis_url must start with redis://, rediss:// or unix://")
    return Secret(url)


def _breaker(section: Mapping[str, Any]) -> BreakerSettings:
    """The circuit-breaker knobs of [core] (breaker_*), checked for sense."""
    d = BreakerSettings()
    b = BreakerSettings(
        window=float(_typed("[core]", "breaker_window", section.get("breaker_window", d.window), (int, float))),
        min_requests=_typed("[core]", "breaker_min_requests", section.get("breaker_min_requests", d.min_requests), int),
        failure_rate=float(_typed("[core]", "breaker_failure_rate", section.get("breaker_failure_rate", d.failure_rate), (int, float))),
        cooldown=float(_typed("[core]", "breaker_cooldown", section.get("breaker_cooldown", d.cooldown), (int, float))),
        max_cooldown=float(_typed("[core]", "breaker_max_cooldown", section.get("breaker_max_cooldown", d.max_cooldown), (int, float))),
    )
    if b.window <= 0 or b.cooldown <= 0 or b.max_cooldown < b.cooldown:
        raise ConfigError("[core] breaker_window and breaker_cooldown must be positive, breaker_max_cooldown >= breaker_cooldown")
    if b.min_requests < 1 or not 0 < b.failure_rate <= 1:
        raise ConfigError("[core] breaker_min_requests must be >= 1 and breaker_failure_rate in (0, 1]")
    return b

"""The edge's one typed settings object, built from its TOML section."""
from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfigError(ValueError):
    """A configuration the edge cannot start with; the message names the offending key."""


@dataclass(frozen=True)
class EdgeSettings:
    listen: str = "127.0.0.1:8080"
    # Where the core replicas listen: host:port, a DNS name with one record per replica
    # ("dns:///cores.internal:50051"), or several addresses ("ipv4:10.0.0.1:50051,10.0.0.2:50051").
    core: str = "127.0.0.1:50051"
    max_body_bytes: int = 10 * 1024 * 1024
    shutdown_timeout: float = 60.0       # the drain budget on SIGTERM
    access_log: bool = False
    core_timeout: float = 3600.0         # a whole call, reasoning models included
    metrics_listen: str = ""             # Prometheus /metrics on an address of its own (off if empty)
    core_attempts: int = 3               # core replicas tried while none has answered yet


    max_in_flight: int = 1024            # API requests served at once; beyond: 503 at once
    idle_timeout: float = 30.0           # no complete request headers for this long: closed
    body_timeout: float = 60.0           # the whole body must arrive within this
    max_header_bytes: int = 8190         # one header line (and the request line)


_KEYS = {"listen", "core", "max_body_bytes", "shutdown_timeout", "access_log", "core_timeout", "metrics_listen",
         "max_in_flight", "idle_timeout", "body_timeout", "max_header_bytes", "core_attempts"}


def load_edge_settings(section: Mapping[str, Any], core_listen: str) -> EdgeSettings:
    """EdgeSettings from the [edge] table; the core defaults to [core].listen."""
    unknown = sorted(set(section) - _KEYS)
    if unknown:
        raise ConfigError(f"unknown key{'s' if len(unknown) > 1 else ''} in [edge]: {', '.join(unknown)}")
    defaults = EdgeSettings()
    values: dict[str, Any] = {}
    for name, kind in (("listen", str), ("core", (str, list)), ("max_body_bytes", int),
                       ("shutdown_timeout", (int, float)), ("access_log", bool), ("core_timeout", (int, float)),
                       ("metrics_listen", str), ("core_attempts", int), ("max_in_flight", int),
                       ("idle_timeout", (int, float)), ("body_timeout", (int, float)), ("max_header_bytes", int)):
        value = section.get(name, getattr(defaults, name) if name != "core" else core_listen)
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise ConfigError(f"[edge].{name} has the wrong type: {type(value).__name__}")
        values[name] = value
    if values["metrics_listen"] and values["metrics_listen"] == values["listen"]:
        raise ConfigError("[edge].metrics_listen must differ from [edge].listen: metrics stay off the API port")
    values["core"] = core_target(values["core"])
    if values["core_attempts"] < 1:
        raise ConfigError("[edge].core_attempts must be at least 1")
    if values["max_body_bytes"] < 1024:
        raise ConfigError("[edge].max_body_bytes must be at least 1024")
    if values["max_in_flight"] < 1:
        raise ConfigError("[edge].max_in_flight must be at least 1")
    if values["idle_timeout"] <= 0 or values["body_timeout"] <= 0:
        raise ConfigError("[edge].idle_timeout and [edge].body_timeout must be positive")
    if values["max_header_bytes"] < 1024:
        raise ConfigError("[edge].max_header_bytes must be at least 1024")
    return EdgeSettings(**values)


def core_target(value: str | list) -> str:
    """The gRPC target for [edge].core: a string as given, or a list of IP:port addresses.

    gRPC resolves one target; several literal addresses become one `ipv4:`/`ipv6:` target
    (host names in a list cannot: give one DNS name with a record per replica instead).
    """
    if isinstance(value, str):
        if not value.strip():
            raise ConfigError("[edge].core is empty")
        return value
    if not value or not all(isinstance(v, str) for v in value):
        raise ConfigError("[edge].core must be a string or a non-empty list of \"IP:port\" strings")
    families = {_family(v) for v in value}
    if None in families or len(families) != 1:
        raise ConfigError("[edge].core as a list takes IP:port addresses of one family "
                          "([::1]:50051 for IPv6); for host names give one DNS name with several records")
    family = families.pop()
    return f"{family}:" + ",".join(value)


def _family(address: str) -> str | None:
    host, _, port = address.rpartition(":")
    if not port.isdigit():
        return None
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return "ipv4" if ip.version == 4 else "ipv6"

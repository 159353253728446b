"""The one settings loader: the TOML file (--config or ONEKEY_CONFIG) plus the environment.

Each component's section becomes that component's typed settings object; any key the layout
does not know is refused by name.
"""
from __future__ import annotations

import os
import pathlib
import re
import secrets
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from edge.settings import ConfigError as EdgeConfigError
from edge.settings import EdgeSettings, load_edge_settings
from router_core.catalog import Catalog
from router_core.catalog_file import CatalogError
from router_core.channels import check_channel_models
from router_core.settings import ConfigError as CoreConfigError
from router_core.settings import CoreSettings, Secret, load_core_settings

SECTIONS = {"core", "edge", "account", "channels"}
ACCOUNT_KEYS_BASE = {"listen", "database_url"}
STATE_DIR = pathlib.Path(".onekey")


class ConfigError(ValueError):
    """The configuration cannot be used; the message says where and why."""


@dataclass(frozen=True)
class Config:
    path: pathlib.Path | None
    raw: Mapping[str, Any]
    core: CoreSettings
    edge: EdgeSettings
    env: Mapping[str, str]

    @property
    def account_section(self) -> Mapping[str, Any]:
        return self.raw.get("account", {})


def config_path(cli_value: str | None, env: Mapping[str, str]) -> pathlib.Path | None:
    value = cli_value or env.get("ONEKEY_CONFIG")
    return pathlib.Path(value) if value else None


def load(cli_value: str | None = None, env: Mapping[str, str] | None = None, check_catalog: bool = True) -> Config:
    """Read and check the whole configuration; raises ConfigError naming what is wrong.

    `check_catalog`: also build the catalog (the operator's file, the channels' model subsets).
    That loads the price package (some 25 MiB): a process that runs no core (the launcher, the
    account app, the edge, operator commands) leaves it to the core, which checks it at start.
    """
    env = dict(os.environ if env is None else env)
    path = config_path(cli_value, env)
    raw: dict[str, Any] = {}
    text = ""
    if path is not None:
        try:
            text = path.read_text()
            raw = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    unknown = sorted(set(raw) - SECTIONS)
    if unknown:
        raise ConfigError(f"{path}: unknown section{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}")
    for name in ("core", "edge", "account"):
        if not isinstance(raw.get(name, {}), dict):
            raise ConfigError(f"{path}: [{name}] must be a table")
    channels = raw.get("channels", [])
    if not isinstance(channels, list):
        raise ConfigError(f"{path}: channels must be an array of tables ([[channels]])")
    try:
        core = load_core_settings(raw.get("core", {}), channels, env)
        if core.catalog_file and path is not None:
            # A relative catalog path is the config file's neighbour, wherever the command runs.
            core = replace(core, catalog_file=str(path.parent / core.catalog_file))
        if check_catalog:
            from router_core.prices import PriceBook  # the package: only where a core will run
            check_channel_models(list(core.channels), Catalog.load(core.catalog_file or None), PriceBook().knows)
        edge = load_edge_settings(raw.get("edge", {}), core.listen)
    except CatalogError as exc:
        raise ConfigError(str(exc)) from None  # it names its own file and line
    except CoreConfigError as exc:
        line = channel_line(text, exc.channel_index)
        where = f"{path}, line {line}" if line else f"{path or 'configuration'}"
        raise ConfigError(f"{where}: {exc}") from None
    except EdgeConfigError as exc:
        raise ConfigError(f"{path or 'configuration'}: {exc}") from None
    _check_account(raw.get("account", {}), path)
    if not core.service_token:
        core = _with_token(core, _local_service_token())
    return Config(path=path, raw=raw, core=core, edge=edge, env=env)


_CHANNELS_HEADER = re.compile(r"^\s*\[\[\s*channels\s*\]\]")


def channel_line(text: str, index: int | None) -> int | None:
    """The line (1-based) of the index-th `[[channels]]` header, if the file uses that form.

    tomllib keeps no positions, but each array-of-tables entry starts at its own header line,
    so counting headers finds it (a `channels = [...]` inline array gets no line).
    """
    if index is None or not text:
        return None
    seen = -1
    for number, line in enumerate(text.splitlines(), start=1):
        if _CHANNELS_HEADER.match(line):
            seen += 1
            if seen == index:
                return number
    return None


def _check_account(section: Mapping[str, Any], path: pathlib.Path | None) -> None:
    allowed = set(ACCOUNT_KEYS_BASE)
    try:
        from account.settings import ACCOUNT_KEYS  # the account app names its own keys
        allowed |= set(ACCOUNT_KEYS)
    except ImportError:
        pass
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ConfigError(f"{path}: unknown key{'s' if len(unknown) > 1 else ''} in [account]: {', '.join(unknown)}")


def ensure_state_dir() -> pathlib.Path:
    """.onekey/, readable by this user only: it holds the stores, keys and written mail."""
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o700)
    if STATE_DIR.stat().st_mode & 0o077:
        STATE_DIR.chmod(0o700)
    return STATE_DIR


def _local_service_token() -> str:
    """The service credential of a single-machine install, kept in .onekey/ (mode 0600)."""
    token_file = STATE_DIR / "service-token"
    if token_file.exists():
        return token_file.read_text().strip()
    ensure_state_dir()
    token = secrets.token_urlsafe(32)
    fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    return token


def _with_token(core: CoreSettings, token: str) -> CoreSettings:
    return replace(core, service_token=Secret(token))

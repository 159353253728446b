"""The Portkey gateway as the benchmark's peer: installed from npm on first use, started headless.

`@portkey-ai/gateway` at exactly PORTKEY_VERSION, with `@hono/node-server` pinned to
HONO_NODE_SERVER through an npm override (Portkey's streams are buffered whole with newer
versions of it). It is installed into bench/.peers/portkey/ (ignored by git) from
bench/portkey.package.json and reused while the installed versions are the pinned ones.

It is started as its package's bin starts it (`node build/start-server.js --port=N --headless`),
with bench/portkey_loopback.cjs preloaded so it listens on 127.0.0.1 only, and
TRUSTED_CUSTOM_HOSTS=127.0.0.1 so it accepts the bench's upstream as a custom host (it refuses
private addresses otherwise). Every request carries its one route in headers (PORTKEY_ROUTE).
"""
from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
PORTKEY_VERSION = "1.15.2"
HONO_NODE_SERVER = "1.14.1"
TEMPLATE = HERE / "portkey.package.json"
LOOPBACK = HERE / "portkey_loopback.cjs"
CACHE = HERE / ".peers" / "portkey"


class PeerUnavailable(Exception):
    """The peer cannot run here (no node or npm, or the install failed); the message says why."""


def installed_versions(cache: pathlib.Path = CACHE) -> dict[str, str]:
    """The versions of the gateway and of @hono/node-server installed in `cache` (empty when absent)."""
    out = {}
    for name in ("@portkey-ai/gateway", "@hono/node-server"):
        manifest = cache / "node_modules" / name / "package.json"
        try:
            out[name] = json.loads(manifest.read_text())["version"]
        except (OSError, ValueError, KeyError):
            pass
    return out


def is_installed(cache: pathlib.Path = CACHE) -> bool:
    """True when `cache` holds exactly the pinned versions (no npm call needed)."""
    return installed_versions(cache) == {"@portkey-ai/gateway": PORTKEY_VERSION,
                                         "@hono/node-server": HONO_NODE_SERVER}


def entry(cache: pathlib.Path = CACHE) -> pathlib.Path:
    """The gateway's start script: its package's `bin`."""
    package = cache / "node_modules" / "@portkey-ai" / "gateway"
    bin_ = json.loads((package / "package.json").read_text())["bin"]
    return package / (bin_ if isinstance(bin_, str) else next(iter(bin_.values())))


def install(log, cache: pathlib.Path = CACHE) -> pathlib.Path:
    """Install the pinned peer into `cache` unless it is there already; its start script."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise PeerUnavailable(f"{'node' if not node else 'npm'} is not installed")
    if not is_installed(cache):
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(TEMPLATE, cache / "package.json")
        log(f"installing the peer @portkey-ai/gateway@{PORTKEY_VERSION} with npm into {cache}")
        # No install scripts: the package's own (patch-package) has nothing to patch in the
        # published build, and scripts from a registry have no business running here.
        try:
            done = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--ignore-scripts",
                                   "--omit=dev", "--loglevel=error"],
                                  cwd=cache, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise PeerUnavailable("npm install took more than 5 minutes") from None
        if done.returncode != 0:
            raise PeerUnavailable(f"npm install failed: {done.stderr.strip()[-500:]}")
        if not is_installed(cache):
            raise PeerUnavailable(f"npm installed other versions than the pinned ones: {installed_versions(cache)}")
    return entry(cache)


def command(script: pathlib.Path, port: int) -> list[str]:
    """How the peer is started: headless, on loopback, on `port`."""
    return [shutil.which("node") or "node", "-r", str(LOOPBACK), str(script), f"--port={port}", "--headless"]


def environment(base: dict[str, str]) -> dict[str, str]:
    """The peer's environment: production mode, the loopback upstream trusted as a custom host."""
    return {**base, "NODE_ENV": "production", "TRUSTED_CUSTOM_HOSTS": "127.0.0.1"}


def route(upstream_base_url: str) -> dict[str, str]:
    """The headers of Portkey's one route: the OpenAI provider at the bench's upstream."""
    return {"x-portkey-provider": "openai", "x-portkey-custom-host": upstream_base_url}


def version_note() -> str:
    return f"@portkey-ai/gateway {PORTKEY_VERSION} (node {_node_version()}, @hono/node-server {HONO_NODE_SERVER})"


def _node_version() -> str:
    node = shutil.which("node")
    if not node:
        return "absent"
    try:
        return subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10,
                              env={**os.environ}).stdout.strip().lstrip("v")
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"

"""`onekey up`: the components as separate processes, a ready local key, a clean stop."""
from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

import grpc

from onekey.v1 import admin_pb2, admin_pb2_grpc, router_pb2, router_pb2_grpc
from onekey_cli.config import STATE_DIR, Config, ensure_state_dir

LOCAL_KEY_FILE = STATE_DIR / "local-key.json"
PROVIDERS = ("openai", "anthropic", "google", "xai")


class _Stopped(Exception):
    """Ctrl-C or SIGTERM arrived while the components were still starting."""


def _spawn(component: str, config: Config) -> subprocess.Popen:
    args = [sys.executable, "-m", "onekey_cli", component]
    if config.path is not None:
        args += ["--config", str(config.path)]
    env = {**os.environ, "ONEKEY_SERVICE_TOKEN": config.core.service_token.reveal()}
    # A session of its own: Ctrl-C at the terminal reaches only the launcher, which stops the
    # components in order with SIGTERM; a component still importing never sees a SIGINT.
    return subprocess.Popen(args, env=env, start_new_session=True)


def _wait_core(config: Config, proc: subprocess.Popen, stopping, timeout: float = 30.0) -> grpc.Channel:
    channel = grpc.insecure_channel(config.core.listen)
    deadline = time.monotonic() + timeout
    while True:
        try:
            grpc.channel_ready_future(channel).result(timeout=0.2)
            return channel
        except grpc.FutureTimeoutError:
            if stopping():
                channel.close()
                raise _Stopped from None
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("onekey: the core did not start (see its log above)")


def _wait_http(url: str, proc: subprocess.Popen, what: str, stopping, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if stopping():
                raise _Stopped from None
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"onekey: the {what} did not start (see its log above)")
            time.sleep(0.1)


def ensure_local_key(channel: grpc.Channel, config: Config) -> dict:
    """The local project's key, made on first run and kept in .onekey/ (mode 0600)."""
    router = router_pb2_grpc.RouterServiceStub(channel)
    if LOCAL_KEY_FILE.exists():
        LOCAL_KEY_FILE.chmod(0o600)  # an older install may have left it readable to others
        saved = json.loads(LOCAL_KEY_FILE.read_text())
        try:
            router.ValidateKey(router_pb2.ValidateKeyRequest(api_key=saved["key"]), timeout=10)
            return saved
        except grpc.RpcError:
            pass  # revoked or from another database: make a new one
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    metadata = (("authorization", f"Bearer {config.core.service_token.reveal()}"),)
    project = admin.CreateProject(admin_pb2.CreateProjectRequest(
        name="local", free_requests=config.core.new_project_free_requests), metadata=metadata, timeout=10)
    created = admin.CreateKey(admin_pb2.CreateKeyRequest(project_id=project.id, name="local"),
                              metadata=metadata, timeout=10)
    saved = {"project_id": project.id, "key_id": created.key.id, "key": created.secret}
    ensure_state_dir()
    fd = os.open(LOCAL_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # O_CREAT's mode applies only to a new file
    with os.fdopen(fd, "w") as f:
        json.dump(saved, f)
    return saved


# What the printout's example calls: the first of these that answers here, else the sandbox.
TRY_MODELS = ("openai/gpt-5-mini", "anthropic/claude-haiku-4-5", "google/gemini-2.5-flash",
              "openai/gpt-4.1-mini", "xai/grok-3-mini")


def try_model(channel: grpc.Channel) -> str:
    """A model whose status on this install is `available` (the sandbox's when no provider has a channel)."""
    router = router_pb2_grpc.RouterServiceStub(channel)
    listing = router.ListModels(router_pb2.ListModelsRequest(), timeout=10).models
    available = {m.id for m in listing if m.status == "available"}
    return next((m for m in TRY_MODELS if m in available), "sandbox/echo")


def _banner(config: Config, base_url: str, local: dict, account_url: str | None, model: str = "sandbox/echo") -> str:
    configured = {c.provider for c in config.core.channels}
    missing = [p for p in PROVIDERS if p not in configured]
    lines = [
        "",
        "OneKey is running.",
        f"  base URL     {base_url}",
        f"  API key      {local['key']}   (local project {local['project_id']})",
    ]
    if account_url:
        lines.append(f"  account      {account_url}")
    if missing:
        lines.append(f"  no channel   {', '.join(missing)} (set {', '.join(_env_var(p) for p in missing)} or add [[channels]])")
        lines.append("               their models answer 404 model_not_available until then")
    why = "works without any provider key" if model.startswith("sandbox/") else "is available here"
    lines += [
        f"  try it       {model} {why}:",
        f"    curl {base_url}/chat/completions -H 'Authorization: Bearer {local['key']}' \\",
        "      -H 'Content-Type: application/json' \\",
        f"      -d '{{\"model\": \"{model}\", \"messages\": [{{\"role\": \"user\", \"content\": \"hello\"}}]}}'",
        f"  models       curl {base_url}/models -H 'Authorization: Bearer {local['key']}'   (prices and status)",
        "Ctrl-C stops everything.",
        "",
    ]
    return "\n".join(lines)


def _env_var(provider: str) -> str:
    return {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "google": "GEMINI_API_KEY",
            "xai": "XAI_API_KEY"}[provider]


def _account_available() -> bool:
    return (pathlib.Path(__file__).resolve().parent.parent / "account" / "__init__.py").exists()


def up(config: Config) -> int:
    """Start core, edge (and account, when installed); stop them all on Ctrl-C or SIGTERM."""
    procs: list[subprocess.Popen] = []
    stopping = False

    def stop_all(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop_all)
    signal.signal(signal.SIGINT, stop_all)
    ensure_state_dir()

    def stopped() -> bool:
        return stopping

    return_code = 0
    try:
        core = _spawn("core", config)
        procs.append(core)
        channel = _wait_core(config, core, stopped)
        local = ensure_local_key(channel, config)
        model = try_model(channel)
        channel.close()
        if stopping:
            raise _Stopped
        edge = _spawn("edge", config)
        procs.append(edge)
        host, _, port = config.edge.listen.rpartition(":")
        base = f"http://{host or '127.0.0.1'}:{port}"
        _wait_http(f"{base}/healthz", edge, "edge", stopped)
        account_url = None
        if _account_available() and not stopping:
            account = _spawn("account", config)
            procs.append(account)
            a_host, _, a_port = str(config.account_section.get("listen", "127.0.0.1:5000")).rpartition(":")
            account_url = f"http://{a_host or '127.0.0.1'}:{a_port}"
            _wait_http(f"{account_url}/healthz", account, "account app", stopped)
        if not stopping:
            print(_banner(config, f"{base}/v1", local, account_url, model), flush=True)
        while not stopping:
            if any(p.poll() is not None for p in procs):
                print("onekey: a component exited; stopping the others", file=sys.stderr)
                return_code = 1
                break
            time.sleep(0.2)
    except _Stopped:
        pass  # stopped during start-up: a clean stop like any other
    except grpc.RpcError:
        if not stopping:
            raise
    finally:
        # Edge first, so no new request reaches a core that is draining.
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=max(config.core.shutdown_grace, config.edge.shutdown_timeout) + 5)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return return_code

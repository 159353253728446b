"""`python -m onekey_cli.local_key`: the local project's key, and a model to try, as JSON.

`onekey up` runs this once its router answers, in a process of its own, so that the launcher,
which stays running beside the components, never loads gRPC.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import grpc

from onekey.v1 import admin_pb2, admin_pb2_grpc, router_pb2, router_pb2_grpc
from onekey_cli.config import STATE_DIR, Config, ensure_state_dir
from onekey_cli.config import load as load_config

LOCAL_KEY_FILE = STATE_DIR / "local-key.json"


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


def main(argv: list[str]) -> int:
    os.umask(0o077)  # as every `onekey` command: what it writes is for this user only
    parser = argparse.ArgumentParser(prog="python -m onekey_cli.local_key")
    parser.add_argument("--config", metavar="FILE")
    config = load_config(parser.parse_args(argv).config)
    channel = grpc.insecure_channel(config.core.listen)
    try:
        grpc.channel_ready_future(channel).result(timeout=30)
        local = ensure_local_key(channel, config)
        print(json.dumps({**local, "model": try_model(channel)}), flush=True)
    finally:
        channel.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

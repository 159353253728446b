"""The peer's install cache, its absence, and the upstream's long and slow streams (no npm call here)."""
from __future__ import annotations

import json
import pathlib
import shutil

import pytest

from bench import load, peer, upstream


def fake_install(cache: pathlib.Path, gateway: str, server: str) -> None:
    for name, version, extra in (("@portkey-ai/gateway", gateway, {"bin": "build/start-server.js"}),
                                 ("@hono/node-server", server, {})):
        manifest = cache / "node_modules" / name / "package.json"
        manifest.parent.mkdir(parents=True)
        manifest.write_text(json.dumps({"name": name, "version": version, **extra}))


def test_an_install_of_the_pinned_versions_is_reused_without_npm(tmp_path, monkeypatch):
    fake_install(tmp_path, peer.PORTKEY_VERSION, peer.HONO_NODE_SERVER)
    monkeypatch.setattr(shutil, "which", lambda name: f"/bin/{name}")  # no npm runs: it is installed

    assert peer.is_installed(tmp_path)
    script = peer.install(lambda msg: pytest.fail(f"npm was run: {msg}"), tmp_path)
    assert script == tmp_path / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"


def test_other_versions_are_not_the_peer(tmp_path):
    fake_install(tmp_path, peer.PORTKEY_VERSION, "1.19.0")  # streams arrive whole with it
    assert not peer.is_installed(tmp_path)
    assert not peer.is_installed(tmp_path / "absent")


@pytest.mark.parametrize("missing", ["node", "npm"])
def test_without_node_or_npm_the_peer_is_unavailable(tmp_path, monkeypatch, missing):
    monkeypatch.setattr(shutil, "which", lambda name: None if name == missing else f"/bin/{name}")
    with pytest.raises(peer.PeerUnavailable, match=f"{missing} is not installed"):
        peer.install(lambda msg: None, tmp_path)


def test_the_template_pins_the_gateway_and_overrides_the_node_server():
    template = json.loads(peer.TEMPLATE.read_text())
    assert template["dependencies"] == {"@portkey-ai/gateway": peer.PORTKEY_VERSION}
    assert template["overrides"] == {"@hono/node-server": peer.HONO_NODE_SERVER}


def test_the_peer_is_started_headless_on_loopback_with_the_upstream_trusted(tmp_path):
    args = peer.command(tmp_path / "start-server.js", 4321)
    assert args[1:] == ["-r", str(peer.LOOPBACK), str(tmp_path / "start-server.js"), "--port=4321", "--headless"]
    env = peer.environment({"PATH": "/bin"})
    assert env["TRUSTED_CUSTOM_HOSTS"] == "127.0.0.1" and env["PATH"] == "/bin"
    assert peer.route("http://127.0.0.1:9/v1") == {"x-portkey-provider": "openai",
                                                   "x-portkey-custom-host": "http://127.0.0.1:9/v1"}


def test_a_target_carries_the_peer_route_in_every_request():
    t = load.target("portkey", "127.0.0.1", 9, "/v1", "sk-x", "gpt-4.1-mini",
                    headers={"x-portkey-provider": "openai"})
    for raw in (t.request, t.stream_request, t.long_stream_request):
        head, _, body = raw.partition(b"\r\n\r\n")
        assert b"\r\nx-portkey-provider: openai\r\n" in head
        assert int(head.split(b"Content-Length: ")[1]) == len(body)
    assert json.loads(t.long_stream_request.partition(b"\r\n\r\n")[2])["max_tokens"] == load.LONG_EVENTS


@pytest.mark.parametrize("body, tokens", [(b'{"max_tokens":50}', 50), (b'{"max_tokens": 32, "x": 1}', 32),
                                          (b'{"stream":true}', 0), (b'{"max_tokens": null}', 0)])
def test_the_upstream_reads_max_tokens_without_decoding(body, tokens):
    assert upstream._max_tokens(body) == tokens


def test_the_long_stream_has_fifty_content_events():
    events = upstream.LONG_STREAM_EVENTS[True]
    assert sum(e.count(b'"content":') for e in events) == load.LONG_EVENTS == upstream.LONG_CONTENT_EVENTS
    assert events[-1].endswith(b"data: [DONE]\n\n\r\n")
    assert b'"completion_tokens":50' in events[-2]

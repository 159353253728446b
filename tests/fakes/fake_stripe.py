"""A fake Stripe on loopback: the Checkout Sessions API as stripe-python calls it, and webhook
events built and signed exactly as Stripe signs them.

It checks the secret key (`Authorization: Bearer sk_test_…`), parses the form-encoded nested
parameters (`line_items[0][price_data][unit_amount]=500`), honours `Idempotency-Key`, records
what it got, and serves a stand-in for the hosted checkout page at the session's `url`.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

API_VERSION = "2025-10-29.clover"


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    params: dict[str, Any]


def parse_form(body: str) -> dict[str, Any]:
    """Stripe's form encoding -> nested dicts and lists (`a[0][b]=1` -> {'a': [{'b': '1'}]})."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        parts = re.findall(r"[^\[\]]+", key)
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(root)


def _lists(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if node and all(k.isdigit() for k in node):
        return [_lists(node[k]) for k in sorted(node, key=int)]
    return {k: _lists(v) for k, v in node.items()}


def sign(payload: str, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header for payload: t=<unix>,v1=HMAC-SHA256(secret, "<t>.<payload>")."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def event(kind: str, obj: dict[str, Any], event_id: str | None = None) -> dict[str, Any]:
    """A webhook event of `kind` about `obj`, shaped as Stripe sends it."""
    return {"id": event_id or f"evt_{secrets.token_hex(12)}", "object": "event", "api_version": API_VERSION,
            "created": int(time.time()), "livemode": False, "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None}, "type": kind, "data": {"object": obj}}


class FakeStripe:
    """Start with .start(); .url is the API base to give stripe-python."""

    def __init__(self, secret_key: str = "sk_test_fake_0123456789abcdef") -> None:
        self.secret_key = secret_key
        self.received: list[Recorded] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.fail_with: int | None = None  # answer every API call with this status (Stripe down)
        self._idempotent: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeStripe:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                fake._api(self, "POST")

            def do_GET(self):
                if self.path.startswith("/pay/"):
                    fake._pay_page(self)
                else:
                    fake._api(self, "GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def created(self) -> list[Recorded]:
        return [r for r in self.received if r.method == "POST" and r.path == "/v1/checkout/sessions"]

    # -- webhook events about sessions this fake made --------------------------------------

    def complete(self, session_id: str, *, paid: bool = True) -> dict[str, Any]:
        """The session as `checkout.session.completed` carries it (paid, or unpaid for delayed methods)."""
        with self._lock:
            session = self.sessions[session_id]
            session.update(status="complete", payment_status="paid" if paid else "unpaid",
                           payment_intent=session["payment_intent"] or f"pi_{secrets.token_hex(12)}")
            return json.loads(json.dumps(session))

    def settle(self, session_id: str, *, succeeded: bool) -> dict[str, Any]:
        """The session as the async_payment_succeeded / _failed event carries it."""
        with self._lock:
            session = self.sessions[session_id]
            session["payment_status"] = "paid" if succeeded else "unpaid"
            return json.loads(json.dumps(session))

    def charge(self, session_id: str, amount_refunded: int) -> dict[str, Any]:
        """The charge of a completed session, as `charge.refunded` carries it (refunds not expanded)."""
        session = self.sessions[session_id]
        return {"id": "ch_" + session["payment_intent"][3:], "object": "charge", "amount": session["amount_total"],
                "amount_captured": session["amount_total"], "amount_refunded": amount_refunded,
                "currency": session["currency"], "payment_intent": session["payment_intent"],
                "refunded": amount_refunded >= session["amount_total"], "paid": True, "status": "succeeded",
                "metadata": dict(session["metadata"]), "livemode": False}

    # -- HTTP ------------------------------------------------------------------------------

    def _reply(self, handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.send_header("Request-Id", f"req_{secrets.token_hex(7)}")
        handler.end_headers()
        handler.wfile.write(data)

    def _error(self, handler, status: int, kind: str, message: str) -> None:
        self._reply(handler, status, {"error": {"type": kind, "message": message}})

    def _api(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        path = handler.path.split("?", 1)[0]
        params = parse_form(body) if body else {}
        with self._lock:
            self.received.append(Recorded(method, path, dict(handler.headers), params))
        if handler.headers.get("Authorization") != f"Bearer {self.secret_key}":
            return self._error(handler, 401, "invalid_request_error", "Invalid API Key provided.")
        if self.fail_with:
            return self._error(handler, self.fail_with, "api_error", "fake Stripe is down")
        if method == "POST" and path == "/v1/checkout/sessions":
            return self._create(handler, params)
        match = re.fullmatch(r"/v1/checkout/sessions/([A-Za-z0-9_]+)", path)
        if method == "GET" and match and match.group(1) in self.sessions:
            return self._reply(handler, 200, self.sessions[match.group(1)])
        return self._error(handler, 404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _create(self, handler: BaseHTTPRequestHandler, params: dict[str, Any]) -> None:
        key = handler.headers.get("Idempotency-Key")
        with self._lock:
            if key and key in self._idempotent:
                return self._reply(handler, 200, self.sessions[self._idempotent[key]])
            items = params.get("line_items") or []
            try:
                amount = sum(int(i["price_data"]["unit_amount"]) * int(i.get("quantity", 1)) for i in items)
                currency = items[0]["price_data"]["currency"]
            except (KeyError, IndexError, ValueError, TypeError):
                return self._error(handler, 400, "invalid_request_error", "line_items are malformed")
            session_id = f"cs_test_{secrets.token_hex(16)}"
            session = {
                "id": session_id, "object": "checkout.session", "mode": params.get("mode"),
                "url": f"{self.url}/pay/{session_id}", "amount_total": amount, "amount_subtotal": amount,
                "currency": currency, "payment_method_types": params.get("payment_method_types") or ["card"],
                "payment_status": "unpaid", "status": "open", "metadata": params.get("metadata") or {},
                "client_reference_id": params.get("client_reference_id"), "payment_intent": None,
                "customer_email": params.get("customer_email"), "success_url": params.get("success_url"),
                "cancel_url": params.get("cancel_url"), "livemode": False, "created": int(time.time()),
            }
            self.sessions[session_id] = session
            if key:
                self._idempotent[key] = session_id
        self._reply(handler, 200, session)

    def _pay_page(self, handler: BaseHTTPRequestHandler) -> None:
        session = self.sessions.get(handler.path.rsplit("/", 1)[-1])
        if session is None:
            handler.send_response(404)
            handler.end_headers()
            return
        methods = ", ".join(session["payment_method_types"])
        page = (f"<!doctype html><html><head><title>Fake Stripe Checkout</title></head><body "
                f"style='font-family:sans-serif;max-width:520px;margin:60px auto'><h1>Fake Stripe Checkout</h1>"
                f"<p id='amount'>Pay ${session['amount_total'] / 100:.2f} {session['currency'].upper()}</p>"
                f"<p id='methods'>Payment methods: {methods}</p><p>Apple Pay and Google Pay appear here with "
                f"card on devices that support them.</p></body></html>").encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(page)))
        handler.end_headers()
        handler.wfile.write(page)
